//! Training and validation pairs from simulated drives: every scan projected and encoded once,
//! every pair labelled with its ground-truth overlap and yaw, then balanced over overlap
//! (OverlapNet, Sec. IV-A). Each seed is a different world and route; the default drive passes
//! its start again in the opposite direction and then in the same one, so both kinds of revisit
//! are in the data.

use super::input::encode;
use super::model::ModelConfig;
use crate::ground_truth::pairs::{Balance, LabelScan, PairLabel, all_pairs, balanced, label_all};
use crate::projection::{ProjectionParams, project};
use crate::sim::{Scene, SimConfig, Simulation};
use rayon::prelude::*;

/// Which drives to take pairs from.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// World seeds, one drive each.
    pub seeds: Vec<u64>,
    /// Scene of every drive.
    pub scene: Scene,
    /// Keep every `every`-th frame of a drive.
    pub every: usize,
    /// How pairs are balanced over overlap.
    pub balance: Balance,
    /// Seed of the balanced sampling.
    pub sample_seed: u64,
}

/// Encoded scans and labelled pairs of them.
#[derive(Default)]
pub struct PairSet {
    /// Encoded input images, `rows * cols * channels` each.
    pub images: Vec<Vec<f32>>,
    /// Pairs; `query` and `reference` index `images`.
    pub pairs: Vec<PairLabel>,
}

impl PairSet {
    /// Pairs per 0.1-wide overlap bin.
    pub fn histogram(&self) -> Vec<usize> {
        crate::ground_truth::pairs::overlap_histogram(&self.pairs)
    }

    /// Moves `other`'s scans in after this set's and returns `other`'s pairs, their indices
    /// shifted to match (kept apart so that a batch can draw from each at its own share).
    pub fn append_images(&mut self, other: PairSet) -> Vec<PairLabel> {
        let offset = self.images.len();
        self.images.extend(other.images);
        other
            .pairs
            .into_iter()
            .map(|mut p| {
                p.query += offset;
                p.reference += offset;
                p
            })
            .collect()
    }
}

/// Simulates the drives of `data` and builds their pair set; `on_seed` is told as each drive is done.
pub fn simulated_pairs(data: &DataConfig, model: &ModelConfig, on_seed: &(dyn Fn(u64) + Sync)) -> PairSet {
    let mut set = PairSet {
        images: Vec::new(),
        pairs: Vec::new(),
    };
    for &seed in &data.seeds {
        let sim = Simulation::new(&SimConfig {
            seed,
            scene: data.scene,
            ..SimConfig::default()
        });
        let params = ProjectionParams::from_sensor(sim.sensor());
        let frames: Vec<usize> = (0..sim.frames()).step_by(data.every.max(1)).collect();
        let (images, labels): (Vec<Vec<f32>>, Vec<LabelScan>) = frames
            .par_iter()
            .map(|&i| {
                let scan = sim.scan(i);
                let img = project(&scan.points, &scan.intensity, &params);
                let pose = scan.gt_pose.expect("simulated scans carry their pose");
                (encode(&img, model.channels), LabelScan::new(&img, scan.points, pose))
            })
            .unzip();
        let pairs = label_all(&labels, &all_pairs(labels.len(), 1), &params);
        let kept = balanced(&pairs, data.balance, data.sample_seed ^ seed);
        let shifted = set.append_images(PairSet { images, pairs: kept });
        set.pairs.extend(shifted);
        on_seed(seed);
    }
    set
}

//! Real recordings as OverlapNet training and validation data: each recording's scans encoded as
//! the network reads them and its pairs labelled by OverlapNet's definition from ground-truth
//! poses, or, for a recording without them (`self_label`), from the poses our own SLAM (loop
//! closure on) optimised for it. Recordings declared distinct places add pairs across
//! recordings as real negatives (overlap 0).

use crate::error::{Error, Result};
use crate::ground_truth::pairs::{
    Balance, LabelScan, PairLabel, all_pairs, balanced, label_all, overlap_bin, overlap_histogram,
};
use crate::io::FrameRange;
use crate::jobs::gt_pairs::read_posed_scans;
use crate::loops::scan_context::ScanContext;
use crate::overlapnet::ModelConfig;
use crate::overlapnet::data::PairSet;
use crate::overlapnet::input::encode;
use crate::pipeline::config::{PipelineConfig, SourceSpec};
use crate::projection::project;
use crate::scan::Scan;
use crate::sensor::SensorModel;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// One real recording: any source `replay` reads, and the frames taken from it.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Where the scans come from.
    pub source: SourceSpec,
    /// Frames read.
    pub frames: FrameRange,
}

/// Which real recordings, and how their pairs are labelled.
#[derive(Debug, Clone)]
pub struct RealDataConfig {
    /// The recordings.
    pub recordings: Vec<Recording>,
    /// Keep every `every`-th scan of a recording.
    pub every: usize,
    /// Label from our own SLAM's optimised poses instead of the recordings' ground truth.
    pub self_label: bool,
    /// The recordings show different places: every pair across two of them is a real negative.
    pub distinct_places: bool,
    /// Keep every pair within a recording, at every distance, instead of OverlapNet's balancing
    /// over the overlap bins (which keeps few of the far, partly overlapping pairs that ranking
    /// a drive's candidates turns on).
    pub every_pair: bool,
    /// Share of the pairs across recordings chosen as the hardest negatives: the pairs whose scans
    /// Scan Context finds most alike (places that look the same); the rest are drawn at random.
    pub hard_negatives: f64,
    /// Sensor model of the recordings (odometry when self-labelling).
    pub sensor: SensorModel,
    /// Seed of the balanced sampling.
    pub seed: u64,
    /// Where self-labelled poses are written (one KITTI poses file per recording).
    pub poses_out: Option<PathBuf>,
}

/// What labelling found, per recording and across them.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RealDataReport {
    /// Name and scan count of each recording.
    pub recordings: Vec<(String, usize)>,
    /// Pairs kept within recordings, per 0.1-wide overlap bin.
    pub within: Vec<usize>,
    /// Pairs kept across recordings (overlap 0).
    pub across: usize,
    /// Self-labelled pose files written.
    pub self_labelled: Vec<PathBuf>,
}

/// Reads, labels and encodes the recordings of `cfg` for `model`.
pub fn real_pairs(cfg: &RealDataConfig, model: &ModelConfig) -> Result<(PairSet, RealDataReport)> {
    let params = model.projection();
    let mut set = PairSet::default();
    let mut report = RealDataReport::default();
    let mut spans = Vec::new();
    let mut within = Vec::new();
    let mut descriptors: Vec<Option<ScanContext>> = Vec::new();
    let wants_look = cfg.distinct_places && cfg.hard_negatives > 0.0;
    for (k, recording) in cfg.recordings.iter().enumerate() {
        let (name, scans) = posed_scans(cfg, recording, k, &mut report)?;
        // One projection a scan serves both the network's input and the labels.
        let encoded = scans
            .into_par_iter()
            .map(|s| {
                let pose = s
                    .gt_pose
                    .ok_or_else(|| Error::Usage(format!("{name}: frame {} has no pose", s.index)))?;
                let image = project(&s.points, &s.intensity, &params);
                // Only hard negatives need a scan's look.
                let descriptor = wants_look.then(|| ScanContext::new(&s.points));
                Ok((
                    encode(&image, model.channels),
                    LabelScan::new(&image, s.points, pose),
                    descriptor,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for (image, label, descriptor) in encoded {
            images.push(image);
            labels.push(label);
            descriptors.push(descriptor);
        }
        let pairs = label_all(&labels, &all_pairs(labels.len(), 1), &params);
        log::info!("{name}: {} scans, {} pairs labelled", labels.len(), pairs.len());
        report.recordings.push((name, labels.len()));
        let offset = set.images.len();
        spans.push(offset..offset + images.len());
        within.extend(set.append_images(PairSet { images, pairs }));
    }
    let mut kept = match cfg.every_pair {
        true => within,
        false => balance_real(&within, cfg.seed),
    };
    report.within = overlap_histogram(&kept);
    if cfg.distinct_places {
        let hard = |q: usize, r: usize| match (&descriptors[q], &descriptors[r]) {
            (Some(a), Some(b)) => a.compare(b).distance,
            _ => 1.0,
        };
        let across = across_pairs(&spans, kept.len().max(1), cfg.hard_negatives, hard, cfg.seed);
        report.across = across.len();
        kept.extend(across);
    }
    set.pairs = kept;
    Ok((set, report))
}

/// The scans of one recording with the poses they are labelled by: its ground truth, or, when
/// self-labelling, the poses a SLAM run (loops on) optimised, also written to `poses_out`.
fn posed_scans(
    cfg: &RealDataConfig,
    recording: &Recording,
    k: usize,
    report: &mut RealDataReport,
) -> Result<(String, Vec<Scan>)> {
    let Recording { source, frames } = recording;
    if !cfg.self_label {
        return read_posed_scans(source, *frames, cfg.every, "train --data (without --self-label)");
    }
    let run = crate::pipeline::replay(&PipelineConfig {
        source: source.clone(),
        frames: *frames,
        sensor: cfg.sensor.clone(),
        quiet: true,
        ..PipelineConfig::default()
    })?;
    let opened = source.open(*frames)?;
    let name = opened.name();
    let mut scans: Vec<Scan> = Vec::new();
    for (i, scan) in opened.enumerate() {
        let mut scan = scan?;
        let pose = *run.poses.get(i).ok_or_else(|| {
            Error::Usage(format!(
                "{name}: the SLAM run gave {} poses, fewer than the scans",
                run.poses.len()
            ))
        })?;
        if i % cfg.every.max(1) == 0 {
            scan.gt_pose = Some(pose);
            scans.push(scan);
        }
    }
    if scans.is_empty() {
        return Err(Error::Usage(format!("{name}: no scans")));
    }
    if let Some(dir) = &cfg.poses_out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(format!("{k:02}-{}.txt", file_stem(&name)));
        crate::io::poses::write_kitti(&path, &run.poses)?;
        report.self_labelled.push(path);
    }
    Ok((name, scans))
}

/// A name safe as a file name: letters, digits, '-' and '_' kept, the rest '_'.
fn file_stem(name: &str) -> String {
    let base = Path::new(name)
        .file_name()
        .map_or(name.into(), |n| n.to_string_lossy().into_owned());
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// OverlapNet's balancing when the recordings hold pairs of 0.4-0.5 overlap to balance against;
/// a short recording (a few consecutive scans) may hold none, and then keeps every pair.
fn balance_real(pairs: &[PairLabel], seed: u64) -> Vec<PairLabel> {
    if pairs.iter().any(|p| overlap_bin(p.overlap) == overlap_bin(0.45)) {
        balanced(pairs, Balance::OverlapNet, seed)
    } else {
        pairs.to_vec()
    }
}

/// Up to `count` pairs of scans from two different recordings (`spans` of scan indices): overlap
/// 0 by declaration, yaw unknown (0; the yaw loss skips pairs under 0.7). A `hard` share of them
/// are the pairs of least `distance` (the most alike), the rest drawn at random.
fn across_pairs(
    spans: &[std::ops::Range<usize>],
    count: usize,
    hard: f64,
    distance: impl Fn(usize, usize) -> f32 + Sync,
    seed: u64,
) -> Vec<PairLabel> {
    let mut all: Vec<PairLabel> = Vec::new();
    for (a, sa) in spans.iter().enumerate() {
        for sb in &spans[..a] {
            for q in sa.clone() {
                all.extend(sb.clone().map(|r| PairLabel {
                    query: q,
                    reference: r,
                    overlap: 0.0,
                    yaw_deg: 0.0,
                }));
            }
        }
    }
    let hardest = ((count.min(all.len()) as f64 * hard.clamp(0.0, 1.0)).round() as usize).min(all.len());
    if hardest > 0 {
        let d: Vec<f32> = all.par_iter().map(|p| distance(p.query, p.reference)).collect();
        let mut order: Vec<usize> = (0..all.len()).collect();
        order.sort_by(|&a, &b| d[a].total_cmp(&d[b]).then(a.cmp(&b)));
        let mut ranked: Vec<PairLabel> = order.iter().map(|&k| all[k]).collect();
        let rest = ranked.split_off(hardest);
        all = ranked.into_iter().chain(shuffled(rest, seed)).collect();
    } else {
        all = shuffled(all, seed);
    }
    all.truncate(count);
    all.sort_by_key(|l| (l.query, l.reference));
    all
}

/// `pairs` in a seeded random order.
fn shuffled(mut pairs: Vec<PairLabel>, seed: u64) -> Vec<PairLabel> {
    pairs.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0xac055));
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_across_recordings_join_different_recordings_only() {
        let spans = [0..2, 2..5, 5..6];
        let none = |_: usize, _: usize| 0.0;
        let all = across_pairs(&spans, 100, 0.0, none, 1);
        // 2*3 + 1*2 + 1*3 pairs across.
        assert_eq!(all.len(), 11);
        let rec = |i: usize| spans.iter().position(|s| s.contains(&i)).unwrap();
        assert!(all.iter().all(|p| rec(p.query) != rec(p.reference) && p.overlap == 0.0));
        assert_eq!(across_pairs(&spans, 4, 0.0, none, 1).len(), 4);
        assert_eq!(
            across_pairs(&spans, 4, 0.0, none, 1),
            across_pairs(&spans, 4, 0.0, none, 1),
            "seeded"
        );
    }

    #[test]
    fn hard_negatives_are_the_most_alike_pairs_across() {
        let spans = [0..3, 3..6];
        // Pairs (4, 1) and (5, 2) look most alike.
        let distance = |q: usize, r: usize| match (q, r) {
            (4, 1) => 0.1,
            (5, 2) => 0.2,
            _ => 0.9,
        };
        let hard = across_pairs(&spans, 4, 0.5, distance, 3);
        assert_eq!(hard.len(), 4);
        let has = |q, r| hard.iter().any(|p| (p.query, p.reference) == (q, r));
        assert!(has(4, 1) && has(5, 2), "{hard:?}");
        let all_hard = across_pairs(&spans, 2, 1.0, distance, 9);
        let pairs: Vec<_> = all_hard.iter().map(|p| (p.query, p.reference)).collect();
        assert_eq!(pairs, vec![(4, 1), (5, 2)]);
    }

    #[test]
    fn short_recordings_keep_every_pair() {
        let p = |o: f32| PairLabel {
            query: 1,
            reference: 0,
            overlap: o,
            yaw_deg: 0.0,
        };
        let pairs = vec![p(0.9), p(0.8), p(0.05), p(0.02)];
        assert_eq!(balance_real(&pairs, 0).len(), 4);
        // With a 0.4-0.5 pair, OverlapNet's rule cuts the lower bins to its size.
        let pairs = vec![p(0.9), p(0.45), p(0.05), p(0.02)];
        assert_eq!(balance_real(&pairs, 0).len(), 3);
    }

    #[test]
    fn file_stems_are_safe() {
        assert_eq!(file_stem("/data/kitti/sequences/03"), "03");
        assert_eq!(file_stem("drive 2: left.mcap"), "drive_2__left_mcap");
    }
}

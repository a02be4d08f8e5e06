//! `gt-pairs`: ground-truth overlap and yaw for pairs of scans of a posed sequence, written as
//! CSV (`query,reference,overlap,yaw_deg,yaw_bin`): the labels OverlapNet trains on and the loop
//! evaluation judges against.

use crate::error::{Error, Result};
pub use crate::ground_truth::pairs::Balance;
use crate::ground_truth::pairs::{LabelScan, PairLabel, balanced, label, overlap_histogram, pairs_apart};
use crate::io::FrameRange;
use crate::io::atomic::write_atomic;
use crate::pipeline::config::SourceSpec;
use crate::pipeline::status::progress_bar;
use crate::projection::{ProjectionParams, project};
use crate::scan::Scan;
use crate::sensor::SensorModel;
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// What to label.
#[derive(Debug, Clone)]
pub struct GtPairsConfig {
    /// The sequence (it must carry ground-truth poses).
    pub source: SourceSpec,
    /// Frames to read.
    pub frames: FrameRange,
    /// Keep every `every`-th scan read (1: all).
    pub every: usize,
    /// The sensor, for the projection window.
    pub sensor: SensorModel,
    /// Pairs whose frames are fewer than this apart are skipped.
    pub min_gap: usize,
    /// Balance the pairs over overlap (`None`: keep all).
    pub balance: Option<Balance>,
    /// Seed of the balanced sampling.
    pub seed: u64,
    /// The CSV to write.
    pub out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
}

/// What `gt_pairs` did.
#[derive(Debug, Clone, PartialEq)]
pub struct GtPairsReport {
    /// Scans labelled.
    pub scans: usize,
    /// Pairs labelled.
    pub labelled: usize,
    /// Pairs written (after balancing).
    pub written: usize,
    /// Written pairs per 0.1-wide overlap bin.
    pub histogram: Vec<usize>,
    /// Seconds spent.
    pub wall_s: f64,
}

/// The scans of `source` (every `every`-th of `frames`), which must carry ground-truth poses;
/// `command` names the caller in the error. Returns the source's name and the scans.
pub(crate) fn read_posed_scans(
    source: &SourceSpec,
    frames: FrameRange,
    every: usize,
    command: &str,
) -> Result<(String, Vec<Scan>)> {
    let source = source.open(frames)?;
    let name = source.name();
    if !source.has_ground_truth() {
        return Err(Error::Usage(format!("{name}: {command} needs ground-truth poses")));
    }
    let scans: Vec<Scan> = source.step_by(every.max(1)).collect::<Result<_>>()?;
    if scans.is_empty() {
        return Err(Error::Usage(format!("{name}: no scans")));
    }
    // A recording's ground truth may not span every cloud: say which, rather than fail later.
    if let Some(s) = scans.iter().find(|s| s.gt_pose.is_none()) {
        return Err(Error::Usage(format!(
            "{name}: frame {} has no ground-truth pose (its stamp is outside the ground truth's time span)",
            s.index
        )));
    }
    Ok((name, scans))
}

/// Each scan projected and reduced for labelling, with its source frame numbers.
pub(crate) fn label_scans(
    name: &str,
    scans: Vec<Scan>,
    params: &ProjectionParams,
) -> Result<(Vec<usize>, Vec<LabelScan>)> {
    let frames = scans.iter().map(|s| s.index).collect();
    let labels = scans
        .into_par_iter()
        .map(|s| {
            let pose = s
                .gt_pose
                .ok_or_else(|| Error::Usage(format!("{name}: frame {} has no pose", s.index)))?;
            Ok(LabelScan::new(&project(&s.points, &[], params), s.points, pose))
        })
        .collect::<Result<_>>()?;
    Ok((frames, labels))
}

/// Reads the scans, labels every pair at least `min_gap` frames apart, optionally balances them,
/// and writes the CSV atomically.
pub fn gt_pairs(cfg: &GtPairsConfig) -> Result<GtPairsReport> {
    let start = Instant::now();
    let params = ProjectionParams::from_sensor(&cfg.sensor);
    let (name, scans) = read_posed_scans(&cfg.source, cfg.frames, cfg.every, "gt-pairs")?;
    let (frames, labelled_scans) = label_scans(&name, scans, &params)?;
    let pairs = pairs_apart(&frames, cfg.min_gap);
    let bar = progress_bar(Some(pairs.len()), cfg.quiet, "pairs");
    let mut labels: Vec<PairLabel> = pairs
        .par_iter()
        .map(|&p| {
            let l = label(&labelled_scans, p, &params);
            bar.inc(1);
            l
        })
        .collect();
    bar.finish_and_clear();
    let labelled = labels.len();
    if let Some(balance) = cfg.balance {
        labels = balanced(&labels, balance, cfg.seed);
    }
    let histogram = overlap_histogram(&labels);
    write_atomic(&cfg.out, |w| {
        writeln!(w, "query,reference,overlap,yaw_deg,yaw_bin")?;
        for l in &labels {
            let (q, r) = (frames[l.query], frames[l.reference]);
            writeln!(w, "{q},{r},{:.4},{:.2},{}", l.overlap, l.yaw_deg, l.yaw_bin())?;
        }
        Ok(())
    })?;
    Ok(GtPairsReport {
        scans: frames.len(),
        labelled,
        written: labels.len(),
        histogram,
        wall_s: start.elapsed().as_secs_f64(),
    })
}

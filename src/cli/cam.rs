//! `overlap-slam cam`: OverlapNet's decisions on frame pairs explained per column.

use super::args::{SourceArgs, parse_cam_target, parse_pairs};
use crate::Result;
use crate::jobs::cam::{CamConfig, cam};
use crate::perception::ivr_cam::CamTarget;
use crate::perception::ivr_cam::normalise::DEFAULT_IVR_PERCENTILE;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `cam`.
#[derive(Args)]
pub struct CamArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Frame pairs to explain: Q:R,Q:R,...
    #[arg(long, value_parser = parse_pairs)]
    pairs: ::std::vec::Vec<(usize, usize)>,
    /// The decision explained: yaw or overlap.
    #[arg(long, default_value = "yaw", value_parser = parse_cam_target)]
    target: CamTarget,
    /// IVR's percentile, in [0, 1].
    #[arg(long, default_value_t = DEFAULT_IVR_PERCENTILE)]
    percentile: f32,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A column is shared when at least this share of its returns overlap (ground truth).
    #[arg(long, default_value_t = 0.5)]
    shared_column: f32,
    /// A normalised score at or above this lights a column.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Output folder (cam.json, cam.png).
    #[arg(long)]
    out: PathBuf,
}

impl CamArgs {
    /// Explains each pair and prints every normalisation's IoU with the shared columns.
    pub fn run(self) -> Result<()> {
        let sensor = self.source.sensor_model()?;
        let r = cam(&CamConfig {
            source: self.source.spec(&sensor),
            frames: self.source.frame_range(),
            pairs: self.pairs,
            target: self.target,
            percentile: self.percentile,
            weights: self.weights,
            shared_column: self.shared_column,
            threshold: self.threshold,
            out: self.out.clone(),
        })?;
        for p in &r.pairs {
            let ious: Vec<String> = p
                .scores
                .iter()
                .map(|s| format!("{} IoU {:.3} (lit {:.2})", s.normalisation.name(), s.iou, s.lit))
                .collect();
            println!(
                "{} vs {}: overlap {:.2}, shared columns {:.2}; {}",
                p.query,
                p.reference,
                p.overlap_truth,
                p.shared,
                ious.join(", ")
            );
        }
        let means: Vec<String> = r.mean_iou.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
        println!("mean IoU: {}; results in {}", means.join(", "), self.out.display());
        Ok(())
    }
}

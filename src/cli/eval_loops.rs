//! `overlap-slam eval-loops`: a loop detector judged on a posed sequence.

use super::args::SourceArgs;
use crate::Result;
use crate::ground_truth::scoring::{RevisitRule, TOP_N};
use crate::jobs::eval_loops::{EvalLoopsConfig, LoopMethod, eval_loops};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `eval-loops`.
#[derive(Args)]
pub struct EvalLoopsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Loop detector: overlapnet, overlapnet-mimo (with its subnetworks' spread), scancontext, or
    /// fused (the product of Scan Context's and OverlapNet's scores, OverlapNet's yaw).
    /// OverlapNet by default, the network under test; `replay` and `live` close loops with
    /// scancontext by default (`--loop-detector`).
    #[arg(long, default_value = "overlapnet")]
    method: LoopMethod,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder: loops_eval.json, pr_curve.csv, pr_curve.png, pairs.csv.
    #[arg(long)]
    out: PathBuf,
    /// Keep every N-th scan.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Judge only pairs at least this many frames apart (OverlapNet's protocol: 100).
    #[arg(long, default_value_t = 100)]
    min_gap: usize,
    /// Ground-truth overlap above which a pair is a loop (OverlapNet's protocol: 0.3).
    #[arg(long, default_value_t = 0.3)]
    loop_overlap: f32,
    /// Judge by distance instead (the place-recognition field's protocol): a pair is a loop when
    /// its two scans' ground-truth positions lie within this many metres.
    #[arg(
        long,
        value_name = "M",
        conflicts_with = "loop_overlap",
        allow_negative_numbers = true
    )]
    loop_distance: Option<f64>,
    /// Candidates per query that recall@N looks at (recall@1 and recall@1 % are always given).
    #[arg(long, value_name = "N", default_value_t = TOP_N)]
    top_n: usize,
    /// Scans turned by known angles to judge the yaw on.
    #[arg(long, default_value_t = 50)]
    rotated_copies: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// A recording of another place (repeatable, read like PATH with the same options): pairs
    /// within it are judged by its ground truth, pairs across recordings are true negatives.
    #[arg(long, value_name = "PATH")]
    also: Vec<PathBuf>,
}

impl EvalLoopsArgs {
    /// Judges the detector and prints its headline scores.
    pub fn run(self) -> Result<()> {
        // A batch command running the network on every pair: freed buffers kept for the next batch.
        crate::allocator::tune_allocator();
        let sensor = self.source.sensor_model()?;
        let also = self.also.iter().map(|p| self.source.spec_of(p)).collect();
        let r = eval_loops(&EvalLoopsConfig {
            source: self.source.spec(&sensor),
            frames: self.source.frame_range(),
            every: self.every,
            sensor,
            method: self.method,
            weights: self.weights,
            min_gap: self.min_gap,
            revisit: match self.loop_distance {
                Some(m) => RevisitRule::DistanceM(m),
                None => RevisitRule::Overlap(self.loop_overlap),
            },
            top_n: self.top_n,
            rotated_copies: self.rotated_copies,
            seed: 0,
            out: self.out.clone(),
            quiet: self.quiet,
            also,
        })?;
        let deg = |v: Option<f64>| v.map_or("n/a".to_string(), |d| format!("{d:.2}°"));
        println!(
            "{} scans, {} pairs ({} loops): AUC {:.3}, F1max {:.3}, recall@1 {:.3}, recall@{} {:.3}, recall@1% {:.3}, yaw error {} (turned copies {}); results in {}",
            r.scans,
            r.scores.pairs,
            r.scores.loops,
            r.scores.auc,
            r.scores.f1_max,
            r.scores.recall_at_1,
            r.scores.top_n,
            r.scores.recall_at_n,
            r.scores.recall_at_1_percent,
            deg(r.scores.yaw_err_mean_deg),
            deg(r.yaw_rotated_err_mean_deg),
            self.out.display()
        );
        if let Some(a) = &r.across {
            let overlap = a.pred_overlap_mean.map_or("n/a".into(), |o| format!("{o:.3}"));
            println!(
                "{} pairs across {} recordings of different places: mean predicted overlap {overlap}, mean score {:.3}",
                a.pairs, a.recordings, a.score_mean
            );
        }
        Ok(())
    }
}

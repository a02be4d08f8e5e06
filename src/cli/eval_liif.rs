//! `overlap-slam eval-liif`: LIIF measured against plain upsampling, and loop detection downstream.

use super::args::SourceArgs;
use crate::Result;
use crate::jobs::eval_liif::{EvalLiifConfig, eval_liif};
use crate::jobs::eval_loops::LoopMethod;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `eval-liif`.
#[derive(Args)]
pub struct EvalLiifArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Keep every N-th scan read.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// LIIF weights (.safetensors with its .json beside it); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Row factors to measure, comma-separated (2: 32 of 64 rows kept, 4: 16).
    #[arg(long, default_value = "2,4", value_delimiter = ',')]
    factors: Vec<usize>,
    /// Also judge loop detection on scans thinned by this factor and rendered back (0: skip).
    #[arg(long, default_value_t = 4)]
    downstream_factor: usize,
    /// Detectors for the downstream figure, comma-separated.
    #[arg(long, default_value = "overlapnet,scancontext", value_delimiter = ',')]
    downstream: Vec<LoopMethod>,
    /// Pairs fewer than this many frames apart are not judged.
    #[arg(long, default_value_t = 100)]
    min_gap: usize,
    /// Ground-truth overlap above which a pair is a loop.
    #[arg(long, default_value_t = 0.3)]
    loop_overlap: f32,
    /// Output folder (liif_eval.json).
    #[arg(long)]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl EvalLiifArgs {
    /// Measures LIIF and plain upsampling and prints one line per method and factor.
    pub fn run(self) -> Result<()> {
        let sensor = self.source.sensor_model()?;
        let r = eval_liif(&EvalLiifConfig {
            source: self.source.spec(&sensor),
            frames: self.source.frame_range(),
            every: self.every,
            weights: self.weights,
            factors: self.factors,
            downstream_factor: (self.downstream_factor > 0).then_some(self.downstream_factor),
            downstream_methods: self.downstream,
            min_gap: self.min_gap,
            loop_overlap: self.loop_overlap,
            out: self.out.clone(),
            quiet: self.quiet,
        })?;
        for c in &r.upsampling {
            for (name, s) in [("liif", c.liif), ("bilinear", c.bilinear), ("nearest", c.nearest)] {
                println!(
                    "{} rows -> 64, {name:8}: MAE {:.3} m, within 0.5 m {:.3}, returns rendered {:.3}, invented {:.3}",
                    c.sparse_rows, s.mae_m, s.within_half_m, s.recall, s.invented
                );
            }
        }
        for d in &r.downstream {
            println!(
                "{:?} on {}: AUC {:.3}, F1max {:.3} ({} pairs, {} loops)",
                d.method, d.input, d.scores.auc, d.scores.f1_max, d.scores.pairs, d.scores.loops
            );
        }
        println!(
            "{} scans; results in {}",
            r.scans,
            self.out.join("liif_eval.json").display()
        );
        Ok(())
    }
}

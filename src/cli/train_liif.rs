//! `overlap-slam train-liif`: LIIF range-image super-resolution trained on simulated drives.

use super::args::{parse_frames, parse_seeds};
use crate::Result;
use crate::io::{FrameRange, SourceOptions};
use crate::jobs::train_liif::{TrainLiifConfig, train_liif};
use crate::perception::liif::LiifConfig;
use crate::perception::liif::train::StepConfig;
use crate::pipeline::SourceSpec;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `train-liif`.
#[derive(Args)]
pub struct TrainLiifArgs {
    /// Checkpoint folder: liif.safetensors (+ .json), adam.safetensors, state.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the training checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Simulated worlds to train on: A..B (seeds).
    #[arg(long, default_value = "100..106", value_parser = parse_seeds)]
    seeds: ::std::vec::Vec<u64>,
    /// Keep every N-th frame of each drive.
    #[arg(long, default_value_t = 8)]
    every: usize,
    /// Also train on these real posed scans (a KITTI folder), half of every batch on average.
    #[arg(long)]
    real: Option<PathBuf>,
    /// Frames of --real to train on: A..B, A.., ..B, A..=B or N.
    #[arg(long, value_parser = parse_frames)]
    real_frames: Option<FrameRange>,
    /// Start from these weights (.safetensors) instead of fresh ones: a new run (fine-tuning).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Steps to reach (over all runs).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Crops per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Columns per crop.
    #[arg(long, default_value_t = 128)]
    crop_cols: usize,
    /// Adam learning rate (halved for the last quarter of the steps).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop with a checkpoint after this many minutes (resume later with --resume).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl TrainLiifArgs {
    /// Trains (or resumes) and prints where the weights are.
    pub fn run(self) -> Result<()> {
        let real_frames = self.real_frames.unwrap_or_default();
        let state = train_liif(&TrainLiifConfig {
            out: self.out.clone(),
            model: LiifConfig::default(),
            seeds: self.seeds,
            every: self.every,
            real: self.real.map(|path| {
                let spec = SourceSpec::Path {
                    path,
                    options: SourceOptions::default(),
                };
                (spec, real_frames)
            }),
            init: self.init,
            step: StepConfig {
                batch: self.batch,
                crop_cols: self.crop_cols,
                ..StepConfig::default()
            },
            steps: self.steps,
            lr: self.lr,
            seed: self.seed,
            resume: self.resume,
            max_minutes: self.max_minutes,
            checkpoint_every: self.checkpoint_every.max(1),
            quiet: self.quiet,
        })?;
        let last = state
            .history
            .last()
            .map_or(String::new(), |h| format!(", last range L1 {:.3} m", h.1));
        println!(
            "{} steps on {} images in {:.0} s{last}; weights in {}",
            state.steps,
            state.images,
            state.seconds,
            self.out.join("liif.safetensors").display()
        );
        Ok(())
    }
}

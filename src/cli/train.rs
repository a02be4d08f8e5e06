//! `overlap-slam train`: OverlapNet trained on simulated drives, checkpointed and resumable.

use super::args::parse_seeds;
use clap::Args;
use overlap_slam::Result;
use overlap_slam::overlapnet::train::default_repetitions;
use overlap_slam::overlapnet::{Channels, ModelConfig, YawDecoding};
use overlap_slam::pipeline::train::{TrainConfig, train};
use overlap_slam::sim::Scene;
use overlap_slam::viz::VizTarget;
use std::path::PathBuf;

/// Arguments of `train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Checkpoint folder: overlapnet.safetensors (+ .json), best.safetensors (+ .json, the epoch
    /// with the best validation AUC), adam.safetensors, state.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the training checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Simulated worlds to train on: A..B (seeds).
    #[arg(long, default_value = "100..108", value_parser = parse_seeds)]
    seeds: ::std::vec::Vec<u64>,
    /// Held-out simulated worlds to validate on after each epoch.
    #[arg(long, default_value = "900..902", value_parser = parse_seeds)]
    val_seeds: ::std::vec::Vec<u64>,
    /// Scene of the simulated drives.
    #[arg(long, default_value = "street")]
    scene: Scene,
    /// Keep every N-th frame of a training drive.
    #[arg(long, default_value_t = 5)]
    every: usize,
    /// Keep every N-th frame of a validation drive.
    #[arg(long, default_value_t = 10)]
    val_every: usize,
    /// Validation pairs per 0.1-wide overlap bin.
    #[arg(long, default_value_t = 20)]
    val_per_bin: usize,
    #[command(flatten)]
    model: ModelArgs,
    /// Epochs to train.
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    /// Pairs per epoch, drawn afresh from the balanced set each epoch (0: the whole set).
    #[arg(long, default_value_t = 1200)]
    epoch_pairs: usize,
    /// Share of each batch given to scans paired with themselves turned at random (yaw training).
    #[arg(long, default_value_t = 0.125)]
    self_pairs: f64,
    /// Pairs per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop with a checkpoint after this many steps (resume later with --resume).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Stop with a checkpoint after this many minutes (resume later with --resume).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 20)]
    checkpoint_every: usize,
    /// Save losses and validation figures as rerun scalars to this .rrd file.
    #[arg(long)]
    rrd: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// The network trained: inputs, width, legs, MIMO subnetworks.
#[derive(Args)]
struct ModelArgs {
    /// Input channels: a comma-separated list of range, normals, intensity.
    #[arg(long, default_value = "range,normals")]
    channels: Channels,
    /// Every layer this many times narrower than the paper's network (1: paper size; 4: the
    /// compact variant shipped, about 10x cheaper a pair).
    #[arg(long, default_value_t = 4)]
    width_divisor: usize,
    /// The authors' legs (valid padding, 360 feature columns spanning 288 degrees, scans also
    /// described half-turned) instead of circular ones (450 columns spanning the whole turn).
    #[arg(long)]
    valid_legs: bool,
    /// MIMO subnetworks (Havasi et al., ICLR 2021): M pairs through one network per input, M
    /// answers whose spread is the uncertainty (1: a plain network; 3: the shipped MIMO model).
    #[arg(long, default_value_t = 1)]
    subnetworks: usize,
    /// Feature channels each MIMO subnetwork owns out of the legs (default: the legs' width
    /// shared out evenly).
    #[arg(long)]
    subnetwork_features: Option<usize>,
    /// MIMO batch repetition: each step's distinct pairs fill the batch this many times
    /// (default: 1 for one subnetwork, 2 for MIMO).
    #[arg(long)]
    batch_repetition: Option<usize>,
    /// MIMO input repetition: share of rows where every subnetwork reads the same pair
    /// (default: 0 for one subnetwork, 0.5 for MIMO).
    #[arg(long)]
    input_repetition: Option<f64>,
}

impl ModelArgs {
    fn config(&self) -> ModelConfig {
        ModelConfig {
            channels: self.channels,
            width_divisor: self.width_divisor,
            circular_legs: !self.valid_legs,
            aligned_overlap: !self.valid_legs,
            yaw_decoding: YawDecoding::FeatureColumns,
            subnetworks: self.subnetworks.max(1),
            subnetwork_features: self.subnetwork_features,
            ..ModelConfig::default()
        }
    }
}

impl TrainArgs {
    /// Trains (or resumes) and prints where the weights are and the last validation.
    pub fn run(self) -> Result<()> {
        overlap_slam::allocator::tune_allocator();
        let repetitions = default_repetitions(self.model.subnetworks);
        let cfg = TrainConfig {
            out: self.out.clone(),
            model: self.model.config(),
            seeds: self.seeds,
            val_seeds: self.val_seeds,
            scene: self.scene,
            every: self.every,
            val_every: self.val_every,
            val_per_bin: self.val_per_bin,
            epochs: self.epochs,
            epoch_pairs: (self.epoch_pairs > 0).then_some(self.epoch_pairs),
            self_pair_share: self.self_pairs,
            batch: self.batch,
            batch_repetition: self.model.batch_repetition.unwrap_or(repetitions.0),
            input_repetition: self.model.input_repetition.unwrap_or(repetitions.1),
            lr: self.lr,
            seed: self.seed,
            resume: self.resume,
            max_steps: self.max_steps,
            max_minutes: self.max_minutes,
            checkpoint_every: self.checkpoint_every,
            viz: self.rrd.map_or(VizTarget::None, VizTarget::Save),
            quiet: self.quiet,
        };
        let state = train(&cfg)?;
        println!(
            "{} epochs and {} steps done in {:.0} s; weights in {}",
            state.epoch,
            state.steps,
            state.wall_s,
            self.out.join("overlapnet.safetensors").display()
        );
        if let Some(r) = state.history.last() {
            println!(
                "last validation: overlap MAE {:.3}, AUC {:.3}, F1max {:.3}, yaw error {:.2}°",
                r.val_overlap_mae, r.val_auc, r.val_f1_max, r.val_yaw_err_mean_deg
            );
        }
        Ok(())
    }
}

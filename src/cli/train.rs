//! `overlap-slam train`: OverlapNet trained on simulated drives and real recordings,
//! checkpointed and resumable.

use super::args::{parse_frames, parse_seeds};
use crate::Result;
use crate::io::{FrameRange, SourceOptions};
use crate::jobs::train::real_data::{RealDataConfig, Recording};
use crate::jobs::train::{TrainConfig, train};
use crate::overlapnet::train::default_repetitions;
use crate::overlapnet::{Channels, ModelConfig, YawDecoding};
use crate::pipeline::config::SourceSpec;
use crate::sensor::SensorModel;
use crate::sim::Scene;
use crate::viz::VizTarget;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Checkpoint folder: overlapnet.safetensors (+ .json), best.safetensors (+ .json, the epoch
    /// with the best validation: simulated AUC, plus real AUC less real overlap MAE with
    /// --val-data), adam.safetensors, state.json, data.json (what was read and labelled).
    #[arg(long)]
    out: PathBuf,
    /// Continue the training checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Simulated worlds to train on: A..B (seeds), a list, or `none` (real recordings only).
    #[arg(long, default_value = "100..108", value_parser = parse_seeds_or_none)]
    seeds: ::std::vec::Vec<u64>,
    /// Held-out simulated worlds to validate on after each epoch (`none`: only --val-data).
    #[arg(long, default_value = "900..902", value_parser = parse_seeds_or_none)]
    val_seeds: ::std::vec::Vec<u64>,
    #[command(flatten)]
    real: RealArgs,
    /// Scene of the simulated drives.
    #[arg(long, default_value = "street", value_parser = super::args::scene_parser())]
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

/// Real recordings to train and validate on.
#[derive(Args)]
struct RealArgs {
    /// A real recording to train on (repeatable): anything `replay` reads, a KITTI sequence or
    /// folder, PLY/PCD with --poses, a ROS recording with --gt-topic. Pairs are labelled from its
    /// ground truth (OverlapNet's overlap and yaw), or with --self-label from our own SLAM.
    #[arg(long = "data", value_name = "PATH")]
    data: Vec<PathBuf>,
    /// A real recording to validate on after each epoch (repeatable; never trained on).
    #[arg(long = "val-data", value_name = "PATH")]
    val_data: Vec<PathBuf>,
    /// Label recordings that have no ground truth from the poses our SLAM (loops on) optimises
    /// for them; the poses are written to OUT/self-label/.
    #[arg(long)]
    self_label: bool,
    /// The recordings show different places: pairs across two of them are real negatives
    /// (overlap 0), as many as the pairs within them.
    #[arg(long)]
    distinct_places: bool,
    /// Keep every pair within a real recording, at every distance, instead of OverlapNet's
    /// balancing over the overlap bins: a drive's far, partly overlapping pairs are what ranking
    /// its loop candidates turns on.
    #[arg(long)]
    every_pair: bool,
    /// With --distinct-places: the share of the pairs across recordings chosen as hard
    /// negatives, the pairs whose scans Scan Context finds most alike; the rest are random.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    hard_negatives: f64,
    /// Share of each step's labelled pairs drawn from the --data recordings (the rest simulated).
    #[arg(long, default_value_t = 0.5)]
    real_share: f64,
    /// Keep every N-th scan of a real recording.
    #[arg(long, default_value_t = 1)]
    data_every: usize,
    /// Frames read from each real recording: A..B, A.., ..B, A..=B or N.
    #[arg(long, value_parser = parse_frames)]
    data_frames: Option<FrameRange>,
    /// Force the recordings' format (kitti, ply, pcd).
    #[arg(long, value_parser = super::args::parse_format)]
    format: Option<crate::io::Format>,
    /// Ground-truth trajectory of PLY/PCD recordings (KITTI 3x4 or TUM).
    #[arg(long)]
    poses: Option<PathBuf>,
    /// PointCloud2 topic of ROS recordings (default: the only one).
    #[arg(long)]
    topic: Option<String>,
    /// Ground-truth topic of ROS recordings (nav_msgs/Odometry or geometry_msgs/PoseStamped).
    #[arg(long)]
    gt_topic: Option<String>,
    /// Sensor model of the recordings: hdl64, hdl32, vlp16, os1-64, or a TOML file.
    #[arg(long, default_value = "hdl64")]
    sensor: String,
    /// Start from these weights (safetensors with its .json): every tensor whose name and shape
    /// match is copied (fine-tuning the shipped model: models/overlapnet.safetensors).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Each training pair empties up to this share of its images' pixels at random (drawn
    /// uniformly per pair; 0: none): real scans miss returns the simulator never misses.
    #[arg(long, default_value_t = 0.0)]
    dropout: f32,
    /// Each training pair empties one sector of up to this many degrees of its query scan
    /// (drawn uniformly per pair; 0: none): an occluder beside the sensor hides whole directions.
    #[arg(long, value_name = "DEGREES", default_value_t = 0.0)]
    sector_blank: f32,
}

impl RealArgs {
    fn config(&self, paths: &[PathBuf], out: &std::path::Path, seed: u64) -> crate::Result<Option<RealDataConfig>> {
        if paths.is_empty() {
            return Ok(None);
        }
        let frames = self.data_frames.unwrap_or_default();
        let options = SourceOptions {
            format: self.format,
            frames,
            poses: self.poses.clone(),
            topic: self.topic.clone(),
            gt_topic: self.gt_topic.clone(),
            ..SourceOptions::default()
        };
        Ok(Some(RealDataConfig {
            recordings: paths
                .iter()
                .map(|p| Recording {
                    source: SourceSpec::Path {
                        path: p.clone(),
                        options: options.clone(),
                    },
                    frames,
                })
                .collect(),
            every: self.data_every,
            self_label: self.self_label,
            distinct_places: self.distinct_places,
            every_pair: self.every_pair,
            hard_negatives: self.hard_negatives,
            sensor: SensorModel::from_name_or_path(&self.sensor)?,
            seed,
            poses_out: self.self_label.then(|| out.join("self-label")),
        }))
    }
}

/// A share in [0, 1].
fn parse_share(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("expected a share in [0, 1], got {s}")),
    }
}

/// Seeds as for [`parse_seeds`], or `none` for no simulated world.
fn parse_seeds_or_none(s: &str) -> std::result::Result<Vec<u64>, String> {
    if s == "none" { Ok(Vec::new()) } else { parse_seeds(s) }
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
    /// The overlap head compares each block of 15 query feature columns with the reference
    /// blocks within this many blocks of it, after the yaw head has turned the reference
    /// (0: every block, the paper's delta layer; 2: the shipped model, a fifth of the work).
    #[arg(long, default_value_t = 2)]
    head_band: usize,
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
            head_band: (self.head_band > 0 && !self.valid_legs).then_some(self.head_band),
            ..ModelConfig::default()
        }
    }
}

impl TrainArgs {
    /// Trains (or resumes) and prints where the weights are and the last validation.
    pub fn run(self) -> Result<()> {
        crate::allocator::tune_allocator();
        let repetitions = default_repetitions(self.model.subnetworks);
        let real = self.real.config(&self.real.data, &self.out, self.seed)?;
        let val_real = self.real.config(&self.real.val_data, &self.out, self.seed)?;
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
            real,
            val_real,
            real_share: self.real.real_share,
            init: self.real.init.clone(),
            dropout: self.real.dropout,
            sector_blank: self.real.sector_blank / 360.0,
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
            if let Some(real) = &r.real_val {
                println!(
                    "last real validation ({} pairs): overlap MAE {:.3}, AUC {:.3}, mean prediction where the truth is 0: {}",
                    real.pairs,
                    real.overlap_mae,
                    real.auc,
                    real.zero_overlap_pred_mean.map_or("-".into(), |m| format!("{m:.3}"))
                );
            }
        }
        Ok(())
    }
}

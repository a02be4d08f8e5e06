//! `train-liif`: LIIF range-image super-resolution trained on simulated HDL-64E drives (and
//! optionally real posed scans) by dropping rows, checkpointed so that a stopped training
//! resumes.

use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::atomic::write_bytes_atomic;
use crate::jobs::gt_pairs::read_posed_scans;
use crate::overlapnet::train::Adam;
use crate::perception::liif::train::{DenseSet, StepConfig, train_step};
use crate::perception::liif::{Liif, LiifConfig, candle_error, save};
use crate::pipeline::config::SourceSpec;
use crate::pipeline::status::progress_bar;
use crate::projection::ProjectionParams;
use candle_core::Device;
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainLiifConfig {
    /// Checkpoint folder: `liif.safetensors`, `liif.json`, `adam.safetensors`, `state.json`.
    pub out: PathBuf,
    /// Network sizes.
    pub model: LiifConfig,
    /// Simulated worlds trained on.
    pub seeds: Vec<u64>,
    /// Keep every `every`-th frame of each drive.
    pub every: usize,
    /// Real scans trained on as well (e.g. KITTI frames), drawn as often as all simulated ones
    /// together.
    pub real: Option<(SourceSpec, FrameRange)>,
    /// Start from these weights (`None`: fresh); unlike `resume`, a new training run.
    pub init: Option<PathBuf>,
    /// Batch sampling.
    pub step: StepConfig,
    /// Steps to reach (over all runs).
    pub steps: usize,
    /// Adam's learning rate (halved for the last quarter of the steps).
    pub lr: f64,
    /// Seed of the batches.
    pub seed: u64,
    /// Continue from the checkpoint in `out`.
    pub resume: bool,
    /// Stop (with a checkpoint) after this many minutes in this run.
    pub max_minutes: Option<f64>,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
    /// No progress bar.
    pub quiet: bool,
}

/// Progress saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LiifTrainState {
    /// Steps done.
    pub steps: usize,
    /// Seconds spent training, over all runs.
    pub seconds: f64,
    /// Training images.
    pub images: usize,
    /// Mean range L1 (metres) and mask cross-entropy over each block of 100 steps.
    pub history: Vec<(usize, f32, f32)>,
}

/// Trains (or resumes training) and returns the final state.
pub fn train_liif(cfg: &TrainLiifConfig) -> Result<LiifTrainState> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let set = training_images(cfg)?;
    let varmap = VarMap::new();
    let net = Liif::trainable(&varmap, cfg.model, &Device::Cpu).map_err(candle_error)?;
    let mut opt = Adam::new(&varmap, cfg.lr).map_err(candle_error)?;
    if let Some(init) = &cfg.init {
        let mut varmap = varmap.clone();
        varmap.load(init).map_err(|e| Error::input(init, e.to_string()))?;
    }
    let mut state = LiifTrainState {
        images: set.images.len(),
        ..Default::default()
    };
    if cfg.resume {
        state = resume(cfg, &varmap, &mut opt)?;
    }
    run_steps(cfg, &net, &varmap, &mut opt, &set, &mut state)?;
    checkpoint(cfg, &varmap, &opt, &state)?;
    Ok(state)
}

/// The simulated scans, and the real ones repeated so that a batch is half real on average.
fn training_images(cfg: &TrainLiifConfig) -> Result<DenseSet> {
    let mut set = DenseSet::simulated(&cfg.seeds, cfg.every);
    let simulated = set.images.len();
    if let Some((source, frames)) = &cfg.real {
        let (_, scans) = read_posed_scans(source, *frames, 1, "train-liif")?;
        let real = DenseSet::of_scans(&scans, &ProjectionParams::overlapnet_hdl64());
        let repeat = (simulated / real.images.len().max(1)).max(1);
        for _ in 0..repeat {
            set.images.extend(real.images.iter().cloned());
        }
    }
    if set.images.is_empty() {
        return Err(Error::Usage("train-liif: no training scans".into()));
    }
    Ok(set)
}

/// Loads the checkpoint in `cfg.out` into `varmap` and `opt` and returns its progress.
fn resume(cfg: &TrainLiifConfig, varmap: &VarMap, opt: &mut Adam) -> Result<LiifTrainState> {
    let weights = cfg.out.join("liif.safetensors");
    let mut varmap = varmap.clone();
    varmap
        .load(&weights)
        .map_err(|e| Error::input(&weights, e.to_string()))?;
    let adam = cfg.out.join("adam.safetensors");
    opt.load(&adam).map_err(|e| Error::input(&adam, e.to_string()))?;
    let path = cfg.out.join("state.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::input(&path, e.to_string()))
}

/// Optimiser steps until `cfg.steps` (or `max_minutes`), the learning rate halved for the last
/// quarter, the mean losses of every 100 steps kept, checkpointed every `checkpoint_every`.
fn run_steps(
    cfg: &TrainLiifConfig,
    net: &Liif,
    varmap: &VarMap,
    opt: &mut Adam,
    set: &DenseSet,
    state: &mut LiifTrainState,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ state.steps as u64);
    let bar = progress_bar(Some(cfg.steps), cfg.quiet, "steps");
    bar.set_position(state.steps as u64);
    let started = Instant::now();
    let mut block = (0.0f32, 0.0f32, 0usize);
    while state.steps < cfg.steps {
        if cfg
            .max_minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0)
        {
            break;
        }
        opt.lr = if state.steps * 4 >= cfg.steps * 3 {
            cfg.lr / 2.0
        } else {
            cfg.lr
        };
        let t = Instant::now();
        let loss = train_step(net, opt, set, &cfg.step, &mut rng).map_err(candle_error)?;
        state.seconds += t.elapsed().as_secs_f64();
        state.steps += 1;
        block = (
            block.0 + loss.range_l1 * cfg.model.max_range,
            block.1 + loss.mask_bce,
            block.2 + 1,
        );
        if block.2 == 100 {
            state.history.push((state.steps, block.0 / 100.0, block.1 / 100.0));
            bar.set_message(format!("L1 {:.3} m  bce {:.3}", block.0 / 100.0, block.1 / 100.0));
            block = (0.0, 0.0, 0);
        }
        if state.steps.is_multiple_of(cfg.checkpoint_every) {
            checkpoint(cfg, varmap, opt, state)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

fn checkpoint(cfg: &TrainLiifConfig, varmap: &VarMap, opt: &Adam, state: &LiifTrainState) -> Result<()> {
    save(varmap, &cfg.model, &cfg.out.join("liif.safetensors"))?;
    let adam = cfg.out.join("adam.safetensors");
    let tmp = adam.with_extension("tmp");
    opt.save(&tmp).map_err(|e| Error::input(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, &adam).map_err(|e| Error::io(&adam, e))?;
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    write_bytes_atomic(&cfg.out.join("state.json"), &json)
}

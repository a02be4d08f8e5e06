//! `train-liif` and `eval-liif`: LIIF range-image super-resolution trained on simulated HDL-64E
//! drives by dropping rows, checkpointed so that a stopped training resumes, and measured on
//! held-out scans (simulated or real) against bilinear and nearest upsampling, then downstream:
//! loop detection on 16-row scans rendered at 64 rows by LIIF against the same scans upsampled
//! naively.

use super::config::SourceSpec;
use super::eval_loops::judge;
use super::gt_pairs::{label_scans, read_posed_scans};
use super::status::progress_bar;
use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::atomic::write_bytes_atomic;
use crate::loops::detector::{LoopDetector, LoopMethod};
use crate::loops::evaluation::{LoopScores, ScoredPair, score};
use crate::loops::pairs::pairs_apart;
use crate::overlapnet::train::Adam;
use crate::perception::liif::train::{Comparison, DenseSet, StepConfig, compare, train_step};
use crate::perception::liif::{Baseline, Liif, LiifConfig, RowLayout, rows::upsample_baseline, save};
use crate::projection::png::{Rgb8, turbo};
use crate::projection::{EMPTY, ProjectionParams, project};
use crate::scan::Scan;
use crate::sim::{SimConfig, Simulation};
use candle_core::Device;
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;

/// Dense range images of `scans` in the HDL-64E window.
pub fn dense_images(scans: &[Scan], params: &ProjectionParams) -> DenseSet {
    DenseSet {
        rows: params.rows,
        cols: params.cols,
        images: scans
            .par_iter()
            .map(|s| project(&s.points, &s.intensity, params).range)
            .collect(),
    }
}

/// Every `every`-th scan of the default simulated drive of each world in `seeds`, projected.
pub fn simulated_images(seeds: &[u64], every: usize) -> DenseSet {
    let mut set = DenseSet::default();
    for &seed in seeds {
        let sim = Simulation::new(&SimConfig {
            seed,
            ..SimConfig::default()
        });
        let params = ProjectionParams::from_sensor(sim.sensor());
        let frames: Vec<usize> = (0..sim.frames()).step_by(every.max(1)).collect();
        let scans: Vec<Scan> = frames.par_iter().map(|&i| sim.scan(i)).collect();
        let part = dense_images(&scans, &params);
        set.rows = part.rows;
        set.cols = part.cols;
        set.images.extend(part.images);
    }
    set
}

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
    let mut set = simulated_images(&cfg.seeds, cfg.every);
    let simulated = set.images.len();
    if let Some((source, frames)) = &cfg.real {
        let (_, scans) = read_posed_scans(source, *frames, 1, "train-liif")?;
        let real = dense_images(&scans, &ProjectionParams::overlapnet_hdl64());
        // Repeated so that a batch is half real on average.
        let repeat = (simulated / real.images.len().max(1)).max(1);
        for _ in 0..repeat {
            set.images.extend(real.images.iter().cloned());
        }
    }
    if set.images.is_empty() {
        return Err(Error::Usage("train-liif: no training scans".into()));
    }
    let device = Device::Cpu;
    let varmap = VarMap::new();
    let net = Liif::trainable(&varmap, cfg.model, &device).map_err(candle_err)?;
    let mut opt = Adam::new(&varmap, cfg.lr).map_err(candle_err)?;
    if let Some(init) = &cfg.init {
        let mut varmap = varmap.clone();
        varmap.load(init).map_err(|e| Error::input(init, e.to_string()))?;
    }
    let weights = cfg.out.join("liif.safetensors");
    let mut state = LiifTrainState {
        images: set.images.len(),
        ..Default::default()
    };
    if cfg.resume {
        let mut varmap = varmap.clone();
        varmap
            .load(&weights)
            .map_err(|e| Error::input(&weights, e.to_string()))?;
        let adam = cfg.out.join("adam.safetensors");
        opt.load(&adam).map_err(|e| Error::input(&adam, e.to_string()))?;
        let path = cfg.out.join("state.json");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        state = serde_json::from_str(&text).map_err(|e| Error::input(&path, e.to_string()))?;
    }
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
        let loss = train_step(&net, &mut opt, &set, &cfg.step, &mut rng).map_err(candle_err)?;
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
            checkpoint(cfg, &varmap, &opt, &state)?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    checkpoint(cfg, &varmap, &opt, &state)?;
    Ok(state)
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

fn candle_err(e: candle_core::Error) -> Error {
    Error::Usage(format!("LIIF: {e}"))
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalLiifConfig {
    /// Posed scans (HDL-64E): a simulated drive or a KITTI sequence.
    pub source: SourceSpec,
    /// Frames to read.
    pub frames: FrameRange,
    /// Keep every `every`-th scan.
    pub every: usize,
    /// Weights (`None`: the shipped ones).
    pub weights: Option<PathBuf>,
    /// Row factors to measure (2: 32 rows, 4: 16 rows).
    pub factors: Vec<usize>,
    /// Also measure loop detection on scans thinned by this factor (`None`: skip).
    pub downstream_factor: Option<usize>,
    /// Detectors for the downstream figure.
    pub downstream_methods: Vec<LoopMethod>,
    /// Pairs fewer than this many frames apart are not judged.
    pub min_gap: usize,
    /// Ground-truth overlap above which a pair is a loop.
    pub loop_overlap: f32,
    /// Output folder (`liif_eval.json`).
    pub out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
}

/// Loop detection on one rendering of the thinned scans.
#[derive(Debug, Clone, Serialize)]
pub struct DownstreamScore {
    /// The detector.
    pub method: LoopMethod,
    /// How the scans were brought back to 64 rows (`dense`: the original 64 rows, for reference).
    /// Every input, `dense` included, is the range image turned back into points.
    pub input: String,
    /// Its scores.
    #[serde(flatten)]
    pub scores: LoopScores,
}

/// `liif_eval.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LiifEvalReport {
    /// What was read.
    pub source: String,
    /// Scans measured.
    pub scans: usize,
    /// One comparison per row factor.
    pub upsampling: Vec<Comparison>,
    /// Loop detection on the dense, LIIF-rendered and naively upsampled scans.
    pub downstream: Vec<DownstreamScore>,
}

/// Measures LIIF and writes `liif_eval.json`.
pub fn eval_liif(cfg: &EvalLiifConfig) -> Result<LiifEvalReport> {
    let net = match &cfg.weights {
        Some(p) => Liif::load(p)?,
        None => Liif::shipped()?,
    };
    let params = ProjectionParams::overlapnet_hdl64();
    let factors = cfg.factors.iter().chain(&cfg.downstream_factor);
    if let Some(f) = factors.into_iter().find(|&&f| f == 0 || f >= params.rows) {
        return Err(Error::Usage(format!(
            "eval-liif: a row factor must keep at least 2 of the {} rows (1..{}), not {f}",
            params.rows,
            params.rows - 1
        )));
    }
    let (name, scans) = read_posed_scans(&cfg.source, cfg.frames, cfg.every, "eval-liif")?;
    let set = dense_images(&scans, &params);
    let mut upsampling = Vec::new();
    for &f in &cfg.factors {
        upsampling.push(compare(&net, &set, f).map_err(candle_err)?);
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    if let (Some(&factor), Some(img)) = (cfg.factors.last(), set.images.get(set.images.len() / 2)) {
        example_picture(&net, img, &params, factor)?.write_png(&cfg.out.join("liif_example.png"))?;
    }
    let mut downstream = Vec::new();
    if let Some(factor) = cfg.downstream_factor {
        let layout = RowLayout::every(params.rows, factor, 0);
        let bar = progress_bar(Some(set.images.len()), cfg.quiet, "scans");
        let mut renders: Vec<(String, Vec<Scan>)> = Vec::new();
        for input in ["dense", "liif", "bilinear", "nearest"] {
            let mut out = Vec::with_capacity(scans.len());
            for (scan, img) in scans.iter().zip(&set.images) {
                let sparse = layout.decimate(img, params.cols);
                let dense = match input {
                    "dense" => img.clone(),
                    "liif" => net.upsample(&sparse, params.cols, &layout).map_err(candle_err)?,
                    "bilinear" => upsample_baseline(&sparse, params.cols, &layout, Baseline::Bilinear),
                    _ => upsample_baseline(&sparse, params.cols, &layout, Baseline::Nearest),
                };
                out.push(scan_from_range(scan, &dense, &params));
                bar.inc(1);
            }
            renders.push((input.into(), out));
        }
        bar.finish_and_clear();
        let (frames, labels) = label_scans(&name, scans.clone(), &params)?;
        let pairs = pairs_apart(&frames, cfg.min_gap);
        for &method in &cfg.downstream_methods {
            let detector = LoopDetector::new(method, None)?;
            for (input, rendered) in &renders {
                let d = detector.describe(rendered)?;
                let refs: Vec<_> = pairs.iter().map(|&(q, r)| (&d[q], &d[r])).collect();
                let verdicts = detector.compare(&refs)?;
                let scored: Vec<ScoredPair> = pairs
                    .iter()
                    .zip(&verdicts)
                    .map(|(&pair, v)| judge(&labels, pair, v, &params, cfg.loop_overlap))
                    .collect();
                downstream.push(DownstreamScore {
                    method,
                    input: input.clone(),
                    scores: score(&scored),
                });
            }
        }
    }
    let report = LiifEvalReport {
        source: name,
        scans: set.images.len(),
        upsampling,
        downstream,
    };
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    write_bytes_atomic(&cfg.out.join("liif_eval.json"), &json)?;
    Ok(report)
}

/// One scan, top to bottom: the truth, the thinned input (rows repeated), nearest, bilinear and
/// LIIF renderings (turbo, 0-50 m), then bilinear's and LIIF's absolute error (turbo, 0-2 m;
/// black where either side is empty), each row doubled.
fn example_picture(net: &Liif, dense: &[f32], params: &ProjectionParams, factor: usize) -> Result<Rgb8> {
    let cols = params.cols;
    let layout = RowLayout::every(params.rows, factor, 0);
    let sparse = layout.decimate(dense, cols);
    let stretched: Vec<f32> = (0..params.rows)
        .flat_map(|y| sparse[(y / factor) * cols..][..cols].to_vec())
        .collect();
    let nearest = upsample_baseline(&sparse, cols, &layout, Baseline::Nearest);
    let bilinear = upsample_baseline(&sparse, cols, &layout, Baseline::Bilinear);
    let liif = net.upsample(&sparse, cols, &layout).map_err(candle_err)?;
    let colour = |v: &[f32], max: f32| -> Vec<u8> {
        v.iter()
            .flat_map(|&r| {
                if r < 0.0 {
                    [0, 0, 0]
                } else {
                    turbo((r / max).clamp(0.0, 1.0))
                }
            })
            .collect()
    };
    let error = |p: &[f32]| -> Vec<f32> {
        p.iter()
            .zip(dense)
            .map(|(&a, &t)| if a >= 0.0 && t >= 0.0 { (a - t).abs() } else { -1.0 })
            .collect()
    };
    let mut data = Vec::new();
    for (v, max) in [
        (dense.to_vec(), params.max_range),
        (stretched, params.max_range),
        (nearest, params.max_range),
        (bilinear.clone(), params.max_range),
        (liif.clone(), params.max_range),
        (error(&bilinear), 2.0),
        (error(&liif), 2.0),
    ] {
        data.extend(colour(&v, max));
        data.extend(std::iter::repeat_n(255u8, cols * 3 * 4));
    }
    Ok(Rgb8 {
        width: cols,
        height: data.len() / (cols * 3),
        data,
    }
    .stretch_rows(2))
}

/// The scan whose points are the returns of a range image (each at its pixel's centre
/// direction), with `like`'s index, time and pose.
pub fn scan_from_range(like: &Scan, range: &[f32], params: &ProjectionParams) -> Scan {
    let mut points = Vec::new();
    for (i, &r) in range.iter().enumerate() {
        if r <= 0.0 || r == EMPTY {
            continue;
        }
        points.push(pixel_direction(params, i / params.cols, i % params.cols).map(|d| d * r));
    }
    let n = points.len();
    Scan {
        points,
        intensity: vec![0.0; n],
        point_time: None,
        ring: None,
        ..like.clone()
    }
}

/// Unit vector through the centre of pixel (row, col), the inverse of
/// [`ProjectionParams::pixel`].
pub fn pixel_direction(p: &ProjectionParams, row: usize, col: usize) -> [f32; 3] {
    let fov = p.fov_up - p.fov_down;
    let pitch = p.fov_up - (row as f32 + 0.5) / p.rows as f32 * fov;
    let yaw = ((col as f32 + 0.5) / p.cols as f32 * 2.0 - 1.0) * std::f32::consts::PI;
    // ProjectionParams::pixel takes yaw = -atan2(y, x).
    [pitch.cos() * yaw.cos(), -pitch.cos() * yaw.sin(), pitch.sin()]
}

//! `eval-liif`: LIIF measured on held-out posed scans (simulated or real) against bilinear and
//! nearest upsampling, then downstream: loop detection on 16-row scans rendered at 64 rows by
//! LIIF against the same scans upsampled naively.

use crate::error::{Error, Result};
use crate::ground_truth::pairs::pairs_apart;
use crate::ground_truth::scoring::{LoopScores, RevisitRule, ScoredPair, score};
use crate::io::FrameRange;
use crate::io::atomic::write_bytes_atomic;
use crate::jobs::eval_loops::score_pair;
use crate::jobs::gt_pairs::{label_scans, read_posed_scans};
use crate::loops::detector::{LoopDetector, LoopMethod};
use crate::perception::liif::train::{Comparison, DenseSet, compare};
use crate::perception::liif::{Baseline, Liif, RowLayout, candle_error, rows::upsample_baseline};
use crate::pipeline::config::SourceSpec;
use crate::pipeline::status::progress_bar;
use crate::projection::png::{Rgb8, turbo};
use crate::projection::{EMPTY, ProjectionParams};
use crate::scan::Scan;
use serde::Serialize;
use std::path::PathBuf;

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
    check_factors(cfg, &params)?;
    let (name, scans) = read_posed_scans(&cfg.source, cfg.frames, cfg.every, "eval-liif")?;
    let set = DenseSet::of_scans(&scans, &params);
    let mut upsampling = Vec::new();
    for &f in &cfg.factors {
        upsampling.push(compare(&net, &set, f).map_err(candle_error)?);
    }
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    if let (Some(&factor), Some(img)) = (cfg.factors.last(), set.images.get(set.images.len() / 2)) {
        example_picture(&net, img, &params, factor)?.write_png(&cfg.out.join("liif_example.png"))?;
    }
    let downstream = match cfg.downstream_factor {
        Some(factor) => {
            let renders = rendered_scans(cfg, &net, &scans, &set, &params, factor)?;
            loop_detection_on(cfg, &name, &scans, &renders, &params)?
        }
        None => Vec::new(),
    };
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

/// Refuses a row factor that keeps fewer than 2 rows.
fn check_factors(cfg: &EvalLiifConfig, params: &ProjectionParams) -> Result<()> {
    let factors = cfg.factors.iter().chain(&cfg.downstream_factor);
    if let Some(f) = factors.into_iter().find(|&&f| f == 0 || f >= params.rows) {
        return Err(Error::Usage(format!(
            "eval-liif: a row factor must keep at least 2 of the {} rows (1..{}), not {f}",
            params.rows,
            params.rows - 1
        )));
    }
    Ok(())
}

/// The scans rendered back to 64 rows from every `factor`-th row, by each upsampling (and the
/// dense scans themselves), each named.
fn rendered_scans(
    cfg: &EvalLiifConfig,
    net: &Liif,
    scans: &[Scan],
    set: &DenseSet,
    params: &ProjectionParams,
    factor: usize,
) -> Result<Vec<(String, Vec<Scan>)>> {
    let layout = RowLayout::every(params.rows, factor, 0);
    let bar = progress_bar(Some(set.images.len()), cfg.quiet, "scans");
    let mut renders = Vec::new();
    for input in ["dense", "liif", "bilinear", "nearest"] {
        let mut out = Vec::with_capacity(scans.len());
        for (scan, img) in scans.iter().zip(&set.images) {
            let sparse = layout.decimate(img, params.cols);
            let dense = match input {
                "dense" => img.clone(),
                "liif" => net.upsample(&sparse, params.cols, &layout).map_err(candle_error)?,
                "bilinear" => upsample_baseline(&sparse, params.cols, &layout, Baseline::Bilinear),
                _ => upsample_baseline(&sparse, params.cols, &layout, Baseline::Nearest),
            };
            out.push(scan_from_range(scan, &dense, params));
            bar.inc(1);
        }
        renders.push((input.into(), out));
    }
    bar.finish_and_clear();
    Ok(renders)
}

/// Each downstream detector's loop-detection scores on each rendering, against the ground truth
/// of the original scans.
fn loop_detection_on(
    cfg: &EvalLiifConfig,
    name: &str,
    scans: &[Scan],
    renders: &[(String, Vec<Scan>)],
    params: &ProjectionParams,
) -> Result<Vec<DownstreamScore>> {
    let (frames, labels) = label_scans(name, scans.to_vec(), params)?;
    let pairs = pairs_apart(&frames, cfg.min_gap);
    let mut downstream = Vec::new();
    for &method in &cfg.downstream_methods {
        let detector = LoopDetector::new(method, None)?;
        for (input, rendered) in renders {
            let d = detector.describe(rendered)?;
            let refs: Vec<_> = pairs.iter().map(|&(q, r)| (&d[q], &d[r])).collect();
            let verdicts = detector.compare(&refs)?;
            let scored: Vec<ScoredPair> = pairs
                .iter()
                .zip(&verdicts)
                .map(|(&pair, v)| score_pair(&labels, pair, v, params, RevisitRule::Overlap(cfg.loop_overlap)))
                .collect();
            downstream.push(DownstreamScore {
                method,
                input: input.clone(),
                scores: score(&scored),
            });
        }
    }
    Ok(downstream)
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
    let liif = net.upsample(&sparse, cols, &layout).map_err(candle_error)?;
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

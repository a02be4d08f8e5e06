//! `cam`: OverlapNet's decisions on chosen pairs of a posed sequence explained per column, the
//! three normalisations of the IVR paper compared against the columns the two scans really share
//! (ground-truth overlap per column), and drawn into one PNG.

use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::atomic::write_bytes_atomic;
use crate::jobs::gt_pairs::read_posed_scans;
use crate::overlapnet::OverlapNet;
use crate::perception::ivr_cam::render::heat_overlay;
use crate::perception::ivr_cam::{CamTarget, Normalisation, normalise, pair_cam};
use crate::pipeline::config::SourceSpec;
use crate::projection::overlap::column_overlap;
use crate::projection::png::Rgb8;
use crate::projection::{RangeImage, compute_normals, project};
use crate::scan::Scan;
use serde::Serialize;
use std::path::PathBuf;

/// What to explain.
#[derive(Debug, Clone)]
pub struct CamConfig {
    /// A posed sequence.
    pub source: SourceSpec,
    /// Frames to read.
    pub frames: FrameRange,
    /// (query, reference) frame numbers.
    pub pairs: Vec<(usize, usize)>,
    /// The decision explained.
    pub target: CamTarget,
    /// IVR's percentile.
    pub percentile: f32,
    /// OverlapNet weights (`None`: shipped).
    pub weights: Option<PathBuf>,
    /// A column counts as shared when at least this share of its returns overlap.
    pub shared_column: f32,
    /// A normalised score at or above this lights a column.
    pub threshold: f32,
    /// Output folder: `cam.json`, `cam.png`.
    pub out: PathBuf,
}

/// One normalisation judged on one pair's query map.
#[derive(Debug, Clone, Serialize)]
pub struct NormalisationScore {
    /// Which normalisation.
    pub normalisation: Normalisation,
    /// Intersection over union of lit and shared columns.
    pub iou: f64,
    /// Share of columns lit.
    pub lit: f64,
    /// Mean normalised score on shared columns minus that on the others.
    pub contrast: f64,
}

/// One pair's explanation.
#[derive(Debug, Clone, Serialize)]
pub struct PairReport {
    /// Query frame.
    pub query: usize,
    /// Reference frame.
    pub reference: usize,
    /// Ground-truth overlap (query's pixels).
    pub overlap_truth: f64,
    /// Share of scored columns that are shared.
    pub shared: f64,
    /// The raw attribution.
    pub cam: crate::perception::ivr_cam::PairCam,
    /// Ground-truth overlap of each query column.
    pub column_overlap: Vec<f32>,
    /// The three normalisations judged.
    pub scores: Vec<NormalisationScore>,
}

/// `cam.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CamReport {
    /// What was read.
    pub source: String,
    /// Per pair.
    pub pairs: Vec<PairReport>,
    /// Mean IoU per normalisation over the pairs.
    pub mean_iou: Vec<(String, f64)>,
}

/// The normalisations compared.
pub fn normalisations(percentile: f32) -> [Normalisation; 3] {
    [
        Normalisation::MinMax,
        Normalisation::Max,
        Normalisation::Ivr { percentile },
    ]
}

fn image_of(scan: &Scan, net: &OverlapNet) -> RangeImage {
    let mut img = project(&scan.points, &scan.intensity, &net.config.projection());
    compute_normals(&mut img);
    img
}

/// Judges a normalised map against the shared columns.
pub fn score_normalisation(
    map: &[f32],
    shared: &[Option<bool>],
    threshold: f32,
    how: Normalisation,
) -> NormalisationScore {
    let (mut inter, mut union, mut lit, mut n) = (0usize, 0usize, 0usize, 0usize);
    let (mut on, mut off, mut n_on, mut n_off) = (0f64, 0f64, 0usize, 0usize);
    for (&v, s) in map.iter().zip(shared) {
        let Some(s) = *s else { continue };
        if !v.is_finite() {
            continue;
        }
        let l = v >= threshold;
        n += 1;
        lit += usize::from(l);
        inter += usize::from(l && s);
        union += usize::from(l || s);
        if s {
            on += v as f64;
            n_on += 1;
        } else {
            off += v as f64;
            n_off += 1;
        }
    }
    let mean = |a: f64, k: usize| if k == 0 { 0.0 } else { a / k as f64 };
    NormalisationScore {
        normalisation: how,
        iou: if union == 0 { 0.0 } else { inter as f64 / union as f64 },
        lit: if n == 0 { 0.0 } else { lit as f64 / n as f64 },
        contrast: mean(on, n_on) - mean(off, n_off),
    }
}

/// Explains the pairs, writes `cam.json` and `cam.png`.
pub fn cam(cfg: &CamConfig) -> Result<CamReport> {
    let net = match &cfg.weights {
        Some(p) => OverlapNet::load(p)?,
        None => OverlapNet::shipped()?,
    };
    let (name, scans) = read_posed_scans(&cfg.source, cfg.frames, 1, "cam")?;
    let find = |f: usize| {
        scans
            .iter()
            .find(|s| s.index == f)
            .ok_or_else(|| Error::Usage(format!("{name}: no frame {f}")))
    };
    let mut pairs = Vec::new();
    let mut picture: Vec<Rgb8> = Vec::new();
    for &(qf, rf) in &cfg.pairs {
        pairs.push(explain_pair(cfg, &net, find(qf)?, find(rf)?, &mut picture)?);
    }
    let report = CamReport {
        source: name,
        mean_iou: mean_iou(cfg, &pairs),
        pairs,
    };
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    write_bytes_atomic(&cfg.out.join("cam.json"), &json)?;
    stack(&picture).write_png(&cfg.out.join("cam.png"))?;
    Ok(report)
}

/// One pair explained: its column map under each normalisation scored against the columns the
/// scans really share, and the maps and the truth drawn onto `picture`.
fn explain_pair(cfg: &CamConfig, net: &OverlapNet, q: &Scan, r: &Scan, picture: &mut Vec<Rgb8>) -> Result<PairReport> {
    let params = net.config.projection();
    let (qi, ri) = (image_of(q, net), image_of(r, net));
    let cam = pair_cam(net, &qi, &ri, cfg.target).map_err(|e| Error::Usage(format!("cam: {e}")))?;
    let (qp, rp) = (q.gt_pose.expect("posed"), r.gt_pose.expect("posed"));
    let columns = column_overlap(&qi, &qp, &r.points, &rp, &params);
    let shared: Vec<Option<bool>> = columns
        .iter()
        .map(|&o| o.is_finite().then_some(o >= cfg.shared_column))
        .collect();
    let scored: Vec<bool> = shared
        .iter()
        .zip(&cam.query)
        .filter(|(s, v)| s.is_some() && v.is_finite())
        .map(|(s, _)| s.unwrap_or(false))
        .collect();
    let mut scores = Vec::new();
    for how in normalisations(cfg.percentile) {
        let map = normalise(&cam.query, how);
        scores.push(score_normalisation(&map, &shared, cfg.threshold, how));
        picture.push(heat_overlay(&qi, &map).stretch_rows(2));
    }
    let truth: Vec<f32> = columns.iter().map(|&o| if o.is_finite() { o } else { 0.0 }).collect();
    picture.push(heat_overlay(&qi, &truth).stretch_rows(2));
    picture.push(separator(qi.cols));
    let overlap_truth = crate::projection::overlap::overlap(&qi, &qp, &r.points, &rp, &params) as f64;
    Ok(PairReport {
        query: q.index,
        reference: r.index,
        overlap_truth,
        shared: scored.iter().filter(|&&s| s).count() as f64 / scored.len().max(1) as f64,
        cam,
        column_overlap: columns,
        scores,
    })
}

/// Each normalisation's IoU of lit and shared columns, averaged over the pairs.
fn mean_iou(cfg: &CamConfig, pairs: &[PairReport]) -> Vec<(String, f64)> {
    normalisations(cfg.percentile)
        .iter()
        .enumerate()
        .map(|(k, how)| {
            let m = pairs.iter().map(|p| p.scores[k].iou).sum::<f64>() / pairs.len().max(1) as f64;
            (how.name().to_string(), m)
        })
        .collect()
}

/// A white line between pairs.
fn separator(width: usize) -> Rgb8 {
    Rgb8 {
        width,
        height: 6,
        data: vec![255; width * 6 * 3],
    }
}

/// Pictures of one width stacked top to bottom.
fn stack(parts: &[Rgb8]) -> Rgb8 {
    let width = parts.first().map_or(0, |p| p.width);
    Rgb8 {
        width,
        height: parts.iter().map(|p| p.height).sum(),
        data: parts.iter().flat_map(|p| p.data.iter().copied()).collect(),
    }
}

//! `eval-loops`: how well a loop detector finds revisits in a posed sequence. Every pair of scans
//! at least `min_gap` frames apart is scored by the detector and judged against its ground-truth
//! overlap (a loop above 0.3); yaw is also judged on copies of scans turned by known angles.
//! Writes `loops_eval.json`, `pr_curve.csv`, `pr_curve.png` and `pairs.csv` (every judged pair
//! with its ground truth and the detector's answer, for scoring by any other tool). A MIMO
//! network's spread goes into both, with how well it tracks the errors.

use crate::error::{Error, Result};
use crate::ground_truth::pairs::{LabelScan, label, pairs_apart};
use crate::ground_truth::scoring::{LoopScores, PrPoint, RevisitRule, ScoredPair, angle_diff_deg, pr_curve, score_top};
use crate::io::FrameRange;
use crate::io::atomic::write_atomic;
use crate::jobs::gt_pairs::{label_scans, read_posed_scans};
use crate::loops::detector::{Descriptor, LoopDetector, Verdict};
use crate::loops::plot::pr_plot;
use crate::loops::search::LoopSearchConfig;
use crate::loops::uncertainty::{UncertainPair, UncertaintyReport, uncertainty_report};
use crate::overlapnet::Spread;
use crate::pipeline::config::SourceSpec;
use crate::pipeline::status::progress_bar;
use crate::projection::ProjectionParams;
use crate::projection::overlap::{relative_yaw_deg, transform_points};
use crate::scan::{Pose, Scan};
use crate::sensor::SensorModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

pub use crate::loops::detector::LoopMethod;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalLoopsConfig {
    /// The sequence (it must carry ground-truth poses).
    pub source: SourceSpec,
    /// Frames to read.
    pub frames: FrameRange,
    /// Keep every `every`-th scan read (1: all).
    pub every: usize,
    /// The sensor, for the ground-truth projection.
    pub sensor: SensorModel,
    /// The detector.
    pub method: LoopMethod,
    /// OverlapNet weights (safetensors); `None` uses the shipped model.
    pub weights: Option<PathBuf>,
    /// Pairs fewer than this many frames apart are not judged (OverlapNet's protocol: 100).
    pub min_gap: usize,
    /// What makes a pair a loop: ground-truth overlap (OverlapNet's protocol: above 0.3) or
    /// distance (the place-recognition field's).
    pub revisit: RevisitRule,
    /// Candidates per query that recall@N looks at.
    pub top_n: usize,
    /// Scans turned by known angles to judge yaw on.
    pub rotated_copies: usize,
    /// Seed of those angles.
    pub seed: u64,
    /// Output folder.
    pub out: PathBuf,
    /// No progress bar.
    pub quiet: bool,
    /// Recordings of other places: their scans join the evaluation, pairs within each are
    /// labelled by its ground truth, and every pair across two recordings is a true negative
    /// (overlap 0), so a detector is judged on real places that share nothing.
    pub also: Vec<SourceSpec>,
}

/// `loops_eval.json`.
#[derive(Debug, Clone, Serialize)]
pub struct LoopsEvalReport {
    /// The detector.
    pub method: LoopMethod,
    /// What was read.
    pub source: String,
    /// Scans used.
    pub scans: usize,
    /// Pairs closer than this many frames were left out.
    pub min_gap: usize,
    /// What made a pair a loop: `{"overlap": 0.3}` or `{"distance_m": 5.0}`.
    pub revisit: RevisitRule,
    /// AUC, F1max, recall@1 and yaw errors on the judged pairs.
    #[serde(flatten)]
    pub scores: LoopScores,
    /// Mean absolute error of the predicted overlap (null for detectors that predict none).
    pub overlap_mae: Option<f64>,
    /// Pairs across recordings of different places (`also`): how many, and the detector's mean
    /// predicted overlap and mean score on them (ideally 0); null without `also`.
    pub across: Option<AcrossReport>,
    /// Mean absolute yaw error on scans turned by known angles, degrees.
    pub yaw_rotated_err_mean_deg: Option<f64>,
    /// Median of the same.
    pub yaw_rotated_err_median_deg: Option<f64>,
    /// For a MIMO network: how its subnetworks' spread tracks its errors, and what the loop
    /// search's spread gate keeps and refuses (null for other detectors).
    pub uncertainty: Option<UncertaintyReport>,
    /// Descriptors computed per second (all threads).
    pub descriptor_scans_per_s: f64,
    /// Pairs compared per second (all threads).
    pub head_pairs_per_s: f64,
    /// Seconds for the whole evaluation.
    pub wall_s: f64,
}

/// The detector on pairs of scans from recordings of different places.
#[derive(Debug, Clone, Serialize)]
pub struct AcrossReport {
    /// Recordings read (the sequence first).
    pub recordings: usize,
    /// Pairs across two of them.
    pub pairs: usize,
    /// Mean predicted overlap (detectors that predict one).
    pub pred_overlap_mean: Option<f64>,
    /// Mean score.
    pub score_mean: f64,
}

/// The sequence's scans and those of every `also` recording after them, with each scan's
/// recording number.
fn read_recordings(cfg: &EvalLoopsConfig) -> Result<(String, Vec<Scan>, Vec<usize>)> {
    let (name, mut scans) = read_posed_scans(&cfg.source, cfg.frames, cfg.every, "eval-loops")?;
    let mut recording = vec![0; scans.len()];
    for (k, spec) in cfg.also.iter().enumerate() {
        let (_, more) = read_posed_scans(spec, cfg.frames, cfg.every, "eval-loops --also")?;
        recording.extend(std::iter::repeat_n(k + 1, more.len()));
        scans.extend(more);
    }
    Ok((name, scans, recording))
}

/// Pairs at least `min_gap` frames apart within each recording, then every pair across two
/// recordings (query in the later one).
fn eval_pairs(frames: &[usize], recording: &[usize], min_gap: usize) -> Vec<(usize, usize)> {
    // Scans of one recording are consecutive: each recording's span of scan indices.
    let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
    for (k, &r) in recording.iter().enumerate() {
        match spans.get_mut(r) {
            Some(span) => span.end = k + 1,
            None => spans.push(k..k + 1),
        }
    }
    let mut pairs = Vec::new();
    for s in &spans {
        let offset = s.start;
        pairs.extend(
            pairs_apart(&frames[s.clone()], min_gap)
                .into_iter()
                .map(|(q, p)| (q + offset, p + offset)),
        );
    }
    for s in spans.iter().skip(1) {
        for q in s.clone() {
            pairs.extend((0..s.start).map(|p| (q, p)));
        }
    }
    pairs
}

/// Runs the evaluation and writes its three files into `cfg.out`.
pub fn eval_loops(cfg: &EvalLoopsConfig) -> Result<LoopsEvalReport> {
    check_settings(cfg)?;
    let start = Instant::now();
    let params = ProjectionParams::from_sensor(&cfg.sensor);
    let (name, scans, recording) = read_recordings(cfg)?;
    let detector = LoopDetector::new(cfg.method, cfg.weights.as_deref())?;
    let yaw_errors = rotated_copy_errors(&detector, &scans, cfg.rotated_copies, cfg.seed)?;
    let described = Instant::now();
    let descriptors = detector.describe(&scans)?;
    let descriptor_scans_per_s = scans.len() as f64 / described.elapsed().as_secs_f64().max(1e-9);
    let (frames, labels) = label_scans(&name, scans, &params)?;
    let pairs = eval_pairs(&frames, &recording, cfg.min_gap);
    let compared = Instant::now();
    let verdicts = compare_pairs(&detector, &descriptors, &pairs, cfg.quiet)?;
    let head_pairs_per_s = pairs.len() as f64 / compared.elapsed().as_secs_f64().max(1e-9);
    let scored: Vec<(ScoredPair, &Verdict)> = pairs
        .par_iter()
        .zip(&verdicts)
        .map(|(&pair, v)| {
            let scored = if recording[pair.0] == recording[pair.1] {
                score_pair(&labels, pair, v, &params, cfg.revisit)
            } else {
                distinct_places(pair, v)
            };
            (scored, v)
        })
        .collect();
    let overlap_errors: Vec<f64> = scored
        .iter()
        .filter_map(|(p, v)| v.overlap.map(|o| (o - p.overlap).abs() as f64))
        .collect();
    let rows = pair_rows(cfg, &frames, &labels, &recording, &pairs, &scored);
    let report = LoopsEvalReport {
        method: cfg.method,
        source: name,
        scans: frames.len(),
        min_gap: cfg.min_gap,
        revisit: cfg.revisit,
        scores: score_top(&scored.iter().map(|(p, _)| *p).collect::<Vec<_>>(), cfg.top_n),
        overlap_mae: mean(&overlap_errors),
        across: across_report(cfg, &pairs, &recording, &scored),
        yaw_rotated_err_mean_deg: mean(&yaw_errors),
        yaw_rotated_err_median_deg: median(&yaw_errors),
        uncertainty: uncertainty_of(&scored),
        descriptor_scans_per_s,
        head_pairs_per_s,
        wall_s: start.elapsed().as_secs_f64(),
    };
    let curve = pr_curve(&scored.iter().map(|(p, _)| *p).collect::<Vec<_>>());
    write_outputs(cfg, &report, &curve, &rows)?;
    Ok(report)
}

/// Refuses a revisit distance that is not a positive number of metres, and a top-N of 0.
fn check_settings(cfg: &EvalLoopsConfig) -> Result<()> {
    if let RevisitRule::DistanceM(m) = cfg.revisit
        && !(m.is_finite() && m > 0.0)
    {
        return Err(Error::Usage(format!(
            "eval-loops: --loop-distance must be a positive number of metres, not {m}"
        )));
    }
    if cfg.top_n == 0 {
        return Err(Error::Usage("eval-loops: --top-n must be at least 1".into()));
    }
    Ok(())
}

/// The detector's verdict on every pair, compared in chunks under a progress bar.
fn compare_pairs(
    detector: &LoopDetector,
    descriptors: &[Descriptor],
    pairs: &[(usize, usize)],
    quiet: bool,
) -> Result<Vec<Verdict>> {
    let bar = progress_bar(Some(pairs.len()), quiet, "pairs");
    let mut verdicts = Vec::with_capacity(pairs.len());
    for chunk in pairs.chunks(256) {
        let refs: Vec<_> = chunk.iter().map(|&(q, r)| (&descriptors[q], &descriptors[r])).collect();
        verdicts.extend(detector.compare(&refs)?);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(verdicts)
}

/// What the detector says of pairs across recordings (real places that share nothing), when
/// `also` gave any.
fn across_report(
    cfg: &EvalLoopsConfig,
    pairs: &[(usize, usize)],
    recording: &[usize],
    scored: &[(ScoredPair, &Verdict)],
) -> Option<AcrossReport> {
    let across: Vec<&Verdict> = pairs
        .iter()
        .zip(scored)
        .filter(|((q, r), _)| recording[*q] != recording[*r])
        .map(|(_, (_, v))| *v)
        .collect();
    let overlaps: Vec<f64> = across.iter().filter_map(|v| v.overlap.map(f64::from)).collect();
    let scores: Vec<f64> = across.iter().map(|v| v.score as f64).collect();
    (!cfg.also.is_empty()).then(|| AcrossReport {
        recordings: cfg.also.len() + 1,
        pairs: across.len(),
        pred_overlap_mean: mean(&overlaps),
        score_mean: mean(&scores).unwrap_or(0.0),
    })
}

/// How a MIMO network's spread tracks its errors, and what the loop search's gate would do with
/// it; `None` for a detector without a spread.
fn uncertainty_of(scored: &[(ScoredPair, &Verdict)]) -> Option<UncertaintyReport> {
    let uncertain: Vec<UncertainPair> = scored
        .iter()
        .filter_map(|(p, v)| {
            Some(UncertainPair {
                predicted: v.score,
                truth: p.overlap,
                positive: p.positive,
                yaw_err_deg: angle_diff_deg(p.yaw_deg, p.gt_yaw_deg),
                spread: v.spread?,
            })
        })
        .collect();
    let search = LoopSearchConfig::default();
    (!uncertain.is_empty()).then(|| uncertainty_report(&uncertain, search.accept_overlap, search.gate))
}

/// The lines of `pairs.csv`, one a judged pair.
fn pair_rows(
    cfg: &EvalLoopsConfig,
    frames: &[usize],
    labels: &[LabelScan],
    recording: &[usize],
    pairs: &[(usize, usize)],
    scored: &[(ScoredPair, &Verdict)],
) -> Vec<PairRow> {
    pairs
        .iter()
        .zip(scored)
        .map(|(&(q, r), (p, v))| PairRow {
            query: frames[q],
            reference: frames[r],
            recordings: (!cfg.also.is_empty()).then_some((recording[q], recording[r])),
            pair: *p,
            predicted_overlap: v.overlap,
            spread: v.spread,
            distance_m: (recording[q] == recording[r]).then(|| distance_m(labels, (q, r))),
        })
        .collect()
}

/// One line of `pairs.csv`.
struct PairRow {
    /// Source frame numbers.
    query: usize,
    reference: usize,
    /// Recording numbers of the two scans (with `also`).
    recordings: Option<(usize, usize)>,
    /// Ground truth and the detector's score and yaw.
    pair: ScoredPair,
    /// The detector's overlap, when it predicts one.
    predicted_overlap: Option<f32>,
    /// A MIMO network's spread.
    spread: Option<Spread>,
    /// Ground-truth distance of the two scans, metres (none across recordings).
    distance_m: Option<f64>,
}

/// A detector's verdict on the scans `pair` judged against their ground truth: a loop when
/// `revisit` holds for their true overlap and distance.
pub(crate) fn score_pair(
    labels: &[LabelScan],
    pair: (usize, usize),
    verdict: &Verdict,
    params: &ProjectionParams,
    revisit: RevisitRule,
) -> ScoredPair {
    let truth = label(labels, pair, params);
    ScoredPair {
        query: pair.0,
        score: verdict.score,
        overlap: truth.overlap,
        positive: revisit.holds(truth.overlap, distance_m(labels, pair)),
        yaw_deg: verdict.yaw_deg,
        gt_yaw_deg: truth.yaw_deg,
    }
}

/// Distance between the ground-truth positions of the scans `pair`, metres.
fn distance_m(labels: &[LabelScan], pair: (usize, usize)) -> f64 {
    (labels[pair.0].pose.translation.vector - labels[pair.1].pose.translation.vector).norm()
}

/// A detector's verdict on scans of two recordings declared different places: overlap 0, no
/// loop (yaw unknown: 0).
fn distinct_places(pair: (usize, usize), verdict: &Verdict) -> ScoredPair {
    ScoredPair {
        query: pair.0,
        score: verdict.score,
        overlap: 0.0,
        positive: false,
        yaw_deg: verdict.yaw_deg,
        gt_yaw_deg: 0.0,
    }
}

/// Yaw errors of the detector on up to `copies` scans, each compared with itself turned by a
/// seeded random angle.
fn rotated_copy_errors(detector: &LoopDetector, scans: &[Scan], copies: usize, seed: u64) -> Result<Vec<f64>> {
    let step = scans.len().div_ceil(copies.max(1)).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut originals = Vec::new();
    let mut turned_copies = Vec::new();
    let mut truths = Vec::new();
    for s in scans.iter().step_by(step).take(copies) {
        let yaw: f64 = rng.random_range(-180.0..180.0);
        let turned = Pose::new(nalgebra::Vector3::zeros(), nalgebra::Vector3::z() * yaw.to_radians());
        let mut copy = s.clone();
        copy.points = transform_points(&turned.inverse(), &s.points);
        truths.push(relative_yaw_deg(&Pose::identity(), &turned) as f32);
        originals.push(s.clone());
        turned_copies.push(copy);
    }
    let a = detector.describe(&originals)?;
    let b = detector.describe(&turned_copies)?;
    let pairs: Vec<_> = a.iter().zip(&b).collect();
    let verdicts = detector.compare(&pairs)?;
    Ok(verdicts
        .iter()
        .zip(&truths)
        .map(|(v, &t)| angle_diff_deg(v.yaw_deg, t) as f64)
        .collect())
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied()
}

/// `loops_eval.json`, `pr_curve.csv` (at most 1000 evenly spaced points), `pr_curve.png` and
/// `pairs.csv`.
fn write_outputs(cfg: &EvalLoopsConfig, report: &LoopsEvalReport, curve: &[PrPoint], rows: &[PairRow]) -> Result<()> {
    std::fs::create_dir_all(&cfg.out).map_err(|e| Error::io(&cfg.out, e))?;
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    write_atomic(&cfg.out.join("loops_eval.json"), |w| w.write_all(json.as_bytes()))?;
    let step = curve.len().div_ceil(1000).max(1);
    write_atomic(&cfg.out.join("pr_curve.csv"), |w| {
        writeln!(w, "threshold,precision,recall")?;
        for (k, p) in curve.iter().enumerate() {
            if k % step == 0 || k + 1 == curve.len() {
                writeln!(w, "{:.5},{:.5},{:.5}", p.threshold, p.precision, p.recall)?;
            }
        }
        Ok(())
    })?;
    write_atomic(&cfg.out.join("pairs.csv"), |w| {
        let recordings = if cfg.also.is_empty() {
            ""
        } else {
            ",query_recording,reference_recording"
        };
        writeln!(
            w,
            "query,reference,overlap,yaw_deg,pred_overlap,pred_yaw_deg,score,overlap_spread,yaw_spread_deg,distance_m,loop{recordings}"
        )?;
        for r in rows {
            let predicted = r.predicted_overlap.map(|o| format!("{o:.4}")).unwrap_or_default();
            let spread = r
                .spread
                .map_or(",".into(), |s| format!("{:.4},{:.2}", s.overlap, s.yaw_deg));
            let p = &r.pair;
            let recordings = r.recordings.map_or(String::new(), |(a, b)| format!(",{a},{b}"));
            writeln!(
                w,
                "{},{},{:.4},{:.2},{predicted},{:.2},{:.5},{spread},{},{}{recordings}",
                r.query,
                r.reference,
                p.overlap,
                p.gt_yaw_deg,
                p.yaw_deg,
                p.score,
                r.distance_m.map_or(String::new(), |d| format!("{d:.2}")),
                p.positive as u8
            )?;
        }
        Ok(())
    })?;
    pr_plot(curve, 400).write_png(&cfg.out.join("pr_curve.png"))
}

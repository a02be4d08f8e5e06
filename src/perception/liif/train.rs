//! Training LIIF on dense (HDL-64E) range images by dropping rows: each step takes random crops
//! of random images, keeps every `factor`-th row from a random first row, and fits the rendered
//! 64 rows to the originals (L1 on range where a return exists, cross-entropy on whether one
//! does). Factor 1 is in the mix so that the network learns to leave existing rows alone.

use super::model::{Liif, input_tensor};
use super::rows::{Baseline, RowLayout, upsample_baseline};
use super::score::{ScoreSums, UpsampleScore};
use crate::overlapnet::train::Adam;
use crate::projection::{ProjectionParams, project};
use crate::scan::Scan;
use crate::sim::{SimConfig, Simulation};
use candle_core::{Device, Result, Tensor};
use rand::Rng;
use rayon::prelude::*;
use serde::Serialize;

/// Dense range images of one size (metres, negative where empty), row-major.
#[derive(Debug, Clone, Default)]
pub struct DenseSet {
    /// Rows of every image.
    pub rows: usize,
    /// Columns of every image.
    pub cols: usize,
    /// The images.
    pub images: Vec<Vec<f32>>,
}

impl DenseSet {
    /// Dense range images of `scans` under `params`.
    pub fn of_scans(scans: &[Scan], params: &ProjectionParams) -> Self {
        Self {
            rows: params.rows,
            cols: params.cols,
            images: scans
                .par_iter()
                .map(|s| project(&s.points, &s.intensity, params).range)
                .collect(),
        }
    }

    /// Every `every`-th scan of the default simulated drive of each world in `seeds`, projected.
    pub fn simulated(seeds: &[u64], every: usize) -> Self {
        let mut set = Self::default();
        for &seed in seeds {
            let sim = Simulation::new(&SimConfig {
                seed,
                ..SimConfig::default()
            });
            let params = ProjectionParams::from_sensor(sim.sensor());
            let frames: Vec<usize> = (0..sim.frames()).step_by(every.max(1)).collect();
            let scans: Vec<Scan> = frames.par_iter().map(|&i| sim.scan(i)).collect();
            let part = Self::of_scans(&scans, &params);
            set.rows = part.rows;
            set.cols = part.cols;
            set.images.extend(part.images);
        }
        set
    }
}

/// How each step samples its batch.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// Crops per step.
    pub batch: usize,
    /// Columns per crop.
    pub crop_cols: usize,
    /// Row factors drawn from (all crops of a step share one), each with its weight.
    pub factors: Vec<(usize, f64)>,
    /// Weight of the return/no-return cross-entropy against the range L1.
    pub mask_weight: f64,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            batch: 8,
            crop_cols: 128,
            factors: vec![(1, 0.1), (2, 0.4), (4, 0.5)],
            mask_weight: 0.1,
        }
    }
}

/// Losses of one step.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepLoss {
    /// Mean absolute range error over true returns, normalised by the max range.
    pub range_l1: f32,
    /// Mean cross-entropy of the return logits.
    pub mask_bce: f32,
}

fn draw_factor(factors: &[(usize, f64)], rng: &mut impl Rng) -> usize {
    let total: f64 = factors.iter().map(|f| f.1).sum();
    let mut u = rng.random::<f64>() * total;
    for &(f, w) in factors {
        if u < w {
            return f;
        }
        u -= w;
    }
    factors.last().map_or(1, |f| f.0)
}

/// One optimiser step on a random batch of `set`.
pub fn train_step(
    net: &Liif,
    opt: &mut Adam,
    set: &DenseSet,
    cfg: &StepConfig,
    rng: &mut impl Rng,
) -> Result<StepLoss> {
    let factor = draw_factor(&cfg.factors, rng);
    let layout = RowLayout::every(set.rows, factor, rng.random_range(0..factor));
    let width = cfg.crop_cols.min(set.cols);
    let (mut inputs, mut truths) = (Vec::new(), Vec::new());
    for _ in 0..cfg.batch {
        let img = &set.images[rng.random_range(0..set.images.len())];
        let c0 = rng.random_range(0..=set.cols - width);
        let crop: Vec<f32> = img
            .chunks(set.cols)
            .flat_map(|row| row[c0..c0 + width].iter().copied())
            .collect();
        let sparse = layout.decimate(&crop, width);
        inputs.push(input_tensor(
            &sparse,
            layout.sparse_rows,
            width,
            net.config.max_range,
            net.device(),
        )?);
        truths.extend(crop);
    }
    let x = Tensor::cat(&inputs, 0)?;
    let out = net.render(&x, &layout, width == set.cols)?;
    let loss = loss(&out.range, &out.logit, &truths, net.config.max_range, net.device())?;
    let total = (&loss.0 + (&loss.1 * cfg.mask_weight)?)?;
    opt.step(&total)?;
    Ok(StepLoss {
        range_l1: loss.0.to_scalar()?,
        mask_bce: loss.1.to_scalar()?,
    })
}

/// Range L1 over true returns and the mask's binary cross-entropy with logits.
fn loss(range: &Tensor, logit: &Tensor, truth: &[f32], max_range: f32, dev: &Device) -> Result<(Tensor, Tensor)> {
    let shape = range.shape().clone();
    let mask: Vec<f32> = truth.iter().map(|&t| f32::from(u8::from(t >= 0.0))).collect();
    let target: Vec<f32> = truth.iter().map(|&t| t.max(0.0) / max_range).collect();
    let returns = mask.iter().sum::<f32>().max(1.0);
    let mask = Tensor::from_vec(mask, shape.clone(), dev)?;
    let target = Tensor::from_vec(target, shape, dev)?;
    let l1 = ((range - &target)?.abs()? * &mask)?.sum_all()? / returns as f64;
    // log(1 + e^x) - x y, written to stay finite for large |x|.
    let softplus = (logit.relu()? + (logit.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    let bce = (softplus - (logit * &mask)?)?.mean_all()?;
    Ok((l1?, bce))
}

/// LIIF and both baselines on the same images, scored on the rows the sparse scans lacked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Comparison {
    /// Rows kept from each dense image (`rows / factor`).
    pub sparse_rows: usize,
    /// The learned upsampler.
    pub liif: UpsampleScore,
    /// Linear between rows.
    pub bilinear: UpsampleScore,
    /// Nearest row.
    pub nearest: UpsampleScore,
    /// Mean milliseconds LIIF took per image.
    pub liif_ms: f64,
}

/// Compares LIIF with the baselines on every image of `set` with every `factor`-th row kept.
pub fn compare(net: &Liif, set: &DenseSet, factor: usize) -> Result<Comparison> {
    let layout = RowLayout::every(set.rows, factor, 0);
    let missing = |y: usize| !y.is_multiple_of(factor);
    let (mut liif, mut bilinear, mut nearest) = (ScoreSums::default(), ScoreSums::default(), ScoreSums::default());
    let mut seconds = 0.0;
    for img in &set.images {
        let sparse = layout.decimate(img, set.cols);
        let t = std::time::Instant::now();
        let pred = net.upsample(&sparse, set.cols, &layout)?;
        seconds += t.elapsed().as_secs_f64();
        liif.add_rows(&pred, img, set.cols, missing);
        for (sums, how) in [(&mut bilinear, Baseline::Bilinear), (&mut nearest, Baseline::Nearest)] {
            sums.add_rows(
                &upsample_baseline(&sparse, set.cols, &layout, how),
                img,
                set.cols,
                missing,
            );
        }
    }
    Ok(Comparison {
        sparse_rows: layout.sparse_rows,
        liif: liif.score(),
        bilinear: bilinear.score(),
        nearest: nearest.score(),
        liif_ms: 1e3 * seconds / set.images.len().max(1) as f64,
    })
}

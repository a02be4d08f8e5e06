//! One training step and one validation pass of OverlapNet, and the Adam optimiser whose moments
//! are saved with the weights so that a stopped training resumes where it was.

use super::data::PairSet;
use super::head::{peak_shift, shift_class, training_logits};
use super::input::{roll_columns, stack_members};
use super::loss::{YAW_MIN_OVERLAP, losses};
use super::mimo::ensemble;
use super::model::{ModelConfig, OverlapNet};
use super::verdict::PairMatch;
use crate::ground_truth::pairs::PairLabel;
use crate::ground_truth::scoring::{LoopScores, ScoredPair, score, wrap_deg};
use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::path::Path;

/// Adam (Kingma & Ba, 2015) with its usual constants.
pub struct Adam {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken.
    pub t: usize,
    /// Learning rate.
    pub lr: f64,
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

impl Adam {
    /// An optimiser over every variable of `varmap`, moments at zero.
    pub fn new(varmap: &VarMap, lr: f64) -> Result<Self> {
        let mut vars: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .expect("varmap lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let m = vars.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| v.zeros_like()).collect::<Result<Vec<_>>>()?;
        Ok(Self { vars, m, v, t: 0, lr })
    }

    /// One update from the gradients of `loss`.
    pub fn step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.t += 1;
        let c1 = 1.0 - BETA1.powi(self.t as i32);
        let c2 = 1.0 - BETA2.powi(self.t as i32);
        for (k, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            // Detached, so that the moments do not keep every earlier step's graph alive.
            let g = g.detach();
            self.m[k] = ((&self.m[k] * BETA1)? + (&g * (1.0 - BETA1))?)?.detach();
            self.v[k] = ((&self.v[k] * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?.detach();
            let update = ((&self.m[k] / c1)? / ((&self.v[k] / c2)?.sqrt()? + EPS)?)?;
            var.set(&(var.as_tensor() - (update * self.lr)?)?)?;
        }
        Ok(())
    }

    /// Saves the moments and step count (safetensors).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut t: HashMap<String, Tensor> = HashMap::new();
        for (k, (name, _)) in self.vars.iter().enumerate() {
            t.insert(format!("m.{name}"), self.m[k].clone());
            t.insert(format!("v.{name}"), self.v[k].clone());
        }
        t.insert("t".into(), Tensor::new(&[self.t as u32], &candle_core::Device::Cpu)?);
        candle_core::safetensors::save(&t, path)
    }

    /// Restores moments and step count saved by [`Adam::save`].
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let t = candle_core::safetensors::load(path, &candle_core::Device::Cpu)?;
        let get = |k: &str| {
            t.get(k)
                .cloned()
                .ok_or_else(|| candle_core::Error::Msg(format!("optimiser state lacks {k}")))
        };
        for (k, (name, _)) in self.vars.iter().enumerate() {
            self.m[k] = get(&format!("m.{name}"))?;
            self.v[k] = get(&format!("v.{name}"))?;
        }
        self.t = get("t")?.to_vec1::<u32>()?[0] as usize;
        Ok(())
    }
}

/// A pair as fed to the network: the reference image turned by `shift` columns (yaw
/// augmentation), with the yaw label turned to match.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The labelled pair.
    pub pair: PairLabel,
    /// Columns the reference image is rolled by.
    pub shift: i64,
    /// Share of pixels emptied at random in both images (domain randomisation: real scans lose
    /// returns to glass, dark paint and sky where the simulator's surfaces never fail); 0 for
    /// validation.
    pub dropout: f32,
    /// Share of the query's columns emptied as one contiguous sector (an occluder beside the
    /// sensor: a truck, a wall, a person); the reference is left whole, so the overlap label,
    /// a share of the query's remaining pixels, still holds. 0 for validation.
    pub sector: f32,
}

impl Sample {
    /// The pair with the reference turned by a random even number of columns (even, so that
    /// the feature volume, at half the columns, turns by a whole column).
    pub fn augmented(pair: PairLabel, cols: usize, rng: &mut impl Rng) -> Self {
        let shift = 2 * rng.random_range(0..cols as i64 / 2);
        Self {
            pair,
            shift,
            dropout: 0.0,
            sector: 0.0,
        }
    }

    /// The same sample with `dropout` of each image's pixels emptied.
    pub fn with_dropout(self, dropout: f32) -> Self {
        Self { dropout, ..self }
    }

    /// The same sample with a sector of `share` of the query's columns emptied.
    pub fn with_sector(self, share: f32) -> Self {
        Self { sector: share, ..self }
    }

    /// A pair as it is, its reference turned by `shift` columns.
    pub fn turned(pair: PairLabel, shift: i64) -> Self {
        Self {
            pair,
            shift,
            dropout: 0.0,
            sector: 0.0,
        }
    }

    /// Yaw label after the roll, degrees in (-180, 180].
    pub fn yaw_deg(&self, cols: usize) -> f32 {
        let yaw = self.pair.yaw_deg + self.shift as f32 * 360.0 / cols as f32;
        wrap_deg(yaw)
    }
}

/// Loss figures of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepLoss {
    /// Weighted total.
    pub total: f32,
    /// Overlap loss.
    pub overlap: f32,
    /// Yaw loss.
    pub yaw: f32,
}

/// MIMO's batch repetition for this project's compact network: each distinct pair twice a step.
/// Havasi et al. (ICLR 2021, Fig. 6b) find repeating examples within a batch speeds convergence.
pub const MIMO_BATCH_REPETITION: usize = 2;
/// MIMO's input repetition: half the rows give every subnetwork the same pair. Havasi et al.
/// (Fig. 6a) find rho > 0 lets subnetworks of a capacity-bound network share features; ours,
/// a quarter of the paper's width, is.
pub const MIMO_INPUT_REPETITION: f64 = 0.5;

/// The (batch repetition, input repetition) a network of `members` subnetworks trains with
/// unless told otherwise: none for a plain network, MIMO's for more.
pub fn default_repetitions(members: usize) -> (usize, f64) {
    if members > 1 {
        (MIMO_BATCH_REPETITION, MIMO_INPUT_REPETITION)
    } else {
        (1, 0.0)
    }
}

/// One input of the network: a sample for each subnetwork (one for a plain network, M for MIMO).
pub type Row = Vec<Sample>;

/// The training batch of a MIMO network (Havasi et al., ICLR 2021, Sec. 3): the `unique`
/// samples repeated `batch_repetition` times (batch repetition), each subnetwork reading the
/// repeated list in its own random order so that it trains on pairs independent of the others',
/// except that a share `input_repetition` of the rows gives every subnetwork the same sample
/// (input repetition). One subnetwork, no repetition: the samples as they are, one per row.
pub fn member_rows(
    unique: &[Sample],
    members: usize,
    batch_repetition: usize,
    input_repetition: f64,
    rng: &mut impl Rng,
) -> Vec<Row> {
    let tiled: Vec<Sample> = unique
        .iter()
        .cycle()
        .take(unique.len() * batch_repetition.max(1))
        .copied()
        .collect();
    if members <= 1 {
        return tiled.into_iter().map(|s| vec![s]).collect();
    }
    let orders: Vec<Vec<usize>> = (0..members)
        .map(|_| {
            let mut order: Vec<usize> = (0..tiled.len()).collect();
            order.shuffle(rng);
            order
        })
        .collect();
    (0..tiled.len())
        .map(|i| {
            let same = rng.random_bool(input_repetition.clamp(0.0, 1.0));
            (0..members)
                .map(|m| tiled[orders[if same { 0 } else { m }][i]])
                .collect()
        })
        .collect()
}

/// Forward pass of a batch of rows: predicted overlaps (B, M) and yaw logits (B, M, N) as
/// training reads them ([`training_logits`]). Legs run on the B query inputs and the B rolled
/// reference inputs in one batch; a row's M images sit side by side in the channels.
fn forward(net: &OverlapNet, set: &PairSet, rows: &[Row]) -> Result<(Tensor, Tensor)> {
    let c = &net.config;
    let ch = c.channels.count();
    let members = c.members();
    if let Some(r) = rows.iter().find(|r| r.len() != members) {
        candle_core::bail!("a batch row holds {} samples for {members} subnetworks", r.len());
    }
    let mut data = Vec::with_capacity(2 * rows.len() * c.rows * c.cols * ch * members);
    for row in rows {
        let queries: Vec<Vec<f32>> = row
            .iter()
            .map(|s| {
                let query = dropped_out(set.images[s.pair.query].clone(), ch, s, 0);
                sector_blanked(query, c.cols, ch, s)
            })
            .collect();
        let queries: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        data.extend(stack_members(&queries, ch));
    }
    for row in rows {
        let references: Vec<Vec<f32>> = row
            .iter()
            .map(|s| {
                let rolled = roll_columns(&set.images[s.pair.reference], c.cols, c.channels, s.shift);
                dropped_out(rolled, ch, s, 1)
            })
            .collect();
        let references: Vec<&[f32]> = references.iter().map(Vec::as_slice).collect();
        data.extend(stack_members(&references, ch));
    }
    let b = rows.len();
    let images = Tensor::from_vec(data, (2 * b, c.rows, c.cols, ch * members), net.device())?;
    let volumes = net.legs(&images)?;
    let (overlap, raw) = net.member_heads(&volumes.narrow(0, 0, b)?, &volumes.narrow(0, b, b)?)?;
    Ok((overlap, training_logits(&raw)?))
}

/// `image` (channels-last, `ch` channels) with a share `sample.dropout` of its pixels emptied
/// (-1 in every channel), drawn by a generator seeded from the sample, so that a step is
/// reproducible; `side` tells the query's draw from the reference's.
fn dropped_out(mut image: Vec<f32>, ch: usize, sample: &Sample, side: u64) -> Vec<f32> {
    if sample.dropout <= 0.0 {
        return image;
    }
    let seed =
        (sample.pair.query as u64) << 40 ^ (sample.pair.reference as u64) << 16 ^ sample.shift as u64 ^ side << 62;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    for pixel in image.chunks_exact_mut(ch) {
        if rng.random::<f32>() < sample.dropout {
            pixel.fill(crate::projection::EMPTY);
        }
    }
    image
}

/// `image` (channels-last, `cols` columns, `ch` channels) with `sample.sector` of its columns
/// emptied as one contiguous block that may wrap around, starting at a column drawn from a
/// generator seeded by the sample (a step is reproducible).
fn sector_blanked(mut image: Vec<f32>, cols: usize, ch: usize, sample: &Sample) -> Vec<f32> {
    let width = (sample.sector.clamp(0.0, 1.0) * cols as f32).round() as usize;
    if width == 0 {
        return image;
    }
    let seed = (sample.pair.query as u64) << 32 ^ sample.pair.reference as u64 ^ (sample.shift as u64) << 48;
    let start = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5ec7).random_range(0..cols);
    for row in image.chunks_exact_mut(cols * ch) {
        for k in 0..width {
            let c = (start + k) % cols;
            row[c * ch..(c + 1) * ch].fill(crate::projection::EMPTY);
        }
    }
    image
}

/// The yaw class a sample trains towards, when it counts for the yaw loss.
fn yaw_class(s: &Sample, config: &ModelConfig) -> Option<usize> {
    if s.pair.overlap <= YAW_MIN_OVERLAP {
        return None;
    }
    let k = (s.yaw_deg(config.cols) / config.degrees_per_feature_column()).round() as i64;
    shift_class(k, config.feature_columns(), config.circular_legs)
}

/// One optimisation step on `rows`: every subnetwork's losses on its own samples, averaged.
pub fn train_step(net: &OverlapNet, opt: &mut Adam, set: &PairSet, rows: &[Row]) -> Result<StepLoss> {
    let (overlap, logits) = forward(net, set, rows)?;
    let (b, m, n) = logits.dims3()?;
    let samples: Vec<&Sample> = rows.iter().flatten().collect();
    let truth: Vec<f32> = samples.iter().map(|s| s.pair.overlap).collect();
    let classes: Vec<Option<usize>> = samples.iter().map(|s| yaw_class(s, &net.config)).collect();
    let l = losses(&overlap.flatten_all()?, &truth, &logits.reshape((b * m, n))?, &classes)?;
    opt.step(&l.total)?;
    Ok(StepLoss {
        total: l.total.to_scalar::<f32>()?,
        overlap: l.overlap,
        yaw: l.yaw,
    })
}

/// Validation figures.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Validation {
    /// Mean absolute overlap error.
    pub overlap_mae: f64,
    /// AUC, F1max, recall@1 and yaw errors (loop: true overlap above 0.3).
    #[serde(flatten)]
    pub scores: LoopScores,
    /// Mean absolute yaw error over pairs above the yaw loss's overlap, degrees.
    pub yaw_err_mean_deg: f64,
    /// Mean predicted overlap of the pairs whose true overlap is 0 (places that share nothing:
    /// ideally 0); `None` when there are none.
    pub zero_overlap_pred_mean: Option<f64>,
}

/// Runs the network on every validation pair (reference turned by each pair's fixed `shift`).
pub fn validate(net: &OverlapNet, set: &PairSet, samples: &[Sample], batch: usize) -> Result<Validation> {
    let cols = net.config.cols;
    let degrees = net.config.degrees_per_feature_column();
    let mut scored = Vec::with_capacity(samples.len());
    let members = net.config.members();
    for chunk in samples.chunks(batch.max(1)) {
        // Every subnetwork judges the same pair; the mean is the network's answer.
        let rows: Vec<Row> = chunk.iter().map(|s| vec![*s; members]).collect();
        let (overlap, logits) = forward(net, set, &rows)?;
        let overlap = overlap.to_vec2::<f32>()?;
        let logits = logits.to_vec3::<f32>()?;
        for ((s, o), l) in chunk.iter().zip(overlap).zip(logits) {
            // As at inference: each subnetwork's answer, then their mean.
            let answers: Vec<PairMatch> = o
                .iter()
                .zip(&l)
                .map(|(&overlap, logits)| PairMatch {
                    overlap,
                    yaw_deg: peak_shift(logits) * degrees,
                    spread: None,
                })
                .collect();
            let answer = ensemble(&answers);
            scored.push(ScoredPair {
                query: s.pair.query,
                score: answer.overlap,
                overlap: s.pair.overlap,
                positive: s.pair.overlap > crate::ground_truth::scoring::LOOP_OVERLAP,
                yaw_deg: answer.yaw_deg,
                gt_yaw_deg: s.yaw_deg(cols),
            });
        }
    }
    let mae = scored.iter().map(|p| (p.score - p.overlap).abs() as f64).sum::<f64>() / scored.len().max(1) as f64;
    let yaw: Vec<f64> = scored
        .iter()
        .filter(|p| p.overlap > YAW_MIN_OVERLAP)
        .map(|p| crate::ground_truth::scoring::angle_diff_deg(p.yaw_deg, p.gt_yaw_deg) as f64)
        .collect();
    let zero: Vec<f64> = scored
        .iter()
        .filter(|p| p.overlap == 0.0)
        .map(|p| p.score as f64)
        .collect();
    Ok(Validation {
        overlap_mae: mae,
        scores: score(&scored),
        yaw_err_mean_deg: yaw.iter().sum::<f64>() / yaw.len().max(1) as f64,
        zero_overlap_pred_mean: (!zero.is_empty()).then(|| zero.iter().sum::<f64>() / zero.len() as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;

    fn sample(query: usize) -> Sample {
        Sample::turned(PairLabel::itself(query), 0)
    }

    #[test]
    fn mimo_rows_repeat_the_batch_and_give_each_subnetwork_every_sample() {
        let unique: Vec<Sample> = (0..4).map(sample).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let rows = member_rows(&unique, 3, 2, 0.0, &mut rng);
        assert_eq!(rows.len(), 8);
        for m in 0..3 {
            let mut seen: Vec<usize> = rows.iter().map(|r| r[m].pair.query).collect();
            seen.sort();
            assert_eq!(seen, vec![0, 0, 1, 1, 2, 2, 3, 3], "subnetwork {m}");
        }
        // Independent orders: some row pairs different samples.
        assert!(rows.iter().any(|r| r[0].pair.query != r[1].pair.query));
    }

    #[test]
    fn input_repetition_one_gives_every_subnetwork_the_same_sample() {
        let unique: Vec<Sample> = (0..5).map(sample).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for row in member_rows(&unique, 3, 1, 1.0, &mut rng) {
            assert!(row.iter().all(|s| s.pair.query == row[0].pair.query));
        }
    }

    #[test]
    fn dropout_empties_about_its_share_of_pixels_reproducibly() {
        let image = vec![1.0f32; 64 * 900 * 4];
        let s = sample(3).with_dropout(0.2);
        let out = dropped_out(image.clone(), 4, &s, 0);
        let empty = out.chunks_exact(4).filter(|p| p.iter().all(|&v| v == -1.0)).count();
        let share = empty as f64 / (64.0 * 900.0);
        assert!((share - 0.2).abs() < 0.01, "{share}");
        // Whole pixels only, the same draw again, another for the other image.
        assert!(
            out.chunks_exact(4)
                .all(|p| p.iter().all(|&v| v == -1.0) || p.iter().all(|&v| v == 1.0))
        );
        assert_eq!(out, dropped_out(image.clone(), 4, &s, 0));
        assert_ne!(out, dropped_out(image.clone(), 4, &s, 1));
        assert_eq!(dropped_out(image.clone(), 4, &sample(3), 0), image);
    }

    #[test]
    fn a_sector_empties_whole_contiguous_columns_of_the_query() {
        let (rows, cols, ch) = (4, 100, 2);
        let image = vec![1.0f32; rows * cols * ch];
        let s = sample(3).with_sector(0.25);
        let out = sector_blanked(image.clone(), cols, ch, &s);
        let empty_column = |c: usize| (0..rows).all(|r| out[(r * cols + c) * ch..][..ch] == [-1.0; 2]);
        let full_column = |c: usize| (0..rows).all(|r| out[(r * cols + c) * ch..][..ch] == [1.0; 2]);
        let empty: Vec<usize> = (0..cols).filter(|&c| empty_column(c)).collect();
        assert_eq!(empty.len(), 25);
        assert!((0..cols).all(|c| empty_column(c) || full_column(c)));
        // One block, possibly wrapping around the image's seam.
        let starts = (0..cols)
            .filter(|&c| empty_column(c) && !empty_column((c + cols - 1) % cols))
            .count();
        assert_eq!(starts, 1);
        assert_eq!(out, sector_blanked(image.clone(), cols, ch, &s), "seeded");
        assert_eq!(sector_blanked(image.clone(), cols, ch, &sample(3)), image);
    }

    #[test]
    fn one_subnetwork_keeps_the_samples_in_order() {
        let unique: Vec<Sample> = (0..3).map(sample).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let rows = member_rows(&unique, 1, 1, 0.5, &mut rng);
        let q: Vec<usize> = rows.iter().map(|r| r[0].pair.query).collect();
        assert_eq!(q, vec![0, 1, 2]);
    }
}

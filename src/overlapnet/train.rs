//! One training step and one validation pass of OverlapNet, and the Adam optimiser whose moments
//! are saved with the weights so that a stopped training resumes where it was.

use super::data::PairSet;
use super::head::{peak_shift, shift_class, training_logits};
use super::input::roll_columns;
use super::loss::{YAW_MIN_OVERLAP, losses};
use super::model::{ModelConfig, OverlapNet};
use crate::loops::evaluation::{LoopScores, ScoredPair, score, wrap_deg};
use crate::loops::pairs::PairLabel;
use candle_core::{Result, Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;
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
}

impl Sample {
    /// The pair with the reference turned by a random even number of columns (even, so that
    /// the feature volume, at half the columns, turns by a whole column).
    pub fn augmented(pair: PairLabel, cols: usize, rng: &mut impl Rng) -> Self {
        let shift = 2 * rng.random_range(0..cols as i64 / 2);
        Self { pair, shift }
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

/// Forward pass of a batch of samples: predicted overlaps (B) and yaw logits (B, 360) as
/// training reads them ([`training_logits`]). Legs run on the B query images and the B rolled
/// reference images in one batch.
fn forward(net: &OverlapNet, set: &PairSet, batch: &[Sample]) -> Result<(Tensor, Tensor)> {
    let c = &net.config;
    let ch = c.channels.count();
    let mut data = Vec::with_capacity(2 * batch.len() * c.rows * c.cols * ch);
    for s in batch {
        data.extend_from_slice(&set.images[s.pair.query]);
    }
    for s in batch {
        data.extend(roll_columns(&set.images[s.pair.reference], c.cols, c.channels, s.shift));
    }
    let images = Tensor::from_vec(data, (2 * batch.len(), c.rows, c.cols, ch), net.device())?;
    let volumes = net.legs(&images)?;
    let b = batch.len();
    let (overlap, raw) = net.heads(&volumes.narrow(0, 0, b)?, &volumes.narrow(0, b, b)?)?;
    Ok((overlap, training_logits(&raw)?))
}

/// The yaw class a sample trains towards, when it counts for the yaw loss.
fn yaw_class(s: &Sample, config: &ModelConfig) -> Option<usize> {
    if s.pair.overlap <= YAW_MIN_OVERLAP {
        return None;
    }
    let k = (s.yaw_deg(config.cols) / config.degrees_per_feature_column()).round() as i64;
    shift_class(k, config.feature_columns(), config.circular_legs)
}

/// One optimisation step on `batch`.
pub fn train_step(net: &OverlapNet, opt: &mut Adam, set: &PairSet, batch: &[Sample]) -> Result<StepLoss> {
    let (overlap, logits) = forward(net, set, batch)?;
    let truth: Vec<f32> = batch.iter().map(|s| s.pair.overlap).collect();
    let classes: Vec<Option<usize>> = batch.iter().map(|s| yaw_class(s, &net.config)).collect();
    let l = losses(&overlap, &truth, &logits, &classes)?;
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
}

/// Runs the network on every validation pair (reference turned by each pair's fixed `shift`).
pub fn validate(net: &OverlapNet, set: &PairSet, samples: &[Sample], batch: usize) -> Result<Validation> {
    let cols = net.config.cols;
    let degrees = net.config.degrees_per_feature_column();
    let mut scored = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch.max(1)) {
        let (overlap, logits) = forward(net, set, chunk)?;
        let overlap = overlap.to_vec1::<f32>()?;
        let logits = logits.to_vec2::<f32>()?;
        for ((s, o), l) in chunk.iter().zip(overlap).zip(logits) {
            scored.push(ScoredPair {
                query: s.pair.query,
                score: o,
                overlap: s.pair.overlap,
                positive: s.pair.overlap > crate::loops::evaluation::LOOP_OVERLAP,
                yaw_deg: peak_shift(&l) * degrees,
                gt_yaw_deg: s.yaw_deg(cols),
            });
        }
    }
    let mae = scored.iter().map(|p| (p.score - p.overlap).abs() as f64).sum::<f64>() / scored.len().max(1) as f64;
    let yaw: Vec<f64> = scored
        .iter()
        .filter(|p| p.overlap > YAW_MIN_OVERLAP)
        .map(|p| crate::loops::evaluation::angle_diff_deg(p.yaw_deg, p.gt_yaw_deg) as f64)
        .collect();
    Ok(Validation {
        overlap_mae: mae,
        scores: score(&scored),
        yaw_err_mean_deg: yaw.iter().sum::<f64>() / yaw.len().max(1) as f64,
    })
}

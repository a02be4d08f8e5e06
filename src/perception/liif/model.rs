//! LIIF for range images (Chen, Liu & Wang, "Learning continuous image representation with local
//! implicit image function", CVPR 2021), in one dimension: scans lose rows, not columns. An
//! encoder turns the sparse image into one latent code per pixel; an MLP, given a latent code,
//! the query's offset from it and the query's cell size, predicts the range there. Each query
//! reads the latent codes of the two sparse rows around it and blends their predictions with
//! LIIF's area (here: linear) weights, so the rendered image is continuous in the row coordinate
//! and any number of rows can be asked for.
//!
//! One change from the paper: the MLP predicts a correction to the bilinear baseline
//! ([`super::rows::Baseline::Bilinear`]) and a return logit added to the baseline's own verdict,
//! as super-resolution networks since VDSR learn the residual over interpolation. An untrained
//! network renders the baseline, and training can only move it where that helps.
//!
//! Shapes: sparse input (B, h, W, 2) channels-last (range / max range, return mask); latent
//! codes (B, h, W, C); output range and return logit (B, H, W) for H dense rows.

use super::rows::{Baseline, RowLayout, Taps, upsample_baseline};
use crate::overlapnet::conv::conv2d;
use crate::projection::EMPTY;
use candle_core::{D, DType, Device, Result, Tensor};
use candle_nn::{Init, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Sizes of the network and the range it was trained for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LiifConfig {
    /// Ranges are divided by this (metres) on the way in and multiplied on the way out.
    pub max_range: f32,
    /// Channels of the latent code.
    pub features: usize,
    /// Convolutions of the encoder (3 x 3, ReLU between).
    pub encoder_layers: usize,
    /// Width of the MLP's two hidden layers.
    pub hidden: usize,
}

impl Default for LiifConfig {
    fn default() -> Self {
        Self {
            // The HDL-64E window's range cut (OverlapNet, RSS 2020).
            max_range: 50.0,
            features: 32,
            encoder_layers: 4,
            hidden: 64,
        }
    }
}

impl LiifConfig {
    /// The sizes as the `.json` written beside the weights.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a config serialises")
    }
}

/// Input channels: normalised range (0 where empty) and the return mask.
const INPUT_CHANNELS: usize = 2;
/// Logit the baseline's verdict contributes: a return where the baseline has one, none where
/// it has none (sigmoid(3) = 0.95).
const BASELINE_LOGIT: f32 = 3.0;

/// The encoder and the implicit decoder.
pub struct Liif {
    /// Sizes.
    pub config: LiifConfig,
    /// (3, 3, Cin, Cout) kernels and biases.
    encoder: Vec<(Tensor, Tensor)>,
    /// First MLP layer, split by input: latent code (C, K), relative row (K), cell size (K), bias (K).
    fc1_code: Tensor,
    fc1_rel: Tensor,
    fc1_cell: Tensor,
    fc1_bias: Tensor,
    /// (K, K) and (K).
    fc2: (Tensor, Tensor),
    /// (K, 2): range correction and return logit.
    fc3: (Tensor, Tensor),
    device: Device,
}

/// What the decoder renders.
pub struct Rendered {
    /// Normalised range (B, H, W).
    pub range: Tensor,
    /// Logit that a return exists (B, H, W).
    pub logit: Tensor,
}

fn weight(vb: &VarBuilder, name: &str, shape: &[usize], fan_in: usize, gain: f64) -> Result<Tensor> {
    let stdev = (gain / fan_in as f64).sqrt();
    vb.get_with_hints(shape, name, Init::Randn { mean: 0.0, stdev })
}

fn zeros(vb: &VarBuilder, name: &str, n: usize) -> Result<Tensor> {
    vb.get_with_hints(n, name, Init::Const(0.0))
}

impl Liif {
    /// Builds the network from `vb` (fresh variables for training, or loaded tensors).
    pub fn new(vb: VarBuilder, config: LiifConfig) -> Result<Self> {
        let (c, k) = (config.features, config.hidden);
        let mut encoder = Vec::with_capacity(config.encoder_layers);
        for l in 0..config.encoder_layers {
            let cin = if l == 0 { INPUT_CHANNELS } else { c };
            let vb = vb.pp(format!("enc{l}"));
            encoder.push((
                weight(&vb, "weight", &[3, 3, cin, c], 9 * cin, 2.0)?,
                zeros(&vb, "bias", c)?,
            ));
        }
        let mlp = vb.pp("mlp");
        let fc2 = (
            weight(&mlp, "fc2.weight", &[k, k], k, 2.0)?,
            zeros(&mlp, "fc2.bias", k)?,
        );
        // The output layer starts at zero, so that an untrained network renders the baseline.
        let fc3 = (
            mlp.get_with_hints(&[k, 2], "fc3.weight", Init::Const(0.0))?,
            zeros(&mlp, "fc3.bias", 2)?,
        );
        Ok(Self {
            config,
            fc1_code: weight(&mlp, "fc1.code", &[c, k], c + 2, 2.0)?,
            fc1_rel: weight(&mlp, "fc1.rel", &[k], c + 2, 2.0)?,
            fc1_cell: weight(&mlp, "fc1.cell", &[k], c + 2, 2.0)?,
            fc1_bias: zeros(&mlp, "fc1.bias", k)?,
            fc2,
            fc3,
            encoder,
            device: vb.device().clone(),
        })
    }

    /// A freshly initialised network whose variables live in `varmap` (for training).
    pub fn trainable(varmap: &VarMap, config: LiifConfig, device: &Device) -> Result<Self> {
        Self::new(VarBuilder::from_varmap(varmap, DType::F32, device), config)
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Latent codes of sparse images (B, h, W, 2) -> (B, h, W, C). Columns wrap around when the
    /// image spans the full turn (`wrap`); rows repeat their edge.
    pub fn encode(&self, sparse: &Tensor, wrap: bool) -> Result<Tensor> {
        let mut x = sparse.clone();
        let last = self.encoder.len() - 1;
        for (l, (w, b)) in self.encoder.iter().enumerate() {
            x = conv2d(&pad_same(&x, wrap)?, w, b, (1, 1))?;
            if l < last {
                x = x.relu()?;
            }
        }
        Ok(x)
    }

    /// Renders the dense rows of `layout` from sparse images (B, h, W, 2).
    pub fn render(&self, sparse: &Tensor, layout: &RowLayout, wrap: bool) -> Result<Rendered> {
        let (b, h, w, _) = sparse.dims4()?;
        let k = self.config.hidden;
        let codes = self.encode(sparse, wrap)?;
        let c = codes.dim(D::Minus1)?;
        // The first layer is linear in the code, so it runs once per sparse pixel, not per query.
        let projected = codes
            .reshape((b * h * w, c))?
            .matmul(&self.fc1_code)?
            .reshape((b, h, w, k))?;
        let taps = layout.all_taps();
        let (baseline, baseline_logit) = baseline_tensors(sparse, layout)?;
        let cell = 1.0 / layout.spacing as f64;
        let dense = layout.dense_rows;
        let mut range = Vec::with_capacity(2);
        let mut logit = Vec::with_capacity(2);
        for side in 0..2 {
            let (index, rel, weight) = tap_tensors(&taps, side, &self.device)?;
            let row_bias = rel
                .unsqueeze(1)?
                .broadcast_mul(&self.fc1_rel.unsqueeze(0)?)?
                .broadcast_add(&((&self.fc1_cell * cell)? + &self.fc1_bias)?)?
                .reshape((1, dense, 1, k))?;
            let h1 = projected.index_select(&index, 1)?.broadcast_add(&row_bias)?.relu()?;
            let h2 = h1
                .reshape((b * dense * w, k))?
                .matmul(&self.fc2.0)?
                .broadcast_add(&self.fc2.1)?
                .relu()?;
            let out = h2
                .matmul(&self.fc3.0)?
                .broadcast_add(&self.fc3.1)?
                .reshape((b, dense, w, 2))?;
            let weight = weight.reshape((1, dense, 1))?;
            range.push(out.narrow(3, 0, 1)?.squeeze(3)?.broadcast_mul(&weight)?);
            logit.push(out.narrow(3, 1, 1)?.squeeze(3)?.broadcast_mul(&weight)?);
        }
        Ok(Rendered {
            range: ((&range[0] + &range[1])? + baseline)?,
            logit: ((&logit[0] + &logit[1])? + baseline_logit)?,
        })
    }
}

/// The bilinear baseline of sparse images (B, h, W, 2) on the dense rows of `layout`:
/// normalised range (0 where empty) and its verdict as a logit, (B, H, W) each. Computed from the
/// input alone, so no gradient flows through it.
fn baseline_tensors(sparse: &Tensor, layout: &RowLayout) -> Result<(Tensor, Tensor)> {
    let (b, h, w, _) = sparse.dims4()?;
    let x = sparse.flatten_all()?.to_vec1::<f32>()?;
    let n = b * layout.dense_rows * w;
    let (mut range, mut logit) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for image in x.chunks(h * w * INPUT_CHANNELS) {
        // Back to ranges with negative empties, the baseline's input.
        let ranges: Vec<f32> = image
            .chunks(INPUT_CHANNELS)
            .map(|px| if px[1] > 0.5 { px[0] } else { EMPTY })
            .collect();
        for r in upsample_baseline(&ranges, w, layout, Baseline::Bilinear) {
            range.push(r.max(0.0));
            logit.push(if r >= 0.0 { BASELINE_LOGIT } else { -BASELINE_LOGIT });
        }
    }
    let shape = (b, layout.dense_rows, w);
    Ok((
        Tensor::from_vec(range, shape, sparse.device())?,
        Tensor::from_vec(logit, shape, sparse.device())?,
    ))
}

/// One side's tap rows (u32), relative coordinates and weights, one entry per dense row.
fn tap_tensors(taps: &[Taps], side: usize, device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let index: Vec<u32> = taps.iter().map(|t| t.rows[side] as u32).collect();
    let rel: Vec<f32> = taps.iter().map(|t| t.rel[side]).collect();
    let weight: Vec<f32> = taps.iter().map(|t| t.weights[side]).collect();
    Ok((
        Tensor::new(index, device)?,
        Tensor::new(rel, device)?,
        Tensor::new(weight, device)?,
    ))
}

/// Pads (B, H, W, C) by one pixel on each side for a 3 x 3 convolution: rows repeat the edge,
/// columns wrap around (`wrap`) or repeat the edge.
fn pad_same(x: &Tensor, wrap: bool) -> Result<Tensor> {
    let x = x.pad_with_same(1, 1, 1)?;
    if wrap {
        let w = x.dim(2)?;
        Tensor::cat(&[&x.narrow(2, w - 1, 1)?, &x, &x.narrow(2, 0, 1)?], 2)
    } else {
        x.pad_with_same(2, 1, 1)
    }
}

/// The network's input from a sparse range image (metres, [`crate::projection::EMPTY`] where
/// empty): (1, h, W, 2).
pub fn input_tensor(sparse: &[f32], rows: usize, cols: usize, max_range: f32, device: &Device) -> Result<Tensor> {
    let mut data = Vec::with_capacity(sparse.len() * INPUT_CHANNELS);
    for &r in sparse {
        let valid = r >= 0.0;
        data.push(if valid { r / max_range } else { 0.0 });
        data.push(if valid { 1.0 } else { 0.0 });
    }
    Tensor::from_vec(data, (1, rows, cols, INPUT_CHANNELS), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_shapes_follow_the_layout() -> Result<()> {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let net = Liif::trainable(&varmap, LiifConfig::default(), &dev)?;
        let sparse: Vec<f32> = (0..16 * 40)
            .map(|i| if i % 7 == 0 { -1.0 } else { 5.0 + (i % 13) as f32 })
            .collect();
        let x = input_tensor(&sparse, 16, 40, 50.0, &dev)?;
        assert_eq!(net.encode(&x, true)?.dims(), &[1, 16, 40, 32]);
        // Untrained, the network renders the bilinear baseline.
        let layout = RowLayout::every(64, 4, 0);
        let want = upsample_baseline(&sparse, 40, &layout, Baseline::Bilinear);
        let got = net.render(&x, &layout, true)?;
        let (r, l) = (
            got.range.flatten_all()?.to_vec1::<f32>()?,
            got.logit.flatten_all()?.to_vec1::<f32>()?,
        );
        for ((r, l), w) in r.iter().zip(&l).zip(&want) {
            assert_eq!(*l > 0.0, *w >= 0.0);
            if *w >= 0.0 {
                assert!((r * 50.0 - w).abs() < 1e-4, "{} vs {w}", r * 50.0);
            }
        }
        for (layout, rows) in [(RowLayout::every(64, 4, 0), 64), (RowLayout::every(48, 3, 0), 48)] {
            let out = net.render(&x, &layout, true)?;
            assert_eq!(out.range.dims(), &[1, rows, 40]);
            assert_eq!(out.logit.dims(), &[1, rows, 40]);
        }
        Ok(())
    }
}

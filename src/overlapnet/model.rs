//! The whole siamese network: shared legs run once per scan, the two heads run per pair, and the
//! weights saved to and loaded from safetensors with a JSON card of how they were made.

use super::head::{OverlapHead, peak_shift, yaw_logits};
use super::input::{Channels, encode, roll_columns};
use super::legs::{LAYERS, Legs};
use crate::error::Result;
use crate::io::weights;
use crate::loops::evaluation::wrap_deg;
use crate::projection::{ProjectionParams, RangeImage};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the weights expect as input.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Input images.
    pub channels: Channels,
    /// Image rows.
    pub rows: usize,
    /// Image columns (360 degrees).
    pub cols: usize,
    /// Upper edge of the projection window, degrees.
    pub fov_up_deg: f32,
    /// Lower edge of the projection window, degrees.
    pub fov_down_deg: f32,
    /// Range that the range channel is divided by and beyond which points are dropped, metres.
    pub max_range: f32,
}

impl Default for ModelConfig {
    /// OverlapNet's HDL-64E window with range and normals.
    fn default() -> Self {
        let p = ProjectionParams::overlapnet_hdl64();
        Self {
            channels: Channels::default(),
            rows: p.rows,
            cols: p.cols,
            fov_up_deg: p.fov_up.to_degrees(),
            fov_down_deg: p.fov_down.to_degrees(),
            max_range: p.max_range,
        }
    }
}

impl ModelConfig {
    /// The projection the network's input images are made with.
    pub fn projection(&self) -> ProjectionParams {
        ProjectionParams {
            rows: self.rows,
            cols: self.cols,
            fov_up: self.fov_up_deg.to_radians(),
            fov_down: self.fov_down_deg.to_radians(),
            max_range: self.max_range,
        }
    }

    /// Degrees of yaw per column of the feature volume: the legs' column strides (2 in total) over
    /// the image's 360 degrees (0.8 for 900 columns).
    pub fn degrees_per_feature_column(&self) -> f32 {
        let stride: usize = LAYERS.iter().map(|l| l.stride.1).product();
        360.0 * stride as f32 / self.cols as f32
    }
}

/// One scan's feature volumes, computed once and compared with many others: the scan's own
/// (360, 128), and that of the scan turned by half a revolution. The 360 columns of a volume
/// span 288 of the 360 degrees (valid padding), so the yaw head can only see turns within
/// +-144 degrees; the half-turned volume covers the rest.
#[derive(Debug, Clone)]
pub struct Features {
    /// Feature volume (360, 128).
    pub volume: Tensor,
    /// Feature volume of the image rolled by half its columns (360, 128).
    pub half_turn: Tensor,
}

/// The network's verdict on a pair of scans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairMatch {
    /// Predicted overlap in [0, 1].
    pub overlap: f32,
    /// Predicted yaw of the second scan relative to the first, degrees.
    pub yaw_deg: f32,
}

/// OverlapNet.
pub struct OverlapNet {
    /// Input description.
    pub config: ModelConfig,
    legs: Legs,
    head: OverlapHead,
    device: Device,
}

/// The weights shipped in `models/` (trained by this project; see `models/README.md`).
const SHIPPED_WEIGHTS: &[u8] = include_bytes!("../../models/overlapnet.safetensors");
const SHIPPED_CONFIG: &str = include_str!("../../models/overlapnet.json");

impl OverlapNet {
    /// Builds the network from `vb` (fresh variables for training, or loaded tensors).
    pub fn new(vb: VarBuilder, config: ModelConfig) -> candle_core::Result<Self> {
        let device = vb.device().clone();
        let legs = Legs::new(vb.pp("legs"), config.channels.count())?;
        let head = OverlapHead::new(vb.pp("head"))?;
        Ok(Self {
            config,
            legs,
            head,
            device,
        })
    }

    /// A freshly initialised network whose variables live in `varmap` (for training).
    pub fn trainable(varmap: &VarMap, config: ModelConfig, device: &Device) -> candle_core::Result<Self> {
        Self::new(VarBuilder::from_varmap(varmap, DType::F32, device), config)
    }

    /// The weights shipped with overlap-slam.
    pub fn shipped() -> Result<Self> {
        let path = Path::new("models/overlapnet.safetensors");
        let (vb, config) = weights::from_bytes(SHIPPED_WEIGHTS, SHIPPED_CONFIG, path, "OverlapNet")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "OverlapNet", e))
    }

    /// Weights from a safetensors file; its input description is read from the `.json` beside it.
    pub fn load(path: &Path) -> Result<Self> {
        let (vb, config) = weights::load(path, "OverlapNet")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "OverlapNet", e))
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Feature volumes of a batch of encoded images (B, rows, cols, C) -> (B, 360, 128).
    pub fn legs(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        self.legs.forward(images)
    }

    /// Every leg layer's output, for inspection.
    pub fn leg_activations(&self, images: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        self.legs.activations(images)
    }

    /// Overlap (B) and yaw logits (B, 360) of paired feature volumes (B, 360, 128) each.
    pub fn heads(&self, left: &Tensor, right: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((self.head.forward(left, right)?, yaw_logits(left, right)?))
    }

    /// Feature volumes of projected scans, `batch` at a time.
    pub fn describe(&self, images: &[&RangeImage], batch: usize) -> candle_core::Result<Vec<Features>> {
        let c = &self.config;
        let ch = c.channels.count();
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(batch.max(1)) {
            let encoded: Vec<Vec<f32>> = chunk.iter().map(|img| encode(img, c.channels, c.max_range)).collect();
            let mut data: Vec<f32> = encoded.concat();
            for e in &encoded {
                data.extend(roll_columns(e, c.cols, c.channels, (c.cols / 2) as i64));
            }
            let n = chunk.len();
            let volumes = self.legs(&Tensor::from_vec(data, (2 * n, c.rows, c.cols, ch), &self.device)?)?;
            for i in 0..n {
                out.push(Features {
                    volume: volumes.get(i)?,
                    half_turn: volumes.get(n + i)?,
                });
            }
        }
        Ok(out)
    }

    /// Overlap and yaw of each (query, reference) pair of feature volumes, `batch` pairs at a time.
    pub fn compare(&self, pairs: &[(&Features, &Features)], batch: usize) -> candle_core::Result<Vec<PairMatch>> {
        let degrees = self.config.degrees_per_feature_column();
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let stack = |f: &dyn Fn(&(&Features, &Features)) -> Tensor| {
                Tensor::stack(&chunk.iter().map(f).collect::<Vec<_>>(), 0)
            };
            let left = stack(&|p| p.0.volume.clone())?;
            let right = stack(&|p| p.1.volume.clone())?;
            let right_turned = stack(&|p| p.1.half_turn.clone())?;
            let (overlap, logits) = self.heads(&left, &right)?;
            let turned_logits = yaw_logits(&left, &right_turned)?.to_vec2::<f32>()?;
            let overlap = overlap.to_vec1::<f32>()?;
            let logits = logits.to_vec2::<f32>()?;
            for ((o, l), t) in overlap.into_iter().zip(logits).zip(turned_logits) {
                out.push(PairMatch {
                    overlap: o,
                    yaw_deg: yaw_from_logits(&l, &t, degrees),
                });
            }
        }
        Ok(out)
    }

    /// Overlap and yaw of two projected scans.
    pub fn match_pair(&self, query: &RangeImage, reference: &RangeImage) -> candle_core::Result<PairMatch> {
        let f = self.describe(&[query, reference], 2)?;
        Ok(self.compare(&[(&f[0], &f[1])], 1)?[0])
    }
}

/// The yaw from the head's logits against the reference and against the reference turned by
/// half a revolution: whichever peaks higher saw the turn within its range.
fn yaw_from_logits(direct: &[f32], turned: &[f32], degrees_per_column: f32) -> f32 {
    let peak = |l: &[f32]| l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let yaw = if peak(turned) > peak(direct) {
        peak_shift(turned) * degrees_per_column - 180.0
    } else {
        peak_shift(direct) * degrees_per_column
    };
    wrap_deg(yaw)
}

/// Saves the variables of `varmap` to `path` (safetensors) and the input description beside it
/// (`.json`), each through a temporary file and a rename.
pub fn save(varmap: &VarMap, config: &ModelConfig, path: &Path) -> Result<()> {
    weights::save(varmap, config, path)
}

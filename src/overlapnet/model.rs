//! The whole siamese network: shared legs run once per scan, the two heads run per pair, and the
//! weights saved to and loaded from safetensors with a JSON card of how they were made.

use super::head::{OverlapHead, argmax, member_yaw_logits, peak_shift};
use super::input::{Channels, encode, roll_columns};
use super::legs::{CIRCULAR_PAD, LAYERS, Legs, filters, layer_shapes};
use super::mimo::ensemble;
use super::verdict::PairMatch;
use crate::error::Result;
use crate::ground_truth::scoring::wrap_deg;
use crate::io::{keras, weights};
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
    /// Range beyond which points are dropped, metres. The range channel holds metres, unscaled,
    /// as the authors feed it.
    pub max_range: f32,
    /// The network is this many times narrower than the paper's in every layer (1: the paper's
    /// network, which the authors' weights need; more: a compact variant that trains on a CPU).
    #[serde(default = "one")]
    pub width_divisor: usize,
    /// The legs wrap the image around (circular padding) instead of the authors' valid padding
    /// only: the feature volume then has 450 columns spanning exactly one turn, rolling the image
    /// rolls the features exactly, and the yaw head sees every yaw in one correlation.
    #[serde(default)]
    pub circular_legs: bool,
    /// The overlap head reads the reference's volume rolled by the yaw head's peak, so that the
    /// two volumes' columns line up (this project's addition, for circular legs): the delta
    /// layer's matching band then always lies on its diagonal, where the head's position-bound
    /// dense layer can learn it, instead of anywhere a yaw may put it.
    #[serde(default)]
    pub aligned_overlap: bool,
    /// How the yaw head's 360 logits become a yaw.
    #[serde(default)]
    pub yaw_decoding: YawDecoding,
    /// Subnetworks M of a MIMO network (Havasi et al., ICLR 2021): M input scans side by side in
    /// the legs' input channels, M groups of feature channels out of the legs, M yaw correlations
    /// and M overlaps out of the head, every hidden layer shared. At test time one scan fills all
    /// M inputs and the spread of the M answers is the network's uncertainty. 1: a plain network.
    #[serde(default = "one")]
    pub subnetworks: usize,
    /// Feature channels each MIMO subnetwork owns out of the legs (default: the legs' width
    /// shared out evenly).
    #[serde(default)]
    pub subnetwork_features: Option<usize>,
    /// The overlap head compares each block of 15 query feature columns only with the reference
    /// blocks within this many blocks of it (this project's addition, for `aligned_overlap`,
    /// where the yaw head has already turned matching columns to face each other): a fifth of the
    /// paper's delta layer at 2 of 30 blocks each side. `None`: every block, as the paper does.
    #[serde(default)]
    pub head_band: Option<usize>,
}

fn one() -> usize {
    1
}

/// How a yaw is read from the yaw head's logits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YawDecoding {
    /// The authors' rule (`infer.py`): `yaw = 180 - argmax` degrees, one logit per degree. Their
    /// weights were trained to it.
    #[default]
    ArgmaxDegrees,
    /// This project's rule: one logit per feature column (0.8 degrees, the legs' true column
    /// pitch), the peak refined by a parabola. With valid-padded legs, whose 360 columns span
    /// only 288 degrees, the reference is also described turned by half a revolution and the
    /// correlation whose peak stands higher above its mean wins.
    FeatureColumns,
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
            width_divisor: 1,
            circular_legs: false,
            aligned_overlap: false,
            yaw_decoding: YawDecoding::ArgmaxDegrees,
            subnetworks: 1,
            subnetwork_features: None,
            head_band: None,
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

    /// Channels of the feature volume the legs produce: every subnetwork's group.
    pub fn features(&self) -> usize {
        self.member_features() * self.members()
    }

    /// Subnetworks (1 for a plain network).
    pub fn members(&self) -> usize {
        self.subnetworks.max(1)
    }

    /// Feature channels of one subnetwork's group of the volume.
    pub fn member_features(&self) -> usize {
        let width = filters(&LAYERS[LAYERS.len() - 1], self.width_divisor);
        self.subnetwork_features.unwrap_or(width / self.members()).max(1)
    }

    /// Columns of the feature volume: 360 for the paper's 900-column input, 450 with circular legs.
    pub fn feature_columns(&self) -> usize {
        let pad = if self.circular_legs { 2 * CIRCULAR_PAD } else { 0 };
        layer_shapes(self.rows, self.cols + pad).last().map_or(0, |s| s.1)
    }

    /// Whether a scan must also be described turned by half a revolution to reach every yaw.
    pub fn needs_half_turn(&self) -> bool {
        self.yaw_decoding == YawDecoding::FeatureColumns && !self.circular_legs
    }

    /// Degrees of yaw per column of the feature volume: the legs' column strides (2 in total) over
    /// the image's 360 degrees (0.8 for 900 columns).
    pub fn degrees_per_feature_column(&self) -> f32 {
        let stride: usize = LAYERS.iter().map(|l| l.stride.1).product();
        360.0 * stride as f32 / self.cols as f32
    }
}

/// One scan's feature volumes, computed once and compared with many others: the scan's own
/// (N, F), and, for [`YawDecoding::FeatureColumns`] with valid legs, that of the scan turned by
/// half a revolution. The 360 columns of a volume span 288 of the 360 degrees (valid padding), so the
/// yaw head can only see turns within +-144 degrees; the half-turned volume covers the rest.
#[derive(Debug, Clone)]
pub struct Features {
    /// Feature volume (N, F): N = 360 columns with valid legs, 450 with circular ones.
    pub volume: Tensor,
    /// Feature volume of the image rolled by half its columns (N, F), when the decoding uses it.
    pub half_turn: Option<Tensor>,
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
/// The shipped MIMO network (see `models/overlapnet-mimo.md`).
const SHIPPED_MIMO_WEIGHTS: &[u8] = include_bytes!("../../models/overlapnet-mimo.safetensors");
const SHIPPED_MIMO_CONFIG: &str = include_str!("../../models/overlapnet-mimo.json");

impl OverlapNet {
    /// Builds the network from `vb` (fresh variables for training, or loaded tensors).
    pub fn new(vb: VarBuilder, config: ModelConfig) -> candle_core::Result<Self> {
        let device = vb.device().clone();
        let c = &config;
        if c.head_band.is_some() && !c.aligned_overlap {
            candle_core::bail!("a banded overlap head needs the reference aligned by the yaw head (aligned_overlap)");
        }
        let inputs = c.channels.count() * c.members();
        let legs = Legs::new(
            vb.pp("legs"),
            inputs,
            c.width_divisor,
            c.circular_legs,
            c.features(),
            c.members(),
        )?;
        let head = OverlapHead::new(
            vb.pp("head"),
            c.feature_columns(),
            c.features(),
            c.width_divisor,
            c.members(),
            c.head_band,
        )?;
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

    /// The MIMO network shipped with overlap-slam (three subnetworks).
    pub fn shipped_mimo() -> Result<Self> {
        let path = Path::new("models/overlapnet-mimo.safetensors");
        let (vb, config) = weights::from_bytes(SHIPPED_MIMO_WEIGHTS, SHIPPED_MIMO_CONFIG, path, "OverlapNet")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "OverlapNet", e))
    }

    /// Weights from a safetensors file (its input description is read from the `.json` beside
    /// it), or from the authors' Keras HDF5 file (`model_geo.weight`), recognised by its signature.
    pub fn load(path: &Path) -> Result<Self> {
        if keras::is_hdf5(path) {
            return Self::from_keras(path);
        }
        let (vb, config) = weights::load(path, "OverlapNet")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "OverlapNet", e))
    }

    /// The paper-size network with weights from a Keras HDF5 file of the authors' model: their
    /// layer names, HWIO kernels as Keras stores them, the dense layer's rows in Keras's NHWC
    /// flattening order (the order this head flattens in). The input channels follow from the
    /// first kernel: 1 range; 4 range and normals (the published "geo" model); 5 with intensity.
    pub fn from_keras(path: &Path) -> Result<Self> {
        let mut file = keras::read(path)?;
        let mut tensors = std::collections::HashMap::new();
        let head_layers = ["c_conv1", "c_conv2", "c_conv3", "overlap_output"];
        let layers = LAYERS
            .iter()
            .map(|l| ("legs", l.name))
            .chain(head_layers.map(|n| ("head", n)));
        for (part, layer) in layers {
            let w = file
                .take_layer(layer)
                .ok_or_else(|| weights::error(path, "OverlapNet", format!("the file has no layer `{layer}`")))?;
            if w.len() != 2 {
                let msg = format!("layer `{layer}` has {} weights, want a kernel and a bias", w.len());
                return Err(weights::error(path, "OverlapNet", msg));
            }
            for (weight, name) in w.into_iter().zip(["weight", "bias"]) {
                let t = Tensor::from_vec(weight.values, weight.shape.as_slice(), &Device::Cpu)
                    .map_err(|e| weights::error(path, "OverlapNet", e))?;
                tensors.insert(format!("{part}.{layer}.{name}"), t);
            }
        }
        let first_in = tensors
            .get(&format!("legs.{}.weight", LAYERS[0].name))
            .and_then(|t| t.dims().get(2).copied())
            .unwrap_or(0);
        let channels = match first_in {
            1 => Channels {
                range: true,
                normals: false,
                intensity: false,
            },
            4 => Channels::default(),
            5 => Channels {
                range: true,
                normals: true,
                intensity: true,
            },
            n => {
                let msg = format!("the first layer reads {n} channels; known: 1 (range), 4 (+normals), 5 (+intensity)");
                return Err(weights::error(path, "OverlapNet", msg));
            }
        };
        let config = ModelConfig {
            channels,
            ..ModelConfig::default()
        };
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
        Self::new(vb, config).map_err(|e| weights::error(path, "OverlapNet", e))
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Feature volumes of a batch of encoded images (B, rows, cols, C) -> (B, N, F).
    pub fn legs(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        self.legs.forward(images)
    }

    /// Feature volumes of a batch of encoded scans (B, rows, cols, C) -> (B, N, F), each scan
    /// filling every subnetwork's input of a MIMO network (test time; the legs' first kernel is
    /// folded, so a MIMO network reads C channels like a plain one).
    pub fn scan_volumes(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        self.legs.forward_repeated(images, self.config.members())
    }

    /// Every leg layer's output, for inspection.
    pub fn leg_activations(&self, images: &Tensor) -> candle_core::Result<Vec<Tensor>> {
        self.legs.activations(images)
    }

    /// Overlap (B) and raw yaw logits (B, N) of paired feature volumes (B, N, F) each; for a
    /// MIMO network, the mean over its subnetworks.
    pub fn heads(&self, left: &Tensor, right: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (overlap, logits) = self.member_heads(left, right)?;
        Ok((overlap.mean(1)?, logits.mean(1)?))
    }

    /// Every subnetwork's overlap (B, M) and raw yaw logits (B, M, N) of paired feature volumes
    /// (B, N, M * Fm); M = 1 for a plain network.
    pub fn member_heads(&self, left: &Tensor, right: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let logits = member_yaw_logits(left, right, self.config.members())?;
        let right = if self.config.aligned_overlap {
            align_by_yaw(right, &logits)?
        } else {
            right.clone()
        };
        Ok((self.head.forward(left, &right)?, logits))
    }

    /// Feature volumes of projected scans, `batch` at a time.
    pub fn describe(&self, images: &[&RangeImage], batch: usize) -> candle_core::Result<Vec<Features>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(batch.max(1)) {
            let encoded: Vec<Vec<f32>> = chunk.iter().map(|img| encode(img, self.config.channels)).collect();
            out.extend(self.describe_encoded(&encoded)?);
        }
        Ok(out)
    }

    /// Feature volumes of images already encoded as the network reads them (channels-last,
    /// `rows * cols * C` values each), in one batch of legs.
    pub fn describe_encoded(&self, encoded: &[Vec<f32>]) -> candle_core::Result<Vec<Features>> {
        let c = &self.config;
        let ch = c.channels.count();
        let turns = c.needs_half_turn();
        let mut data: Vec<f32> = encoded.concat();
        if turns {
            for e in encoded {
                data.extend(roll_columns(e, c.cols, c.channels, (c.cols / 2) as i64));
            }
        }
        let n = encoded.len();
        let images = if turns { 2 * n } else { n };
        let shape = (images, c.rows, c.cols, ch);
        let volumes = self.scan_volumes(&Tensor::from_vec(data, shape, &self.device)?)?;
        (0..n)
            .map(|i| {
                Ok(Features {
                    volume: volumes.get(i)?,
                    half_turn: if turns { Some(volumes.get(n + i)?) } else { None },
                })
            })
            .collect()
    }

    /// Overlap and yaw of each (query, reference) pair of feature volumes, `batch` pairs at a
    /// time; for a MIMO network, the subnetworks' mean and spread.
    pub fn compare(&self, pairs: &[(&Features, &Features)], batch: usize) -> candle_core::Result<Vec<PairMatch>> {
        let members = self.config.members();
        let mut out = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(batch.max(1)) {
            let stack = |f: &dyn Fn(&(&Features, &Features)) -> Tensor| {
                Tensor::stack(&chunk.iter().map(f).collect::<Vec<_>>(), 0)
            };
            let left = stack(&|p| p.0.volume.clone())?;
            let right = stack(&|p| p.1.volume.clone())?;
            let (overlap, logits) = self.member_heads(&left, &right)?;
            let overlap = overlap.to_vec2::<f32>()?;
            let logits = logits.to_vec3::<f32>()?;
            let turned: Option<Vec<Tensor>> = chunk.iter().map(|p| p.1.half_turn.clone()).collect();
            let turned_logits = match (self.config.yaw_decoding, turned) {
                (YawDecoding::FeatureColumns, Some(t)) => {
                    Some(member_yaw_logits(&left, &Tensor::stack(&t, 0)?, members)?.to_vec3::<f32>()?)
                }
                _ => None,
            };
            for (k, (o, l)) in overlap.into_iter().zip(logits).enumerate() {
                let answers: Vec<PairMatch> = (0..members)
                    .map(|m| PairMatch {
                        overlap: o[m],
                        yaw_deg: self.decode_yaw(&l[m], turned_logits.as_ref().map(|t| t[k][m].as_slice())),
                        spread: None,
                    })
                    .collect();
                out.push(ensemble(&answers));
            }
        }
        Ok(out)
    }

    /// One subnetwork's yaw from its logits (and, with valid legs, those of the half-turned
    /// reference).
    fn decode_yaw(&self, logits: &[f32], turned: Option<&[f32]>) -> f32 {
        let degrees = self.config.degrees_per_feature_column();
        match (turned, self.config.yaw_decoding) {
            (Some(t), _) => yaw_from_logits(logits, t, degrees),
            (None, YawDecoding::FeatureColumns) => wrap_deg(peak_shift(logits) * degrees),
            (None, YawDecoding::ArgmaxDegrees) => argmax_degrees(logits),
        }
    }

    /// Overlap and yaw of two projected scans.
    pub fn match_pair(&self, query: &RangeImage, reference: &RangeImage) -> candle_core::Result<PairMatch> {
        let f = self.describe(&[query, reference], 2)?;
        Ok(self.compare(&[(&f[0], &f[1])], 1)?[0])
    }
}

/// `right` (B, N, M * Fm) rolled, subnetwork by subnetwork, by that subnetwork's yaw-head peak
/// (`logits` (B, M, N)) so that its columns line up with the left volume's: if
/// `right[i] = left[i - k]`, the result is `right[i + k] = left[i]`. The shift is chosen without
/// gradient; the features it moves keep theirs.
fn align_by_yaw(right: &Tensor, logits: &Tensor) -> candle_core::Result<Tensor> {
    let (b, n, f) = right.dims3()?;
    let members = logits.dim(1)?;
    let fm = f / members;
    let peaks = logits.argmax(2)?.flatten_all()?.to_vec1::<u32>()?;
    // Row (b * M + m) * N + i of the member-major volume takes row i + k of the same member.
    let index: Vec<u32> = peaks
        .iter()
        .enumerate()
        .flat_map(|(p, &a)| {
            let k = (n / 2) as i64 - a as i64;
            (0..n as i64).map(move |i| (p * n) as u32 + (i + k).rem_euclid(n as i64) as u32)
        })
        .collect();
    let index = Tensor::from_vec(index, b * members * n, right.device())?;
    right
        .reshape((b, n, members, fm))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b * members * n, fm))?
        .index_select(&index, 0)?
        .reshape((b, members, n, fm))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, n, f))
}

/// The authors' decoding (`infer.py`): `180 - argmax` degrees, wrapped into (-180, 180].
pub fn argmax_degrees(logits: &[f32]) -> f32 {
    wrap_deg((logits.len() / 2) as f32 - argmax(logits) as f32)
}

/// How far the highest of a row of raw yaw logits stands above their mean: the two correlations
/// (reference as is and half-turned) are compared by this, not by their raw peaks, whose level
/// also carries the two volumes' overall sums (the logits as training centres them).
pub fn peak_over_mean(logits: &[f32]) -> f32 {
    let peak = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    peak - logits.iter().sum::<f32>() / logits.len().max(1) as f32
}

/// The yaw from the head's logits against the reference and against the reference turned by
/// half a revolution: whichever peaks higher saw the turn within its range.
fn yaw_from_logits(direct: &[f32], turned: &[f32], degrees_per_column: f32) -> f32 {
    let yaw = if peak_over_mean(turned) > peak_over_mean(direct) {
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

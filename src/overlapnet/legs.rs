//! OverlapNet's legs (Chen et al., RSS 2020, Table I; DESIGN.md §5): eleven valid convolutions
//! with ReLU and no batch norm, run once per scan, turning a 64 x 900 image into a 360 x 128
//! feature volume that both heads read. The two legs of the siamese network share these weights.

use super::conv::{conv2d, valid_len};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// One convolution of the legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Parameter prefix: the layer's name in the authors' Keras model.
    pub name: &'static str,
    /// Output channels.
    pub filters: usize,
    /// Kernel (rows, columns).
    pub kernel: (usize, usize),
    /// Stride (rows, columns).
    pub stride: (usize, usize),
}

const fn layer(name: &'static str, filters: usize, kernel: (usize, usize), stride: (usize, usize)) -> LayerSpec {
    LayerSpec {
        name,
        filters,
        kernel,
        stride,
    }
}

/// The legs' layers, in order (OverlapNet, Table I). For a 64 x 900 input the outputs are
/// 30x443, 14x429, 6x415, 2x404, 1x396, 1x388, 1x380, 1x372, 1x366, 1x362, 1x360.
pub const LAYERS: [LayerSpec; 11] = [
    layer("s_conv1", 16, (5, 15), (2, 2)),
    layer("s_conv2", 32, (3, 15), (2, 1)),
    layer("s_conv3", 64, (3, 15), (2, 1)),
    layer("s_conv3a", 64, (3, 12), (2, 1)),
    layer("s_conv4", 128, (2, 9), (2, 1)),
    layer("s_conv5", 128, (1, 9), (1, 1)),
    layer("s_conv6", 128, (1, 9), (1, 1)),
    layer("s_conv7", 128, (1, 9), (1, 1)),
    layer("s_conv8", 128, (1, 7), (1, 1)),
    layer("s_conv9", 128, (1, 5), (1, 1)),
    layer("s_conv10", 128, (1, 3), (1, 1)),
];

/// Channels of the feature volume of the paper-size network.
pub const FEATURES: usize = 128;

/// Filters of a leg layer in a network `width_divisor` times narrower than the paper's (at
/// least one).
pub fn filters(layer: &LayerSpec, width_divisor: usize) -> usize {
    (layer.filters / width_divisor.max(1)).max(1)
}

/// Output (rows, columns) of every layer for an input of `rows x cols`.
pub fn layer_shapes(rows: usize, cols: usize) -> Vec<(usize, usize)> {
    let mut hw = (rows, cols);
    LAYERS
        .iter()
        .map(|l| {
            hw = (
                valid_len(hw.0, l.kernel.0, l.stride.0),
                valid_len(hw.1, l.kernel.1, l.stride.1),
            );
            hw
        })
        .collect()
}

struct Conv {
    weight: Tensor,
    bias: Tensor,
    stride: (usize, usize),
}

/// Image columns added on each side by circular legs: half the legs' receptive field (the first
/// layer's 15 columns at stride 2 plus the 83 the later layers consume, at stride 2).
pub const CIRCULAR_PAD: usize = 90;

/// The shared legs.
pub struct Legs {
    convs: Vec<Conv>,
    /// Wrap the image around by [`CIRCULAR_PAD`] columns on each side before the convolutions
    /// (this project's compact model; the authors' legs have valid padding only).
    circular: bool,
}

impl Legs {
    /// Creates (training) or loads (inference) the legs' weights under `vb`, for `channels` input
    /// channels, layers `width_divisor` times narrower than the paper's and `features` channels out
    /// of the last layer (the paper's 128 / width divisor for one network; a MIMO network's
    /// subnetworks each own a group of them). A MIMO network of `members` subnetworks reads M
    /// scans at once: its first layer is M times as wide, so that each scan keeps a single
    /// network's first-layer width before the shared layers. Weights are (kh, kw, Cin, Cout) as
    /// Keras stores them, He-initialised.
    pub fn new(
        vb: VarBuilder,
        channels: usize,
        width_divisor: usize,
        circular: bool,
        features: usize,
        members: usize,
    ) -> Result<Self> {
        let mut cin = channels;
        let mut convs = Vec::with_capacity(LAYERS.len());
        for (k, l) in LAYERS.iter().enumerate() {
            let vb = vb.pp(l.name);
            let cout = if k + 1 == LAYERS.len() {
                features
            } else if k == 0 {
                filters(l, width_divisor) * members.max(1)
            } else {
                filters(l, width_divisor)
            };
            let fan_in = (l.kernel.0 * l.kernel.1 * cin) as f64;
            // The input is unscaled (ranges in metres, up to 50): the first layer starts a tenth
            // of He's scale so that its outputs start near unit size.
            let gain = if k == 0 { 0.1 } else { 1.0 };
            let weight = vb.get_with_hints(
                (l.kernel.0, l.kernel.1, cin, cout),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: gain * (2.0 / fan_in).sqrt(),
                },
            )?;
            let bias = vb.get_with_hints(cout, "bias", Init::Const(0.0))?;
            convs.push(Conv {
                weight,
                bias,
                stride: l.stride,
            });
            cin = cout;
        }
        Ok(Self { convs, circular })
    }

    /// The image as the first layer reads it: with circular legs, its last [`CIRCULAR_PAD`]
    /// columns put before it and its first ones after it, so that feature column `k` is centred
    /// on image column `2k` and the volume spans exactly one turn (900 columns -> 450).
    fn padded(&self, x: &Tensor) -> Result<Tensor> {
        if !self.circular {
            return Ok(x.clone());
        }
        let w = x.dim(2)?;
        if w < CIRCULAR_PAD {
            candle_core::bail!("legs: {w} columns, fewer than the circular padding");
        }
        Tensor::cat(
            &[
                x.narrow(2, w - CIRCULAR_PAD, CIRCULAR_PAD)?,
                x.clone(),
                x.narrow(2, 0, CIRCULAR_PAD)?,
            ],
            2,
        )
    }

    /// Every layer's output for `x` (B, H, W, C), for inspection and tests.
    pub fn activations(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.convs.len());
        let mut x = self.padded(x)?;
        for c in &self.convs {
            x = conv2d(&x, &c.weight, &c.bias, c.stride)?.relu()?;
            out.push(x.clone());
        }
        Ok(out)
    }

    /// Feature volumes of images that fill every one of a MIMO network's `members` inputs at once
    /// (its test-time use), without stacking them: a convolution over M copies of an image equals
    /// one over the image with the M input slices of the first kernel summed, so the first layer
    /// reads C channels, not M * C. Images (B, H, W, C) -> (B, N, F); one member is
    /// [`Module::forward`].
    pub fn forward_repeated(&self, x: &Tensor, members: usize) -> Result<Tensor> {
        let first = &self.convs[0];
        let (kh, kw, cin, cout) = first.weight.dims4()?;
        if members <= 1 || cin % members != 0 {
            return self.forward(x);
        }
        // Input channel m * C + c of the kernel is member m's channel c.
        let folded = first.weight.reshape((kh, kw, members, cin / members, cout))?.sum(2)?;
        self.run(x, &folded)
    }

    /// The legs with `first` as the first layer's kernel.
    fn run(&self, x: &Tensor, first: &Tensor) -> Result<Tensor> {
        let mut x = self.padded(x)?;
        for (k, c) in self.convs.iter().enumerate() {
            let weight = if k == 0 { first } else { &c.weight };
            x = conv2d(&x, weight, &c.bias, c.stride)?.relu()?;
        }
        let (b, h, w, c) = x.dims4()?;
        if h != 1 {
            candle_core::bail!("legs: the input leaves {h} rows after the last layer, not 1");
        }
        x.reshape((b, w, c))
    }
}

impl Module for Legs {
    /// Images (B, 64, 900, C) -> feature volumes (B, 360, F), F = 128 / width divisor; with
    /// circular legs (B, 450, F).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, &self.convs[0].weight)
    }
}

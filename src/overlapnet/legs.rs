//! OverlapNet's legs (Chen et al., RSS 2020, Table I; DESIGN.md §5): eleven valid convolutions
//! with ReLU and no batch norm, run once per scan, turning a 64 x 900 image into a 360 x 128
//! feature volume that both heads read. The two legs of the siamese network share these weights.

use super::conv::{conv2d, valid_len};
use candle_core::{Module, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// One convolution of the legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerSpec {
    /// Parameter prefix.
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
    layer("conv1", 16, (5, 15), (2, 2)),
    layer("conv2", 32, (3, 15), (2, 1)),
    layer("conv3", 64, (3, 15), (2, 1)),
    layer("conv3a", 64, (3, 12), (2, 1)),
    layer("conv4", 128, (2, 9), (2, 1)),
    layer("conv5", 128, (1, 9), (1, 1)),
    layer("conv6", 128, (1, 9), (1, 1)),
    layer("conv7", 128, (1, 9), (1, 1)),
    layer("conv8", 128, (1, 7), (1, 1)),
    layer("conv9", 128, (1, 5), (1, 1)),
    layer("conv10", 128, (1, 3), (1, 1)),
];

/// Channels of the feature volume.
pub const FEATURES: usize = 128;

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

/// The shared legs.
pub struct Legs {
    convs: Vec<Conv>,
}

impl Legs {
    /// Creates (training) or loads (inference) the legs' weights under `vb`, for `channels` input
    /// channels; weights are (kh, kw, Cin, Cout), He-initialised.
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        let mut cin = channels;
        let mut convs = Vec::with_capacity(LAYERS.len());
        for l in LAYERS {
            let vb = vb.pp(l.name);
            let fan_in = (l.kernel.0 * l.kernel.1 * cin) as f64;
            let weight = vb.get_with_hints(
                (l.kernel.0, l.kernel.1, cin, l.filters),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: (2.0 / fan_in).sqrt(),
                },
            )?;
            let bias = vb.get_with_hints(l.filters, "bias", Init::Const(0.0))?;
            convs.push(Conv {
                weight,
                bias,
                stride: l.stride,
            });
            cin = l.filters;
        }
        Ok(Self { convs })
    }

    /// Every layer's output for `x` (B, H, W, C), for inspection and tests.
    pub fn activations(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.convs.len());
        let mut x = x.clone();
        for c in &self.convs {
            x = conv2d(&x, &c.weight, &c.bias, c.stride)?.relu()?;
            out.push(x.clone());
        }
        Ok(out)
    }
}

impl Module for Legs {
    /// Images (B, 64, 900, C) -> feature volumes (B, 360, 128).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for c in &self.convs {
            x = conv2d(&x, &c.weight, &c.bias, c.stride)?.relu()?;
        }
        let (b, h, w, c) = x.dims4()?;
        if h != 1 {
            candle_core::bail!("legs: the input leaves {h} rows after the last layer, not 1");
        }
        x.reshape((b, w, c))
    }
}

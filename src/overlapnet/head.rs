//! OverlapNet's two heads (Chen et al., RSS 2020, Sec. III; DESIGN.md §5), run per pair of
//! feature volumes: the overlap head (delta layer, three convolutions, a sigmoid) and the yaw
//! head, a weightless circular correlation whose peak is the relative yaw.

use super::conv::conv2d;
use super::legs::FEATURES;
use super::ops::abs_diff_pairs;
use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Columns of a feature volume: one per yaw class.
pub const COLUMNS: usize = 360;
/// Width of the delta layer's column groups: conv `1 x 15`, stride (1, 15) (Table I).
const GROUP: usize = 15;
/// Groups per axis after the first two convolutions: 360 / 15.
const GROUPS: usize = COLUMNS / GROUP;

/// The overlap head's weights.
pub struct OverlapHead {
    /// (1, 15, 128, 64): linear, over the delta layer's columns.
    conv_a: (Tensor, Tensor),
    /// (15, 1, 64, 128), ReLU, over its rows.
    conv_b: (Tensor, Tensor),
    /// (3, 3, 128, 256), ReLU.
    conv_c: (Tensor, Tensor),
    /// (22 * 22 * 256, 1), sigmoid.
    dense: (Tensor, Tensor),
}

fn param(vb: &VarBuilder, name: &str, shape: &[usize], fan_in: usize, gain: f64) -> Result<(Tensor, Tensor)> {
    let vb = vb.pp(name);
    let stdev = (gain / fan_in as f64).sqrt();
    let weight = vb.get_with_hints(shape, "weight", Init::Randn { mean: 0.0, stdev })?;
    let bias = vb.get_with_hints(shape[shape.len() - 1], "bias", Init::Const(0.0))?;
    Ok((weight, bias))
}

impl OverlapHead {
    /// Creates or loads the head's weights under `vb`.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let side = GROUPS - 2;
        Ok(Self {
            conv_a: param(&vb, "conv_a", &[1, GROUP, FEATURES, 64], GROUP * FEATURES, 1.0)?,
            conv_b: param(&vb, "conv_b", &[GROUP, 1, 64, 128], GROUP * 64, 2.0)?,
            conv_c: param(&vb, "conv_c", &[3, 3, 128, 256], 9 * 128, 2.0)?,
            // A hundredth of the usual scale: with it, the sum over 123904 positive activations
            // saturates the sigmoid at the start; much smaller, no gradient reaches the convolutions.
            dense: param(&vb, "dense", &[side * side * 256, 1], side * side * 256, 1e-2)?,
        })
    }

    /// Overlap in [0, 1] of each pair: `left`, `right` (B, 360, 128) -> (B).
    pub fn forward(&self, left: &Tensor, right: &Tensor) -> Result<Tensor> {
        let (b, n, c) = left.dims3()?;
        if n != COLUMNS || right.dims3()? != (b, n, c) {
            candle_core::bail!(
                "overlap head: feature volumes {:?} and {:?}, want (B, 360, 128)",
                left.dims(),
                right.dims()
            );
        }
        // Delta layer: |f_l[i] - f_r[j]|, (B, 360 i, 360 j, 128).
        let delta = abs_diff_pairs(left, right)?;
        // conv_a, 1x15 stride (1,15): j = 15 g + k, so each row of (B*360*24, 15*128) is one window.
        let (wa, ba) = &self.conv_a;
        let x = delta
            .reshape((b * n * GROUPS, GROUP * c))?
            .matmul(&wa.reshape((GROUP * c, 64))?)?
            .broadcast_add(ba)?;
        // conv_b, 15x1 stride (15,1): i = 15 h + k; (B, 24 h, 15 k, 24 g, 64) -> (B, h, g, k, 64).
        let (wb, bb) = &self.conv_b;
        let x = x
            .reshape((b, GROUPS, GROUP, GROUPS, 64))?
            .permute((0, 1, 3, 2, 4))?
            .contiguous()?
            .reshape((b * GROUPS * GROUPS, GROUP * 64))?
            .matmul(&wb.reshape((GROUP * 64, 128))?)?
            .broadcast_add(bb)?
            .relu()?
            .reshape((b, GROUPS, GROUPS, 128))?;
        // conv_c, 3x3: (B, 22, 22, 256).
        let (wc, bc) = &self.conv_c;
        let x = conv2d(&x, wc, bc, (1, 1))?.relu()?;
        let (wd, bd) = &self.dense;
        let logit = x.flatten_from(1)?.matmul(wd)?.broadcast_add(bd)?;
        candle_nn::ops::sigmoid(&logit.squeeze(D::Minus1)?)
    }
}

/// Index of the circular correlation: entry (s, i) of `(360, 360)` points at `G[(i + s - 180) mod 360, i]`
/// in the flattened `360 x 360` matrix `G = L R^T`.
fn correlation_index(device: &candle_core::Device) -> Result<Tensor> {
    let n = COLUMNS;
    let half = n / 2;
    let idx: Vec<u32> = (0..n)
        .flat_map(|s| (0..n).map(move |i| (((i + s + n - half) % n) * n + i) as u32))
        .collect();
    Tensor::from_vec(idx, n * n, device)
}

/// The yaw head: the left volume, padded circularly by half its width, correlated with the right
/// one; (B, 360, 128) x 2 -> (B, 360) logits, divided by 360 so their size does not grow with the
/// width, and centred. If `right` is `left` shifted by `k` columns (`right[i] = left[i - k]`), the peak is at
/// `180 - k`.
pub fn yaw_logits(left: &Tensor, right: &Tensor) -> Result<Tensor> {
    let (b, n, _) = left.dims3()?;
    if n != COLUMNS {
        candle_core::bail!("yaw head: {n} columns, want {COLUMNS}");
    }
    let gram = left
        .matmul(&right.transpose(1, 2)?.contiguous()?)?
        .reshape((b, n * n))?;
    let index = correlation_index(left.device())?;
    let correlation = (gram.index_select(&index, 1)?.reshape((b, n, n))?.sum(2)? / n as f64)?;
    // Centred over the shifts: the features are non-negative (ReLU), so every raw correlation is
    // large and positive, and the yaw loss would first shrink the whole feature volume to lower
    // them all; centred, it can only raise the true shift against the others.
    correlation.broadcast_sub(&correlation.mean_keepdim(1)?)
}

/// The column shift at the peak of one row of yaw logits, refined to a fraction of a column by a
/// parabola through the peak and its two neighbours; `180 - argmax`, in (-180, 180].
pub fn peak_shift(logits: &[f32]) -> f32 {
    let n = logits.len();
    let (a, _) = logits.iter().enumerate().fold(
        (0, f32::NEG_INFINITY),
        |best, (i, &v)| if v > best.1 { (i, v) } else { best },
    );
    let (l, c, r) = (logits[(a + n - 1) % n], logits[a], logits[(a + 1) % n]);
    let curvature = l - 2.0 * c + r;
    let offset = if curvature < 0.0 {
        (0.5 * (l - r) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    (n / 2) as f32 - (a as f32 + offset)
}

/// The yaw class of a shift of `k` feature columns: `180 - k`, or `None` beyond the head's range.
pub fn shift_class(k: i64) -> Option<usize> {
    let class = (COLUMNS / 2) as i64 - k;
    (0..COLUMNS as i64).contains(&class).then_some(class as usize)
}

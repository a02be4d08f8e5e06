//! OverlapNet's two heads (Chen et al., RSS 2020, Sec. III; DESIGN.md §5), run per pair of
//! feature volumes: the overlap head (delta layer, three convolutions, a sigmoid) and the yaw
//! head, a weightless circular correlation whose peak is the relative yaw.

use super::conv::conv2d;
use super::ops::{abs_diff_pairs, circular_diagonals};
use candle_core::{D, Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// Columns of the paper's feature volume: one per yaw class.
pub const COLUMNS: usize = 360;
/// Width of the delta layer's column groups: conv `1 x 15`, stride (1, 15) (Table I).
pub const GROUP: usize = 15;

/// Filters of the overlap head's three convolutions in the paper-size network.
const HEAD_FILTERS: [usize; 3] = [64, 128, 256];

/// The overlap head's weights, named as in the authors' Keras model; F is the legs' feature
/// count, d the width divisor (1 for the paper's network) and N the feature columns (360 in the
/// paper; 450 with circular legs), G = N / 15 groups.
pub struct OverlapHead {
    /// c_conv1 (1, 15, F, 64/d): linear, over the delta layer's columns.
    conv_a: (Tensor, Tensor),
    /// c_conv2 (15, 1, 64/d, 128/d), ReLU, over its rows.
    conv_b: (Tensor, Tensor),
    /// c_conv3 (3, 3, 128/d, 256/d), ReLU.
    conv_c: (Tensor, Tensor),
    /// overlap_output ((G - 2)^2 * 256/d, M), sigmoid; rows in Keras's NHWC flattening order
    /// (22 x 22 x 256 in the paper); one column per subnetwork (M = 1 but for a MIMO network).
    /// With a band of half-width w: (G * (2w - 1) * 256/d, M).
    dense: (Tensor, Tensor),
    /// Feature columns N.
    columns: usize,
    /// Half-width w of the band of reference blocks each query block is compared with (`None`:
    /// every block, the paper's delta layer).
    band: Option<usize>,
}

fn param(vb: &VarBuilder, name: &str, shape: &[usize], fan_in: usize, gain: f64) -> Result<(Tensor, Tensor)> {
    let vb = vb.pp(name);
    let stdev = (gain / fan_in as f64).sqrt();
    let weight = vb.get_with_hints(shape, "weight", Init::Randn { mean: 0.0, stdev })?;
    let bias = vb.get_with_hints(shape[shape.len() - 1], "bias", Init::Const(0.0))?;
    Ok((weight, bias))
}

impl OverlapHead {
    /// Creates or loads the head's weights under `vb`, for feature volumes of `columns` x
    /// `features`, convolutions `width_divisor` times narrower than the paper's and `outputs`
    /// overlaps out (one per MIMO subnetwork; 1 for the paper's network). `band`: compare each
    /// block of 15 query columns only with the reference blocks within `w` blocks of it (see
    /// [`OverlapHead::forward`]); `None`: with every block, as the paper does.
    pub fn new(
        vb: VarBuilder,
        columns: usize,
        features: usize,
        width_divisor: usize,
        outputs: usize,
        band: Option<usize>,
    ) -> Result<Self> {
        if !columns.is_multiple_of(GROUP) || columns < 3 * GROUP {
            candle_core::bail!("overlap head: {columns} feature columns, want a multiple of {GROUP} from 45");
        }
        let groups = columns / GROUP;
        if let Some(w) = band
            && (w == 0 || 2 * w + 1 > groups)
        {
            candle_core::bail!(
                "overlap head: a band of half-width {w} blocks, want 1 to {}",
                (groups - 1) / 2
            );
        }
        // Positions the dense layer reads: (G - 2)^2 for the full delta layer, G x (2w - 1) for a
        // band (its rows wrap around, its 2w + 1 offsets lose one each side to the 3 x 3 conv).
        let positions = band.map_or((groups - 2) * (groups - 2), |w| groups * (2 * w - 1));
        let [fa, fb, fc] = HEAD_FILTERS.map(|f| (f / width_divisor.max(1)).max(1));
        Ok(Self {
            conv_a: param(&vb, "c_conv1", &[1, GROUP, features, fa], GROUP * features, 1.0)?,
            conv_b: param(&vb, "c_conv2", &[GROUP, 1, fa, fb], GROUP * fa, 2.0)?,
            conv_c: param(&vb, "c_conv3", &[3, 3, fb, fc], 9 * fb, 2.0)?,
            // A hundredth of the usual scale: with it, the sum over the 22 x 22 x 256 positive
            // activations saturates the sigmoid at the start; much smaller, no gradient reaches
            // the convolutions.
            dense: param(
                &vb,
                "overlap_output",
                &[positions * fc, outputs.max(1)],
                positions * fc,
                1e-2,
            )?,
            columns,
            band,
        })
    }

    /// Overlap in [0, 1] of each pair, one per output: `left`, `right` (B, N, F) -> (B, M).
    /// The paper's head compares every query column with every reference column; a banded head
    /// (for a reference already turned by the yaw head's peak, so that matching columns face each
    /// other) compares each block of 15 query columns with the 2w + 1 reference blocks around
    /// it, (2w + 1) / G of the work and memory.
    pub fn forward(&self, left: &Tensor, right: &Tensor) -> Result<Tensor> {
        self.check(left, right)?;
        let grid = match self.band {
            None => self.full_grid(left, right)?,
            Some(w) => self.band_grid(left, right, w)?,
        };
        let (wd, bd) = &self.dense;
        let logit = grid.flatten_from(1)?.matmul(wd)?.broadcast_add(bd)?;
        candle_nn::ops::sigmoid(&logit)
    }

    fn check(&self, left: &Tensor, right: &Tensor) -> Result<()> {
        let (b, n, c) = left.dims3()?;
        let (_, _, wc_in, _) = self.conv_a.0.dims4()?;
        if n != self.columns || right.dims3()? != (b, n, c) || c != wc_in {
            candle_core::bail!(
                "overlap head: feature volumes {:?} and {:?}, want (B, {}, {wc_in})",
                left.dims(),
                right.dims(),
                self.columns
            );
        }
        Ok(())
    }

    /// c_conv1 (1 x 15, stride (1, 15)) over each block of 15 reference columns, then c_conv2
    /// (15 x 1, stride (15, 1)) over each block of 15 query columns: a delta layer laid out as
    /// (B, G h, 15 i, K blocks, 15 j, F), in any shape with that order, -> (B, G h, K, fb).
    fn block_convolutions(&self, delta: &Tensor, b: usize, groups: usize, blocks: usize) -> Result<Tensor> {
        let (wa, ba) = &self.conv_a;
        let (_, _, c, fa) = wa.dims4()?;
        // c_conv1: each row of (B * G * 15 * K, 15 * F) is one window: (B, G h, 15 i, K, fa).
        let x = delta
            .reshape((b * groups * GROUP * blocks, GROUP * c))?
            .matmul(&wa.reshape((GROUP * c, fa))?)?
            .broadcast_add(ba)?;
        // c_conv2: (B, h, 15 i, K, fa) -> (B, h, K, 15 i, fa), one window a row.
        let (wb, bb) = &self.conv_b;
        let fb = wb.dim(3)?;
        x.reshape((b, groups, GROUP, blocks, fa))?
            .permute((0, 1, 3, 2, 4))?
            .contiguous()?
            .reshape((b * groups * blocks, GROUP * fa))?
            .matmul(&wb.reshape((GROUP * fa, fb))?)?
            .broadcast_add(bb)?
            .relu()?
            .reshape((b, groups, blocks, fb))
    }

    /// The paper's head up to the dense layer: (B, N, F) x 2 -> (B, G - 2, G - 2, fc).
    fn full_grid(&self, left: &Tensor, right: &Tensor) -> Result<Tensor> {
        let (b, n, _) = left.dims3()?;
        let groups = n / GROUP;
        // Delta layer: |f_l[i] - f_r[j]|, (B, N i, N j, F).
        let delta = abs_diff_pairs(left, right)?;
        let x = self.block_convolutions(&delta, b, groups, groups)?;
        // c_conv3, 3x3: (B, G - 2, G - 2, fc).
        let (wc, bc) = &self.conv_c;
        conv2d(&x, wc, bc, (1, 1))?.relu()
    }

    /// The banded head up to the dense layer: (B, N, F) x 2 -> (B, G, 2w - 1, fc). The same
    /// three convolutions as the paper's, on the query blocks h and the offsets o = -w..=w of
    /// the reference block h + o (mod G) instead of on every (query, reference) block.
    fn band_grid(&self, left: &Tensor, right: &Tensor, w: usize) -> Result<Tensor> {
        let (b, n, c) = left.dims3()?;
        let groups = n / GROUP;
        let offsets = 2 * w + 1;
        // The reference band of every query block: (B * G, D * 15 j, F).
        let index: Vec<u32> = (0..b)
            .flat_map(|bi| {
                (0..groups).flat_map(move |h| {
                    (0..offsets).flat_map(move |o| {
                        let block = (h + groups + o - w) % groups;
                        (0..GROUP).map(move |k| (bi * n + block * GROUP + k) as u32)
                    })
                })
            })
            .collect();
        let index = Tensor::from_vec(index, b * groups * offsets * GROUP, left.device())?;
        let band = right
            .reshape((b * n, c))?
            .index_select(&index, 0)?
            .reshape((b * groups, offsets * GROUP, c))?;
        // Delta layer on the band: (B * G, 15 i, D * 15 j, F).
        let delta = abs_diff_pairs(&left.reshape((b * groups, GROUP, c))?, &band)?;
        let x = self.block_convolutions(&delta, b, groups, offsets)?;
        // c_conv3, 3x3, the query blocks wrapped around (a turn has no first block).
        let wrapped = Tensor::cat(&[x.narrow(1, groups - 1, 1)?, x.clone(), x.narrow(1, 0, 1)?], 1)?;
        let (wc, bc) = &self.conv_c;
        conv2d(&wrapped, wc, bc, (1, 1))?.relu()
    }
}

/// The yaw head exactly as the authors' `NormalizedCorrelation2D` with `normalize='none'`: the
/// left volume, padded circularly by half its width, correlated with the right one as a kernel;
/// (B, N, F) x 2 -> (B, N) raw logits, `out[k] = sum_j sum_c L[(k + j - N/2) mod N, c] R[j, c]`
/// (N = 360 in the paper). If `right` is `left` shifted by `k` columns (`right[i] = left[i - k]`),
/// the peak is at `N/2 - k`.
pub fn yaw_logits(left: &Tensor, right: &Tensor) -> Result<Tensor> {
    let (b, n, _) = left.dims3()?;
    if right.dims3()?.1 != n {
        candle_core::bail!("yaw head: {n} and {} columns", right.dims3()?.1);
    }
    let gram = left.matmul(&right.transpose(1, 2)?.contiguous()?)?;
    debug_assert_eq!(gram.dims3()?, (b, n, n));
    circular_diagonals(&gram)
}

/// The yaw head of each of `members` subnetworks whose features are consecutive groups of the
/// volumes' channels: (B, N, M * Fm) x 2 -> (B, M, N), member `m` correlating group `m` of the
/// left volume with group `m` of the right one ([`yaw_logits`]; one member is the plain head).
pub fn member_yaw_logits(left: &Tensor, right: &Tensor, members: usize) -> Result<Tensor> {
    let (_, _, f) = left.dims3()?;
    let members = members.max(1);
    if !f.is_multiple_of(members) {
        candle_core::bail!("yaw head: {f} features do not split into {members} subnetworks");
    }
    let fm = f / members;
    let rows = (0..members)
        .map(|m| yaw_logits(&left.narrow(2, m * fm, fm)?, &right.narrow(2, m * fm, fm)?))
        .collect::<Result<Vec<_>>>()?;
    Tensor::stack(&rows, 1)
}

/// The yaw logits as this project trains them (a deliberate difference from the authors' loss
/// input, which is the raw correlation): divided by the column count so their size does not
/// grow with the width, and centred over the shifts. The features are non-negative (ReLU), so every raw
/// correlation is large and positive, and the yaw loss would first shrink the whole feature
/// volume to lower them all; centred, it can only raise the true shift against the others.
/// The argmax, and so the decoded yaw, is the same as the raw logits'.
/// `raw` is (..., N): the last axis holds the shifts.
pub fn training_logits(raw: &Tensor) -> Result<Tensor> {
    let n = raw.dim(D::Minus1)?;
    let scaled = (raw / n as f64)?;
    scaled.broadcast_sub(&scaled.mean_keepdim(D::Minus1)?)
}

/// Index of the highest of a row of logits (the first, on a tie; 0 for an empty row).
pub fn argmax(logits: &[f32]) -> usize {
    logits
        .iter()
        .enumerate()
        .fold(
            (0, f32::NEG_INFINITY),
            |best, (i, &v)| if v > best.1 { (i, v) } else { best },
        )
        .0
}

/// The column shift at the peak of one row of yaw logits, refined to a fraction of a column by a
/// parabola through the peak and its two neighbours; `N/2 - argmax`, in (-N/2, N/2].
pub fn peak_shift(logits: &[f32]) -> f32 {
    let n = logits.len();
    let a = argmax(logits);
    let (l, c, r) = (logits[(a + n - 1) % n], logits[a], logits[(a + 1) % n]);
    let curvature = l - 2.0 * c + r;
    let offset = if curvature < 0.0 {
        (0.5 * (l - r) / curvature).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    (n / 2) as f32 - (a as f32 + offset)
}

/// The yaw class of a shift of `k` feature columns in a head of `columns` classes: `N/2 - k`;
/// wrapped around when the columns span the whole turn (`circular`), else `None` beyond the
/// head's range.
pub fn shift_class(k: i64, columns: usize, circular: bool) -> Option<usize> {
    let n = columns as i64;
    let class = n / 2 - k;
    if circular {
        Some(class.rem_euclid(n) as usize)
    } else {
        (0..n).contains(&class).then_some(class as usize)
    }
}

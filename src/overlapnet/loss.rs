//! OverlapNet's training losses (Chen et al., RSS 2020, Sec. III-D; DESIGN.md §5).

use candle_core::{Device, Result, Tensor};

/// Weight of the overlap loss in the total (OverlapNet: 5).
pub const OVERLAP_WEIGHT: f64 = 5.0;
/// Weight of the yaw loss in the total (OverlapNet: 1).
pub const YAW_WEIGHT: f64 = 1.0;
/// Positive-class weight of the yaw head's binary cross-entropy: one true bin against 359 others
/// (OverlapNet: 360).
pub const YAW_POSITIVE_WEIGHT: f64 = 360.0;
/// The yaw loss only counts pairs above this ground-truth overlap (OverlapNet: 0.7).
pub const YAW_MIN_OVERLAP: f32 = 0.7;

/// Weight of a plain mean absolute error added to the overlap loss (this project's addition; the
/// authors use the soft step alone). The step is nearly flat for errors under 0.2: a head that
/// predicts the same middling overlap for every pair sits in that flat band for most balanced
/// pairs and gets almost no gradient (our first CPU runs stalled there, every prediction 0.36);
/// the absolute error keeps pulling towards the truth.
pub const OVERLAP_L1_WEIGHT: f64 = 1.0;

/// Overlap loss: the paper's `mean(sigmoid((|pred - truth| + 0.25) * 24 - 12))`, a soft step that
/// is nearly flat for small errors and saturates for large ones, plus [`OVERLAP_L1_WEIGHT`] times
/// the mean absolute error. `pred`, `truth`: (B).
pub fn overlap_loss(pred: &Tensor, truth: &Tensor) -> Result<Tensor> {
    let abs = (pred - truth)?.abs()?;
    let step = candle_nn::ops::sigmoid(&((((&abs + 0.25)? * 24.0)?) - 12.0)?)?.mean_all()?;
    step + (abs.mean_all()? * OVERLAP_L1_WEIGHT)?
}

/// `log(1 + exp(x))`, stable for large |x|.
fn softplus(x: &Tensor) -> Result<Tensor> {
    x.relu()? + ((x.abs()?.neg()?.exp()? + 1.0)?.log()?)
}

/// Yaw loss: binary cross-entropy of every bin's logit against a one-hot target at the true class,
/// the true bin weighted by [`YAW_POSITIVE_WEIGHT`], averaged over bins and pairs. `logits`:
/// (B, 360); `classes[b]`: the true class, or `None` for pairs that do not count. Zero when none count.
pub fn yaw_loss(logits: &Tensor, classes: &[Option<usize>]) -> Result<Tensor> {
    let (b, n) = logits.dims2()?;
    let rows: Vec<u32> = (0..b as u32).filter(|&i| classes[i as usize].is_some()).collect();
    if rows.is_empty() {
        return Tensor::new(0f32, logits.device());
    }
    let mut target = vec![0f32; rows.len() * n];
    for (k, &r) in rows.iter().enumerate() {
        if let Some(c) = classes[r as usize] {
            target[k * n + c] = 1.0;
        }
    }
    let device = logits.device();
    let z = logits.index_select(&Tensor::new(rows.as_slice(), device)?, 0)?;
    let t = Tensor::from_vec(target, (rows.len(), n), device)?;
    let positive = (t.clone() * YAW_POSITIVE_WEIGHT)?.mul(&softplus(&z.neg()?)?)?;
    let negative = (t.ones_like()? - t)?.mul(&softplus(&z)?)?;
    (positive + negative)?.mean_all()
}

/// The weighted sum the network is trained on, with its two parts as numbers.
pub struct Losses {
    /// `5 * overlap + 1 * yaw`.
    pub total: Tensor,
    /// The overlap loss.
    pub overlap: f32,
    /// The yaw loss.
    pub yaw: f32,
}

/// Both losses for a batch: predicted overlaps (B), true overlaps, yaw logits (B, 360) and classes.
pub fn losses(pred: &Tensor, truth: &[f32], logits: &Tensor, classes: &[Option<usize>]) -> Result<Losses> {
    let truth = Tensor::new(truth, &Device::Cpu)?.to_device(pred.device())?;
    let overlap = overlap_loss(pred, &truth)?;
    let yaw = yaw_loss(logits, classes)?;
    let total = ((&overlap * OVERLAP_WEIGHT)? + (&yaw * YAW_WEIGHT)?)?;
    Ok(Losses {
        overlap: overlap.to_scalar::<f32>()?,
        yaw: yaw.to_scalar::<f32>()?,
        total,
    })
}

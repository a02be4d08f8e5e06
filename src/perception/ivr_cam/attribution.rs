//! Which columns of two scans made OverlapNet's decision, as one raw score per image column of
//! each scan (before normalisation).
//!
//! Two decisions can be explained:
//! - `Yaw`: the yaw head aligns the two feature volumes at one column shift; each aligned pair
//!   of columns (query `a`, reference `i`) is scored by how much better it matches at that shift
//!   than at any other: the cosine of their centred features minus the mean cosine of reference
//!   column `i` with every query column. A column that pins the yaw scores high; one that looks
//!   alike at every shift (open road, sky) or matches nothing scores near zero.
//! - `Overlap`: Grad-CAM (Selvaraju et al., ICCV 2017) on the overlap head: each leg's feature
//!   volume weighted by the mean gradient of the predicted overlap over columns.
//!
//! The authors' legs (valid convolutions) leave 360 feature columns centred on image columns
//! 90..810 of 900 (2 image columns each); the other image columns get no score (NaN). Circular
//! legs leave 450 columns centred on image columns 0, 2, ..., 898: every column is scored.

use crate::overlapnet::head::{argmax, yaw_logits};
use crate::overlapnet::input::{encode, roll_columns};
use crate::overlapnet::model::{OverlapNet, peak_over_mean};
use crate::projection::RangeImage;
use candle_core::{D, Result, Tensor, Var};
use serde::Serialize;

/// The decision explained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CamTarget {
    /// The yaw head's winning logit (exact per-column decomposition).
    Yaw,
    /// The overlap head's prediction (Grad-CAM).
    Overlap,
}

/// Raw per-image-column scores of one pair, NaN where the feature columns do not reach.
#[derive(Debug, Clone, Serialize)]
pub struct PairCam {
    /// The decision explained.
    pub target: CamTarget,
    /// Predicted overlap.
    pub overlap: f32,
    /// Feature-column shift of the winning yaw logit (`180 - argmax`), of the half-turned
    /// reference when `half_turn`.
    pub shift: i64,
    /// Whether the reference's half-turned volume won the yaw head.
    pub half_turn: bool,
    /// Query scores, one per image column.
    pub query: Vec<f32>,
    /// Reference scores, one per image column of the reference as given.
    pub reference: Vec<f32>,
}

/// Image column at the centre of feature column `c`: the first convolution's stride 2 and, for
/// valid-padded legs, the half-width of their receptive field (OverlapNet, Table I; 900 -> 443
/// -> 360); circular legs are centred on `2c`.
pub fn image_column(c: usize, circular: bool) -> usize {
    if circular { 2 * c } else { 2 * c + 90 }
}

/// Feature volumes (N, F) of the query, the reference, and, when the legs' columns do not span
/// the whole turn, the reference turned by half a revolution, in one batch of legs.
fn volumes(net: &OverlapNet, query: &RangeImage, reference: &RangeImage) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let c = &net.config;
    let q = encode(query, c.channels);
    let r = encode(reference, c.channels);
    let ch = c.channels.count();
    if c.circular_legs {
        let x = Tensor::from_vec([q, r].concat(), (2, c.rows, c.cols, ch), net.device())?;
        let v = net.legs(&x)?;
        return Ok((v.get(0)?, v.get(1)?, None));
    }
    let turned = roll_columns(&r, c.cols, c.channels, (c.cols / 2) as i64);
    let x = Tensor::from_vec([q, r, turned].concat(), (3, c.rows, c.cols, ch), net.device())?;
    let v = net.legs(&x)?;
    Ok((v.get(0)?, v.get(1)?, Some(v.get(2)?)))
}

/// Spreads feature-column scores over `cols` image columns, rolled by `roll` image columns.
fn to_image_columns(scores: &[f32], cols: usize, roll: usize, circular: bool) -> Vec<f32> {
    let mut out = vec![f32::NAN; cols];
    for (c, &s) in scores.iter().enumerate() {
        for k in 0..2 {
            out[(image_column(c, circular) + k + cols - roll) % cols] = s;
        }
    }
    out
}

/// Explains OverlapNet's `target` decision on (query, reference).
pub fn pair_cam(net: &OverlapNet, query: &RangeImage, reference: &RangeImage, target: CamTarget) -> Result<PairCam> {
    let cols = net.config.cols;
    let circular = net.config.circular_legs;
    let (l, r, r_turned) = volumes(net, query, reference)?;
    let (l1, r1) = (l.unsqueeze(0)?, r.unsqueeze(0)?);
    let logits_of = |right: &Tensor| yaw_logits(&l1, &right.unsqueeze(0)?)?.squeeze(0)?.to_vec1::<f32>();
    let direct = logits_of(&r)?;
    // The half-turned reference wins when its correlation's peak stands higher (valid legs only).
    let turned = match &r_turned {
        Some(t) => Some((t, logits_of(t)?)).filter(|(_, l)| peak_over_mean(l) > peak_over_mean(&direct)),
        None => None,
    };
    let half_turn = turned.is_some();
    let (right, class) = match &turned {
        Some((t, logits)) => (*t, argmax(logits)),
        None => (&r, argmax(&direct)),
    };
    let roll = if half_turn { cols / 2 } else { 0 };
    let (q, rf, overlap) = match target {
        CamTarget::Yaw => {
            let (q, rf) = yaw_terms(&l, right, class)?;
            let overlap = net.heads(&l1, &r1)?.0.squeeze(0)?.to_scalar::<f32>()?;
            (q, rf, overlap)
        }
        CamTarget::Overlap => grad_cam(net, &l, &r)?,
    };
    let roll_ref = if matches!(target, CamTarget::Overlap) { 0 } else { roll };
    Ok(PairCam {
        target,
        overlap,
        shift: (direct.len() / 2) as i64 - class as i64,
        half_turn,
        query: to_image_columns(&q, cols, 0, circular),
        reference: to_image_columns(&rf, cols, roll_ref, circular),
    })
}

/// Per-column match scores at yaw class `class`: query and reference scores (N each).
fn yaw_terms(left: &Tensor, right: &Tensor, class: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let n = left.dim(0)?;
    let unit = |t: &Tensor| -> Result<Tensor> {
        let centred = t.broadcast_sub(&t.mean_keepdim(0)?)?;
        let norm = (centred.sqr()?.sum_keepdim(1)?.sqrt()? + 1e-12)?;
        centred.broadcast_div(&norm)
    };
    // Row i: cosines of reference column i with every query column a.
    let cosines = unit(right)?.matmul(&unit(left)?.t()?)?.to_vec2::<f32>()?;
    let mut q = vec![0.0; n];
    let mut r = vec![0.0; n];
    for (i, row) in cosines.iter().enumerate() {
        // The class aligns reference column i with query column (i + class - 180) mod n.
        let a = (i + class + n - n / 2) % n;
        let v = row[a] - row.iter().sum::<f32>() / n as f32;
        q[a] = v;
        r[i] = v;
    }
    Ok((q, r))
}

/// Grad-CAM of the overlap head on both legs' volumes, and the overlap itself.
fn grad_cam(net: &OverlapNet, left: &Tensor, right: &Tensor) -> Result<(Vec<f32>, Vec<f32>, f32)> {
    let lv = Var::from_tensor(&left.unsqueeze(0)?)?;
    let rv = Var::from_tensor(&right.unsqueeze(0)?)?;
    let (overlap, _) = net.heads(lv.as_tensor(), rv.as_tensor())?;
    let grads = overlap.sum_all()?.backward()?;
    let cam = |v: &Var| -> Result<Vec<f32>> {
        let Some(g) = grads.get(v.as_tensor()) else {
            return Ok(vec![0.0; v.as_tensor().dim(1)?]);
        };
        // Channel weights: the gradient averaged over columns; (1, 360, 128) -> (1, 1, 128).
        let weights = g.mean_keepdim(1)?;
        v.as_tensor()
            .broadcast_mul(&weights)?
            .sum(D::Minus1)?
            .squeeze(0)?
            .to_vec1::<f32>()
    };
    Ok((cam(&lv)?, cam(&rv)?, overlap.squeeze(0)?.to_scalar::<f32>()?))
}

impl std::str::FromStr for CamTarget {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s {
            "yaw" => Ok(CamTarget::Yaw),
            "overlap" => Ok(CamTarget::Overlap),
            _ => Err(crate::error::Error::Usage(format!(
                "unknown attribution target '{s}' (known: yaw, overlap)"
            ))),
        }
    }
}

//! Attribution maps drawn over range images: the scene in grey (near bright), each column tinted
//! by its normalised score through the turbo colour map, so lit columns stand out.

use crate::projection::RangeImage;
use crate::projection::png::{Rgb8, turbo};

/// Grey level of a return at range `r` (near bright, far dark); black when empty.
fn grey(r: f32, max_range: f32) -> f32 {
    if r <= 0.0 {
        0.0
    } else {
        60.0 + 195.0 * (1.0 - (r / max_range).clamp(0.0, 1.0))
    }
}

/// The range image with each column tinted by `heat` (one value in [0, 1] per column; NaN for
/// columns without a score, drawn dimmed).
pub fn heat_overlay(img: &RangeImage, heat: &[f32]) -> Rgb8 {
    let max_range = img.range.iter().copied().fold(1.0f32, f32::max);
    let mut data = Vec::with_capacity(img.rows * img.cols * 3);
    for row in img.range.chunks(img.cols) {
        for (c, &r) in row.iter().enumerate() {
            let g = grey(r, max_range);
            let h = heat.get(c).copied().unwrap_or(f32::NAN);
            let px = if h.is_finite() {
                let tint = turbo(h.clamp(0.0, 1.0));
                let a = 0.25 + 0.5 * h.clamp(0.0, 1.0);
                tint.map(|t| ((1.0 - a) * g + a * f32::from(t)) as u8)
            } else {
                [(g * 0.4) as u8; 3]
            };
            data.extend(px);
        }
    }
    Rgb8 {
        width: img.cols,
        height: img.rows,
        data,
    }
}

//! The precision-recall curve as a picture: recall across, precision up, a grid every 0.1.

use crate::ground_truth::scoring::PrPoint;
use crate::projection::png::Rgb8;

/// Margin around the plot area, pixels.
const MARGIN: usize = 20;

/// Draws `curve` on a `size` x `size` white canvas.
pub fn pr_plot(curve: &[PrPoint], size: usize) -> Rgb8 {
    let mut img = Rgb8 {
        width: size,
        height: size,
        data: vec![255; size * size * 3],
    };
    let span = (size - 2 * MARGIN) as f64;
    // (recall, precision) in [0, 1]² to pixel (x, y), y down.
    let to_px = |r: f64, p: f64| {
        let x = MARGIN as f64 + r.clamp(0.0, 1.0) * span;
        let y = MARGIN as f64 + (1.0 - p.clamp(0.0, 1.0)) * span;
        (x.round() as i64, y.round() as i64)
    };
    for k in 0..=10 {
        let v = k as f64 / 10.0;
        let grey = if k == 0 || k == 10 { [0, 0, 0] } else { [215, 215, 215] };
        line(&mut img, to_px(v, 0.0), to_px(v, 1.0), grey);
        line(&mut img, to_px(0.0, v), to_px(1.0, v), grey);
    }
    let mut last = None;
    for p in curve {
        let here = to_px(p.recall, p.precision);
        if let Some(prev) = last {
            line(&mut img, prev, here, [200, 40, 40]);
        }
        last = Some(here);
    }
    img
}

/// A one-pixel line from `a` to `b` (Bresenham), clipped to the picture.
fn line(img: &mut Rgb8, a: (i64, i64), b: (i64, i64), colour: [u8; 3]) {
    let (dx, dy) = ((b.0 - a.0).abs(), -(b.1 - a.1).abs());
    let (sx, sy) = ((b.0 - a.0).signum(), (b.1 - a.1).signum());
    let (mut x, mut y, mut err) = (a.0, a.1, dx + dy);
    loop {
        if x >= 0 && y >= 0 && (x as usize) < img.width && (y as usize) < img.height {
            let i = (y as usize * img.width + x as usize) * 3;
            img.data[i..i + 3].copy_from_slice(&colour);
        }
        if (x, y) == b {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_drawn_inside_the_frame() {
        let curve = [
            PrPoint {
                threshold: 0.9,
                precision: 1.0,
                recall: 0.0,
            },
            PrPoint {
                threshold: 0.1,
                precision: 0.5,
                recall: 1.0,
            },
        ];
        let img = pr_plot(&curve, 200);
        assert_eq!(img.data.len(), 200 * 200 * 3);
        let red = |x: usize, y: usize| img.data[(y * 200 + x) * 3..(y * 200 + x) * 3 + 3] == [200, 40, 40];
        // The end points: (recall 0, precision 1) is the top-left corner, (1, 0.5) the right edge's middle.
        assert!(red(20, 20) && red(180, 100));
        assert_eq!(img.data[0..3], [255, 255, 255], "the margin stays white");
    }
}

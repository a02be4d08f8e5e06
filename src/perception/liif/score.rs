//! How close an upsampled range image is to the dense scan it should reproduce: range error where
//! both hold a return, the share of true returns rendered within 0.5 m, and how many returns are
//! lost or invented.

use serde::Serialize;

/// Sums over pixels, turned into [`UpsampleScore`] at the end (so images can be pooled).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScoreSums {
    /// Pixels with a true return.
    pub returns: usize,
    /// Pixels without one.
    pub empties: usize,
    /// True returns rendered as returns.
    pub rendered: usize,
    /// Sum of absolute range errors over rendered true returns (metres).
    pub abs_error: f64,
    /// True returns rendered within [`WITHIN_M`].
    pub within: usize,
    /// Empty pixels rendered as returns.
    pub invented: usize,
}

/// The tolerance of the "within" share, metres.
pub const WITHIN_M: f32 = 0.5;

/// Pooled figures of one method on a set of images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UpsampleScore {
    /// Mean absolute range error over true returns that were rendered, metres.
    pub mae_m: f64,
    /// Share of true returns rendered within 0.5 m (a lost return counts as a miss).
    pub within_half_m: f64,
    /// Share of true returns rendered at all.
    pub recall: f64,
    /// Share of empty pixels rendered as returns.
    pub invented: f64,
}

impl ScoreSums {
    /// Adds one image: `pred` and `truth` are ranges with negative values for empty pixels.
    pub fn add(&mut self, pred: &[f32], truth: &[f32]) {
        for (&p, &t) in pred.iter().zip(truth) {
            match (t >= 0.0, p >= 0.0) {
                (true, true) => {
                    self.returns += 1;
                    self.rendered += 1;
                    let e = (p - t).abs();
                    self.abs_error += e as f64;
                    self.within += usize::from(e <= WITHIN_M);
                }
                (true, false) => self.returns += 1,
                (false, rendered) => {
                    self.empties += 1;
                    self.invented += usize::from(rendered);
                }
            }
        }
    }

    /// Only the rows a sparse scan did not have: adds rows of `rows x cols` images for which
    /// `keep(row)` holds.
    pub fn add_rows(&mut self, pred: &[f32], truth: &[f32], cols: usize, keep: impl Fn(usize) -> bool) {
        for (y, (p, t)) in pred.chunks(cols).zip(truth.chunks(cols)).enumerate() {
            if keep(y) {
                self.add(p, t);
            }
        }
    }

    /// Pools another set of sums into this one.
    pub fn merge(&mut self, other: &ScoreSums) {
        self.returns += other.returns;
        self.empties += other.empties;
        self.rendered += other.rendered;
        self.abs_error += other.abs_error;
        self.within += other.within;
        self.invented += other.invented;
    }

    /// The pooled figures.
    pub fn score(&self) -> UpsampleScore {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        UpsampleScore {
            mae_m: if self.rendered == 0 {
                0.0
            } else {
                self.abs_error / self.rendered as f64
            },
            within_half_m: ratio(self.within, self.returns),
            recall: ratio(self.rendered, self.returns),
            invented: ratio(self.invented, self.empties),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_count_errors_losses_and_inventions() {
        let mut s = ScoreSums::default();
        s.add(&[10.2, 5.0, -1.0, 3.0, -1.0], &[10.0, 6.0, 4.0, -1.0, -1.0]);
        let sc = s.score();
        assert_eq!(
            (s.returns, s.rendered, s.within, s.empties, s.invented),
            (3, 2, 1, 2, 1)
        );
        assert!((sc.mae_m - 0.6).abs() < 1e-6);
        assert!((sc.within_half_m - 1.0 / 3.0).abs() < 1e-9);
        assert!((sc.invented - 0.5).abs() < 1e-9);
    }
}

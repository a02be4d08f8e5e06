//! Which rows a sparse scan has: a low-resolution range image whose row `i` sits at the dense
//! image's (continuous) row `offset + i * spacing`, and for every dense row the two sparse rows
//! it lies between. The learned decoder and both baselines read the same taps, so they differ only
//! in how they fill the rows between.

use crate::projection::EMPTY;

/// Where the rows of a sparse image sit among the rows of a dense one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowLayout {
    /// Rows of the sparse image.
    pub sparse_rows: usize,
    /// Dense row of the first sparse row.
    pub offset: f32,
    /// Dense rows from one sparse row to the next (4 for 16 of 64 rows).
    pub spacing: f32,
    /// Rows of the dense image to render.
    pub dense_rows: usize,
}

/// The two sparse rows one dense row reads, with their interpolation weights and the dense
/// row's signed distance from each (in sparse rows: LIIF's relative coordinate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taps {
    /// Sparse row above (or at) the query, and the one below; equal at the image's edges.
    pub rows: [usize; 2],
    /// Linear weights (area weights in LIIF's 1-D case), summing to 1.
    pub weights: [f32; 2],
    /// Query minus each tap's coordinate, in sparse rows.
    pub rel: [f32; 2],
}

impl RowLayout {
    /// Every `factor`-th row of a `dense_rows` image, starting at `offset`.
    pub fn every(dense_rows: usize, factor: usize, offset: usize) -> Self {
        Self {
            sparse_rows: (dense_rows - offset).div_ceil(factor),
            offset: offset as f32,
            spacing: factor as f32,
            dense_rows,
        }
    }

    /// Taps of dense row `y`.
    pub fn taps(&self, y: usize) -> Taps {
        let last = self.sparse_rows.saturating_sub(1);
        let q = (y as f32 - self.offset) / self.spacing;
        let i0 = (q.floor().max(0.0) as usize).min(last);
        let i1 = (i0 + 1).min(last);
        let t = if i1 == i0 { 0.0 } else { (q - i0 as f32).clamp(0.0, 1.0) };
        Taps {
            rows: [i0, i1],
            weights: [1.0 - t, t],
            rel: [q - i0 as f32, q - i1 as f32],
        }
    }

    /// Taps of every dense row.
    pub fn all_taps(&self) -> Vec<Taps> {
        (0..self.dense_rows).map(|y| self.taps(y)).collect()
    }

    /// The sparse rows of a dense `rows x cols` image (for `every` layouts, whose rows are whole).
    pub fn decimate(&self, dense: &[f32], cols: usize) -> Vec<f32> {
        (0..self.sparse_rows)
            .flat_map(|i| {
                let y = (self.offset + i as f32 * self.spacing).round() as usize;
                dense[y * cols..(y + 1) * cols].iter().copied()
            })
            .collect()
    }
}

/// Upsampling without learning, the baselines LIIF is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Each dense row copies its nearest sparse row (empty pixels included).
    Nearest,
    /// Linear between the two sparse rows where both hold a return, nearest elsewhere (blending
    /// a return with an empty pixel has no meaning). With columns unchanged this is bilinear.
    Bilinear,
}

/// Renders the dense image from a sparse one (`EMPTY` where no return is predicted).
pub fn upsample_baseline(sparse: &[f32], cols: usize, layout: &RowLayout, how: Baseline) -> Vec<f32> {
    let mut out = vec![EMPTY; layout.dense_rows * cols];
    for (y, dst) in out.chunks_mut(cols).enumerate() {
        let t = layout.taps(y);
        let near = if t.weights[0] >= t.weights[1] {
            t.rows[0]
        } else {
            t.rows[1]
        };
        for (c, d) in dst.iter_mut().enumerate() {
            let a = sparse[t.rows[0] * cols + c];
            let b = sparse[t.rows[1] * cols + c];
            *d = match how {
                Baseline::Bilinear if a >= 0.0 && b >= 0.0 => t.weights[0] * a + t.weights[1] * b,
                _ => sparse[near * cols + c],
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fourth_row_taps_interpolate_between_neighbours() {
        let l = RowLayout::every(64, 4, 0);
        assert_eq!(l.sparse_rows, 16);
        let t = l.taps(6);
        assert_eq!(t.rows, [1, 2]);
        assert_eq!(t.weights, [0.5, 0.5]);
        assert_eq!(t.rel, [0.5, -0.5]);
        // Below the last sparse row (dense row 60) the image extrapolates from it alone.
        let t = l.taps(63);
        assert_eq!((t.rows, t.weights), ([15, 15], [1.0, 0.0]));
        assert!((t.rel[0] - 0.75).abs() < 1e-6);
        // A whole-resolution layout reads each row exactly.
        let id = RowLayout::every(64, 1, 0);
        assert!((0..63).all(|y| id.taps(y).rows[0] == y && id.taps(y).weights == [1.0, 0.0]));
    }

    #[test]
    fn baselines_fill_between_rows_as_documented() {
        let l = RowLayout::every(4, 2, 0);
        let sparse = vec![10.0, 10.0, EMPTY, 20.0, 30.0, 20.0];
        let dense = vec![10.0, 10.0, EMPTY, 15.0, 20.0, EMPTY, 20.0, 30.0, 20.0, 20.0, 30.0, 20.0];
        assert_eq!(l.decimate(&dense, 3), sparse);
        let lin = upsample_baseline(&sparse, 3, &l, Baseline::Bilinear);
        assert_eq!(&lin[3..6], &[15.0, 20.0, EMPTY]);
        let near = upsample_baseline(&sparse, 3, &l, Baseline::Nearest);
        assert_eq!(&near[3..6], &[10.0, 10.0, EMPTY]);
        assert_eq!(&near[9..12], &[20.0, 30.0, 20.0]);
    }
}

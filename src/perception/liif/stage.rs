//! The `liif` perception stage, in one of two modes chosen by the frame's image:
//! - a sparse sensor's image (fewer than 64 rows, 900 columns, e.g. a VLP-16's 16 rows) is
//!   rendered at 64 rows over the same window: what the robot would see with a denser LiDAR;
//! - an HDL-64E image (64 x 900) is thinned to the rows a sparser sensor would give (16 by
//!   default), rendered back at 64 rows, and logged next to its error against the real rows, so
//!   a person sees what super-resolution recovers and where it fails.

use super::rows::RowLayout;
use super::score::ScoreSums;
use super::{Liif, score::UpsampleScore};
use crate::error::{Error, Result};
use crate::perception::{FrameView, PerceptionStage};
use crate::viz::{ImageView, Viz};

/// Thins and re-renders every frame.
pub struct LiifStage {
    net: Liif,
    factor: usize,
    /// Pooled figures over the frames seen so far.
    pub sums: ScoreSums,
}

/// The dense image size the shipped weights were trained on (HDL-64E window, OverlapNet's).
const DENSE: (usize, usize) = (64, 900);

impl LiifStage {
    /// A stage keeping every `factor`-th row (4: 16 rows, 2: 32 rows).
    pub fn new(net: Liif, factor: usize) -> Result<Self> {
        if factor == 0 || !DENSE.0.is_multiple_of(factor) {
            return Err(Error::Usage(format!(
                "liif: the row factor must divide 64, not {factor}"
            )));
        }
        Ok(Self {
            net,
            factor,
            sums: ScoreSums::default(),
        })
    }

    /// Figures over the frames seen so far, on the rows the thinned scans lacked.
    pub fn score(&self) -> UpsampleScore {
        self.sums.score()
    }
}

impl PerceptionStage for LiifStage {
    fn name(&self) -> &str {
        "liif"
    }

    fn views(&self) -> Vec<ImageView> {
        let (rows, cols) = DENSE;
        vec![
            ImageView::new("perception/liif/sparse", rows / self.factor, cols),
            ImageView::new("perception/liif/rendered", rows, cols),
            ImageView::new("perception/liif/abs_error", rows, cols),
        ]
    }

    fn process(&mut self, frame: &FrameView, viz: &Viz) -> Result<()> {
        let img = frame.image;
        if img.cols != DENSE.1 || img.rows == 0 || img.rows > DENSE.0 {
            return Err(Error::Usage(format!(
                "liif: the stage reads images of 900 columns and up to 64 rows; this source projects to {} x {}",
                img.rows, img.cols
            )));
        }
        if img.rows < DENSE.0 {
            return self.render_sparse(frame, viz);
        }
        let layout = RowLayout::every(img.rows, self.factor, 0);
        let sparse = layout.decimate(&img.range, img.cols);
        let dense = self
            .net
            .upsample(&sparse, img.cols, &layout)
            .map_err(super::candle_error)?;
        let factor = self.factor;
        let mut frame_sums = ScoreSums::default();
        frame_sums.add_rows(&dense, &img.range, img.cols, |y| !y.is_multiple_of(factor));
        self.sums.merge(&frame_sums);
        let error: Vec<f32> = dense
            .iter()
            .zip(&img.range)
            .map(|(&p, &t)| if p >= 0.0 && t >= 0.0 { (p - t).abs() } else { -1.0 })
            .collect();
        let s = frame_sums.score();
        viz.log_depth("perception/liif/sparse", layout.sparse_rows, img.cols, &sparse)?;
        viz.log_depth("perception/liif/rendered", img.rows, img.cols, &dense)?;
        viz.log_depth("perception/liif/abs_error", img.rows, img.cols, &error)?;
        viz.log_scalar("liif/mae_m", s.mae_m)?;
        viz.log_scalar("liif/within_0.5m", s.within_half_m)
    }
}

impl LiifStage {
    /// Renders a sparse sensor's image at 64 rows (or the nearest multiple of its rows) over the
    /// same window. Pixel centres line up: sparse row `i` is dense row `k i + (k - 1) / 2`.
    fn render_sparse(&mut self, frame: &FrameView, viz: &Viz) -> Result<()> {
        let img = frame.image;
        let k = (DENSE.0 / img.rows).max(1);
        let layout = RowLayout {
            sparse_rows: img.rows,
            offset: (k as f32 - 1.0) / 2.0,
            spacing: k as f32,
            dense_rows: img.rows * k,
        };
        let dense = self
            .net
            .upsample(&img.range, img.cols, &layout)
            .map_err(super::candle_error)?;
        viz.log_depth("perception/liif/sparse", img.rows, img.cols, &img.range)?;
        viz.log_depth("perception/liif/rendered", layout.dense_rows, img.cols, &dense)
    }
}

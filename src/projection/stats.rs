//! Summary statistics of projected scans, used to compare simulated with real data: share of
//! valid pixels per row, and histograms of range, intensity and normal direction.

use super::{EMPTY, RangeImage};
use serde::{Deserialize, Serialize};

/// Width of a range-histogram bin, metres.
pub const RANGE_BIN_M: f64 = 1.0;
/// Number of intensity-histogram bins over [0, 1].
pub const INTENSITY_BINS: usize = 50;
/// Number of bins of |n_z| (0 = vertical surface, 1 = horizontal surface).
pub const NORMAL_BINS: usize = 20;

/// Accumulated statistics over one or more projected scans; histograms are normalised to sum 1.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ProjectionStats {
    /// Scans accumulated.
    pub scans: usize,
    /// Share of valid pixels over the whole image.
    pub valid_share: f64,
    /// Share of valid pixels in each row, top row first.
    pub row_valid_share: Vec<f64>,
    /// Histogram of pixel ranges in [`RANGE_BIN_M`] bins from 0.
    pub range_hist: Vec<f64>,
    /// Histogram of pixel intensities over [0, 1].
    pub intensity_hist: Vec<f64>,
    /// Histogram of |n_z| of pixel normals over [0, 1].
    pub normal_z_hist: Vec<f64>,
}

/// Collects [`ProjectionStats`] scan by scan.
#[derive(Debug, Clone)]
pub struct StatsAccumulator {
    scans: usize,
    row_valid: Vec<u64>,
    cols: usize,
    range: Vec<u64>,
    intensity: Vec<u64>,
    normal_z: Vec<u64>,
}

impl StatsAccumulator {
    /// An empty accumulator for images of `rows` rows and ranges up to `max_range` metres.
    pub fn new(rows: usize, max_range: f64) -> Self {
        Self {
            scans: 0,
            row_valid: vec![0; rows],
            cols: 0,
            range: vec![0; (max_range / RANGE_BIN_M).ceil() as usize],
            intensity: vec![0; INTENSITY_BINS],
            normal_z: vec![0; NORMAL_BINS],
        }
    }

    /// Adds one projected scan (it must have the accumulator's row count).
    pub fn add(&mut self, img: &RangeImage) {
        self.scans += 1;
        self.cols = img.cols;
        let bin = |v: f64, n: usize| ((v * n as f64) as usize).min(n - 1);
        for (i, &r) in img.range.iter().enumerate() {
            if r <= 0.0 {
                continue;
            }
            self.row_valid[i / img.cols] += 1;
            let rb = ((r as f64 / RANGE_BIN_M) as usize).min(self.range.len() - 1);
            self.range[rb] += 1;
            self.intensity[bin(img.intensity[i].clamp(0.0, 1.0) as f64, INTENSITY_BINS)] += 1;
            if img.normal[i] != [EMPTY; 3] {
                self.normal_z[bin(img.normal[i][2].abs() as f64, NORMAL_BINS)] += 1;
            }
        }
    }

    /// The statistics so far.
    pub fn finish(&self) -> ProjectionStats {
        let norm = |h: &[u64]| {
            let total: u64 = h.iter().sum();
            h.iter()
                .map(|c| if total > 0 { *c as f64 / total as f64 } else { 0.0 })
                .collect()
        };
        let per_row = (self.scans * self.cols).max(1) as f64;
        let row_valid_share: Vec<f64> = self.row_valid.iter().map(|c| *c as f64 / per_row).collect();
        let valid_share = row_valid_share.iter().sum::<f64>() / row_valid_share.len().max(1) as f64;
        ProjectionStats {
            scans: self.scans,
            valid_share,
            row_valid_share,
            range_hist: norm(&self.range),
            intensity_hist: norm(&self.intensity),
            normal_z_hist: norm(&self.normal_z),
        }
    }
}

//! Spherical projection of a scan to the range, normal and intensity images OverlapNet reads
//! (DESIGN.md §5), and the ground-truth overlap and yaw of two posed scans.

pub mod overlap;
pub mod png;
pub mod stats;

use crate::sensor::SensorModel;
use std::f32::consts::PI;

/// Value of an empty pixel in every image (OverlapNet's convention).
pub const EMPTY: f32 = -1.0;

/// The projection window: image size, vertical field of view and range cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProjectionParams {
    /// Image rows (H).
    pub rows: usize,
    /// Image columns (W), spanning 360 degrees of azimuth.
    pub cols: usize,
    /// Upper edge of the window, radians.
    pub fov_up: f32,
    /// Lower edge of the window, radians (negative).
    pub fov_down: f32,
    /// Points at or beyond this range are dropped, metres.
    pub max_range: f32,
}

impl ProjectionParams {
    /// OverlapNet's HDL-64E window: +3/-25 degrees, 64 x 900, 50 m (Chen et al., RSS 2020).
    pub fn overlapnet_hdl64() -> Self {
        Self {
            rows: 64,
            cols: 900,
            fov_up: 3f32.to_radians(),
            fov_down: (-25f32).to_radians(),
            max_range: 50.0,
        }
    }

    /// The window of a sensor model.
    pub fn from_sensor(m: &SensorModel) -> Self {
        Self {
            rows: m.rows,
            cols: m.columns,
            fov_up: (m.fov_up_deg as f32).to_radians(),
            fov_down: (m.fov_down_deg as f32).to_radians(),
            max_range: m.projection_max_range_m as f32,
        }
    }

    /// Pixel (row, column) of a point at range `r` (> 0), clamped into the image.
    #[inline]
    pub fn pixel(&self, p: [f32; 3], r: f32) -> (usize, usize) {
        let yaw = -p[1].atan2(p[0]);
        let pitch = (p[2] / r).clamp(-1.0, 1.0).asin();
        let fov = self.fov_up - self.fov_down;
        let u = (0.5 * (yaw / PI + 1.0) * self.cols as f32).floor();
        let v = ((1.0 - (pitch - self.fov_down) / fov) * self.rows as f32).floor();
        let u = (u.max(0.0) as usize).min(self.cols - 1);
        let v = (v.max(0.0) as usize).min(self.rows - 1);
        (v, u)
    }
}

/// Pixel lookup without `asin` and with a polynomial `atan2`, several times faster than
/// [`ProjectionParams::pixel`] and equal to it (points near an edge take the exact formula).
struct FastPixel {
    params: ProjectionParams,
    /// sin(pitch) at the lower edge of each row, top row first (decreasing).
    row_floor_sin: Vec<f32>,
    /// For each of [`SIN_BINS`] equal bins of sin(pitch) over [-1, 1], the row of the bin's upper
    /// edge; a bin holds at most one row edge, so one comparison finishes the lookup.
    row_of_bin: Vec<u16>,
    /// Columns per radian of azimuth.
    col_scale: f32,
}

/// Bins of the sin(pitch) lookup table: 2/4096 is far narrower than any row of a LiDAR window.
const SIN_BINS: usize = 4096;

impl FastPixel {
    fn new(params: &ProjectionParams) -> Self {
        let fov = params.fov_up - params.fov_down;
        let row_floor_sin: Vec<f32> = (1..=params.rows)
            .map(|k| {
                (params.fov_up - k as f32 * fov / params.rows as f32)
                    .clamp(-PI / 2.0, PI / 2.0)
                    .sin()
            })
            .collect();
        let row_of = |s: f32| row_floor_sin.partition_point(|&floor| floor > s).min(params.rows - 1) as u16;
        let row_of_bin = (0..SIN_BINS).map(|b| row_of(Self::bin_top(b))).collect();
        Self {
            params: *params,
            row_floor_sin,
            row_of_bin,
            col_scale: params.cols as f32 / (2.0 * PI),
        }
    }

    /// sin(pitch) at the upper edge of bin `b`.
    fn bin_top(b: usize) -> f32 {
        -1.0 + 2.0 * (b + 1) as f32 / SIN_BINS as f32
    }

    /// The pixel of a point at range `r`. Points within a hair of a column or row edge, where
    /// the approximations could fall on the other side, take the exact formula, so the result
    /// always equals [`ProjectionParams::pixel`] (and OverlapNet's `range_projection`).
    #[inline]
    fn pixel(&self, p: [f32; 3], r: f32) -> (usize, usize) {
        // (yaw + pi) * W / (2 pi) is never negative, so truncation is the floor (and cheaper).
        let yaw = -fast_atan2(p[1], p[0]);
        let x = (yaw + PI) * self.col_scale;
        // Row = number of row floors above the point (rows are ordered by decreasing pitch).
        let s = (p[2] / r).clamp(-1.0, 1.0);
        let bin = (((s + 1.0) * 0.5 * SIN_BINS as f32) as usize).min(SIN_BINS - 1);
        let mut v = self.row_of_bin[bin] as usize;
        if v < self.params.rows - 1 && self.row_floor_sin[v] > s {
            v += 1;
        }
        let near_row_edge = |k: usize| self.row_floor_sin.get(k).is_some_and(|&f| (f - s).abs() < EDGE_SIN);
        // x >= 0, so its fractional part is x less its truncation (a conversion, where `round`
        // is a library call: it was 3 % of labelling a pair).
        let frac = x - (x as u32) as f32;
        let near_column_edge = !(EDGE_COLUMNS..=1.0 - EDGE_COLUMNS).contains(&frac);
        if near_column_edge || near_row_edge(v) || (v > 0 && near_row_edge(v - 1)) {
            return self.params.pixel(p, r);
        }
        (v, (x as usize).min(self.params.cols - 1))
    }
}

/// Distance to a column edge, in columns, inside which [`FastPixel`] defers to the exact formula:
/// far above the polynomial atan2's 1e-5 rad error (0.0014 columns at 900 columns).
const EDGE_COLUMNS: f32 = 0.01;
/// Distance to a row edge, in sin(pitch), inside which it does the same.
const EDGE_SIN: f32 = 1e-5;

/// atan2 from a degree-11 odd minimax polynomial of atan on [-1, 1]; error under 1e-5 rad.
#[inline]
fn fast_atan2(y: f32, x: f32) -> f32 {
    let (ax, ay) = (x.abs(), y.abs());
    if ax == 0.0 && ay == 0.0 {
        return 0.0;
    }
    let (a, swap) = if ay > ax { (ax / ay, true) } else { (ay / ax, false) };
    let s = a * a;
    let mut r = a
        * (0.999_977_26
            + s * (-0.332_623_47 + s * (0.193_543_46 + s * (-0.116_432_87 + s * (0.052_653_32 + s * -0.011_721_2)))));
    if swap {
        r = PI / 2.0 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 { -r } else { r }
}

/// The projected images of one scan, row-major `rows x cols`, [`EMPTY`] where no point landed.
#[derive(Debug, Clone)]
pub struct RangeImage {
    /// Image rows.
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// Range of the nearest point in each pixel, metres.
    pub range: Vec<f32>,
    /// Reflectance of that point.
    pub intensity: Vec<f32>,
    /// Its coordinates in the sensor frame (meaningful where `range` is valid).
    pub vertex: Vec<[f32; 3]>,
    /// Unit surface normal per pixel, `[EMPTY; 3]` where it cannot be computed.
    pub normal: Vec<[f32; 3]>,
    /// Index of the point that won each pixel, -1 for none.
    pub point_index: Vec<i32>,
}

impl RangeImage {
    /// Flat index of pixel (row, col).
    #[inline]
    pub fn at(&self, row: usize, col: usize) -> usize {
        row * self.cols + col
    }

    /// True when pixel `i` holds a point.
    #[inline]
    pub fn is_valid(&self, i: usize) -> bool {
        self.range[i] > 0.0
    }

    /// Number of pixels holding a point.
    pub fn valid_count(&self) -> usize {
        self.range.iter().filter(|r| **r > 0.0).count()
    }
}

/// Projects points (sensor frame) with their reflectance; the nearest point wins each pixel.
pub fn project(points: &[[f32; 3]], intensity: &[f32], params: &ProjectionParams) -> RangeImage {
    let n = params.rows * params.cols;
    let mut img = RangeImage {
        rows: params.rows,
        cols: params.cols,
        range: vec![EMPTY; n],
        intensity: vec![EMPTY; n],
        vertex: vec![[0.0; 3]; n],
        normal: vec![[EMPTY; 3]; n],
        point_index: vec![-1; n],
    };
    let lookup = FastPixel::new(params);
    for (k, p) in points.iter().enumerate() {
        let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        if !(r > 0.0 && r < params.max_range) {
            continue;
        }
        let (v, u) = lookup.pixel(*p, r);
        let i = v * params.cols + u;
        if img.range[i] < 0.0 || r < img.range[i] {
            img.range[i] = r;
            img.intensity[i] = intensity.get(k).copied().unwrap_or(0.0);
            img.vertex[i] = *p;
            img.point_index[i] = k as i32;
        }
    }
    compute_normals(&mut img);
    img
}

/// The range image alone of `points` (nearest return per pixel, [`EMPTY`] elsewhere) written
/// into `range` (`rows * cols`, resized to fit): the same pixels and ranges as [`project`], without
/// the vertex, normal and intensity images that labelling a pair does not read.
pub fn project_ranges(points: impl Iterator<Item = [f32; 3]>, params: &ProjectionParams, range: &mut Vec<f32>) {
    range.clear();
    range.resize(params.rows * params.cols, EMPTY);
    let lookup = FastPixel::new(params);
    for p in points {
        let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        if !(r > 0.0 && r < params.max_range) {
            continue;
        }
        let (v, u) = lookup.pixel(p, r);
        let i = v * params.cols + u;
        if range[i] < 0.0 || r < range[i] {
            range[i] = r;
        }
    }
}

/// Fills `normal` from the vertex image: `n = normalize(cross(normalize(below - p), normalize(right - p)))`
/// with the right neighbour wrapping around in azimuth; the last row stays empty.
pub fn compute_normals(img: &mut RangeImage) {
    let (rows, cols) = (img.rows, img.cols);
    for v in 0..rows.saturating_sub(1) {
        for u in 0..cols {
            let i = v * cols + u;
            let right = v * cols + (u + 1) % cols;
            let below = (v + 1) * cols + u;
            if !(img.is_valid(i) && img.is_valid(right) && img.is_valid(below)) {
                continue;
            }
            let p = img.vertex[i];
            let d_below = unit(sub(img.vertex[below], p));
            let d_right = unit(sub(img.vertex[right], p));
            if let (Some(a), Some(b)) = (d_below, d_right)
                && let Some(n) = unit(cross(a, b))
            {
                img.normal[i] = n;
            }
        }
    }
}

fn sub(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

fn cross(a: [f32; 3], b: [f32; 3]) -> [f32; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn unit(a: [f32; 3]) -> Option<[f32; 3]> {
    let n = (a[0] * a[0] + a[1] * a[1] + a[2] * a[2]).sqrt();
    (n > 1e-9).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straight_ahead_lands_in_the_middle_column() {
        let params = ProjectionParams::overlapnet_hdl64();
        let img = project(&[[10.0, 0.0, 0.0]], &[0.3], &params);
        let i = img.point_index.iter().position(|k| *k == 0).unwrap();
        assert_eq!(i % 900, 450);
        assert_eq!(img.range[i], 10.0);
        assert_eq!(img.intensity[i], 0.3);
        // Left of the sensor (+y) is a quarter turn left of the middle: column 225.
        let left = project(&[[0.0, 10.0, 0.0]], &[0.0], &params);
        assert_eq!(left.point_index.iter().position(|k| *k == 0).unwrap() % 900, 225);
    }

    #[test]
    fn field_of_view_edges_and_clamping() {
        let params = ProjectionParams::overlapnet_hdl64();
        let row_of = |p: [f32; 3]| {
            let img = project(&[p], &[0.0], &params);
            img.point_index.iter().position(|k| *k == 0).unwrap() / 900
        };
        let at = |deg: f32| [10.0 * deg.to_radians().cos(), 0.0, 10.0 * deg.to_radians().sin()];
        assert_eq!(row_of(at(2.9)), 0);
        assert_eq!(row_of(at(-24.9)), 63);
        assert_eq!(row_of(at(30.0)), 0, "above the window clamps to the top row");
        assert_eq!(row_of(at(-60.0)), 63, "below the window clamps to the bottom row");
        // Beyond the range cut nothing is projected.
        assert_eq!(project(&[[60.0, 0.0, 0.0]], &[0.0], &params).valid_count(), 0);
    }

    #[test]
    fn fast_lookup_agrees_with_the_reference_formula() {
        let params = ProjectionParams::overlapnet_hdl64();
        let fast = FastPixel::new(&params);
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let mut differ = 0;
        for _ in 0..100_000 {
            let p = [40.0 * next(), 40.0 * next(), 8.0 * next()];
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            let (a, b) = (params.pixel(p, r), fast.pixel(p, r));
            if a != b {
                differ += 1;
                let du = (a.1 as i64 - b.1 as i64)
                    .rem_euclid(900)
                    .min((b.1 as i64 - a.1 as i64).rem_euclid(900));
                assert!(du <= 1 && a.0.abs_diff(b.0) <= 1, "{p:?}: {a:?} vs {b:?}");
            }
        }
        assert_eq!(differ, 0, "{differ} of 100000 pixels differ");
        for (y, x) in [(0.0, 1.0), (1.0, 0.0), (-1.0, -1.0), (0.3, -2.0), (-5.0, 0.1)] {
            assert!((fast_atan2(y, x) - y.atan2(x)).abs() < 1e-5);
        }
    }

    #[test]
    fn nearest_point_wins_its_pixel() {
        let params = ProjectionParams::overlapnet_hdl64();
        let img = project(
            &[[20.0, 0.0, 0.0], [5.0, 0.0, 0.0], [12.0, 0.0, 0.0]],
            &[0.1, 0.2, 0.3],
            &params,
        );
        assert_eq!(img.valid_count(), 1);
        let i = img.point_index.iter().position(|k| *k >= 0).unwrap();
        assert_eq!((img.range[i], img.intensity[i], img.point_index[i]), (5.0, 0.2, 1));
    }

    #[test]
    fn a_flat_ground_plane_has_upward_normals() {
        let params = ProjectionParams::overlapnet_hdl64();
        let mut pts = Vec::new();
        for i in 0..400 {
            for j in 0..400 {
                pts.push([i as f32 * 0.1 + 3.0, j as f32 * 0.1 - 20.0, -1.73]);
            }
        }
        let img = project(&pts, &vec![0.0; pts.len()], &params);
        let normals: Vec<[f32; 3]> = img.normal.iter().filter(|n| **n != [EMPTY; 3]).copied().collect();
        assert!(normals.len() > 500, "{} normals", normals.len());
        let up = normals.iter().filter(|n| n[2] > 0.98).count();
        assert!(
            up as f32 > 0.95 * normals.len() as f32,
            "{up} of {} point up",
            normals.len()
        );
        // The last row never has a normal.
        assert!(img.normal[63 * 900..].iter().all(|n| *n == [EMPTY; 3]));
    }
}

//! Scan Context (Kim & Kim, IROS 2018): a handcrafted place descriptor, the classical loop detector
//! OverlapNet was measured against. A scan becomes a polar grid of maximum heights; two grids are
//! compared column by column under every rotation, so the best shift also gives the relative yaw.

use crate::ground_truth::scoring::wrap_deg;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use std::num::NonZeroUsize;

/// Rings of the polar grid (Scan Context: 20).
pub const RINGS: usize = 20;
/// Sectors of the polar grid, 6 degrees each (Scan Context: 60).
pub const SECTORS: usize = 60;
/// Points beyond this horizontal range are ignored, metres (Scan Context: 80).
pub const MAX_RANGE_M: f32 = 80.0;
/// Added to every height so that the ground below a car-mounted sensor is positive and an empty
/// bin (0) stays distinguishable (Scan Context's LiDAR height: 2 m).
pub const HEIGHT_OFFSET_M: f32 = 2.0;

/// The descriptor of one scan.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanContext {
    /// Maximum height (plus [`HEIGHT_OFFSET_M`], at least 0) per bin, ring-major: `[RINGS * SECTORS]`.
    pub bins: Vec<f32>,
    /// Rotation-invariant summary for the candidate search: the mean of each ring.
    pub ring_key: [f32; RINGS],
}

/// How well two descriptors match, and under which rotation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScanContextMatch {
    /// Mean cosine distance of the aligned columns, in [0, 1]; 0 for identical scans.
    pub distance: f32,
    /// Relative yaw of the second scan to the first, degrees in (-180, 180], to one sector (6°).
    /// Same convention as `projection::overlap::relative_yaw_deg(first, second)`.
    pub yaw_deg: f32,
}

impl ScanContext {
    /// Describes a scan given in its sensor frame.
    pub fn new(points: &[[f32; 3]]) -> Self {
        let mut bins = vec![0.0f32; RINGS * SECTORS];
        let sector_rad = std::f32::consts::TAU / SECTORS as f32;
        for p in points {
            let r2 = p[0] * p[0] + p[1] * p[1];
            if !(r2 > 0.0 && r2 < MAX_RANGE_M * MAX_RANGE_M) {
                continue;
            }
            let ring = ((r2.sqrt() / MAX_RANGE_M * RINGS as f32) as usize).min(RINGS - 1);
            let angle = fast_atan2(p[1], p[0]).rem_euclid(std::f32::consts::TAU);
            let sector = ((angle / sector_rad) as usize).min(SECTORS - 1);
            let bin = &mut bins[ring * SECTORS + sector];
            *bin = bin.max(p[2] + HEIGHT_OFFSET_M);
        }
        Self::from_bins(bins)
    }

    /// The descriptor with these bins (`RINGS * SECTORS`, ring-major), as a saved map stores it.
    pub fn from_bins(bins: Vec<f32>) -> Self {
        assert_eq!(bins.len(), RINGS * SECTORS, "Scan Context has RINGS x SECTORS bins");
        let mut ring_key = [0.0; RINGS];
        for (key, ring) in ring_key.iter_mut().zip(bins.chunks_exact(SECTORS)) {
            *key = ring.iter().sum::<f32>() / SECTORS as f32;
        }
        Self { bins, ring_key }
    }

    /// Compares `self` (the first scan) with `other` under all 60 column shifts and keeps the best.
    pub fn compare(&self, other: &ScanContext) -> ScanContextMatch {
        let columns_a = self.columns();
        let columns_b = other.columns();
        let (mut best_shift, mut best) = (0, f32::INFINITY);
        for shift in 0..SECTORS {
            let d = column_distance(&columns_a, &columns_b, shift);
            if d < best {
                (best_shift, best) = (shift, d);
            }
        }
        // Column c of the first scan shows what column c + shift of the second shows: the second
        // sensor is turned by -shift sectors.
        let yaw = -(best_shift as f32) * 360.0 / SECTORS as f32;
        ScanContextMatch {
            distance: best,
            yaw_deg: wrap_deg(yaw),
        }
    }

    /// Sector columns with their norms: `[SECTORS]` of (`[RINGS]` heights, norm).
    fn columns(&self) -> Vec<([f32; RINGS], f32)> {
        (0..SECTORS)
            .map(|s| {
                let mut column = [0.0; RINGS];
                for (ring, value) in column.iter_mut().enumerate() {
                    *value = self.bins[ring * SECTORS + s];
                }
                let norm = column.iter().map(|v| v * v).sum::<f32>().sqrt();
                (column, norm)
            })
            .collect()
    }
}

/// Mean cosine distance over the column pairs (a's c, b's c + shift) where both columns hold
/// something; 1 when none do.
fn column_distance(a: &[([f32; RINGS], f32)], b: &[([f32; RINGS], f32)], shift: usize) -> f32 {
    let (mut sum, mut count) = (0.0f32, 0usize);
    for (c, (column_a, norm_a)) in a.iter().enumerate() {
        let (column_b, norm_b) = &b[(c + shift) % SECTORS];
        if *norm_a > 0.0 && *norm_b > 0.0 {
            let dot: f32 = column_a.iter().zip(column_b).map(|(x, y)| x * y).sum();
            sum += 1.0 - dot / (norm_a * norm_b);
            count += 1;
        }
    }
    if count == 0 { 1.0 } else { sum / count as f32 }
}

/// atan2 within 0.001 degrees (a sector is 6 wide), faster than the exact one: an odd
/// polynomial for atan on [0, 1] (minimax, degree 11), then the octant.
fn fast_atan2(y: f32, x: f32) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (ax, ay) = (x.abs(), y.abs());
    let (lo, hi) = if ax > ay { (ay, ax) } else { (ax, ay) };
    if hi == 0.0 {
        return 0.0;
    }
    let t = lo / hi;
    let t2 = t * t;
    let mut a = t
        * (0.999_977_26
            + t2 * (-0.332_623_47
                + t2 * (0.193_543_46 + t2 * (-0.116_432_87 + t2 * (0.052_653_32 + t2 * (-0.011_721_2))))));
    if ay > ax {
        a = FRAC_PI_2 - a;
    }
    if x < 0.0 {
        a = PI - a;
    }
    if y < 0.0 { -a } else { a }
}

/// Squared distance between two ring keys: how candidates are picked before the full comparison.
pub fn ring_key_distance(a: &[f32; RINGS], b: &[f32; RINGS]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// A database of descriptors searched by ring key, then compared in full.
pub struct ScanContextIndex {
    descriptors: Vec<ScanContext>,
    tree: ImmutableKdTree<f32, RINGS>,
}

/// One candidate found for a query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Position of the candidate in the database.
    pub index: usize,
    /// The full comparison.
    pub matched: ScanContextMatch,
}

impl ScanContextIndex {
    /// Indexes `descriptors` (at least one).
    pub fn new(descriptors: Vec<ScanContext>) -> Self {
        let keys: Vec<[f32; RINGS]> = descriptors.iter().map(|d| d.ring_key).collect();
        let tree = ImmutableKdTree::new_from_slice(&keys).expect("finite ring keys build a tree");
        Self { descriptors, tree }
    }

    /// Number of descriptors indexed.
    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    /// The `k` nearest ring keys to `query` that `accept` lets through, compared in full, best
    /// (smallest distance) first. Scan Context searches 10 candidates.
    pub fn search(&self, query: &ScanContext, k: usize, accept: impl Fn(usize) -> bool) -> Vec<Candidate> {
        if self.descriptors.is_empty() || k == 0 {
            return Vec::new();
        }
        // Ask for more keys than needed, as some may be rejected by `accept`.
        let wanted = NonZeroUsize::new((4 * k).min(self.descriptors.len())).expect("k > 0");
        let mut found: Vec<Candidate> = self
            .tree
            .query(&query.ring_key)
            .nearest_n::<SquaredEuclidean<f32>>(wanted)
            .execute()
            .iter()
            .map(|n| n.item as usize)
            .filter(|&i| accept(i))
            .take(k)
            .map(|index| Candidate {
                index,
                matched: query.compare(&self.descriptors[index]),
            })
            .collect();
        found.sort_by(|a, b| a.matched.distance.total_cmp(&b.matched.distance));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::overlap::{relative_yaw_deg, transform_points};
    use crate::scan::Pose;
    use nalgebra::Vector3;

    /// A deterministic street-like cloud: ground, two facades, posts of varying height.
    fn scene() -> Vec<[f32; 3]> {
        let mut pts = Vec::new();
        for i in 0..400 {
            let x = -60.0 + 0.3 * i as f32;
            for k in 0..10 {
                pts.push([x, 9.0, -1.7 + 0.8 * k as f32 * (1.0 + (x * 0.05).sin().abs())]);
                pts.push([x, -12.0, -1.7 + 0.5 * k as f32]);
            }
            pts.push([x, (x * 0.1).sin() * 5.0, -1.7]);
        }
        for p in 0..30 {
            let (x, y) = (-50.0 + 3.7 * p as f32, if p % 2 == 0 { 5.0 } else { -7.0 });
            for k in 0..(3 + p % 7) {
                pts.push([x, y, -1.7 + k as f32]);
            }
        }
        pts
    }

    #[test]
    fn the_fast_atan2_is_within_a_thousandth_of_a_degree() {
        for k in 0..3600 {
            let a = (k as f32 * 0.1).to_radians();
            for r in [0.5f32, 7.0, 60.0] {
                let (y, x) = (r * a.sin(), r * a.cos());
                let d = (fast_atan2(y, x) - y.atan2(x)).abs();
                assert!(d.min(std::f32::consts::TAU - d) < 0.001f32.to_radians(), "{a} {d}");
            }
        }
    }

    #[test]
    fn identical_scans_are_at_distance_zero() {
        let a = ScanContext::new(&scene());
        assert_eq!(a.bins.len(), RINGS * SECTORS);
        let m = a.compare(&a.clone());
        assert!(m.distance.abs() < 1e-6, "{m:?}");
        assert_eq!(m.yaw_deg, 0.0);
    }

    #[test]
    fn the_yaw_of_a_rotated_scan_is_recovered() {
        let points = scene();
        let a = ScanContext::new(&points);
        for yaw_deg in [30.0f64, -90.0, 150.0, 63.0] {
            let turned = Pose::new(Vector3::zeros(), Vector3::new(0.0, 0.0, yaw_deg.to_radians()));
            let b = ScanContext::new(&transform_points(&turned.inverse(), &points));
            let m = a.compare(&b);
            let truth = relative_yaw_deg(&Pose::identity(), &turned) as f32;
            assert!(wrap_deg(m.yaw_deg - truth).abs() <= 6.0, "{yaw_deg}: {m:?}");
            // Off the 6-degree grid, points fall into neighbouring sectors: the match is looser.
            let limit = if yaw_deg % 6.0 == 0.0 { 0.1 } else { 0.3 };
            assert!(m.distance < limit, "{m:?}");
            if yaw_deg % 6.0 == 0.0 {
                assert!((a.ring_key.iter().zip(&b.ring_key)).all(|(x, y)| (x - y).abs() < 0.05));
            }
        }
    }

    #[test]
    fn the_index_finds_the_same_place_among_others() {
        let points = scene();
        let shifted = |dx: f32| -> Vec<[f32; 3]> { points.iter().map(|p| [p[0] + dx, p[1] * 1.3, p[2]]).collect() };
        let db = vec![
            ScanContext::new(&shifted(40.0)),
            ScanContext::new(&points),
            ScanContext::new(&shifted(-35.0)),
        ];
        let index = ScanContextIndex::new(db);
        let query = ScanContext::new(&points);
        let found = index.search(&query, 2, |_| true);
        assert_eq!(found[0].index, 1);
        assert!(found[0].matched.distance < 1e-6);
        assert!(index.search(&query, 2, |i| i != 1).iter().all(|c| c.index != 1));
    }
}

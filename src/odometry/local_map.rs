//! KISS-ICP's local map: a voxel hash holding at most N points per voxel, evenly spread, pruned to
//! the neighbourhood of the sensor (Vizzo et al., RA-L 2023, Sec. III-E).

use crate::registration::voxel::{VoxelHasher as Hasher, voxel_key};
use nalgebra::{Matrix3, Point3, Vector3};
use std::collections::HashMap;

type Key = (i32, i32, i32);

/// Points of the local map, bucketed by voxel.
#[derive(Debug, Clone)]
pub struct VoxelHashMap {
    voxel_size: f64,
    max_range: f64,
    max_points_per_voxel: usize,
    /// Points closer than this to one already in the voxel are not added.
    min_spacing_sq: f64,
    voxels: HashMap<Key, Vec<Point3<f64>>, Hasher>,
    /// Voxels not hit by a scan for more than this many updates are dropped (0: never).
    max_age: u64,
    /// Updates so far.
    frame: u64,
    /// The update that last hit each voxel (kept only when `max_age` is set).
    last_seen: HashMap<Key, u64, Hasher>,
}

/// Offsets of the 27 voxels around one, its own first.
const NEIGHBOURS: [(i32, i32, i32); 27] = {
    let mut out = [(0, 0, 0); 27];
    let mut n = 1;
    let mut i = 0;
    while i < 27 {
        let d = (i / 9 - 1, (i / 3) % 3 - 1, i % 3 - 1);
        if !(d.0 == 0 && d.1 == 0 && d.2 == 0) {
            out[n] = d;
            n += 1;
        }
        i += 1;
    }
    out
};

/// The map's points in the 27 voxels around one voxel (see [`VoxelHashMap::neighbourhood`]).
#[derive(Debug, Clone, Copy)]
pub struct Neighbourhood<'a> {
    key: Key,
    voxel_size: f64,
    cells: [&'a [Point3<f64>]; 27],
}

impl Neighbourhood<'_> {
    /// True when `p` lies in the voxel this neighbourhood surrounds.
    pub fn holds(&self, p: &Point3<f64>) -> bool {
        voxel_key(p, self.voxel_size) == self.key
    }

    /// The nearest point to `p` (which must lie in the centre voxel) and its squared distance.
    /// A neighbouring voxel is only searched when its box is nearer than the best point so far.
    pub fn closest(&self, p: &Point3<f64>) -> Option<(Point3<f64>, f64)> {
        let mut best: Option<(Point3<f64>, f64)> = None;
        // Distance from p to the lower and upper face of its own voxel, per axis.
        let v = self.voxel_size;
        let key = self.key;
        let lower = [p.x - key.0 as f64 * v, p.y - key.1 as f64 * v, p.z - key.2 as f64 * v];
        let gap = |axis: usize, step: i32| match step {
            -1 => lower[axis],
            1 => v - lower[axis],
            _ => 0.0,
        };
        for (cell, (dx, dy, dz)) in self.cells.iter().zip(NEIGHBOURS) {
            if cell.is_empty() {
                continue;
            }
            let box_d2 = gap(0, dx).powi(2) + gap(1, dy).powi(2) + gap(2, dz).powi(2);
            if best.is_some_and(|(_, b)| box_d2 >= b) {
                continue;
            }
            for q in cell.iter() {
                let d = (q - p).norm_squared();
                if best.is_none_or(|(_, b)| d < b) {
                    best = Some((*q, d));
                }
            }
        }
        best
    }
}

impl VoxelHashMap {
    /// An empty map; a voxel holds up to `max_points_per_voxel` points at least
    /// `sqrt(voxel_size² / max_points_per_voxel)` apart (KISS-ICP's map resolution).
    pub fn new(voxel_size: f64, max_range: f64, max_points_per_voxel: usize) -> Self {
        let max_points_per_voxel = max_points_per_voxel.max(1);
        Self {
            voxel_size,
            max_range,
            max_points_per_voxel,
            min_spacing_sq: voxel_size * voxel_size / max_points_per_voxel as f64,
            voxels: HashMap::default(),
            max_age: 0,
            frame: 0,
            last_seen: HashMap::default(),
        }
    }

    /// Also drops voxels that no scan has hit for more than `frames` updates (0: never, as
    /// KISS-ICP). Range pruning alone never empties a place the sensor keeps returning to, and
    /// with drift every return paints new voxels: on a long run in one area the map, and memory,
    /// would grow without end.
    pub fn with_max_age(mut self, frames: usize) -> Self {
        self.max_age = frames as u64;
        self
    }

    /// True when the map holds no point.
    pub fn is_empty(&self) -> bool {
        self.voxels.is_empty()
    }

    /// Number of occupied voxels.
    pub fn voxel_count(&self) -> usize {
        self.voxels.len()
    }

    /// Number of points stored.
    pub fn point_count(&self) -> usize {
        self.voxels.values().map(Vec::len).sum()
    }

    /// Adds world-frame points, then drops voxels farther than `max_range` from `origin`.
    pub fn update(&mut self, points: &[Point3<f64>], origin: &Point3<f64>) {
        self.frame += 1;
        for p in points {
            let key = voxel_key(p, self.voxel_size);
            if self.max_age > 0 {
                self.last_seen.insert(key, self.frame);
            }
            let cell = self.voxels.entry(key).or_default();
            if cell.len() < self.max_points_per_voxel
                && cell.iter().all(|q| (q - p).norm_squared() >= self.min_spacing_sq)
            {
                cell.push(*p);
            }
        }
        let max_sq = self.max_range * self.max_range;
        self.voxels
            .retain(|_, pts| pts.first().is_some_and(|q| (q - origin).norm_squared() < max_sq));
        if self.max_age > 0 {
            let (frame, max_age) = (self.frame, self.max_age);
            let seen = &self.last_seen;
            self.voxels
                .retain(|k, _| seen.get(k).is_some_and(|s| frame - s <= max_age));
            let voxels = &self.voxels;
            self.last_seen.retain(|k, _| voxels.contains_key(k));
        }
    }

    /// The nearest map point among the 27 voxels around `p`, with its squared distance.
    pub fn closest(&self, p: &Point3<f64>) -> Option<(Point3<f64>, f64)> {
        self.neighbourhood(p).closest(p)
    }

    /// The 27 voxels around `p`'s voxel. ICP asks for the nearest point of the same source point
    /// a dozen times while it barely moves: keeping its neighbourhood saves the 27 hash lookups
    /// every time the point stays in its voxel.
    pub fn neighbourhood(&self, p: &Point3<f64>) -> Neighbourhood<'_> {
        let key = voxel_key(p, self.voxel_size);
        let mut cells: [&[Point3<f64>]; 27] = [&[]; 27];
        for (cell, (dx, dy, dz)) in cells.iter_mut().zip(NEIGHBOURS) {
            if let Some(pts) = self.voxels.get(&(key.0 + dx, key.1 + dy, key.2 + dz)) {
                *cell = pts;
            }
        }
        Neighbourhood {
            key,
            voxel_size: self.voxel_size,
            cells,
        }
    }

    /// Normal of the surface the map holds in `p`'s voxel, when its points lie on a plane (at
    /// least 5 points, thickness under a third of the next spread); `None` otherwise.
    pub fn surface_normal(&self, p: &Point3<f64>) -> Option<Vector3<f64>> {
        let cell = self.voxels.get(&voxel_key(p, self.voxel_size))?;
        if cell.len() < 5 {
            return None;
        }
        let mean = cell.iter().map(|q| q.coords).sum::<Vector3<f64>>() / cell.len() as f64;
        let cov = cell.iter().fold(Matrix3::zeros(), |acc, q| {
            let d = q.coords - mean;
            acc + d * d.transpose()
        });
        let eigen = cov.symmetric_eigen();
        let mut order = [0, 1, 2];
        order.sort_by(|&a, &b| eigen.eigenvalues[a].total_cmp(&eigen.eigenvalues[b]));
        let (thin, next) = (eigen.eigenvalues[order[0]], eigen.eigenvalues[order[1]]);
        (thin < next / 9.0).then(|| eigen.eigenvectors.column(order[0]).into_owned())
    }

    /// All map points, in voxel-key order (deterministic).
    pub fn points(&self) -> Vec<Point3<f64>> {
        let mut keys: Vec<&Key> = self.voxels.keys().collect();
        keys.sort();
        keys.into_iter().flat_map(|k| self.voxels[k].iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_points_per_voxel_and_prunes_far_voxels() {
        let mut map = VoxelHashMap::new(1.0, 10.0, 4);
        let dense: Vec<Point3<f64>> = (0..100)
            .map(|i| Point3::new(0.01 * i as f64, 0.005 * i as f64, 0.1))
            .collect();
        map.update(&dense, &Point3::origin());
        assert_eq!(map.voxel_count(), 1);
        assert!(map.point_count() <= 4);
        // Points closer than sqrt(1/4) = 0.5 m to a kept one were refused.
        let pts = map.points();
        for (i, a) in pts.iter().enumerate() {
            for b in &pts[i + 1..] {
                assert!((a - b).norm() >= 0.5 - 1e-12);
            }
        }
        map.update(&[Point3::new(50.0, 0.0, 0.0)], &Point3::origin());
        assert_eq!(map.voxel_count(), 1, "the point 50 m away was pruned at once");
        map.update(&[], &Point3::new(30.0, 0.0, 0.0));
        assert!(map.is_empty(), "moving away prunes the old voxels");
    }

    #[test]
    fn voxels_no_scan_hits_age_out() {
        let mut map = VoxelHashMap::new(1.0, 100.0, 20).with_max_age(2);
        let (here, there) = (Point3::new(0.5, 0.5, 0.5), Point3::new(5.5, 0.5, 0.5));
        map.update(&[here, there], &Point3::origin());
        for _ in 0..2 {
            map.update(&[here], &Point3::origin());
            assert_eq!(map.voxel_count(), 2, "hit two updates ago: kept");
        }
        map.update(&[here], &Point3::origin());
        assert_eq!(map.voxel_count(), 1, "three updates without a hit: gone");
        // Off (KISS-ICP's map), nothing ages.
        let mut map = VoxelHashMap::new(1.0, 100.0, 20);
        map.update(&[there], &Point3::origin());
        for _ in 0..10 {
            map.update(&[here], &Point3::origin());
        }
        assert_eq!(map.voxel_count(), 2);
    }

    #[test]
    fn pruned_search_equals_brute_force() {
        let mut state = 3u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0
        };
        let pts: Vec<Point3<f64>> = (0..3000).map(|_| Point3::new(next(), next(), next())).collect();
        let mut map = VoxelHashMap::new(0.7, 100.0, 20);
        map.update(&pts, &Point3::origin());
        let stored = map.points();
        for _ in 0..2000 {
            let q = Point3::new(next(), next(), next());
            let key = voxel_key(&q, 0.7);
            let brute = stored
                .iter()
                .filter(|s| {
                    let k = voxel_key(s, 0.7);
                    (k.0 - key.0).abs() <= 1 && (k.1 - key.1).abs() <= 1 && (k.2 - key.2).abs() <= 1
                })
                .map(|s| (s - q).norm_squared())
                .fold(f64::INFINITY, f64::min);
            let fast = map.closest(&q).map_or(f64::INFINITY, |(_, d)| d);
            assert_eq!(fast, brute);
        }
    }

    #[test]
    fn closest_searches_the_neighbouring_voxels() {
        let mut map = VoxelHashMap::new(1.0, 100.0, 20);
        map.update(
            &[Point3::new(1.2, 0.0, 0.0), Point3::new(3.5, 0.0, 0.0)],
            &Point3::origin(),
        );
        let (q, d2) = map.closest(&Point3::new(0.9, 0.0, 0.0)).unwrap();
        assert_eq!(q, Point3::new(1.2, 0.0, 0.0));
        assert!((d2 - 0.09).abs() < 1e-12);
        assert!(map.closest(&Point3::new(-5.0, 0.0, 0.0)).is_none());
    }
}

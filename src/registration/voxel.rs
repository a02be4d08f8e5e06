//! Voxel-grid downsampling: keep the first point that falls in each cubic voxel.

use nalgebra::Point3;
use rayon::prelude::*;
use std::collections::HashSet;

/// Hashing of voxel keys: fixed-seed (the same layout on every run) and a few nanoseconds a key,
/// which matters at a hundred thousand points a scan.
pub type VoxelHasher = foldhash::fast::FixedState;

/// Integer voxel coordinates of a point.
#[inline]
pub fn voxel_key(p: &Point3<f64>, voxel: f64) -> (i32, i32, i32) {
    (floor_i32(p.x / voxel), floor_i32(p.y / voxel), floor_i32(p.z / voxel))
}

/// `x.floor() as i32` without a call into libm (x86-64's baseline has no rounding instruction,
/// and this runs several times per point per ICP iteration).
#[inline]
fn floor_i32(x: f64) -> i32 {
    let truncated = x as i32;
    truncated - (x < truncated as f64) as i32
}

/// Points per parallel work item of [`voxel_downsample`].
const CHUNK: usize = 16 * 1024;

/// One point per `voxel`-sized cube, the first one met, in input order. Large clouds are split
/// into chunks that each keep their own first points on any core; merging the chunks' survivors
/// in order then gives exactly the sequential result, since a voxel's first point overall is the
/// first in the earliest chunk that holds it.
pub fn voxel_downsample(points: &[Point3<f64>], voxel: f64) -> Vec<Point3<f64>> {
    if points.len() <= CHUNK {
        return first_per_voxel(points, voxel);
    }
    let survivors: Vec<Vec<Point3<f64>>> = points
        .par_chunks(CHUNK)
        .map(|chunk| first_per_voxel(chunk, voxel))
        .collect();
    first_per_voxel(&survivors.concat(), voxel)
}

/// The first point in each voxel, in order.
fn first_per_voxel(points: &[Point3<f64>], voxel: f64) -> Vec<Point3<f64>> {
    let mut seen: HashSet<(i32, i32, i32), VoxelHasher> =
        HashSet::with_capacity_and_hasher(points.len().min(CHUNK) / 4, VoxelHasher::default());
    points
        .iter()
        .filter(|p| seen.insert(voxel_key(p, voxel)))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_floor_like_libm() {
        for x in [
            -2.5,
            -2.0,
            -1e-12,
            0.0,
            1e-12,
            0.999_999,
            1.0,
            3.7,
            -3.7,
            1e6 + 0.5,
            -1e6 - 0.5,
        ] {
            assert_eq!(floor_i32(x), x.floor() as i32, "{x}");
        }
    }

    #[test]
    fn keeps_first_point_per_voxel() {
        let pts = [
            Point3::new(0.1, 0.1, 0.1),
            Point3::new(0.9, 0.2, 0.3),
            Point3::new(1.1, 0.0, 0.0),
            Point3::new(-0.1, 0.0, 0.0),
        ];
        let out = voxel_downsample(&pts, 1.0);
        assert_eq!(out, vec![pts[0], pts[2], pts[3]]);
    }

    #[test]
    fn chunked_downsampling_equals_the_sequential_rule() {
        let mut state = 11u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 40.0 - 20.0
        };
        let pts: Vec<Point3<f64>> = (0..5 * CHUNK + 123)
            .map(|_| Point3::new(next() * 0.25, next() * 0.25, next() * 0.05))
            .collect();
        let mut seen = HashSet::new();
        let sequential: Vec<Point3<f64>> = pts.iter().filter(|p| seen.insert(voxel_key(p, 0.5))).copied().collect();
        assert!(sequential.len() < pts.len() / 2, "voxels shared across chunks");
        assert_eq!(voxel_downsample(&pts, 0.5), sequential);
    }
}

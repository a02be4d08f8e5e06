//! Voxel-grid downsampling: keep the first point that falls in each cubic voxel.

use nalgebra::Point3;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// Integer voxel coordinates of a point.
#[inline]
pub fn voxel_key(p: &Point3<f64>, voxel: f64) -> (i32, i32, i32) {
    (
        (p.x / voxel).floor() as i32,
        (p.y / voxel).floor() as i32,
        (p.z / voxel).floor() as i32,
    )
}

/// One point per `voxel`-sized cube, the first one met, in input order.
pub fn voxel_downsample(points: &[Point3<f64>], voxel: f64) -> Vec<Point3<f64>> {
    let mut seen: HashSet<(i32, i32, i32), BuildHasherDefault<ahash::AHasher>> =
        HashSet::with_capacity_and_hasher(points.len() / 4, Default::default());
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
}

//! Geometric degeneracy of a registration: the directions of motion the scene does not pin down
//! (along a featureless corridor, across an open field). Point-to-point ICP cannot see them in its
//! own Hessian, so the map's local surface normals are used instead: every registered point
//! constrains the motion along its surface normal only. Directions with too little support keep
//! the motion model's value ("solution remapping", Zhang, Kaess & Singh, ICRA 2016).

use super::local_map::VoxelHashMap;
use crate::scan::Pose;
use nalgebra::{Matrix6, Point3, Translation3, UnitQuaternion, Vector3, Vector6};

/// Registered points inspected per frame (evenly strided): enough for a stable estimate, cheap.
const MAX_SAMPLES: usize = 2000;

/// Rotations are measured by how far they move a point this far from the sensor, metres: about
/// the lateral reach of a road's surface, so that the ground alone pins roll and pitch.
const ROTATION_ARM_M: f64 = 5.0;

/// Fewer normals than this and the scene is not judged (the map of the first frames is sparse).
const MIN_NORMALS: usize = 50;

/// A sample supports a direction when moving 1 m along it changes the sample's point-to-plane
/// residual by more than this (surfaces facing within about 78 degrees): robust to the few degrees
/// of noise every estimated normal carries.
const FACING: f64 = 0.2;

/// A direction supported by this many times the degeneracy threshold is trusted fully; between
/// the two, the registration's value is blended with the motion model's in proportion. Wide on
/// purpose: as support fades (entering a tunnel) point-to-point ICP already pulls toward standing
/// still, so trust must fade early (ours: 10; street scenes stay above it).
const FULL_TRUST: f64 = 10.0;

/// How well a registered scan constrains each direction of motion.
#[derive(Debug, Clone)]
pub struct Constraints {
    /// Directions not fully trusted: unit vectors in (translation m, rotation x `scale_m`)
    /// coordinates, sensor frame, each with the share of the registration's value that is kept.
    pub partial: Vec<(Vector6<f64>, f64)>,
    /// Smallest share of samples supporting any direction (1: every sample).
    pub weakest: f64,
    /// True when some direction's support is under the degeneracy threshold.
    pub degenerate: bool,
    /// Length that makes rotations comparable to translations (`ROTATION_ARM_M`).
    pub scale_m: f64,
    /// Samples that found a planar map surface.
    pub normals: usize,
}

impl Constraints {
    /// Analyses `source` (sensor frame) registered at `pose` in `map`. A direction whose support is
    /// below `min_support` is degenerate.
    pub fn analyse(source: &[Point3<f64>], pose: &Pose, map: &VoxelHashMap, min_support: f64) -> Self {
        let stride = source.len().div_ceil(MAX_SAMPLES).max(1);
        let samples: Vec<&Point3<f64>> = source.iter().step_by(stride).collect();
        let scale_m = ROTATION_ARM_M;
        // One row per sample with a surface normal: d(residual) / d(motion).
        let rows: Vec<Vector6<f64>> = samples
            .iter()
            .filter_map(|s| {
                let n = pose.rotation.inverse() * map.surface_normal(&(pose * *s))?;
                let m = s.coords.cross(&n) / scale_m;
                Some(Vector6::new(n.x, n.y, n.z, m.x, m.y, m.z))
            })
            .collect();
        let mut result = Self {
            partial: Vec::new(),
            weakest: 1.0,
            degenerate: false,
            scale_m,
            normals: rows.len(),
        };
        if rows.len() < MIN_NORMALS {
            return result;
        }
        // Principal directions of the normal information, with components under FACING taken as
        // noise: a tunnel's axis then comes out exactly, not blended with its neighbours.
        let info = rows.iter().fold(Matrix6::zeros(), |acc, a| {
            let a = a.map(|v| if v.abs() > FACING { v } else { 0.0 });
            acc + a * a.transpose()
        });
        let eigen = info.symmetric_eigen();
        for d in eigen.eigenvectors.column_iter() {
            let support = rows.iter().filter(|a| a.dot(&d).abs() > FACING).count() as f64 / rows.len() as f64;
            result.weakest = result.weakest.min(support);
            result.degenerate |= support < min_support;
            let trust = ((support - min_support) / ((FULL_TRUST - 1.0) * min_support)).clamp(0.0, 1.0);
            if trust < 1.0 {
                result.partial.push((d.into_owned(), trust));
            }
        }
        result
    }

    /// `estimate` with its departure from `prediction` scaled down along the directions not fully
    /// trusted (to nothing along the unsupported ones).
    pub fn constrain(&self, prediction: &Pose, estimate: &Pose) -> Pose {
        if self.partial.is_empty() {
            return *estimate;
        }
        let d = prediction.inverse() * estimate;
        let (t, r) = (d.translation.vector, d.rotation.scaled_axis() * self.scale_m);
        let mut x = Vector6::new(t.x, t.y, t.z, r.x, r.y, r.z);
        for (dir, trust) in &self.partial {
            x -= dir * (dir.dot(&x) * (1.0 - trust));
        }
        let rotation = Vector3::new(x[3], x[4], x[5]) / self.scale_m;
        prediction
            * Pose::from_parts(
                Translation3::new(x[0], x[1], x[2]),
                UnitQuaternion::from_scaled_axis(rotation),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a floor (z = -1.5) and two walls (y = ±4) of a corridor along x.
    fn corridor(with_end_wall: bool) -> Vec<Point3<f64>> {
        let mut pts = Vec::new();
        for i in 0..200 {
            for j in 0..12 {
                let x = -40.0 + 0.4 * i as f64;
                let h = 0.3 * j as f64;
                pts.push(Point3::new(x, 4.0, h - 1.5));
                pts.push(Point3::new(x, -4.0, h - 1.5));
                pts.push(Point3::new(x, -3.5 + 0.6 * j as f64, -1.5));
            }
        }
        if with_end_wall {
            for j in 0..20 {
                for k in 0..12 {
                    pts.push(Point3::new(30.0, -3.8 + 0.4 * j as f64, -1.4 + 0.3 * k as f64));
                }
            }
        }
        pts
    }

    fn analyse(pts: &[Point3<f64>]) -> Constraints {
        let mut map = VoxelHashMap::new(1.0, 100.0, 20);
        map.update(pts, &Point3::origin());
        Constraints::analyse(pts, &Pose::identity(), &map, 0.005)
    }

    #[test]
    fn a_corridor_leaves_motion_along_its_axis_free() {
        let c = analyse(&corridor(false));
        assert!(c.degenerate && c.weakest == 0.0, "{c:?}");
        let free: Vec<_> = c.partial.iter().filter(|(_, trust)| *trust == 0.0).collect();
        assert_eq!(free.len(), 1, "{c:?}");
        assert!(free[0].0[0].abs() > 0.99, "the free direction is x: {:?}", free[0]);
        // The prediction's x is kept, the registration's y and yaw are.
        let prediction = Pose::new(Vector3::new(1.0, 0.0, 0.0), Vector3::zeros());
        let estimate = Pose::new(Vector3::new(3.0, 0.2, 0.0), Vector3::new(0.0, 0.0, 0.01));
        let fixed = c.constrain(&prediction, &estimate);
        assert!((fixed.translation.x - 1.0).abs() < 0.02, "{fixed:?}");
        assert!((fixed.translation.y - 0.2).abs() < 0.02, "{fixed:?}");
        assert!((fixed.rotation.euler_angles().2 - 0.01).abs() < 1e-3);
    }

    #[test]
    fn an_end_wall_constrains_the_corridor() {
        let c = analyse(&corridor(true));
        assert!(
            !c.degenerate && c.partial.iter().all(|(_, trust)| *trust > 0.0),
            "{c:?}"
        );
    }

    #[test]
    fn an_open_field_leaves_x_y_and_yaw_free() {
        let floor: Vec<Point3<f64>> = (0..200)
            .flat_map(|i| (0..200).map(move |j| Point3::new(-30.0 + 0.3 * i as f64, -30.0 + 0.3 * j as f64, -1.7)))
            .collect();
        let c = analyse(&floor);
        assert!(c.degenerate, "{c:?}");
        assert_eq!(c.partial.iter().filter(|(_, trust)| *trust == 0.0).count(), 3, "{c:?}");
    }
}

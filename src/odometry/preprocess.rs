//! Per-scan preprocessing before registration: motion compensation (deskew) from per-point
//! timestamps, KITTI's vertical correction, and the range crop.

use crate::scan::{Pose, Scan};
use nalgebra::{Point3, Unit, UnitQuaternion, Vector3};

/// Elevation error of KITTI's HDL-64E scans, 0.205 degrees: KISS-ICP (Vizzo et al., RA-L 2023)
/// lifts every KITTI point by this angle to undo a calibration bias of the dataset.
pub const KITTI_VERTICAL_CORRECTION_RAD: f64 = 0.205 * std::f64::consts::PI / 180.0;

/// The fraction `s` of a rigid motion: rotation angle and translation both scaled by `s`
/// (constant velocity; exact for the rotation, first order for the coupling).
pub fn scale_motion(motion: &Pose, s: f64) -> Pose {
    Pose::from_parts(
        (motion.translation.vector * s).into(),
        UnitQuaternion::from_scaled_axis(motion.rotation.scaled_axis() * s),
    )
}

/// Points of `scan` as f64, each moved to where it would have been seen `reference_s` seconds
/// after the scan's timestamp, assuming the sensor moved by `frame_motion` over `frame_period_s`
/// at constant velocity. Scans without per-point times are returned unchanged.
pub fn deskew(scan: &Scan, frame_motion: &Pose, frame_period_s: f64, reference_s: f64) -> Vec<Point3<f64>> {
    let points = scan.points_f64();
    let Some(times) = &scan.point_time else { return points };
    if frame_period_s <= 0.0 {
        return points;
    }
    points
        .iter()
        .zip(times)
        .map(|(p, t)| scale_motion(frame_motion, (*t as f64 - reference_s) / frame_period_s) * p)
        .collect()
}

/// Lifts each point by [`KITTI_VERTICAL_CORRECTION_RAD`] about the horizontal axis
/// perpendicular to it.
pub fn kitti_vertical_correction(points: &mut [Point3<f64>]) {
    for p in points.iter_mut() {
        let axis = p.coords.cross(&Vector3::z());
        if let Some(axis) = Unit::try_new(axis, 1e-9) {
            *p = UnitQuaternion::from_axis_angle(&axis, KITTI_VERTICAL_CORRECTION_RAD) * *p;
        }
    }
}

/// Keeps points with `min_range < |p| < max_range`.
pub fn crop(points: Vec<Point3<f64>>, min_range: f64, max_range: f64) -> Vec<Point3<f64>> {
    points
        .into_iter()
        .filter(|p| (p.coords.norm() > min_range) && p.coords.norm() < max_range)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deskew_moves_late_points_by_the_elapsed_motion() {
        let scan = Scan {
            points: vec![[10.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
            intensity: vec![0.0; 2],
            point_time: Some(vec![0.0, 0.05]),
            ..Default::default()
        };
        let motion = Pose::new(Vector3::new(1.0, 0.0, 0.0), Vector3::zeros());
        let out = deskew(&scan, &motion, 0.1, 0.0);
        assert!((out[0].x - 10.0).abs() < 1e-12);
        // Seen half a frame later, 0.5 m further along: in the start frame it is at 10.5 m.
        assert!((out[1].x - 10.5).abs() < 1e-6, "f32 times");
        // In the frame of mid-sweep, the first point sits 0.5 m behind and the second in place.
        let mid = deskew(&scan, &motion, 0.1, 0.05);
        assert!((mid[0].x - 9.5).abs() < 1e-6 && (mid[1].x - 10.0).abs() < 1e-6);
    }

    #[test]
    fn vertical_correction_raises_elevation_by_the_kitti_angle() {
        let mut pts = vec![Point3::new(20.0, 0.0, 0.0), Point3::new(0.0, -5.0, -1.0)];
        kitti_vertical_correction(&mut pts);
        let elevation = |p: &Point3<f64>| p.z.atan2(p.x.hypot(p.y));
        assert!((elevation(&pts[0]) - KITTI_VERTICAL_CORRECTION_RAD).abs() < 1e-12);
        assert!((elevation(&pts[1]) - ((-1.0f64).atan2(5.0) + KITTI_VERTICAL_CORRECTION_RAD)).abs() < 1e-12);
        assert!((pts[1].coords.norm() - 26f64.sqrt()).abs() < 1e-12, "ranges are kept");
    }
}

//! Per-scan preprocessing before registration: motion compensation (deskew) from per-point
//! timestamps, KITTI's vertical correction, and the range crop.

use crate::scan::Pose;
#[cfg(test)]
use crate::scan::Scan;
use nalgebra::{Point3, UnitQuaternion};

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

/// Deskew moves a point by the motion at its time, looked up in this many steps across the
/// sweep (at 30 m/s and 10 Hz a step is 12 mm of travel; the lookup rounds to the nearest).
const DESKEW_STEPS: usize = 256;

/// Points moved to where they would have been seen `reference_s` seconds after the scan's
/// timestamp, given their times (seconds after the timestamp) and the sensor's motion
/// `frame_motion` over `frame_period_s`, assumed constant.
pub fn deskew(
    points: &[[f32; 3]],
    times: &[f32],
    frame_motion: &Pose,
    frame_period_s: f64,
    reference_s: f64,
) -> Vec<Point3<f64>> {
    let as_f64 = |p: &[f32; 3]| Point3::new(p[0] as f64, p[1] as f64, p[2] as f64);
    if frame_period_s <= 0.0 || times.len() != points.len() || points.is_empty() {
        return points.iter().map(as_f64).collect();
    }
    let (lo, hi) = times.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(*t), hi.max(*t))
    });
    let (lo, span) = (lo as f64, ((hi - lo) as f64).max(1e-9));
    let table: Vec<Pose> = (0..=DESKEW_STEPS)
        .map(|k| {
            let t = lo + span * k as f64 / DESKEW_STEPS as f64;
            scale_motion(frame_motion, (t - reference_s) / frame_period_s)
        })
        .collect();
    points
        .iter()
        .zip(times)
        .map(|(p, t)| {
            let k = (((*t as f64 - lo) / span) * DESKEW_STEPS as f64).round() as usize;
            table[k.min(DESKEW_STEPS)] * as_f64(p)
        })
        .collect()
}

/// Times for points that have none, from their azimuth: a clockwise turn over `period_s` that
/// starts and ends behind the sensor, facing forward at the scan's timestamp (KITTI's HDL-64E:
/// scans are cut behind the car, the cameras fire as it faces forward).
pub fn azimuth_times(points: &[[f32; 3]], period_s: f64) -> Vec<f32> {
    points
        .iter()
        .map(|p| 0.5 * (-(p[1].atan2(p[0])) / std::f32::consts::PI) * period_s as f32)
        .collect()
}

/// The middle of the time span of `times` (0 when empty).
pub fn mid_sweep_s(times: &[f32]) -> f64 {
    let (lo, hi) = times.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), t| {
        (lo.min(*t), hi.max(*t))
    });
    if lo.is_finite() { 0.5 * (lo + hi) as f64 } else { 0.0 }
}

/// Lifts each point by [`KITTI_VERTICAL_CORRECTION_RAD`] about the horizontal axis
/// perpendicular to it.
pub fn kitti_vertical_correction(points: &mut [Point3<f64>]) {
    let (sin, cos) = KITTI_VERTICAL_CORRECTION_RAD.sin_cos();
    for p in points.iter_mut() {
        // Rotate within the vertical plane through the point: (h, z) turns by the angle.
        let h = p.x.hypot(p.y);
        if h < 1e-9 {
            continue;
        }
        let (h2, z2) = (h * cos - p.z * sin, h * sin + p.z * cos);
        *p = Point3::new(p.x * h2 / h, p.y * h2 / h, z2);
    }
}

/// Keeps points with `min_range < |p| < max_range`.
pub fn crop(points: Vec<Point3<f64>>, min_range: f64, max_range: f64) -> Vec<Point3<f64>> {
    points
        .into_iter()
        .filter(|p| {
            let r = p.coords.norm();
            r > min_range && r < max_range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn deskew_moves_late_points_by_the_elapsed_motion() {
        let scan = Scan {
            points: vec![[10.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
            intensity: vec![0.0; 2],
            point_time: Some(vec![0.0, 0.05]),
            ..Default::default()
        };
        let motion = Pose::new(Vector3::new(1.0, 0.0, 0.0), Vector3::zeros());
        let times = scan.point_time.as_ref().unwrap();
        let out = deskew(&scan.points, times, &motion, 0.1, 0.0);
        assert!((out[0].x - 10.0).abs() < 1e-12);
        // Seen half a frame later, 0.5 m further along: in the start frame it is at 10.5 m.
        assert!((out[1].x - 10.5).abs() < 1e-6, "f32 times");
        // In the frame of mid-sweep, the first point sits 0.5 m behind and the second in place.
        let mid = deskew(&scan.points, times, &motion, 0.1, 0.05);
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

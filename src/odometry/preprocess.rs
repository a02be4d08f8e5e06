//! Per-scan preprocessing before registration: motion compensation (deskew) from per-point
//! timestamps, KITTI's vertical correction, and the range crop.

use crate::scan::Pose;
#[cfg(test)]
use crate::scan::Scan;
use nalgebra::{Matrix3, Point3, UnitQuaternion, Vector3};
use rayon::prelude::*;

/// Elevation error of KITTI's HDL-64E scans, 0.205 degrees: KISS-ICP (Vizzo et al., RA-L 2023)
/// lifts every KITTI point by this angle to undo a calibration bias of the dataset.
pub const KITTI_VERTICAL_CORRECTION_RAD: f64 = 0.205 * std::f64::consts::PI / 180.0;

/// The fraction `s` of a rigid motion at constant body velocity: the screw motion exp(s·log M) on
/// SE(3), so a car turning at a steady rate stays on its arc (KISS-ICP interpolates the same way).
pub fn scale_motion(motion: &Pose, s: f64) -> Pose {
    let (v, w) = se3_log(motion);
    se3_exp(&(v * s), &(w * s))
}

/// The twist (translational part, rotation vector) whose exponential is `motion`.
fn se3_log(motion: &Pose) -> (Vector3<f64>, Vector3<f64>) {
    let w = motion.rotation.scaled_axis();
    let theta = w.norm();
    let wx = w.cross_matrix();
    // V⁻¹ = I - W/2 + c·W², with c = (1 - θ sinθ / (2(1 - cosθ))) / θ² (1/12 as θ → 0).
    let c = if theta < 1e-6 {
        1.0 / 12.0
    } else {
        (1.0 - theta * theta.sin() / (2.0 * (1.0 - theta.cos()))) / (theta * theta)
    };
    let v_inv = Matrix3::identity() - wx * 0.5 + wx * wx * c;
    (v_inv * motion.translation.vector, w)
}

/// The rigid motion exp(v, w) of a twist.
fn se3_exp(v: &Vector3<f64>, w: &Vector3<f64>) -> Pose {
    let theta = w.norm();
    let wx = w.cross_matrix();
    // V = I + a·W + b·W², a = (1 - cosθ)/θ², b = (θ - sinθ)/θ³ (1/2 and 1/6 as θ → 0).
    let (a, b) = if theta < 1e-6 {
        (0.5, 1.0 / 6.0)
    } else {
        let t2 = theta * theta;
        ((1.0 - theta.cos()) / t2, (theta - theta.sin()) / (t2 * theta))
    };
    let v_mat = Matrix3::identity() + wx * a + wx * wx * b;
    Pose::from_parts((v_mat * v).into(), UnitQuaternion::from_scaled_axis(*w))
}

/// Deskew moves a point by the motion at its time, looked up in this many steps across the
/// sweep (at 30 m/s and 10 Hz a step is 3 mm of travel; the lookup rounds to the nearest).
const DESKEW_STEPS: usize = 1024;

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
    if frame_period_s <= 0.0 || times.len() != points.len() || points.is_empty() {
        return points.par_iter().map(as_f64).collect();
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
        .par_iter()
        .zip(times)
        .map(|(p, t)| {
            let k = (((*t as f64 - lo) / span) * DESKEW_STEPS as f64).round() as usize;
            table[k.min(DESKEW_STEPS)] * as_f64(p)
        })
        .collect()
}

/// A stored point in double precision.
fn as_f64(p: &[f32; 3]) -> Point3<f64> {
    Point3::new(p[0] as f64, p[1] as f64, p[2] as f64)
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

/// `p` lifted by the angle whose sine and cosine are given, about the horizontal axis
/// perpendicular to it: (horizontal distance, height) turns within the point's vertical plane.
fn lift(p: Point3<f64>, sin: f64, cos: f64) -> Point3<f64> {
    let h = (p.x * p.x + p.y * p.y).sqrt();
    if h < 1e-9 {
        return p;
    }
    let (h2, z2) = (h * cos - p.z * sin, h * sin + p.z * cos);
    Point3::new(p.x * h2 / h, p.y * h2 / h, z2)
}

/// What registration works on: the scan's points (or their deskewed copy), lifted by
/// [`KITTI_VERTICAL_CORRECTION_RAD`] when `kitti` is set, kept where `min_range < |p| < max_range`. Runs on
/// every core and keeps the points' order.
pub fn prepare(
    points: &[[f32; 3]],
    deskewed: Option<Vec<Point3<f64>>>,
    kitti: bool,
    min_range: f64,
    max_range: f64,
) -> Vec<Point3<f64>> {
    let (sin, cos) = KITTI_VERTICAL_CORRECTION_RAD.sin_cos();
    let (min_sq, max_sq) = (min_range * min_range, max_range * max_range);
    let finish = |p: Point3<f64>| {
        let p = if kitti { lift(p, sin, cos) } else { p };
        let r2 = p.coords.norm_squared();
        (r2 > min_sq && r2 < max_sq).then_some(p)
    };
    match deskewed {
        Some(d) => d.into_par_iter().filter_map(finish).collect(),
        None => points.par_iter().map(as_f64).filter_map(finish).collect(),
    }
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
    fn scaled_motion_stays_on_the_arc_of_a_steady_turn() {
        // A car turning 0.2 rad while driving 1 m of arc (radius 5 m): halfway it has turned
        // 0.1 rad and sits on the same circle.
        let (theta, radius) = (0.2f64, 5.0);
        let on_arc = |a: f64| {
            Pose::new(
                Vector3::new(radius * a.sin(), radius * (1.0 - a.cos()), 0.0),
                Vector3::new(0.0, 0.0, a),
            )
        };
        let half = scale_motion(&on_arc(theta), 0.5);
        let truth = on_arc(theta / 2.0);
        assert!(
            (half.translation.vector - truth.translation.vector).norm() < 1e-12,
            "{half:?}"
        );
        assert!((half.rotation.angle() - theta / 2.0).abs() < 1e-12);
        let back = scale_motion(&on_arc(theta), -1.0);
        assert!((back.translation.vector - on_arc(theta).inverse().translation.vector).norm() < 1e-12);
        // A pure translation scales linearly, and tiny rotations take the series branch.
        let tiny = Pose::new(Vector3::new(1.0, 2.0, 0.5), Vector3::new(0.0, 1e-9, 0.0));
        assert!((scale_motion(&tiny, 0.25).translation.vector - Vector3::new(0.25, 0.5, 0.125)).norm() < 1e-9);
    }

    #[test]
    fn prepare_corrects_and_crops_in_order() {
        let pts = [
            [0.5f32, 0.0, 0.0],
            [20.0, 0.0, 0.0],
            [0.0, -5.0, -1.0],
            [150.0, 0.0, 0.0],
        ];
        let out = prepare(&pts, None, true, 1.0, 100.0);
        assert_eq!(out.len(), 2, "too near and too far are dropped");
        assert!((out[0].z - 20.0 * KITTI_VERTICAL_CORRECTION_RAD.sin()).abs() < 1e-9);
        assert!(out[1].y < 0.0);
    }

    #[test]
    fn vertical_correction_raises_elevation_by_the_kitti_angle() {
        let pts = prepare(&[[20.0, 0.0, 0.0], [0.0, -5.0, -1.0]], None, true, 0.0, f64::INFINITY);
        let elevation = |p: &Point3<f64>| p.z.atan2(p.x.hypot(p.y));
        assert!((elevation(&pts[0]) - KITTI_VERTICAL_CORRECTION_RAD).abs() < 1e-12);
        assert!((elevation(&pts[1]) - ((-1.0f64).atan2(5.0) + KITTI_VERTICAL_CORRECTION_RAD)).abs() < 1e-12);
        assert!((pts[1].coords.norm() - 26f64.sqrt()).abs() < 1e-12, "ranges are kept");
    }
}

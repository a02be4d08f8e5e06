//! Trajectory accuracy: absolute trajectory error after SE(3) alignment, and frame-to-frame
//! relative pose error (DESIGN.md §4).

use crate::error::{Error, Result};
use crate::io::poses::read_trajectory;
use crate::scan::Pose;
use nalgebra::{Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use serde::Serialize;
use std::path::Path;

/// Every trajectory figure overlap-slam reports, as `eval` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct TrajectoryReport {
    /// Poses compared.
    pub frames: usize,
    /// The figures.
    #[serde(flatten)]
    pub accuracy: Accuracy,
}

/// Accuracy of a trajectory against ground truth; every figure is `None` where it cannot be
/// computed (no ground truth, or too short a path).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Accuracy {
    /// Absolute trajectory error after SE(3) alignment, metres.
    pub ate_rmse_m: Option<f64>,
    /// Frame-to-frame translation error, percent of distance.
    pub rpe_trans_pct: Option<f64>,
    /// Frame-to-frame rotation error, degrees per metre.
    pub rpe_rot_deg_per_m: Option<f64>,
    /// KITTI devkit translation error, percent (null under 100 m of path).
    pub t_rel_pct: Option<f64>,
    /// KITTI devkit rotation error, degrees per 100 m (null under 100 m of path).
    pub r_rel_deg_per_100m: Option<f64>,
}

/// All figures for an estimate against ground truth (same length, same order).
pub fn evaluate(est: &[Pose], gt: &[Pose]) -> TrajectoryReport {
    let rpe = rpe(est, gt);
    let kitti = kitti_relative_error(est, gt);
    TrajectoryReport {
        frames: est.len().min(gt.len()),
        accuracy: Accuracy {
            ate_rmse_m: ate_rmse(est, gt),
            rpe_trans_pct: rpe.map(|r| r.trans_pct),
            rpe_rot_deg_per_m: rpe.map(|r| r.rot_deg_per_m),
            t_rel_pct: kitti.map(|k| k.t_rel_pct),
            r_rel_deg_per_100m: kitti.map(|k| k.r_rel_deg_per_100m),
        },
    }
}

/// Largest timestamp difference for two TUM poses to be matched, seconds.
const TUM_MATCH_S: f64 = 0.02;

/// Reads two trajectory files and evaluates them: KITTI files pair up line by line (the
/// estimate may be shorter), TUM files by nearest timestamp. With `calib` (a KITTI calib.txt),
/// both are camera-frame poses and are scored in the LiDAR frame.
pub fn evaluate_files(gt_path: &Path, est_path: &Path, tum: bool, calib: Option<&Path>) -> Result<TrajectoryReport> {
    let mut gt = read_trajectory(gt_path)?;
    let mut est = read_trajectory(est_path)?;
    if let Some(c) = calib {
        let tr = crate::io::kitti::read_calib_tr(c)?;
        gt.poses = crate::io::kitti::camera_to_lidar_poses(&gt.poses, &tr);
        est.poses = crate::io::kitti::camera_to_lidar_poses(&est.poses, &tr);
    }
    let (e, g): (Vec<Pose>, Vec<Pose>) = if tum {
        let (Some(gs), Some(es)) = (&gt.stamps, &est.stamps) else {
            let which = if gt.stamps.is_none() { gt_path } else { est_path };
            return Err(Error::input(which, "not a TUM trajectory (8 columns with timestamps)"));
        };
        es.iter()
            .zip(&est.poses)
            .filter_map(|(t, p)| {
                let k = gs.partition_point(|s| s < t);
                [k.saturating_sub(1), k.min(gs.len() - 1)]
                    .into_iter()
                    .min_by(|a, b| (gs[*a] - t).abs().total_cmp(&(gs[*b] - t).abs()))
                    .filter(|j| (gs[*j] - t).abs() <= TUM_MATCH_S)
                    .map(|j| (*p, gt.poses[j]))
            })
            .unzip()
    } else {
        if est.poses.len() > gt.poses.len() {
            return Err(Error::input(
                est_path,
                format!(
                    "{} poses but the ground truth has only {}",
                    est.poses.len(),
                    gt.poses.len()
                ),
            ));
        }
        (est.poses.clone(), gt.poses[..est.poses.len()].to_vec())
    };
    if e.is_empty() {
        return Err(Error::input(est_path, "no pose matches the ground truth"));
    }
    Ok(evaluate(&e, &g))
}

/// Rigid transform that best maps `est` positions onto `gt` positions (Umeyama/Horn, no scale).
pub fn align_se3(est: &[Vector3<f64>], gt: &[Vector3<f64>]) -> Pose {
    let n = est.len().min(gt.len());
    if n == 0 {
        return Pose::identity();
    }
    let mean_e = est[..n].iter().sum::<Vector3<f64>>() / n as f64;
    let mean_g = gt[..n].iter().sum::<Vector3<f64>>() / n as f64;
    let cov = est[..n].iter().zip(&gt[..n]).fold(Matrix3::zeros(), |a, (e, g)| {
        a + (g - mean_g) * (e - mean_e).transpose()
    }) / n as f64;
    let svd = cov.svd(true, true);
    let (u, v_t) = (svd.u.expect("requested"), svd.v_t.expect("requested"));
    let mut s = Matrix3::identity();
    if (u * v_t).determinant() < 0.0 {
        s[(2, 2)] = -1.0;
    }
    let r = u * s * v_t;
    let rot = UnitQuaternion::from_rotation_matrix(&Rotation3::from_matrix_unchecked(r));
    let t = mean_g - rot * mean_e;
    Pose::from_parts(Translation3::from(t), rot)
}

/// RMSE of positions after aligning `est` to `gt` (metres); `None` when there is nothing to compare.
pub fn ate_rmse(est: &[Pose], gt: &[Pose]) -> Option<f64> {
    let n = est.len().min(gt.len());
    if n == 0 {
        return None;
    }
    let e: Vec<Vector3<f64>> = est[..n].iter().map(|p| p.translation.vector).collect();
    let g: Vec<Vector3<f64>> = gt[..n].iter().map(|p| p.translation.vector).collect();
    let align = align_se3(&e, &g);
    let sse: f64 = e
        .iter()
        .zip(&g)
        .map(|(e, g)| (align * nalgebra::Point3::from(*e) - nalgebra::Point3::from(*g)).norm_squared())
        .sum();
    Some((sse / n as f64).sqrt())
}

/// Frame-to-frame relative pose error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RelativeError {
    /// Translation error as a percentage of distance travelled.
    pub trans_pct: f64,
    /// Rotation error in degrees per metre travelled.
    pub rot_deg_per_m: f64,
}

/// Relative pose error over consecutive frames; `None` when the ground truth does not move.
pub fn rpe(est: &[Pose], gt: &[Pose]) -> Option<RelativeError> {
    let n = est.len().min(gt.len());
    let (mut dist, mut terr, mut rerr) = (0.0, 0.0, 0.0);
    for i in 1..n {
        let dg = gt[i - 1].inverse() * gt[i];
        let de = est[i - 1].inverse() * est[i];
        let e = dg.inverse() * de;
        dist += dg.translation.vector.norm();
        terr += e.translation.vector.norm();
        rerr += e.rotation.angle().to_degrees();
    }
    (dist > 1e-9).then(|| RelativeError {
        trans_pct: 100.0 * terr / dist,
        rot_deg_per_m: rerr / dist,
    })
}

/// KITTI odometry devkit segment lengths, metres.
pub const KITTI_SEGMENTS_M: [f64; 8] = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0];
/// The devkit starts a segment every this many frames.
pub const KITTI_SEGMENT_STEP: usize = 10;

/// KITTI relative error averaged over all segments (DESIGN.md §4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KittiError {
    /// Translation error, percent.
    pub t_rel_pct: f64,
    /// Rotation error, degrees per 100 m.
    pub r_rel_deg_per_100m: f64,
    /// Segments averaged.
    pub segments: usize,
}

/// The KITTI devkit's relative error; `None` when no 100 m segment fits in the ground truth.
pub fn kitti_relative_error(est: &[Pose], gt: &[Pose]) -> Option<KittiError> {
    let n = est.len().min(gt.len());
    let mut dist = vec![0.0; n];
    for i in 1..n {
        dist[i] = dist[i - 1] + (gt[i].translation.vector - gt[i - 1].translation.vector).norm();
    }
    let (mut t_sum, mut r_sum, mut count) = (0.0, 0.0, 0usize);
    for first in (0..n).step_by(KITTI_SEGMENT_STEP) {
        for len in KITTI_SEGMENTS_M {
            let Some(last) = (first..n).find(|&j| dist[j] > dist[first] + len) else {
                continue;
            };
            let delta_gt = gt[first].inverse() * gt[last];
            let delta_est = est[first].inverse() * est[last];
            let error = delta_est.inverse() * delta_gt;
            t_sum += error.translation.vector.norm() / len;
            r_sum += error.rotation.angle() / len;
            count += 1;
        }
    }
    (count > 0).then(|| KittiError {
        t_rel_pct: 100.0 * t_sum / count as f64,
        r_rel_deg_per_100m: (r_sum / count as f64).to_degrees() * 100.0,
        segments: count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(n: usize, step: f64) -> Vec<Pose> {
        (0..n)
            .map(|i| Pose::new(Vector3::new(i as f64 * step, 0.0, 0.0), Vector3::zeros()))
            .collect()
    }

    #[test]
    fn identical_trajectories_score_zero() {
        let t = line(20, 1.0);
        assert!(ate_rmse(&t, &t).unwrap() < 1e-12);
        let r = rpe(&t, &t).unwrap();
        assert!(r.trans_pct < 1e-12 && r.rot_deg_per_m < 1e-12);
    }

    #[test]
    fn a_rigid_offset_is_aligned_away() {
        let gt = line(20, 1.0);
        let moved = Pose::new(Vector3::new(5.0, -3.0, 1.0), Vector3::new(0.0, 0.0, 0.7));
        let est: Vec<Pose> = gt.iter().map(|p| moved * p).collect();
        assert!(ate_rmse(&est, &gt).unwrap() < 1e-9);
    }

    #[test]
    fn known_errors_give_known_figures() {
        // Offsets +,-,-,+ 0.1 m sideways have zero mean and no correlation with the path, so
        // alignment cannot remove them: the ATE is exactly 0.1 m.
        let gt4 = line(4, 1.0);
        let est: Vec<Pose> = gt4
            .iter()
            .zip([0.1, -0.1, -0.1, 0.1])
            .map(|(p, dy)| Pose::new(p.translation.vector + Vector3::new(0.0, dy, 0.0), Vector3::zeros()))
            .collect();
        assert!((ate_rmse(&est, &gt4).unwrap() - 0.1).abs() < 1e-9);
        let gt = line(11, 1.0);
        // Each step 2 % too long: RPE translation is 2 %.
        let long = line(11, 1.02);
        assert!((rpe(&long, &gt).unwrap().trans_pct - 2.0).abs() < 1e-9);
    }

    #[test]
    fn kitti_error_of_a_known_drift() {
        // 300 m straight at 1 m a frame; the estimate runs 1 % long. A segment ends at the first
        // frame beyond start + len (101 m for len 100) but the devkit divides by len, so t_rel is
        // (20 * 1.01 + 10 * 1.005) / 30 percent.
        let gt = line(301, 1.0);
        let est = line(301, 1.01);
        let e = kitti_relative_error(&est, &gt).unwrap();
        assert!(
            (e.t_rel_pct - (20.0 * 1.01 + 10.0 * 1.005) / 30.0).abs() < 1e-9,
            "{e:?}"
        );
        assert!(e.r_rel_deg_per_100m.abs() < 1e-9);
        // Segments of 100 m start every 10 frames while a frame lies beyond start + len.
        assert_eq!(e.segments, 30, "20 segments of 100 m and 10 of 200 m");
        // A constant yaw rate error of 0.01 degree a frame: 1 degree per 100 m.
        let turning: Vec<Pose> = (0..301)
            .map(|i| {
                Pose::new(
                    Vector3::new(i as f64, 0.0, 0.0),
                    Vector3::new(0.0, 0.0, (0.01 * i as f64).to_radians()),
                )
            })
            .collect();
        let r = kitti_relative_error(&turning, &gt).unwrap();
        assert!((r.r_rel_deg_per_100m - 1.0).abs() < 0.02, "{r:?}");
        assert!(
            kitti_relative_error(&line(50, 1.0), &line(50, 1.0)).is_none(),
            "under 100 m: none"
        );
    }
}

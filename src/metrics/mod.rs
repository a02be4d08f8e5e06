//! Trajectory accuracy: absolute trajectory error after SE(3) alignment, and frame-to-frame
//! relative pose error (DESIGN.md §4).

use crate::scan::Pose;
use nalgebra::{Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};

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
}

//! The few SE(3) Lie-group maps a pose graph needs. Twists are ordered (translation ρ, rotation φ)
//! and act on the right: `T · Exp(ξ)` perturbs `T` in its own frame.

use crate::scan::Pose;
use nalgebra::{Matrix3, Matrix6, Translation3, UnitQuaternion, Vector3, Vector6};

/// Below this rotation angle (radians) the closed forms switch to their Taylor series.
const SMALL_ANGLE: f64 = 1e-6;

/// `Exp`: the pose a twist moves to from the identity.
pub fn exp(xi: &Vector6<f64>) -> Pose {
    let rho = xi.fixed_rows::<3>(0).into_owned();
    let phi = xi.fixed_rows::<3>(3).into_owned();
    let rotation = UnitQuaternion::from_scaled_axis(phi);
    Pose::from_parts(Translation3::from(left_jacobian(&phi) * rho), rotation)
}

/// `Log`: the twist that reaches `pose` from the identity.
pub fn log(pose: &Pose) -> Vector6<f64> {
    let phi = pose.rotation.scaled_axis();
    let rho = left_jacobian_inverse(&phi) * pose.translation.vector;
    let mut xi = Vector6::zeros();
    xi.fixed_rows_mut::<3>(0).copy_from(&rho);
    xi.fixed_rows_mut::<3>(3).copy_from(&phi);
    xi
}

/// The adjoint `Ad(T)`, which carries a twist from `T`'s frame to its parent's:
/// `T · Exp(ξ) · T⁻¹ = Exp(Ad(T) ξ)`.
pub fn adjoint(pose: &Pose) -> Matrix6<f64> {
    let r = pose.rotation.to_rotation_matrix().into_inner();
    let t = pose.translation.vector.cross_matrix();
    let mut ad = Matrix6::zeros();
    ad.fixed_view_mut::<3, 3>(0, 0).copy_from(&r);
    ad.fixed_view_mut::<3, 3>(0, 3).copy_from(&(t * r));
    ad.fixed_view_mut::<3, 3>(3, 3).copy_from(&r);
    ad
}

/// First-order inverse of the right Jacobian, `I + ad(ξ)/2`: how a small right perturbation of a
/// pose moves its `Log`.
pub fn right_jacobian_inverse(xi: &Vector6<f64>) -> Matrix6<f64> {
    let rho = xi.fixed_rows::<3>(0).cross_matrix();
    let phi = xi.fixed_rows::<3>(3).cross_matrix();
    let mut ad = Matrix6::zeros();
    ad.fixed_view_mut::<3, 3>(0, 0).copy_from(&phi);
    ad.fixed_view_mut::<3, 3>(0, 3).copy_from(&rho);
    ad.fixed_view_mut::<3, 3>(3, 3).copy_from(&phi);
    Matrix6::identity() + ad * 0.5
}

/// The SO(3) left Jacobian `V(φ)`, which maps ρ to the translation of `Exp`.
fn left_jacobian(phi: &Vector3<f64>) -> Matrix3<f64> {
    let theta = phi.norm();
    let k = phi.cross_matrix();
    let (a, b) = if theta < SMALL_ANGLE {
        (0.5, 1.0 / 6.0)
    } else {
        let t2 = theta * theta;
        ((1.0 - theta.cos()) / t2, (theta - theta.sin()) / (t2 * theta))
    };
    Matrix3::identity() + k * a + k * k * b
}

/// The inverse of [`left_jacobian`].
fn left_jacobian_inverse(phi: &Vector3<f64>) -> Matrix3<f64> {
    let theta = phi.norm();
    let k = phi.cross_matrix();
    let c = if theta < SMALL_ANGLE {
        1.0 / 12.0
    } else {
        let half = 0.5 * theta;
        (1.0 - half * half.cos() / half.sin()) / (theta * theta)
    };
    Matrix3::identity() - k * 0.5 + k * k * c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twist(v: [f64; 6]) -> Vector6<f64> {
        Vector6::from_row_slice(&v)
    }

    #[test]
    fn log_inverts_exp() {
        for v in [
            [0.0; 6],
            [1.0, -2.0, 0.5, 0.0, 0.0, 0.0],
            [0.3, 0.1, -0.2, 0.1, -0.4, 1.2],
            [5.0, 1.0, 0.0, 0.0, 0.0, 3.0],
            [0.0, 0.0, 1e-3, 1e-8, 0.0, 0.0],
        ] {
            let xi = twist(v);
            assert!((log(&exp(&xi)) - xi).norm() < 1e-9, "{v:?}");
        }
    }

    #[test]
    fn adjoint_moves_a_twist_between_frames() {
        let t = exp(&twist([1.0, 2.0, -0.5, 0.2, -0.1, 0.7]));
        let xi = twist([0.01, -0.02, 0.03, 0.002, 0.001, -0.003]);
        let lhs = t * exp(&xi) * t.inverse();
        let rhs = exp(&(adjoint(&t) * xi));
        assert!((log(&(lhs.inverse() * rhs))).norm() < 1e-12);
    }

    #[test]
    fn right_jacobian_inverse_predicts_the_log_of_a_perturbed_pose() {
        let e = twist([0.2, -0.1, 0.05, 0.05, 0.02, -0.1]);
        let d = twist([1e-4, -2e-4, 1e-4, 3e-5, -1e-5, 2e-5]);
        let moved = log(&(exp(&e) * exp(&d)));
        let predicted = (e + right_jacobian_inverse(&e) * d - moved).norm();
        let naive = (e + d - moved).norm();
        // First order in |e|: the error left is O(|e|^2 |d|), a few per cent of |d| here.
        assert!(
            predicted < 0.1 * naive && predicted < 0.01 * d.norm(),
            "{predicted} vs {naive}"
        );
    }
}

//! The back-end: an SE(3) pose graph over keyframes, odometry edges between consecutive keyframes
//! and loop edges where a verified loop closes, optimised by Levenberg–Marquardt with a sparse
//! Cholesky solver (nalgebra-sparse) in reverse Cuthill–McKee order.

pub mod backend;
pub mod se3;

mod ordering;
mod pose_graph;

pub use backend::{Backend, BackendConfig};
pub use pose_graph::{Edge, GraphError, PoseGraph, SolverConfig, Summary};

use nalgebra::{Matrix6, Vector6};

/// Information matrix of independent errors with standard deviation `translation_m` on each axis
/// and `rotation_rad` about each axis.
pub fn diagonal_information(translation_m: f64, rotation_rad: f64) -> Matrix6<f64> {
    let t = 1.0 / (translation_m * translation_m);
    let r = 1.0 / (rotation_rad * rotation_rad);
    Matrix6::from_diagonal(&Vector6::new(t, t, t, r, r, r))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scan::Pose;
    use nalgebra::{Translation3, UnitQuaternion, Vector3};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A planar pose: position (x, y) and heading, degrees.
    pub(crate) fn pose(x: f64, y: f64, yaw_deg: f64) -> Pose {
        Pose::from_parts(
            Translation3::new(x, y, 0.0),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw_deg.to_radians()),
        )
    }

    /// A 10 m square driven in 1 m steps and back to the start.
    fn square() -> Vec<Pose> {
        let mut poses = vec![Pose::identity()];
        for side in 0..4 {
            for step in 0..10 {
                let turn = if step == 9 && side < 3 { 90.0 } else { 0.0 };
                let last = *poses.last().unwrap();
                poses.push(last * pose(1.0, 0.0, turn));
            }
        }
        poses
    }

    #[test]
    fn a_square_with_noisy_odometry_and_one_loop_edge_is_corrected() {
        let truth = square();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut graph = PoseGraph::new();
        let odometry_info = diagonal_information(0.05, 1f64.to_radians());
        let mut chained = Pose::identity();
        graph.add_node(chained);
        for w in truth.windows(2) {
            let exact = w[0].inverse() * w[1];
            // A biased heading (0.3 deg per step) plus noise: the end misses the start by metres.
            let noise = pose(rng.random_range(-0.02..0.02), rng.random_range(-0.02..0.02), 0.3);
            let measured = exact * noise;
            chained *= measured;
            let to = graph.add_node(chained);
            let edge = Edge {
                from: to - 1,
                to,
                measurement: measured,
                information: odometry_info,
                cauchy: None,
            };
            graph.add_edge(edge).unwrap();
        }
        let last = truth.len() - 1;
        let drift = (graph.poses()[last].translation.vector - truth[last].translation.vector).norm();
        assert!(drift > 1.0, "the test needs drift to correct, got {drift}");
        let loop_edge = Edge {
            from: 0,
            to: last,
            measurement: truth[0].inverse() * truth[last],
            information: diagonal_information(0.01, 0.1f64.to_radians()),
            // Wide enough that a 5 m error still counts half.
            cauchy: Some(5.0 / 0.01),
        };
        graph.add_edge(loop_edge).unwrap();
        let summary = graph.optimize(&SolverConfig::default()).unwrap();
        assert!(summary.final_cost < 1e-2 * summary.initial_cost, "{summary:?}");
        let worst = graph
            .poses()
            .iter()
            .zip(&truth)
            .map(|(e, t)| (e.translation.vector - t.translation.vector).norm())
            .fold(0.0, f64::max);
        assert!(worst < 0.35, "worst position error {worst} m (drift was {drift} m)");
        let end = (graph.poses()[last].translation.vector - truth[last].translation.vector).norm();
        assert!(end < 0.05, "the loop edge holds: {end} m");
    }

    #[test]
    fn two_measurements_of_one_pose_meet_at_their_information_weighted_mean() {
        let mut graph = PoseGraph::new();
        graph.add_node(Pose::identity());
        graph.add_node(pose(0.5, 0.5, 10.0));
        let edge = |x: f64, sigma: f64| Edge {
            from: 0,
            to: 1,
            measurement: pose(x, 0.0, 0.0),
            information: diagonal_information(sigma, 0.01),
            cauchy: None,
        };
        // Variances 1 and 1/4: weights 1 and 4, so x = (1 * 1 + 4 * 2) / 5 = 1.8.
        graph.add_edge(edge(1.0, 1.0)).unwrap();
        graph.add_edge(edge(2.0, 0.5)).unwrap();
        graph.optimize(&SolverConfig::default()).unwrap();
        let p = graph.poses()[1];
        assert!(
            (p.translation.vector - Vector3::new(1.8, 0.0, 0.0)).norm() < 1e-6,
            "{p}"
        );
        assert!(p.rotation.angle() < 1e-6);
        assert!(graph.poses()[0] == Pose::identity(), "node 0 holds the gauge");
    }

    #[test]
    fn a_cauchy_kernel_lets_a_wrong_loop_edge_pull_little() {
        let truth: Vec<Pose> = (0..30).map(|i| pose(i as f64, 0.0, 0.0)).collect();
        let solve = |cauchy: Option<f64>| {
            let mut graph = PoseGraph::new();
            for p in &truth {
                graph.add_node(*p);
            }
            for i in 1..truth.len() {
                let measurement = truth[i - 1].inverse() * truth[i];
                let information = diagonal_information(0.05, 0.01);
                graph
                    .add_edge(Edge {
                        from: i - 1,
                        to: i,
                        measurement,
                        information,
                        cauchy: None,
                    })
                    .unwrap();
            }
            // Claims frame 29 is back at frame 0.
            let information = diagonal_information(0.1, 0.02);
            graph
                .add_edge(Edge {
                    from: 0,
                    to: 29,
                    measurement: Pose::identity(),
                    information,
                    cauchy,
                })
                .unwrap();
            graph.optimize(&SolverConfig::default()).unwrap();
            (graph.poses()[29].translation.x - 29.0).abs()
        };
        let plain = solve(None);
        let robust = solve(Some(1.0));
        assert!(plain > 5.0, "least squares follows the wrong edge: {plain} m");
        assert!(robust < 0.5, "the kernel keeps the chain: {robust} m");
    }

    #[test]
    fn an_edge_to_a_missing_node_is_refused() {
        let mut graph = PoseGraph::new();
        graph.add_node(Pose::identity());
        let edge = Edge {
            from: 0,
            to: 3,
            measurement: Pose::identity(),
            information: Matrix6::identity(),
            cauchy: None,
        };
        assert_eq!(
            graph.add_edge(edge),
            Err(GraphError::MissingNode {
                from: 0,
                to: 3,
                nodes: 1
            })
        );
    }
}

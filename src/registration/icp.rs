//! Point-to-plane ICP on SE(3) with a robust (Huber) weight, nearest neighbours from kiddo.

use crate::scan::Pose;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use nalgebra::{Matrix3, Matrix6, Point3, SymmetricEigen, Translation3, UnitQuaternion, Vector3, Vector6};
use rayon::prelude::*;
use std::num::NonZeroUsize;

/// ICP settings.
#[derive(Debug, Clone, Copy)]
pub struct IcpConfig {
    /// Gauss-Newton iterations at most.
    pub max_iterations: usize,
    /// Pairs farther apart than this are not correspondences, metres.
    pub max_correspondence_m: f64,
    /// Stop when the update is smaller than this (radians + metres).
    pub convergence: f64,
    /// Residuals beyond this are down-weighted (Huber), metres.
    pub huber_m: f64,
}

impl Default for IcpConfig {
    fn default() -> Self {
        Self {
            max_iterations: 40,
            max_correspondence_m: 1.0,
            convergence: 1e-5,
            huber_m: 0.1,
        }
    }
}

/// The outcome of one registration.
#[derive(Debug, Clone, Copy)]
pub struct IcpResult {
    /// Transform taking source points into the target frame.
    pub transform: Pose,
    /// Share of source points with a correspondence at the end.
    pub fitness: f64,
    /// Root mean square point-to-plane residual of the correspondences, metres.
    pub rmse: f64,
    /// Iterations run.
    pub iterations: usize,
    /// True when the update fell under the convergence threshold.
    pub converged: bool,
    /// Smallest eigenvalue of the normal matrix over the largest: near 0 means degenerate geometry.
    pub conditioning: f64,
}

/// A registration target: points, their surface normals, and a k-d tree over them.
pub struct Target {
    points: Vec<Point3<f64>>,
    normals: Vec<Vector3<f64>>,
    tree: ImmutableKdTree<f64, 3>,
}

/// Points one parallel task registers at least: a loop keyframe's few thousand 1 m voxels then
/// run on the calling thread, instead of queueing behind the odometry's tasks in the shared pool.
const PARALLEL_CHUNK: usize = 4096;

/// Neighbours used to fit each target normal.
const NORMAL_NEIGHBOURS: usize = 10;

impl Target {
    /// Builds the tree and estimates a normal per point from its nearest neighbours; points
    /// whose neighbourhood is not planar enough are dropped.
    pub fn new(points: &[Point3<f64>]) -> Self {
        let normals = normals_at(points, points);
        let (points, normals): (Vec<_>, Vec<_>) = points
            .iter()
            .zip(normals)
            .filter_map(|(p, n)| n.map(|n| (*p, n)))
            .unzip();
        let coords: Vec<[f64; 3]> = points.iter().map(|p| [p.x, p.y, p.z]).collect();
        let tree = ImmutableKdTree::new_from_slice(&coords).expect("finite points build a tree");
        Self { points, normals, tree }
    }

    /// Number of usable target points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when no point had a usable normal.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Squared distance from `p` to the nearest target point and `p`'s distance to that point's
    /// plane; `None` for an empty target.
    pub fn nearest(&self, p: &Point3<f64>) -> Option<(f64, f64)> {
        if self.points.is_empty() {
            return None;
        }
        let nn = self
            .tree
            .query(&[p.x, p.y, p.z])
            .nearest_one::<SquaredEuclidean<f64>>()
            .execute();
        let i = nn.item as usize;
        Some((nn.distance, self.normals[i].dot(&(p - self.points[i])).abs()))
    }
}

/// The surface normal at each of `points`, from its nearest neighbours among `around`; `None`
/// where they do not lie on a plane.
pub fn normals_at(points: &[Point3<f64>], around: &[Point3<f64>]) -> Vec<Option<Vector3<f64>>> {
    if around.is_empty() {
        return vec![None; points.len()];
    }
    let coords: Vec<[f64; 3]> = around.iter().map(|p| [p.x, p.y, p.z]).collect();
    let tree = ImmutableKdTree::new_from_slice(&coords).expect("finite points build a tree");
    let k = NonZeroUsize::new(NORMAL_NEIGHBOURS.min(around.len())).expect("k >= 1");
    points
        .par_iter()
        .with_min_len(PARALLEL_CHUNK)
        .map(|p| {
            let nn = tree
                .query(&[p.x, p.y, p.z])
                .nearest_n::<SquaredEuclidean<f64>>(k)
                .execute();
            let neighbours: Vec<Point3<f64>> = nn
                .iter()
                .filter(|r| r.distance < 4.0)
                .map(|r| around[r.item as usize])
                .collect();
            plane_normal(&neighbours)
        })
        .collect()
}

/// Normal of the best plane through `pts` (smallest principal axis), if they are planar enough.
fn plane_normal(pts: &[Point3<f64>]) -> Option<Vector3<f64>> {
    if pts.len() < 5 {
        return None;
    }
    let mean = pts.iter().fold(Vector3::zeros(), |a, p| a + p.coords) / pts.len() as f64;
    let cov = pts.iter().fold(Matrix3::zeros(), |a, p| {
        let d = p.coords - mean;
        a + d * d.transpose()
    });
    let eig = SymmetricEigen::new(cov);
    let (imin, _) = eig.eigenvalues.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1))?;
    let total: f64 = eig.eigenvalues.iter().sum();
    // A plane has one eigenvalue much smaller than the others.
    (total > 1e-12 && eig.eigenvalues[imin] / total < 0.05).then(|| eig.eigenvectors.column(imin).into_owned())
}

/// Registers `source` onto `target` starting from `initial`.
pub fn point_to_plane(source: &[Point3<f64>], target: &Target, initial: Pose, cfg: &IcpConfig) -> IcpResult {
    let mut transform = initial;
    let mut result = IcpResult {
        transform,
        fitness: 0.0,
        rmse: f64::INFINITY,
        iterations: 0,
        converged: false,
        conditioning: 0.0,
    };
    if source.is_empty() || target.is_empty() {
        return result;
    }
    let max_d2 = cfg.max_correspondence_m * cfg.max_correspondence_m;
    for iteration in 1..=cfg.max_iterations {
        let (h, g, count, sse) = source
            .par_iter()
            .with_min_len(PARALLEL_CHUNK)
            .fold(
                || (Matrix6::<f64>::zeros(), Vector6::<f64>::zeros(), 0usize, 0.0f64),
                |(mut h, mut g, mut count, mut sse), p| {
                    let q = transform * p;
                    let nn = target
                        .tree
                        .query(&[q.x, q.y, q.z])
                        .nearest_one::<SquaredEuclidean<f64>>()
                        .execute();
                    if nn.distance <= max_d2 {
                        let n = target.normals[nn.item as usize];
                        let r = n.dot(&(q - target.points[nn.item as usize]));
                        let w = if r.abs() <= cfg.huber_m {
                            1.0
                        } else {
                            cfg.huber_m / r.abs()
                        };
                        let jr = q.coords.cross(&n);
                        let j = Vector6::new(jr.x, jr.y, jr.z, n.x, n.y, n.z);
                        h += w * j * j.transpose();
                        g += w * r * j;
                        count += 1;
                        sse += r * r;
                    }
                    (h, g, count, sse)
                },
            )
            .reduce(
                || (Matrix6::zeros(), Vector6::zeros(), 0, 0.0),
                |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3),
            );
        result.iterations = iteration;
        result.fitness = count as f64 / source.len() as f64;
        result.rmse = if count > 0 {
            (sse / count as f64).sqrt()
        } else {
            f64::INFINITY
        };
        if count < 6 {
            break;
        }
        let eig = SymmetricEigen::new(h).eigenvalues;
        let (lo, hi) = eig
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        result.conditioning = if hi > 0.0 { lo / hi } else { 0.0 };
        // A whisper of damping keeps the solve defined when geometry constrains some direction weakly.
        let damped = h + Matrix6::identity() * (1e-9 * h.trace());
        let Some(dx) = damped.cholesky().map(|c| c.solve(&(-g))) else {
            break;
        };
        let delta = Pose::from_parts(
            Translation3::new(dx[3], dx[4], dx[5]),
            UnitQuaternion::from_scaled_axis(Vector3::new(dx[0], dx[1], dx[2])),
        );
        transform = delta * transform;
        if dx.norm() < cfg.convergence {
            result.converged = true;
            break;
        }
    }
    result.transform = transform;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three perpendicular planes (a corner of a room) sampled on a grid.
    fn corner() -> Vec<Point3<f64>> {
        let mut pts = Vec::new();
        for i in 0..60 {
            for j in 0..60 {
                let (a, b) = (i as f64 * 0.2, j as f64 * 0.2);
                pts.push(Point3::new(a, b, 0.0));
                pts.push(Point3::new(a, 0.0, b));
                pts.push(Point3::new(0.0, a, b));
            }
        }
        pts
    }

    #[test]
    fn recovers_a_known_motion() {
        let target_pts = corner();
        let target = Target::new(&target_pts);
        let truth = Pose::new(Vector3::new(0.3, -0.2, 0.1), Vector3::new(0.01, -0.02, 0.05));
        let source: Vec<Point3<f64>> = target_pts.iter().step_by(3).map(|p| truth.inverse() * p).collect();
        let res = point_to_plane(&source, &target, Pose::identity(), &IcpConfig::default());
        let err = truth.inverse() * res.transform;
        assert!(err.translation.vector.norm() < 1e-3, "{err:?}");
        assert!(err.rotation.angle() < 1e-4);
        assert!(res.converged && res.fitness > 0.99 && res.rmse < 1e-3);
    }

    #[test]
    fn a_single_plane_is_flagged_degenerate() {
        let plane: Vec<Point3<f64>> = corner().into_iter().filter(|p| p.z == 0.0).collect();
        let res = point_to_plane(&plane, &Target::new(&plane), Pose::identity(), &IcpConfig::default());
        assert!(res.conditioning < 1e-6, "{}", res.conditioning);
    }
}

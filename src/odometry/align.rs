//! Robust point-to-point ICP against the voxel map (KISS-ICP, Vizzo et al., RA-L 2023, Sec.
//! III-D): nearest map point within the correspondence threshold, Geman-McClure weights,
//! Gauss-Newton on SE(3).

use super::local_map::{Neighbourhood, VoxelHashMap};
use crate::scan::Pose;
use nalgebra::{Matrix3, Matrix6, Point3, Translation3, UnitQuaternion, Vector3, Vector6};
use rayon::prelude::*;

/// Points per parallel work item. Fixed chunks summed in order make the result independent of
/// the number of threads.
const CHUNK: usize = 256;

/// Outcome of aligning a scan to the map.
#[derive(Debug, Clone, Copy)]
pub struct Alignment {
    /// Pose of the scan in the map frame.
    pub pose: Pose,
    /// Correspondences found in the last iteration.
    pub correspondences: usize,
    /// Points of the last iteration whose nearest map point lies within
    /// [`super::FIT_DISTANCE_M`], whatever the correspondence threshold.
    pub fitting: usize,
    /// Gauss-Newton iterations run.
    pub iterations: usize,
}

/// Points to align (sensor frame), with the surface normal at each when they are to be drawn
/// onto the map point-to-plane.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    /// The points.
    pub points: &'a [Point3<f64>],
    /// One normal per point (`None`: the point is on no surface), or empty for point-to-point.
    pub normals: &'a [Option<Vector3<f64>>],
}

impl<'a> Source<'a> {
    /// Points aligned point-to-point.
    pub fn points(points: &'a [Point3<f64>]) -> Self {
        Self { points, normals: &[] }
    }
}

/// Aligns `source` (sensor frame) to `map`, starting at `initial`. Correspondences farther than
/// `max_distance` are ignored; `kernel` is the Geman-McClure scale. With normals (one per
/// source point, sensor frame) each point is drawn along its normal onto its nearest map point
/// (point-to-plane) and points without one are left out; with none (empty), onto the nearest map
/// point itself (point-to-point, KISS-ICP's).
pub fn align_to_map(
    source: Source,
    map: &VoxelHashMap,
    initial: Pose,
    max_distance: f64,
    kernel: f64,
    max_iterations: usize,
    convergence: f64,
) -> Alignment {
    let Source {
        points: source,
        normals,
    } = source;
    let mut result = Alignment {
        pose: initial,
        correspondences: 0,
        fitting: 0,
        iterations: 0,
    };
    if map.is_empty() || source.is_empty() {
        return result;
    }
    let mut moved: Vec<Point3<f64>> = source.iter().map(|p| initial * p).collect();
    let use_planes = !normals.is_empty();
    assert!(
        !use_planes || normals.len() == source.len(),
        "one normal per source point"
    );
    let mut moved_normals: Vec<Option<Vector3<f64>>> = match use_planes {
        true => normals.iter().map(|n| n.map(|n| initial.rotation * n)).collect(),
        false => vec![None; source.len()],
    };
    let mut hoods: Vec<Option<Neighbourhood>> = vec![None; source.len()];
    let mut estimate = Pose::identity();
    let max_sq = max_distance * max_distance;
    let kernel_sq = kernel * kernel;
    let fit_sq = super::FIT_DISTANCE_M * super::FIT_DISTANCE_M;
    for iteration in 1..=max_iterations {
        let partial: Vec<(Matrix6<f64>, Vector6<f64>, usize, usize)> = moved
            .par_chunks(CHUNK)
            .zip(hoods.par_chunks_mut(CHUNK))
            .zip(moved_normals.par_chunks(CHUNK))
            .map(|((chunk, chunk_hoods), chunk_normals)| {
                let (mut h, mut g, mut n, mut fitting) = (Matrix6::zeros(), Vector6::zeros(), 0, 0);
                for ((s, hood), normal) in chunk.iter().zip(chunk_hoods).zip(chunk_normals) {
                    let hood = match hood {
                        Some(kept) if kept.holds(s) => kept,
                        _ => hood.insert(map.neighbourhood(s)),
                    };
                    let Some((t, d2)) = hood.closest(s) else { continue };
                    fitting += usize::from(d2 < fit_sq);
                    if d2 >= max_sq {
                        continue;
                    }
                    if use_planes {
                        let Some(normal) = normal else { continue };
                        // The distance along the normal; d/d(translation, rotation) = (n, s × n).
                        let r = normal.dot(&(s - t));
                        let w = kernel_sq / (kernel + r * r).powi(2);
                        let j = Vector6::from_iterator(normal.iter().chain(s.coords.cross(normal).iter()).copied());
                        h += j * j.transpose() * w;
                        g += j * r * w;
                        n += 1;
                        continue;
                    }
                    let r = s - t;
                    // Geman-McClure: w = k^2 / (k + |r|^2)^2.
                    let w = kernel_sq / (kernel + d2).powi(2);
                    let mut j = nalgebra::Matrix3x6::<f64>::zeros();
                    j.fixed_view_mut::<3, 3>(0, 0).copy_from(&Matrix3::identity());
                    j.fixed_view_mut::<3, 3>(0, 3).copy_from(&(-s.coords.cross_matrix()));
                    h += j.transpose() * j * w;
                    g += j.transpose() * r * w;
                    n += 1;
                }
                (h, g, n, fitting)
            })
            .collect();
        let (h, g, n, fitting) = partial
            .into_iter()
            .fold((Matrix6::zeros(), Vector6::zeros(), 0, 0), |a, b| {
                (a.0 + b.0, a.1 + b.1, a.2 + b.2, a.3 + b.3)
            });
        result.iterations = iteration;
        result.correspondences = n;
        result.fitting = fitting;
        if n < 6 {
            break;
        }
        let Some(dx) = h.cholesky().map(|c| c.solve(&(-g))) else {
            break;
        };
        let step = Pose::from_parts(
            Translation3::new(dx[0], dx[1], dx[2]),
            UnitQuaternion::from_scaled_axis(Vector3::new(dx[3], dx[4], dx[5])),
        );
        moved.iter_mut().for_each(|p| *p = step * *p);
        moved_normals.iter_mut().flatten().for_each(|n| *n = step.rotation * *n);
        estimate = step * estimate;
        if dx.norm() < convergence {
            break;
        }
    }
    result.pose = estimate * initial;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points scattered over the floor and three walls of a room (deterministic).
    fn box_room() -> Vec<Point3<f64>> {
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..20_000)
            .map(|k| {
                let (a, b) = (next() * 20.0 - 10.0, next() * 6.0);
                match k % 4 {
                    0 => Point3::new(a, -8.0, b - 1.5),
                    1 => Point3::new(a, 6.0, b - 1.5),
                    2 => Point3::new(12.0, a * 0.7, b - 1.5),
                    _ => Point3::new(a, a * 0.3 + b, -1.5),
                }
            })
            .collect()
    }

    #[test]
    fn recovers_a_small_motion_and_is_thread_count_independent() {
        let pts = box_room();
        let mut map = VoxelHashMap::new(1.0, 100.0, 20);
        map.update(&pts, &Point3::origin());
        let truth = Pose::new(Vector3::new(0.3, -0.2, 0.05), Vector3::new(0.0, 0.0, 0.03));
        let source: Vec<Point3<f64>> = pts.iter().skip(1).step_by(7).map(|p| truth.inverse() * p).collect();
        let run = || align_to_map(Source::points(&source), &map, Pose::identity(), 3.0, 1.0, 100, 1e-6);
        let a = run();
        let err = truth.inverse() * a.pose;
        assert!(
            err.translation.vector.norm() < 0.05 && err.rotation.angle() < 0.005,
            "{err:?}"
        );
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(run);
        assert_eq!(one.pose, a.pose, "same result on one thread");
    }
}

//! Geometric verification of a loop candidate: point-to-plane ICP of the query keyframe onto the
//! reference keyframe, seeded by the detector's yaw, accepted only when enough of the query lands
//! on the reference's surfaces. A place recogniser's false match rarely survives this.

use crate::registration::icp::{IcpConfig, Target, point_to_plane};
use crate::registration::voxel::voxel_downsample;
use crate::scan::Pose;
use nalgebra::{Point3, Translation3, UnitQuaternion, Vector3};
use serde::Serialize;

/// Verification settings; every default in one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct VerifyConfig {
    /// Voxel size the keyframes are kept at, metres.
    pub voxel_m: f64,
    /// Correspondence distance of the coarse pass, which absorbs the unknown offset, metres.
    pub coarse_correspondence_m: f64,
    /// Gauss-Newton iterations of the coarse pass (ours: 15): it only has to bring the query
    /// within the fine pass's reach, and on 1 m voxels it rarely meets the convergence test.
    pub coarse_iterations: usize,
    /// The coarse pass registers every `coarse_stride`-th query point (ours: 3): it only has to
    /// bring the query within reach, and a third of a 1 m-voxel keyframe's points constrain six
    /// degrees of freedom as well as all of them.
    pub coarse_stride: usize,
    /// Correspondence distance of the fine pass, metres.
    pub fine_correspondence_m: f64,
    /// Least share of query points with a reference point within the fine distance.
    pub min_fitness: f64,
    /// How much the fine pass may still raise that share after the coarse pass (ours: 0.05; on
    /// the default drive's 311 fine passes it moved by 0.026 at most). A coarse fit short of
    /// `min_fitness` by more is refused without the fine pass, which is where a look-alike place
    /// would otherwise spend its 40 iterations.
    pub fine_pass_gain: f64,
    /// A query point is an inlier when it lies this close to the reference surface, metres.
    pub inlier_m: f64,
    /// Least share of query points that must be inliers.
    pub min_inlier_ratio: f64,
    /// A candidate refused with at least this fitness is verified once more against the
    /// reference keyframe merged with its neighbours (ours: 0.35): a revisit driven the other way
    /// sees parts of the place the reference keyframe alone did not.
    pub submap_from_fitness: f64,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            voxel_m: 1.0,
            coarse_correspondence_m: 3.0,
            coarse_iterations: 15,
            coarse_stride: 3,
            fine_correspondence_m: 1.0,
            min_fitness: 0.45,
            fine_pass_gain: 0.05,
            inlier_m: 0.2,
            min_inlier_ratio: 0.35,
            submap_from_fitness: 0.35,
        }
    }
}

/// A keyframe as verification needs it: its points, thinned. One is kept per keyframe for the
/// whole run, so the points are stored in single precision (half the memory; a 1 m voxel grid
/// loses nothing at 1e-7 relative).
#[derive(Debug, Clone)]
pub struct KeyframeCloud {
    /// Points in the keyframe's sensor frame at [`VerifyConfig::voxel_m`].
    pub points: Vec<[f32; 3]>,
}

impl KeyframeCloud {
    /// Thins a scan's points for verification.
    pub fn new(points: &[[f32; 3]], cfg: &VerifyConfig) -> Self {
        let points: Vec<Point3<f64>> = points
            .iter()
            .map(|p| Point3::new(p[0] as f64, p[1] as f64, p[2] as f64))
            .collect();
        let thinned = voxel_downsample(&points, cfg.voxel_m);
        Self {
            points: thinned.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect(),
        }
    }

    /// Several keyframes' clouds, each moved by its pose in a common frame, thinned again as one.
    pub fn merged(parts: &[(&KeyframeCloud, Pose)], cfg: &VerifyConfig) -> Self {
        let points: Vec<[f32; 3]> = parts
            .iter()
            .flat_map(|(cloud, pose)| {
                cloud.points_f64().into_iter().map(move |p| {
                    let q = pose * p;
                    [q.x as f32, q.y as f32, q.z as f32]
                })
            })
            .collect();
        Self::new(&points, cfg)
    }

    /// The points in double precision, as registration takes them.
    pub fn points_f64(&self) -> Vec<Point3<f64>> {
        self.points
            .iter()
            .map(|p| Point3::new(p[0] as f64, p[1] as f64, p[2] as f64))
            .collect()
    }
}

/// The outcome of verifying one candidate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verification {
    /// Pose of the query keyframe in the reference keyframe's frame (`X_ref⁻¹ · X_query`).
    #[serde(skip)]
    pub transform: Pose,
    /// Share of query points with a reference point within the fine distance.
    pub fitness: f64,
    /// Share of query points within [`VerifyConfig::inlier_m`] of the reference surface.
    pub inlier_ratio: f64,
    /// Both shares pass.
    pub accepted: bool,
}

/// Turns tried around the detector's yaw, degrees, nearest first: point-to-plane ICP converges
/// from a few degrees off, and a detector's yaw on a real revisit can be off by more.
const YAW_SEEDS_DEG: [f64; 5] = [0.0, -10.0, 10.0, -20.0, 20.0];

/// Registers `query` onto `reference`, starting from the detector's yaw (of the reference relative
/// to the query, degrees) and turns around it, and judges the best fit.
pub fn verify(query: &KeyframeCloud, reference: &KeyframeCloud, yaw_deg: f32, cfg: &VerifyConfig) -> Verification {
    let target = Target::new(&reference.points_f64());
    let query = Query::new(query, cfg);
    let mut best: Option<Verification> = None;
    for offset in YAW_SEEDS_DEG {
        // The reference is turned by `yaw` from the query, so query points turn by `-yaw` into it.
        let seed = Pose::from_parts(
            Translation3::identity(),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), -(yaw_deg as f64 + offset).to_radians()),
        );
        let v = verify_from(&query, &target, seed, cfg);
        if v.accepted {
            return v;
        }
        if best.is_none_or(|b| v.inlier_ratio > b.inlier_ratio) {
            best = Some(v);
        }
    }
    best.expect("at least one seed")
}

/// Registers `query` onto `reference` from `initial` (the query's pose in the reference's frame,
/// as an estimate already gives it) and judges the fit: tracking against a known map needs no
/// detector yaw.
pub fn verify_at(query: &KeyframeCloud, reference: &KeyframeCloud, initial: Pose, cfg: &VerifyConfig) -> Verification {
    let target = Target::new(&reference.points_f64());
    verify_from(&Query::new(query, cfg), &target, initial, cfg)
}

/// The query keyframe's points as both passes register them: all of them, and the coarse pass's
/// thinner share.
struct Query {
    all: Vec<Point3<f64>>,
    coarse: Vec<Point3<f64>>,
}

impl Query {
    fn new(cloud: &KeyframeCloud, cfg: &VerifyConfig) -> Self {
        let all = cloud.points_f64();
        let coarse = all.iter().step_by(cfg.coarse_stride.max(1)).copied().collect();
        Self { all, coarse }
    }
}

/// How well `points`, moved by `transform`, lie on `target`: the share with a target point within
/// the fine distance, and the share of inliers (also within `inlier_m` of that point's surface).
fn agreement(points: &[Point3<f64>], target: &Target, transform: &Pose, cfg: &VerifyConfig) -> (f64, f64) {
    let (mut near, mut inliers) = (0usize, 0usize);
    for (d2, plane) in points.iter().filter_map(|p| target.nearest(&(transform * p))) {
        if d2 <= cfg.fine_correspondence_m.powi(2) {
            near += 1;
            inliers += (plane <= cfg.inlier_m) as usize;
        }
    }
    let n = points.len().max(1) as f64;
    (near as f64 / n, inliers as f64 / n)
}

fn verify_from(query: &Query, target: &Target, seed: Pose, cfg: &VerifyConfig) -> Verification {
    let pass = |points: &[Point3<f64>], initial: Pose, distance: f64, max_iterations: usize| {
        let icp = IcpConfig {
            max_correspondence_m: distance,
            max_iterations,
            ..IcpConfig::default()
        };
        point_to_plane(points, target, initial, &icp)
    };
    let coarse = pass(&query.coarse, seed, cfg.coarse_correspondence_m, cfg.coarse_iterations);
    let (reach, _) = agreement(&query.all, target, &coarse.transform, cfg);
    if reach + cfg.fine_pass_gain < cfg.min_fitness {
        // The fine pass starts here and moves the share within its distance by a few hundredths
        // at most: it could not reach `min_fitness` (a look-alike place ends here; its inlier
        // ratio is not measured).
        return Verification {
            transform: coarse.transform,
            fitness: reach,
            inlier_ratio: 0.0,
            accepted: false,
        };
    }
    let fine = pass(
        &query.all,
        coarse.transform,
        cfg.fine_correspondence_m,
        IcpConfig::default().max_iterations,
    );
    let (_, inlier_ratio) = agreement(&query.all, target, &fine.transform, cfg);
    Verification {
        transform: fine.transform,
        fitness: fine.fitness,
        inlier_ratio,
        accepted: fine.fitness >= cfg.min_fitness && inlier_ratio >= cfg.min_inlier_ratio,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimConfig, Simulation};

    fn cloud(sim: &Simulation, frame: usize) -> (KeyframeCloud, Pose) {
        let scan = sim.scan(frame);
        let pose = scan.gt_pose.expect("simulated scans have poses");
        (KeyframeCloud::new(&scan.points, &VerifyConfig::default()), pose)
    }

    #[test]
    fn a_scan_matches_a_nearby_scan_of_the_same_place_and_not_a_distant_one() {
        let sim = Simulation::new(&SimConfig::default());
        let cfg = VerifyConfig::default();
        let (a, pa) = cloud(&sim, 100);
        let (b, pb) = cloud(&sim, 103);
        let truth = pb.inverse() * pa;
        let near = verify(
            &a,
            &b,
            crate::projection::overlap::relative_yaw_deg(&pa, &pb) as f32,
            &cfg,
        );
        let err = truth.inverse() * near.transform;
        assert!(near.accepted, "{near:?}");
        assert!(
            err.translation.vector.norm() < 0.15 && err.rotation.angle() < 0.01,
            "{err}"
        );
        let (c, _) = cloud(&sim, 400);
        let far = verify(&a, &c, 0.0, &cfg);
        assert!(!far.accepted, "{far:?}");
    }

    #[test]
    fn a_distant_place_is_refused_after_its_coarse_passes_and_a_submap_holds_its_keyframes() {
        let sim = Simulation::new(&SimConfig::default());
        let cfg = VerifyConfig::default();
        let (a, _) = cloud(&sim, 100);
        let (c, _) = cloud(&sim, 400);
        let far = verify(&a, &c, 0.0, &cfg);
        // No seed came within reach of the fine pass: no inlier ratio was measured, and the
        // fitness reported is the share within the fine distance at the coarse pose.
        assert_eq!(far.inlier_ratio, 0.0, "{far:?}");
        assert!(far.fitness + cfg.fine_pass_gain < cfg.min_fitness, "{far:?}");
        // A submap of frames 100 and 103 in frame 100's frame: both clouds, thinned as one, and
        // frame 100 matches it at the identity.
        let (b, pb) = cloud(&sim, 103);
        let pa = sim.scan(100).gt_pose.unwrap();
        let submap = KeyframeCloud::merged(&[(&a, Pose::identity()), (&b, pa.inverse() * pb)], &cfg);
        assert!(submap.points.len() > a.points.len() && submap.points.len() < a.points.len() + b.points.len());
        let onto = verify(&a, &submap, 0.0, &cfg);
        assert!(
            onto.accepted && onto.transform.translation.vector.norm() < 0.15,
            "{onto:?}"
        );
    }
}

//! Frame-to-frame odometry: each scan registered to the previous one with point-to-plane ICP
//! and a constant-velocity guess, falling back to the motion model on untrusted frames. Simple
//! and fast; it drifts more than map-based odometry over long runs.

use super::OdometryStep;
use crate::registration::{IcpConfig, Target, point_to_plane, voxel_downsample};
use crate::scan::{Pose, Scan};
use nalgebra::Point3;

/// Frame-to-frame settings; every default in one place.
#[derive(Debug, Clone, Copy)]
pub struct FrameToFrameConfig {
    /// Points nearer than this are dropped (the vehicle itself), metres.
    pub min_range_m: f64,
    /// Points farther than this are dropped, metres.
    pub max_range_m: f64,
    /// Voxel size for the points being registered, metres.
    pub source_voxel_m: f64,
    /// Voxel size for the reference scan, metres.
    pub target_voxel_m: f64,
    /// Below this share of matched points the registration is not trusted.
    pub min_fitness: f64,
    /// Below this normal-matrix conditioning the geometry is degenerate.
    pub min_conditioning: f64,
    /// ICP settings.
    pub icp: IcpConfig,
}

impl Default for FrameToFrameConfig {
    fn default() -> Self {
        Self {
            min_range_m: 3.0,
            max_range_m: 80.0,
            source_voxel_m: 1.0,
            target_voxel_m: 0.4,
            min_fitness: 0.3,
            min_conditioning: 1e-5,
            icp: IcpConfig::default(),
        }
    }
}

/// Frame-to-frame odometry state.
pub struct FrameToFrame {
    config: FrameToFrameConfig,
    previous: Option<Target>,
    pose: Pose,
    velocity: Pose,
}

impl FrameToFrame {
    /// Fresh odometry at the origin.
    pub fn new(config: FrameToFrameConfig) -> Self {
        Self {
            config,
            previous: None,
            pose: Pose::identity(),
            velocity: Pose::identity(),
        }
    }

    /// Points of `scan` inside the range window.
    pub fn crop(&self, scan: &Scan) -> Vec<Point3<f64>> {
        let (lo, hi) = (self.config.min_range_m, self.config.max_range_m);
        scan.points_f64()
            .into_iter()
            .filter(|p| (lo..hi).contains(&p.coords.norm()))
            .collect()
    }

    /// Registers the next scan and returns its pose.
    pub fn register(&mut self, scan: &Scan) -> OdometryStep {
        let cropped = self.crop(scan);
        let target = Target::new(&voxel_downsample(&cropped, self.config.target_voxel_m));
        let Some(previous) = self.previous.replace(target) else {
            return OdometryStep {
                pose: self.pose,
                delta: Pose::identity(),
                source_points: 0,
                correspondences: 0,
                degenerate: false,
                fit: 1.0,
                lost: false,
                relocalised: false,
                new_chain: false,
            };
        };
        let source = voxel_downsample(&cropped, self.config.source_voxel_m);
        let icp = point_to_plane(&source, &previous, self.velocity, &self.config.icp);
        let degenerate = icp.fitness < self.config.min_fitness || icp.conditioning < self.config.min_conditioning;
        let delta = if degenerate { self.velocity } else { icp.transform };
        self.velocity = delta;
        self.pose *= delta;
        OdometryStep {
            pose: self.pose,
            delta,
            source_points: source.len(),
            correspondences: (icp.fitness * source.len() as f64).round() as usize,
            degenerate,
            fit: icp.fitness,
            lost: degenerate,
            relocalised: false,
            new_chain: false,
        }
    }
}

impl super::OdometryEstimator for FrameToFrame {
    fn register(&mut self, scan: &Scan) -> OdometryStep {
        FrameToFrame::register(self, scan)
    }

    fn local_map_points(&self) -> usize {
        self.previous.as_ref().map_or(0, Target::len)
    }
}

//! LiDAR odometry. For now: frame-to-frame point-to-plane ICP with a constant-velocity guess,
//! falling back to the motion model on frames whose geometry cannot be trusted.

use crate::registration::{IcpConfig, IcpResult, Target, point_to_plane, voxel_downsample};
use crate::scan::{Pose, Scan};
use nalgebra::Point3;

/// Odometry settings; every default in one place.
#[derive(Debug, Clone, Copy)]
pub struct OdometryConfig {
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

impl Default for OdometryConfig {
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

/// What odometry concluded for one frame.
#[derive(Debug, Clone, Copy)]
pub struct OdometryStep {
    /// Pose of the sensor in the odometry frame (frame 0 at the origin).
    pub pose: Pose,
    /// Motion since the previous frame.
    pub delta: Pose,
    /// The registration, absent on the first frame.
    pub icp: Option<IcpResult>,
    /// True when the registration was rejected and the motion model used instead.
    pub degenerate: bool,
}

/// Frame-to-frame odometry state.
pub struct FrameToFrame {
    config: OdometryConfig,
    previous: Option<Target>,
    pose: Pose,
    velocity: Pose,
}

impl FrameToFrame {
    /// Fresh odometry at the origin.
    pub fn new(config: OdometryConfig) -> Self {
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
                icp: None,
                degenerate: false,
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
            icp: Some(icp),
            degenerate,
        }
    }
}

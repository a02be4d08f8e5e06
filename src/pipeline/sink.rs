//! The estimate handed out while a run goes, for the rest of a robot.

use crate::scan::Pose;

/// Receives the estimate as it is made (ROS 2 topics, say).
pub trait EstimateSink: Send + Sync + std::fmt::Debug {
    /// Odometry's pose at `stamp_s` and its motion `delta` since the previous frame, `dt_s` ago.
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64);
    /// The loop-corrected pose of every frame so far, each time the pose graph changes them.
    fn corrected(&self, poses: &[Pose]);
}

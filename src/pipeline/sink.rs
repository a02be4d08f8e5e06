//! The estimate handed out while a run goes, for the rest of a robot and for a viewer watching.

use crate::frames::Mounting;
use crate::scan::Pose;
use std::sync::Arc;

/// Receives the estimate as it is made (ROS 2 topics, a live viewer).
pub trait EstimateSink: Send + Sync + std::fmt::Debug {
    /// Odometry's pose at `stamp_s` and its motion `delta` since the previous frame, `dt_s` ago.
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64);
    /// The loop-corrected pose of every frame so far, each time the pose graph changes them.
    fn corrected(&self, poses: &[Pose]);
    /// A loop just closed between frames `query` and `reference`, now at `at` and `to` (loop
    /// corrected), with the detector's predicted `overlap`; told before [`Self::corrected`].
    fn loop_closed(&self, query: usize, at: &Pose, to: &Pose, overlap: f32) {
        let _ = (query, at, to, overlap);
    }
    /// A run in a saved map is localising: `poses` are where the verified matches of its latest
    /// keyframe put it in the map frame (empty: none verified).
    fn hypotheses(&self, poses: &[Pose]) {
        let _ = poses;
    }
    /// A run in a saved map is localised (or its correction changed): `map_from_odometry` takes
    /// odometry poses into the map frame (ROS's `map -> odom`); `fix` is the latest keyframe's
    /// pose in the map frame.
    fn localised(&self, map_from_odometry: &Pose, fix: &Pose) {
        let _ = (map_from_odometry, fix);
    }
}

/// Several sinks told the same things, in order.
#[derive(Debug, Default)]
pub struct Sinks(pub Vec<Arc<dyn EstimateSink>>);

impl EstimateSink for Sinks {
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64) {
        self.0.iter().for_each(|s| s.odometry(stamp_s, pose, delta, dt_s));
    }

    fn corrected(&self, poses: &[Pose]) {
        self.0.iter().for_each(|s| s.corrected(poses));
    }

    fn loop_closed(&self, query: usize, at: &Pose, to: &Pose, overlap: f32) {
        self.0.iter().for_each(|s| s.loop_closed(query, at, to, overlap));
    }

    fn hypotheses(&self, poses: &[Pose]) {
        self.0.iter().for_each(|s| s.hypotheses(poses));
    }

    fn localised(&self, map_from_odometry: &Pose, fix: &Pose) {
        self.0.iter().for_each(|s| s.localised(map_from_odometry, fix));
    }
}

/// A sink told base poses: every sensor pose it hears is conjugated by the mounting first.
#[derive(Debug)]
pub struct MountedSink {
    mounting: Mounting,
    inner: Arc<dyn EstimateSink>,
}

impl MountedSink {
    /// `inner`, told base poses for a sensor on `mounting`.
    pub fn new(mounting: Mounting, inner: Arc<dyn EstimateSink>) -> Self {
        Self { mounting, inner }
    }
}

impl EstimateSink for MountedSink {
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64) {
        let m = &self.mounting;
        self.inner
            .odometry(stamp_s, &m.base_pose(pose), &m.base_pose(delta), dt_s);
    }

    fn corrected(&self, poses: &[Pose]) {
        self.inner.corrected(&self.mounting.base_poses(poses));
    }

    fn loop_closed(&self, query: usize, at: &Pose, to: &Pose, overlap: f32) {
        let m = &self.mounting;
        self.inner
            .loop_closed(query, &m.base_pose(at), &m.base_pose(to), overlap);
    }

    fn hypotheses(&self, poses: &[Pose]) {
        self.inner.hypotheses(&self.mounting.base_poses(poses));
    }

    fn localised(&self, map_from_odometry: &Pose, fix: &Pose) {
        let m = &self.mounting;
        self.inner.localised(&m.base_pose(map_from_odometry), &m.base_pose(fix));
    }
}

//! Perception stages: further models that run on every projected frame and log what they see to
//! rerun, hooked onto `replay` without touching the other stages. A stage receives plain data (the
//! scan, its odometry pose, its projected images) and the recording; it returns nothing to the
//! pipeline, so it cannot change the trajectory.

use crate::error::Result;
use crate::projection::RangeImage;
use crate::scan::{Pose, Scan};
use crate::viz::Viz;

/// What a stage sees of one frame.
pub struct FrameView<'a> {
    /// The scan as the source gave it (sensor frame).
    pub scan: &'a Scan,
    /// Its odometry pose.
    pub pose: &'a Pose,
    /// Its range, normal and intensity images.
    pub image: &'a RangeImage,
}

/// A model run on every projected frame.
pub trait PerceptionStage: Send {
    /// Short name: the `stage_ms/NAME` timing and the stage's rerun entities use it.
    fn name(&self) -> &str;

    /// Processes one frame, logging its output to `viz` (which may record nothing).
    fn process(&mut self, frame: &FrameView, viz: &Viz) -> Result<()>;
}

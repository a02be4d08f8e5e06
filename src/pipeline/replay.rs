//! `overlap-slam replay`: a recorded (or simulated) source through the pipeline, as fast as it
//! goes.

use super::config::PipelineConfig;
use super::report::RunReport;
use crate::error::Result;
use crate::perception::PerceptionStage;

/// Replays a source end to end.
pub fn replay(cfg: &PipelineConfig) -> Result<RunReport> {
    replay_with_stages(cfg, Vec::new())
}

/// Replays a source end to end with perception `stages` run on every projected frame (each
/// timed as `stage_ms/stage/NAME`).
pub fn replay_with_stages(cfg: &PipelineConfig, stages: Vec<Box<dyn PerceptionStage>>) -> Result<RunReport> {
    super::run::run(cfg, stages)
}

//! `overlap-slam replay`: a sequence (or the embedded drive) through the whole pipeline.

use super::args::{PipelineArgs, SourceArgs, stop_on_ctrl_c};
use crate::Result;
use crate::pipeline::replay_with_stages;
use clap::Args;

/// Arguments of `replay`.
#[derive(Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

impl ReplayArgs {
    /// Replays the source and prints the summary line.
    pub fn run(self) -> Result<()> {
        let (sensor, detection) = self.source.sensor()?;
        let source = self.source.spec(&sensor);
        let quiet = self.pipeline.quiet;
        let stages = self.pipeline.stages()?;
        let mut cfg = self
            .pipeline
            .config(source, self.source.frame_range(), sensor, stop_on_ctrl_c())?;
        cfg.sensor_detection = detection.map(|d| d.to_string());
        cfg.dropped = self.source.drop;
        let report = replay_with_stages(&cfg, stages)?;
        if !quiet {
            println!("{}", report.summary());
        }
        Ok(())
    }
}

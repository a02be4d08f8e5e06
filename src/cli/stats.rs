//! `overlap-slam stats`: the projected images of a sequence summarised as JSON.

use super::args::SourceArgs;
use crate::Result;
use crate::jobs::stats;
use crate::projection::ProjectionParams;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `stats`.
#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output JSON file.
    #[arg(long)]
    out: PathBuf,
}

impl StatsArgs {
    /// Summarises every scan's images into one JSON file.
    pub fn run(self) -> Result<()> {
        let sensor = self.source.sensor_model()?;
        let mut source = self.source.spec(&sensor).open(self.source.frame_range())?;
        let stats = stats::projection_stats(source.as_mut(), &ProjectionParams::from_sensor(&sensor))?;
        stats::write_stats(&stats, &self.out)?;
        println!(
            "{} scans, {:.1} % of pixels valid",
            stats.scans,
            100.0 * stats.valid_share
        );
        Ok(())
    }
}

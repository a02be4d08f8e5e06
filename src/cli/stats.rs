//! `overlap-slam stats`: the projected images of a sequence summarised as JSON.

use super::args::SourceArgs;
use clap::Args;
use overlap_slam::Result;
use overlap_slam::pipeline::inspect;
use overlap_slam::projection::ProjectionParams;
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
        let stats = inspect::projection_stats(source.as_mut(), &ProjectionParams::from_sensor(&sensor))?;
        inspect::write_stats(&stats, &self.out)?;
        println!(
            "{} scans, {:.1} % of pixels valid",
            stats.scans,
            100.0 * stats.valid_share
        );
        Ok(())
    }
}

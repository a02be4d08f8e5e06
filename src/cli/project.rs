//! `overlap-slam project`: a scan's range, normal and intensity images as PNG files.

use super::args::SourceArgs;
use crate::Result;
use crate::jobs::project;
use crate::projection::ProjectionParams;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `project`.
#[derive(Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output folder for range.png, normal.png, intensity.png.
    #[arg(long)]
    out: PathBuf,
}

impl ProjectArgs {
    /// Writes the first scan's three images.
    pub fn run(self) -> Result<()> {
        let sensor = self.source.sensor_model()?;
        let mut source = self.source.spec(&sensor).open(self.source.frame_range())?;
        let img = project::project_to_pngs(source.as_mut(), &ProjectionParams::from_sensor(&sensor), &self.out)?;
        println!(
            "wrote range.png, normal.png, intensity.png to {} ({} of {} pixels valid)",
            self.out.display(),
            img.valid_count(),
            img.rows * img.cols
        );
        Ok(())
    }
}

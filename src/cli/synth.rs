//! `overlap-slam synth`: a simulated drive written in the KITTI layout.

use crate::Result;
use crate::io::FrameRange;
use crate::jobs::synth;
use crate::sensor::SensorModel;
use crate::sim::{Scene, SimConfig};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `synth`.
#[derive(Args)]
pub struct SynthArgs {
    /// Output folder (KITTI flat layout: velodyne/, calib.txt, poses.txt, times.txt).
    #[arg(long)]
    out: PathBuf,
    /// World and noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scene of the simulated drive.
    #[arg(long, default_value = "street", value_parser = super::args::scene_parser())]
    scene: Scene,
    /// Number of frames; default drives until both revisits are done.
    #[arg(long)]
    frames: Option<usize>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "hdl64")]
    sensor: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl SynthArgs {
    /// Writes the drive and says how many frames went where.
    pub fn run(self) -> Result<()> {
        let config = SimConfig {
            seed: self.seed,
            scene: self.scene,
            frames: self.frames,
            sensor: SensorModel::from_name_or_path(&self.sensor)?,
            ..SimConfig::default()
        };
        let n = synth::synth(&config, FrameRange::all(), &self.out, self.quiet)?;
        if !self.quiet {
            println!("wrote {n} simulated frames to {}", self.out.display());
        }
        Ok(())
    }
}

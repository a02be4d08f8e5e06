//! `synth`: a simulated drive written in the KITTI flat layout, with ground truth.

use crate::error::Result;
use crate::io::FrameRange;
use crate::sim::{SimConfig, Simulation, write_kitti_flat};
use std::path::Path;

/// Simulates `config` and writes frames `range` to `out` in the KITTI flat layout.
pub fn synth(config: &SimConfig, range: FrameRange, out: &Path, quiet: bool) -> Result<usize> {
    let sim = Simulation::new(config);
    let frames = range.clamp_to(sim.frames()).len();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(frames as u64)
    };
    write_kitti_flat(&sim, out, range, &|_| bar.inc(1))?;
    bar.finish_and_clear();
    Ok(frames)
}

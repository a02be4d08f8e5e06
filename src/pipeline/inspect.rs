//! Looking at scans without running SLAM: `project` writes a scan's images as PNG files, `stats`
//! summarises the projected images of a whole source, and `synth` writes a simulated sequence.

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::io::{FrameRange, ScanSource};
use crate::projection::png::write_projection_pngs;
use crate::projection::stats::{ProjectionStats, StatsAccumulator};
use crate::projection::{ProjectionParams, RangeImage, project};
use crate::sim::{SimConfig, Simulation, write_kitti_flat};
use std::path::Path;

/// Rows are repeated this many times in written PNGs so a 64-row image is comfortable to read.
pub const PNG_ROW_STRETCH: usize = 4;

/// Projects the first scan of `source` and writes `range.png`, `normal.png`, `intensity.png` to `out`.
pub fn project_to_pngs(source: &mut dyn ScanSource, params: &ProjectionParams, out: &Path) -> Result<RangeImage> {
    let scan = source
        .next()
        .ok_or_else(|| Error::Usage(format!("{}: no scan to project", source.name())))??;
    let img = project(&scan.points, &scan.intensity, params);
    write_projection_pngs(&img, params.max_range, out, PNG_ROW_STRETCH)?;
    Ok(img)
}

/// Projection statistics over every scan of `source`.
pub fn projection_stats(source: &mut dyn ScanSource, params: &ProjectionParams) -> Result<ProjectionStats> {
    let mut acc = StatsAccumulator::new(params.rows, params.max_range as f64);
    for scan in source {
        let scan = scan?;
        acc.add(&project(&scan.points, &scan.intensity, params));
    }
    Ok(acc.finish())
}

/// Writes statistics as JSON, atomically.
pub fn write_stats(stats: &ProjectionStats, path: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(stats).expect("stats serialise");
    write_atomic(path, |w| std::io::Write::write_all(w, json.as_bytes()))
}

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

//! `stats`: the projected images of a whole source summarised as JSON (valid pixels per row,
//! range, intensity and normal histograms).

use crate::error::Result;
use crate::io::ScanSource;
use crate::io::atomic::write_atomic;
use crate::projection::stats::{ProjectionStats, StatsAccumulator};
use crate::projection::{ProjectionParams, project};
use std::path::Path;

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

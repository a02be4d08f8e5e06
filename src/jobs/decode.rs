//! `decode`: Velodyne packets (a UDP socket or a pcap capture) turned into sweeps without SLAM,
//! counted, and optionally written one PCD file a sweep for other tools.

use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::velodyne::LiveSource;
use std::io::Write;
use std::time::Instant;

/// What [`decode`] found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DecodeReport {
    /// Sweeps decoded.
    pub sweeps: usize,
    /// Points in them.
    pub points: usize,
    /// Link counters.
    pub link: crate::io::velodyne::source::LinkCounts,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Data packets decoded per second.
    pub packets_per_s: f64,
}

/// Decodes `source` into sweeps without running the pipeline; with `out`, each sweep is
/// written there as `NNNNNN.pcd` (x y z intensity time ring, sensor frame), for other tools.
pub fn decode(source: &LiveSource, out: Option<&std::path::Path>) -> Result<DecodeReport> {
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let started = Instant::now();
    let (mut sweeps, mut points) = (0, 0);
    for scan in source.open(FrameRange::all())? {
        let scan = scan?;
        if let Some(dir) = out {
            let bytes = crate::io::pcd::encode_pcd_binary(&scan);
            crate::io::atomic::write_atomic(&dir.join(format!("{:06}.pcd", scan.index)), |w| w.write_all(&bytes))?;
        }
        sweeps += 1;
        points += scan.len();
    }
    let wall_s = started.elapsed().as_secs_f64();
    let link = source.stats.snapshot();
    Ok(DecodeReport {
        sweeps,
        points,
        link,
        wall_s,
        packets_per_s: link.packets as f64 / wall_s.max(1e-9),
    })
}

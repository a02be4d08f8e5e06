//! `overlap-slam live`: the pipeline fed by a Velodyne packet stream (a UDP socket or a pcap
//! capture), with a one-line status of the link and the pipeline while it runs.

use super::config::PipelineConfig;
use super::config::SourceSpec;
use super::report::ReplayReport;
use super::status::{RunStatus, print_status};
use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::perception::PerceptionStage;
use crate::sensor::SensorModel;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

pub use crate::io::velodyne::{LiveSource, PacketInput};

/// Runs the pipeline on `source`; `pipeline` holds everything else (outputs, viewer, loop
/// closure). Prints a status line every second unless `pipeline.quiet`.
pub fn live(
    source: LiveSource,
    pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
) -> Result<ReplayReport> {
    let mut pipeline = pipeline;
    pipeline.sensor = SensorModel::builtin(source.velodyne.model.sensor_model_name())?;
    // A capture read as fast as possible waits for the pipeline; a socket or a paced capture
    // does not, and may lose viewer updates to keep up.
    let paced = source.input.paced();
    let stats = source.stats.clone();
    let pipeline = pipeline.for_stream(SourceSpec::Live(source), paced);
    run_with_status(pipeline, stages, move || {
        let l = stats.snapshot();
        format!(
            "packets {} ok, {} lost, {} malformed, {} foreign, {} reordered, {} restarts",
            l.packets, l.lost, l.malformed, l.foreign, l.reordered, l.restarts
        )
    })
}

/// Runs a live pipeline with a status line every second (unless `pipeline.quiet`): sweeps, rate,
/// what `link` says of the input, and latency.
pub fn run_with_status(
    mut pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
    link: impl Fn() -> String + Send + 'static,
) -> Result<ReplayReport> {
    let status = Arc::new(RunStatus::default());
    pipeline.status = Some(status.clone());
    let quiet = std::mem::replace(&mut pipeline.quiet, true);
    let done = Arc::new(AtomicBool::new(false));
    let printer = (!quiet).then(|| {
        let (done, status) = (done.clone(), status.clone());
        std::thread::spawn(move || print_status(&done, &link, &status))
    });
    let result = super::run::run(&pipeline, stages);
    done.store(true, Ordering::Relaxed);
    if let Some(p) = printer {
        let _ = p.join();
    }
    result
}

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

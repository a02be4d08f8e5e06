//! `overlap-slam live`: the pipeline fed by a Velodyne packet stream (a UDP socket or a pcap
//! capture), with a one-line status of the link and the pipeline while it runs.

use super::config::PipelineConfig;
use super::config::SourceSpec;
use super::report::RunReport;
use super::status::{RunStatus, print_status};
use crate::error::Result;
use crate::perception::PerceptionStage;
use crate::sensor::SensorModel;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use crate::io::velodyne::{LiveSource, PacketInput};

/// Runs the pipeline on `source`; `pipeline` holds everything else (outputs, viewer, loop
/// closure). Prints a status line every second unless `pipeline.quiet`.
pub fn live(source: LiveSource, pipeline: PipelineConfig, stages: Vec<Box<dyn PerceptionStage>>) -> Result<RunReport> {
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
    pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
    link: impl Fn() -> String + Send + 'static,
) -> Result<RunReport> {
    run_with_heartbeat(pipeline, stages, link, None)
}

/// Told the run's status once a second (health reports for the robot's monitoring).
pub type Heartbeat = Box<dyn Fn(&RunStatus) + Send>;

/// [`run_with_status`], with `heartbeat`, when given, told the run's status once a second.
pub fn run_with_heartbeat(
    mut pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
    link: impl Fn() -> String + Send + 'static,
    heartbeat: Option<Heartbeat>,
) -> Result<RunReport> {
    let status = Arc::new(RunStatus::default());
    pipeline.status = Some(status.clone());
    let quiet = std::mem::replace(&mut pipeline.quiet, true);
    let done = Arc::new(AtomicBool::new(false));
    let printer = (!quiet).then(|| {
        let (done, status) = (done.clone(), status.clone());
        std::thread::spawn(move || print_status(&done, &link, &status))
    });
    let beat = heartbeat.map(|beat| {
        let (done, status) = (done.clone(), status.clone());
        std::thread::spawn(move || every_second_until(&done, || beat(&status)))
    });
    let result = super::run::run(&pipeline, stages);
    done.store(true, Ordering::Relaxed);
    for thread in printer.into_iter().chain(beat) {
        let _ = thread.join();
    }
    result
}

/// Calls `f` once a second until `done`, looking at `done` four times a second so that a run
/// ending waits at most a quarter of a second for this thread.
fn every_second_until(done: &AtomicBool, f: impl Fn()) {
    let mut last = std::time::Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(250));
        if last.elapsed() >= std::time::Duration::from_secs(1) {
            last = std::time::Instant::now();
            f();
        }
    }
}

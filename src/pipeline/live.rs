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
    run_with_heartbeat(pipeline, stages, link, |_| {})
}

/// [`run_with_status`], with `heartbeat` also told the run's status once a second (health
/// reports for the robot's monitoring).
pub fn run_with_heartbeat(
    mut pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
    link: impl Fn() -> String + Send + 'static,
    heartbeat: impl Fn(&RunStatus) + Send + 'static,
) -> Result<RunReport> {
    let status = Arc::new(RunStatus::default());
    pipeline.status = Some(status.clone());
    let quiet = std::mem::replace(&mut pipeline.quiet, true);
    let done = Arc::new(AtomicBool::new(false));
    let printer = (!quiet).then(|| {
        let (done, status) = (done.clone(), status.clone());
        std::thread::spawn(move || print_status(&done, &link, &status))
    });
    let beat = {
        let (done, status) = (done.clone(), status.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(std::time::Duration::from_secs(1));
                heartbeat(&status);
            }
        })
    };
    let result = super::run::run(&pipeline, stages);
    done.store(true, Ordering::Relaxed);
    for thread in printer.into_iter().chain([beat]) {
        let _ = thread.join();
    }
    result
}

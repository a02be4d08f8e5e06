//! `overlap-slam live`: the replay pipeline fed by a Velodyne packet stream (a UDP socket or a
//! pcap capture), with a one-line status of the link and the pipeline while it runs.

use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::velodyne::pcap::PcapStream;
use crate::io::velodyne::source::PacketStream;
use crate::io::velodyne::udp::UdpStream;
use crate::io::velodyne::{LinkStats, VelodyneConfig, VelodyneSource};
use crate::pipeline::replay::{ReplayConfig, ReplayReport, RunStatus, SourceSpec, replay_with_stages};
use crate::sensor::SensorModel;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Local-map voxels no sweep has hit for this many frames are dropped in live runs: a minute at
/// 10 Hz, longer than a lap of the simulated loop, so places revisited within a minute keep their
/// map (`--set max_voxel_age_frames=0` turns it off).
pub const LIVE_MAX_VOXEL_AGE_FRAMES: usize = 600;

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum PacketInput {
    /// A UDP socket bound to `addr`; the stream ends after `idle_timeout_s` without data (never
    /// when `None`) or on a stop.
    Udp { addr: String, idle_timeout_s: Option<f64> },
    /// A pcap capture; datagrams to `port`, at the recorded pace when `realtime`.
    Pcap { path: PathBuf, port: u16, realtime: bool },
}

/// A Velodyne stream as a replay source; `stats` is shared with the status line.
#[derive(Debug, Clone)]
pub struct LiveSource {
    /// Where packets come from.
    pub input: PacketInput,
    /// The sensor and how to cut its sweeps.
    pub velodyne: VelodyneConfig,
    /// Link counters.
    pub stats: Arc<LinkStats>,
    /// Set to end the stream (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
}

impl LiveSource {
    /// Opens the stream; `frames` may cap the number of sweeps (`..N`), not skip any.
    pub fn open(&self, frames: FrameRange) -> Result<VelodyneSource> {
        if frames.start != 0 {
            return Err(Error::Usage(
                "a live stream starts at its first sweep: use --frames ..N".into(),
            ));
        }
        let stream: Box<dyn PacketStream> = match &self.input {
            PacketInput::Udp { addr, idle_timeout_s } => Box::new(UdpStream::bind(
                addr,
                self.stats.clone(),
                self.stop.clone(),
                idle_timeout_s.map(Duration::from_secs_f64),
            )?),
            PacketInput::Pcap { path, port, realtime } => {
                Box::new(PcapStream::open(path, *port, *realtime, self.stop.clone())?)
            }
        };
        let mut velodyne = self.velodyne.clone();
        velodyne.max_sweeps = match (velodyne.max_sweeps, frames.end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        VelodyneSource::new(stream, &velodyne, self.stats.clone())
    }
}

/// Runs the pipeline on `source`; `pipeline` holds everything else (outputs, viewer, loop
/// closure). Prints a status line every second unless `pipeline.quiet`.
pub fn live(
    source: LiveSource,
    mut pipeline: ReplayConfig,
    stages: Vec<Box<dyn crate::perception::PerceptionStage>>,
) -> Result<ReplayReport> {
    pipeline.sensor = SensorModel::builtin(source.velodyne.model.sensor_model_name())?;
    // A robot may circle one area for hours: age out map voxels it no longer sees, so that
    // drift cannot grow the local map (and memory) without end.
    pipeline
        .odometry
        .max_voxel_age_frames
        .get_or_insert(LIVE_MAX_VOXEL_AGE_FRAMES);
    // A stream that will not wait (a socket, a capture paced in real time) may drop viewer
    // updates to keep up; a capture read as fast as possible waits for the pipeline instead.
    pipeline.live = match &source.input {
        PacketInput::Udp { .. } => true,
        PacketInput::Pcap { realtime, .. } => *realtime,
    };
    let stats = source.stats.clone();
    pipeline.source = SourceSpec::Live(source);
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
    mut pipeline: ReplayConfig,
    stages: Vec<Box<dyn crate::perception::PerceptionStage>>,
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
    let result = replay_with_stages(&pipeline, stages);
    done.store(true, Ordering::Relaxed);
    if let Some(p) = printer {
        let _ = p.join();
    }
    result
}

/// Rewrites one status line on stderr every second until `done`.
fn print_status(done: &AtomicBool, link: &dyn Fn() -> String, status: &RunStatus) {
    // A terminal gets one line rewritten every second, a log file a line every ten.
    let (every, ending) = if std::io::stderr().is_terminal() {
        (Duration::from_secs(1), "\r")
    } else {
        (Duration::from_secs(10), "\n")
    };
    let started = Instant::now();
    let (mut last_frames, mut last_at) = (0, Instant::now());
    let mut err = std::io::stderr();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(250));
        if last_at.elapsed() < every {
            continue;
        }
        let frames = status.frames();
        let fps = (frames - last_frames) as f64 / last_at.elapsed().as_secs_f64();
        (last_frames, last_at) = (frames, Instant::now());
        let _ = write!(
            err,
            "{}[{:>6.0} s] {frames} sweeps, {fps:.1}/s | {} | latency {:.0} ms (p99 {:.0})   ",
            if ending == "\r" { "\r" } else { "" },
            started.elapsed().as_secs_f64(),
            link(),
            status.last_latency_ms(),
            status.latency_p99_ms(),
        );
        if ending == "\n" {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
    if ending == "\r" {
        let _ = writeln!(err);
    }
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

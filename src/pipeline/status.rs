//! Progress a run reports while it goes, and the one-line status a live run prints from it.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Progress a run reports while it runs.
#[derive(Debug, Default)]
pub struct RunStatus {
    frames: AtomicUsize,
    latencies_ms: Mutex<VecDeque<f64>>,
    /// A [`MapState`], as its `u8`.
    map_state: AtomicU8,
    /// The newest frame's registration failed.
    lost: AtomicBool,
    /// Frames whose registration failed, so far.
    lost_frames: AtomicUsize,
    /// Loops closed so far.
    loops: AtomicUsize,
}

/// The status line's word for a run in a prior map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MapState {
    /// No prior map.
    None = 0,
    /// Searching the prior map for where the run is.
    Localising = 1,
    /// Fixed in the prior map.
    Localised = 2,
}

/// Where a run stands, as the status line and the robot's monitoring say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Odometry registers and no prior map is involved.
    Tracking,
    /// Searching a prior map for where the run is.
    Localising,
    /// Fixed in the prior map.
    Localised,
    /// The newest frame's registration failed.
    Lost,
}

impl RunState {
    /// The state in one word.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Tracking => "tracking",
            RunState::Localising => "localising",
            RunState::Localised => "localised",
            RunState::Lost => "lost",
        }
    }
}

/// Latencies kept for the running percentile.
const STATUS_WINDOW: usize = 100;

impl RunStatus {
    /// Frames processed so far.
    pub fn frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }

    /// Latency of the newest frame, milliseconds (0 before any or without arrival times).
    pub fn last_latency_ms(&self) -> f64 {
        self.latencies().back().copied().unwrap_or(0.0)
    }

    /// 99th percentile of the last 100 frames' latencies, milliseconds.
    pub fn latency_p99_ms(&self) -> f64 {
        let mut v: Vec<f64> = self.latencies().iter().copied().collect();
        percentile(&mut v, 0.99)
    }

    fn latencies(&self) -> std::sync::MutexGuard<'_, VecDeque<f64>> {
        self.latencies_ms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where the run stands in its prior map.
    pub fn map_state(&self) -> MapState {
        match self.map_state.load(Ordering::Relaxed) {
            s if s == MapState::Localising as u8 => MapState::Localising,
            s if s == MapState::Localised as u8 => MapState::Localised,
            _ => MapState::None,
        }
    }

    /// Marks the run as localising in a prior map (until the fix).
    pub fn start_localising(&self) {
        let _ = self.map_state.compare_exchange(
            MapState::None as u8,
            MapState::Localising as u8,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Says whether the newest frame's registration failed.
    pub fn set_lost(&self, lost: bool) {
        self.lost.store(lost, Ordering::Relaxed);
        self.lost_frames.fetch_add(lost as usize, Ordering::Relaxed);
    }

    /// Frames whose registration failed, so far.
    pub fn lost_frames(&self) -> usize {
        self.lost_frames.load(Ordering::Relaxed)
    }

    /// Loops closed so far.
    pub fn loops(&self) -> usize {
        self.loops.load(Ordering::Relaxed)
    }

    /// Where the run stands: lost, or else where it is in its prior map.
    pub fn state(&self) -> RunState {
        match (self.lost(), self.map_state()) {
            (true, _) => RunState::Lost,
            (false, MapState::Localising) => RunState::Localising,
            (false, MapState::Localised) => RunState::Localised,
            (false, MapState::None) => RunState::Tracking,
        }
    }

    /// True while odometry is lost (the newest frame's registration failed).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Counts one more frame, with the time from its arrival to its pose when known.
    pub fn record(&self, latency_ms: Option<f64>) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = latency_ms {
            let mut w = self.latencies();
            if w.len() == STATUS_WINDOW {
                w.pop_front();
            }
            w.push_back(ms);
        }
    }
}

/// The status line hears of the fix through the loop thread's sink.
impl crate::pipeline::sink::EstimateSink for RunStatus {
    fn odometry(&self, _stamp_s: f64, _pose: &crate::scan::Pose, _delta: &crate::scan::Pose, _dt_s: f64) {}

    fn corrected(&self, _poses: &[crate::scan::Pose]) {}

    fn localised(&self, _map_from_odometry: &crate::scan::Pose, _fix: &crate::scan::Pose) {
        self.map_state.store(MapState::Localised as u8, Ordering::Relaxed);
    }

    fn loop_closed(&self, _query: usize, _at: &crate::scan::Pose, _to: &crate::scan::Pose, _overlap: f32) {
        self.loops.fetch_add(1, Ordering::Relaxed);
    }
}

/// The `q` quantile of `values` (sorted in place), 0 when empty.
pub(crate) fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

/// Rewrites one status line on stderr every second until `done`: sweeps, rate, what `link` says
/// of the input, and latency.
pub fn print_status(done: &AtomicBool, link: &dyn Fn() -> String, status: &RunStatus) {
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
        let map = match status.state() {
            RunState::Tracking => String::new(),
            state => format!(" | {}", state.name()),
        };
        let _ = write!(
            err,
            "{}[{:>6.0} s] {frames} sweeps, {fps:.1}/s | {} | latency {:.0} ms (p99 {:.0}){map}   ",
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

/// A progress bar counting `unit`s (hidden when `quiet`).
pub(crate) fn progress_bar(total: Option<usize>, quiet: bool, unit: &str) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n as u64),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})"
        ))
        .expect("valid template"),
    );
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::sink::EstimateSink;
    use crate::scan::Pose;

    #[test]
    fn a_run_in_a_map_reads_localising_until_the_fix_then_localised() {
        let status = RunStatus::default();
        assert_eq!(status.map_state(), MapState::None);
        status.start_localising();
        assert_eq!(status.map_state(), MapState::Localising);
        status.localised(&Pose::identity(), &Pose::identity());
        assert_eq!(status.map_state(), MapState::Localised);
        status.start_localising();
        assert_eq!(status.map_state(), MapState::Localised, "a fix is not undone");
    }

    #[test]
    fn a_lost_frame_reads_lost_until_the_next_registers_and_is_counted() {
        let status = RunStatus::default();
        assert_eq!(status.state(), RunState::Tracking);
        status.start_localising();
        status.set_lost(true);
        assert_eq!(status.state(), RunState::Lost, "lost outranks localising");
        status.set_lost(true);
        status.set_lost(false);
        assert_eq!(status.state(), RunState::Localising);
        assert_eq!(status.lost_frames(), 2);
        status.loop_closed(3, &Pose::identity(), &Pose::identity(), 0.5);
        assert_eq!(status.loops(), 1);
    }
}

//! `overlap-slam replay`: source -> odometry -> projection -> rerun, then trajectories and
//! metrics on disk. The source runs on its own thread behind a bounded channel, so reading or
//! simulating the next scan overlaps with registering the current one.

use crate::error::{Error, Result};
use crate::io::velodyne::source::LinkCounts;
use crate::io::{self, FrameRange, ScanSource, SourceOptions, atomic::write_atomic, poses};
use crate::loops::detector::LoopDetector;
use crate::metrics;
use crate::odometry::{OdometryConfig, OdometryKind, estimator};
use crate::perception::{FrameView, PerceptionStage};
use crate::pipeline::live::LiveSource;
use crate::pipeline::loop_worker::ClosureConfig;
use crate::pipeline::loop_worker::{LoopOutcome, LoopWorker};
use crate::pipeline::map::GlobalMap;
use crate::pipeline::map::thin;
use crate::projection::{ProjectionParams, project};
use crate::scan::{Pose, Scan};
use crate::sensor::SensorModel;
use crate::sim::{SimConfig, SimSource, Simulation};
use crate::viz::{Viz, VizTarget};
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Where scans come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// The embedded default: a simulated drive generated in memory.
    Simulated(SimConfig),
    /// A file or folder on disk.
    Path { path: PathBuf, options: SourceOptions },
    /// A Velodyne packet stream: a live UDP socket or a pcap capture.
    Live(LiveSource),
    /// A live ROS 2 PointCloud2 topic.
    Ros2(crate::io::ros::dds::Ros2Input),
}

/// Receives the estimate as it is made, for the rest of a robot (ROS 2 topics, say).
pub trait EstimateSink: Send + Sync + std::fmt::Debug {
    /// Odometry's pose at `stamp_s` and its motion `delta` since the previous frame, `dt_s` ago.
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64);
    /// The loop-corrected pose of every frame so far, each time the pose graph changes them.
    fn corrected(&self, poses: &[Pose]);
}

/// Everything a replay needs; every default in one place.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Scans to replay.
    pub source: SourceSpec,
    /// Frames to take (applies to both kinds of source).
    pub frames: FrameRange,
    /// Folder for `poses_kitti.txt`, `poses_tum.txt`, `metrics.json`; none writes nothing.
    pub out: Option<PathBuf>,
    /// Recording target.
    pub viz: VizTarget,
    /// Sensor model for the projected images.
    pub sensor: SensorModel,
    /// Which odometry runs.
    pub odometry_kind: OdometryKind,
    /// Settings of the KISS-style odometry.
    pub odometry: OdometryConfig,
    /// Write the global map here (`.ply` or `.pcd`).
    pub map_out: Option<PathBuf>,
    /// Voxel size of the exported map, metres.
    pub map_voxel_m: f64,
    /// Loop closure: OverlapNet loop search, ICP verification, pose graph (`None`: odometry only).
    pub loops: Option<ClosureConfig>,
    /// OverlapNet weights for the loop search; `None`: the shipped model.
    pub weights: Option<PathBuf>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Set (by a Ctrl-C handler, say) to stop after the current frame with every output written.
    pub stop: Option<Arc<AtomicBool>>,
    /// A live source: when sweeps wait behind the one being processed, the viewer is not fed
    /// (only visualisation is dropped, never a sweep).
    pub live: bool,
    /// Updated after every frame, for a status line.
    pub status: Option<Arc<RunStatus>>,
    /// Told every frame's odometry and every loop correction.
    pub sink: Option<Arc<dyn EstimateSink>>,
}

/// Progress a replay reports while it runs.
#[derive(Debug, Default)]
pub struct RunStatus {
    frames: AtomicUsize,
    latencies_ms: Mutex<VecDeque<f64>>,
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

    fn record(&self, latency_ms: Option<f64>) {
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

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            source: SourceSpec::Simulated(SimConfig::default()),
            frames: FrameRange::all(),
            out: None,
            viz: VizTarget::None,
            sensor: SensorModel::hdl64(),
            odometry_kind: OdometryKind::default(),
            odometry: OdometryConfig::default(),
            map_out: None,
            map_voxel_m: 0.2,
            loops: Some(ClosureConfig::default()),
            weights: None,
            quiet: false,
            stop: None,
            live: false,
            status: None,
            sink: None,
        }
    }
}

/// What a replay measured; also written as `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplayReport {
    /// What was replayed.
    pub source: String,
    /// Frames processed.
    pub frames: usize,
    /// Wall-clock seconds from first to last frame.
    pub wall_s: f64,
    /// Frames per second.
    pub fps: f64,
    /// Accuracy of the final (with loop closure: optimised) trajectory against ground truth
    /// (every figure null without it).
    #[serde(flatten)]
    pub accuracy: metrics::Accuracy,
    /// ATE of the odometry alone, metres (null without ground truth).
    pub ate_rmse_odom_m: Option<f64>,
    /// Median per-frame processing time (everything but reading the scan), milliseconds.
    pub frame_ms_p50: f64,
    /// 99th percentile of the per-frame processing time, milliseconds.
    pub frame_ms_p99: f64,
    /// Median time from a sweep's last packet arriving to its pose, milliseconds (live
    /// sources only).
    pub latency_ms_p50: Option<f64>,
    /// 99th percentile of that latency, milliseconds.
    pub latency_ms_p99: Option<f64>,
    /// Link counters of a live source (datagrams, loss, reordering, restarts).
    pub link: Option<LinkCounts>,
    /// Frames whose viewer update was skipped because sweeps were waiting.
    pub viz_frames_skipped: usize,
    /// Points in the odometry's local map at the end.
    pub local_map_points: usize,
    /// Peak resident memory of the process, MB (from /proc on Linux; null elsewhere).
    pub peak_rss_mb: Option<f64>,
    /// Resident memory and local-map size after every 100th frame: shows whether memory stays
    /// flat on a long run.
    pub memory_by_frame: BTreeMap<usize, MemorySample>,
    /// The odometry used.
    pub odometry_kind: OdometryKind,
    /// The KISS-style odometry settings (when `odometry_kind` is `kiss`).
    pub odometry: OdometryConfig,
    /// Frames where the motion model replaced the registration, wholly (too few points or
    /// matches) or along the directions the scene does not constrain.
    pub degenerate_frames: usize,
    /// Mean milliseconds per frame spent in each stage.
    pub stage_ms: BTreeMap<String, f64>,
    /// Loop-closure settings (null when off).
    pub loop_closure: Option<ClosureConfig>,
    /// Loop candidates with their verification, counts against ground truth, timings (null
    /// when off).
    pub loops: Option<LoopOutcome>,
    /// Largest number of frames waiting for the loop-closure thread.
    pub loop_queue_max: usize,
    /// Final poses, optimised when loop closure is on (LiDAR frame, frame 0 at the origin); not
    /// serialised.
    #[serde(skip)]
    pub poses: Vec<Pose>,
    /// Odometry poses; not serialised.
    #[serde(skip)]
    pub odometry_poses: Vec<Pose>,
    /// Ground-truth poses when the source has them; not serialised.
    #[serde(skip)]
    pub ground_truth: Option<Vec<Pose>>,
}

impl ReplayReport {
    /// One line for the terminal: frames, speed, accuracy, loops, and for live sources the
    /// latency and the link.
    pub fn summary(&self) -> String {
        let ate = self
            .accuracy
            .ate_rmse_m
            .map_or("n/a (no ground truth)".to_string(), |v| format!("{v:.3} m"));
        let loops = self.loops.as_ref().map_or(String::new(), |l| {
            let odom = self
                .ate_rmse_odom_m
                .map_or(String::new(), |v| format!(" (odometry {v:.3} m)"));
            let gated = if l.gate_refused > 0 {
                format!(" ({} refused unverified: the subnetworks disagreed)", l.gate_refused)
            } else {
                String::new()
            };
            format!(
                "{odom}, {} loops accepted of {} candidates{gated} over {} keyframes",
                l.loops_accepted,
                l.candidates.len(),
                l.keyframes
            )
        });
        let mut line = format!(
            "{}: {} frames in {:.1} s ({:.1} frames/s), ATE {ate}{loops}",
            self.source, self.frames, self.wall_s, self.fps
        );
        if let (Some(p50), Some(p99)) = (self.latency_ms_p50, self.latency_ms_p99) {
            line += &format!(", latency p50 {p50:.0} ms p99 {p99:.0} ms");
        }
        if let Some(l) = &self.link {
            line += &format!(
                ", packets {} ok / {} lost / {} malformed / {} foreign / {} reordered, {} restarts",
                l.packets, l.lost, l.malformed, l.foreign, l.reordered, l.restarts
            );
        }
        line
    }
}

/// A memory figure of this process from /proc/self/status (`VmRSS`, `VmHWM`...), MB, where the
/// system has it.
fn proc_status_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Memory is sampled every this many frames (`memory_by_frame`).
const MEMORY_SAMPLE_EVERY: usize = 100;

/// Memory in use after a frame.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemorySample {
    /// Resident memory of the process, MB (from /proc on Linux; null elsewhere).
    pub rss_mb: Option<f64>,
    /// Points in the odometry's local map.
    pub local_map_points: usize,
}

/// Voxel size of the map drawn in the viewer, metres.
const VIZ_MAP_VOXEL_M: f64 = 0.5;
/// The drawn map is refreshed every this many frames.
const VIZ_MAP_EVERY: usize = 10;

impl SourceSpec {
    /// Opens frames `frames` of the source.
    pub fn open(&self, frames: FrameRange) -> Result<Box<dyn ScanSource>> {
        Ok(match self {
            SourceSpec::Simulated(sim) => Box::new(SimSource::new(Arc::new(Simulation::new(sim)), frames)),
            SourceSpec::Path { path, options } => io::open_source(
                path,
                &SourceOptions {
                    frames,
                    ..options.clone()
                },
            )?,
            SourceSpec::Live(live) => Box::new(live.open(frames)?),
            SourceSpec::Ros2(input) => Box::new(input.open(frames)?),
        })
    }
}

/// Replays a source end to end.
pub fn replay(cfg: &ReplayConfig) -> Result<ReplayReport> {
    replay_with_stages(cfg, Vec::new())
}

/// Replays a source end to end with perception `stages` run on every projected frame (each
/// timed as `stage_ms/NAME`).
pub fn replay_with_stages(cfg: &ReplayConfig, mut stages: Vec<Box<dyn PerceptionStage>>) -> Result<ReplayReport> {
    if cfg.map_voxel_m.is_nan() || cfg.map_voxel_m <= 0.0 {
        return Err(Error::Usage(format!(
            "map voxel size must be positive, got {}",
            cfg.map_voxel_m
        )));
    }
    let source = cfg.source.open(cfg.frames)?;
    let name = source.name();
    let total = source.len_hint();
    let is_kitti = source.is_kitti();
    if let Some(out) = &cfg.out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let views: Vec<String> = stages.iter().flat_map(|s| s.views()).collect();
    let mut viz = Viz::open_with_views(&cfg.viz, &views)?;
    let params = ProjectionParams::from_sensor(&cfg.sensor);
    let progress = progress_bar(total, cfg.quiet, "frames");

    let (tx, rx) = crossbeam_channel::bounded::<(Result<Scan>, f64)>(4);
    let reader = std::thread::spawn(move || {
        let mut source = source;
        loop {
            let start = Instant::now();
            let Some(item) = source.next() else { break };
            let failed = item.is_err();
            if tx.send((item, start.elapsed().as_secs_f64() * 1e3)).is_err() || failed {
                break;
            }
        }
    });

    let started = Instant::now();
    let mut odometry_cfg = cfg.odometry;
    odometry_cfg.kitti_correction = Some(odometry_cfg.kitti_correction.unwrap_or(is_kitti));
    odometry_cfg.azimuth_times = Some(odometry_cfg.azimuth_times.unwrap_or(is_kitti));
    let mut odometry = estimator(cfg.odometry_kind, odometry_cfg);
    let mut frame_ms = Vec::new();
    let mut export = cfg.map_out.as_ref().map(|_| GlobalMap::new(cfg.map_voxel_m));
    let mut stage_total: BTreeMap<String, f64> = BTreeMap::new();
    let (mut est, mut gt, mut stamps) = (Vec::new(), Vec::new(), Vec::new());
    let mut degenerate = 0;
    let mut frame_numbers = Vec::new();
    let mut memory_samples = BTreeMap::new();
    let mut map = GlobalMap::new(VIZ_MAP_VOXEL_M);
    let loop_worker = match cfg.loops {
        Some(c) => Some(LoopWorker::spawn_with_sink(
            c,
            LoopDetector::new(c.detector, cfg.weights.as_deref())?,
            cfg.sink.clone(),
        )),
        None => None,
    };
    let keyframe_every = cfg.loops.map_or(1, |c| c.search.keyframe_every.max(1));
    let mut keyframe_clouds: Vec<(usize, Scan)> = Vec::new();
    let mut loop_queue_max = 0;
    let mut source_error = None;
    let mut latencies = Vec::new();
    let mut viz_frames_skipped = 0;
    for (item, source_ms) in rx.iter() {
        if cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            log::warn!("stopped after {} frames; writing outputs", est.len());
            break;
        }
        // A failing source ends the run like its end would, and the error is reported once
        // every output for the frames before it is written.
        let scan = match item {
            Ok(scan) => scan,
            Err(e) => {
                source_error = Some(e);
                break;
            }
        };
        let frame_start = Instant::now();
        let mut timings = vec![("source", source_ms)];
        let t = Instant::now();
        let step = odometry.register(&scan);
        timings.push(("odometry", t.elapsed().as_secs_f64() * 1e3));
        let latency_ms = scan.received.map(|r| r.elapsed().as_secs_f64() * 1e3);
        latencies.extend(latency_ms);
        if let Some(s) = &cfg.status {
            s.record(latency_ms);
        }
        degenerate += step.degenerate as usize;
        if let Some(sink) = &cfg.sink {
            let dt = stamps.last().map_or(0.0, |t: &f64| scan.timestamp - t);
            sink.odometry(scan.timestamp, &step.pose, &step.delta, dt);
        }
        let t = Instant::now();
        let image = project(&scan.points, &scan.intensity, &params);
        timings.push(("projection", t.elapsed().as_secs_f64() * 1e3));
        let mut stage_timings = Vec::with_capacity(stages.len());
        for stage in stages.iter_mut() {
            let t = Instant::now();
            let view = FrameView {
                scan: &scan,
                pose: &step.pose,
                image: &image,
            };
            stage.process(&view, &viz)?;
            stage_timings.push((format!("stage/{}", stage.name()), t.elapsed().as_secs_f64() * 1e3));
        }
        let behind = cfg.live && !rx.is_empty();
        viz_frames_skipped += (behind && viz.is_active()) as usize;
        if viz.is_active() && !behind {
            let t = Instant::now();
            viz.set_frame(&scan);
            viz.log_scan(&scan, &step.pose, scan.gt_pose.as_ref())?;
            viz.log_images(&image)?;
            map.add(&scan, &step.pose);
            if est.len() % VIZ_MAP_EVERY == 0 {
                viz.log_map_batch(map.take_new())?;
            }
            timings.push(("viz", t.elapsed().as_secs_f64() * 1e3));
            for (stage, ms) in &timings {
                viz.log_scalar(&format!("stage_ms/{stage}"), *ms)?;
            }
        }
        if let Some(m) = export.as_mut() {
            m.add(&scan, &step.pose);
            if loop_worker.is_some() && scan.index.is_multiple_of(keyframe_every) {
                keyframe_clouds.push((est.len(), thin(&scan, cfg.map_voxel_m)));
            }
        }
        if let Some(w) = &loop_worker {
            let t = Instant::now();
            loop_queue_max = loop_queue_max.max(w.queue_depth());
            w.send(&scan, &step.pose, step.degenerate);
            timings.push(("loop_queue_wait", t.elapsed().as_secs_f64() * 1e3));
        }
        for (stage, ms) in timings {
            *stage_total.entry(stage.to_string()).or_default() += ms;
        }
        for (stage, ms) in stage_timings {
            viz.log_scalar(&format!("stage_ms/{stage}"), ms)?;
            *stage_total.entry(stage).or_default() += ms;
        }
        if let Some(w) = &loop_worker {
            viz.log_scalar("queue/loop_closure", w.queue_depth() as f64)?;
        }
        if let Some(ms) = latency_ms {
            viz.log_scalar("live/latency_ms", ms)?;
        }
        if let SourceSpec::Live(live) = &cfg.source {
            log_link(&viz, &live.stats.snapshot())?;
        }
        frame_ms.push(frame_start.elapsed().as_secs_f64() * 1e3);
        est.push(step.pose);
        frame_numbers.push(scan.index);
        gt.push(scan.gt_pose);
        stamps.push(scan.timestamp);
        if est.len() % MEMORY_SAMPLE_EVERY == 0 {
            let sample = MemorySample {
                rss_mb: proc_status_mb("VmRSS:"),
                local_map_points: odometry.local_map_points(),
            };
            memory_samples.insert(est.len(), sample);
        }
        progress.inc(1);
    }
    // Dropping the receiver unblocks a reader waiting to send, which then ends.
    drop(rx);
    reader
        .join()
        .map_err(|_| Error::Usage("the source thread panicked".into()))?;
    progress.finish_and_clear();
    let loops = loop_worker.map(LoopWorker::finish).transpose()?;
    if est.is_empty() {
        return Err(source_error.unwrap_or_else(|| Error::Usage(format!("{name}: no frames to replay"))));
    }
    viz.log_map_batch(map.take_new())?;
    let odometry_poses = est.clone();
    if let Some(l) = &loops {
        est = l.poses.clone();
        let at = |frame: usize| frame_numbers.binary_search(&frame).ok().map(|i| &est[i]);
        for c in &l.judged {
            viz.log_judged(c)?;
        }
        for r in &l.candidates {
            let c = &r.candidate;
            let Some((q, p)) = at(c.query).zip(at(c.reference)) else {
                continue;
            };
            if r.closed {
                viz.log_loop(c.query, q, p, c.overlap)?;
            } else {
                viz.log_candidate(c, q, p)?;
            }
        }
        viz.log_optimised(&est)?;
        // Without a closed loop the optimised poses are the odometry's, and the map built on
        // the way (from every frame) stands; otherwise it is rebuilt from the keyframes.
        if let Some(m) = export.as_mut().filter(|_| l.loops_accepted > 0) {
            *m = GlobalMap::new(cfg.map_voxel_m);
            for (i, cloud) in &keyframe_clouds {
                m.add(cloud, &est[*i]);
            }
            viz.log_corrected_map(&m.points)?;
        }
    }

    let wall_s = started.elapsed().as_secs_f64();
    let ground_truth: Option<Vec<Pose>> = gt.iter().copied().collect();
    let accuracy = ground_truth
        .as_ref()
        .map_or_else(Default::default, |g| metrics::evaluate(&est, g).accuracy);
    let ate_rmse_odom_m = ground_truth
        .as_ref()
        .and_then(|g| metrics::ate_rmse(&odometry_poses, g));
    let frames = est.len();
    let latency = |q| (!latencies.is_empty()).then(|| percentile(&mut latencies.clone(), q));
    let report = ReplayReport {
        source: name,
        frames,
        wall_s,
        fps: frames as f64 / wall_s.max(1e-9),
        accuracy,
        ate_rmse_odom_m,
        frame_ms_p50: percentile(&mut frame_ms, 0.5),
        frame_ms_p99: percentile(&mut frame_ms, 0.99),
        latency_ms_p50: latency(0.5),
        latency_ms_p99: latency(0.99),
        link: match &cfg.source {
            SourceSpec::Live(l) => Some(l.stats.snapshot()),
            _ => None,
        },
        viz_frames_skipped,
        local_map_points: odometry.local_map_points(),
        peak_rss_mb: proc_status_mb("VmHWM:"),
        memory_by_frame: memory_samples,
        odometry_kind: cfg.odometry_kind,
        odometry: odometry_cfg,
        degenerate_frames: degenerate,
        stage_ms: stage_total.into_iter().map(|(k, v)| (k, v / frames as f64)).collect(),
        loop_closure: cfg.loops,
        loops,
        loop_queue_max,
        poses: est,
        odometry_poses,
        ground_truth,
    };
    if let Some(out) = &cfg.out {
        write_outputs(out, &report, &stamps)?;
    }
    if let (Some(path), Some(m)) = (&cfg.map_out, &export) {
        m.write(path)?;
    }
    viz.finish()?;
    match source_error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// The link counters of a live source as time series in the viewer (`live/...`).
fn log_link(viz: &Viz, l: &LinkCounts) -> Result<()> {
    for (name, value) in [
        ("packets", l.packets),
        ("lost", l.lost),
        ("malformed", l.malformed),
        ("foreign", l.foreign),
        ("reordered", l.reordered),
        ("restarts", l.restarts),
    ] {
        viz.log_scalar(&format!("live/{name}"), value as f64)?;
    }
    Ok(())
}

fn write_outputs(out: &std::path::Path, report: &ReplayReport, stamps: &[f64]) -> Result<()> {
    poses::write_kitti(&out.join("poses_kitti.txt"), &report.poses)?;
    poses::write_kitti(&out.join("poses_odom_kitti.txt"), &report.odometry_poses)?;
    poses::write_tum(&out.join("poses_tum.txt"), stamps, &report.poses)?;
    if let Some(gt) = &report.ground_truth {
        poses::write_kitti(&out.join("ground_truth_kitti.txt"), gt)?;
    }
    if let Some(loops) = &report.loops {
        write_atomic(&out.join("loops.csv"), |w| {
            writeln!(
                w,
                "query,match,overlap,yaw_deg,icp_fitness,inlier_ratio,verified,accepted,gt_distance_m,\
                 overlap_spread,yaw_spread_deg,gated"
            )?;
            for r in &loops.candidates {
                let c = &r.candidate;
                let gt = c.gt_distance_m.map_or(String::new(), |d| format!("{d:.2}"));
                let icp = r.verification.map_or(",,false".into(), |v| {
                    format!("{:.4},{:.4},{}", v.fitness, v.inlier_ratio, v.accepted)
                });
                let spread = c
                    .spread
                    .map_or(",".into(), |s| format!("{:.4},{:.2}", s.overlap, s.yaw_deg));
                writeln!(
                    w,
                    "{},{},{:.4},{:.2},{icp},{},{gt},{spread},{}",
                    c.query, c.reference, c.overlap, c.yaw_deg, r.closed, c.gated
                )?;
            }
            Ok(())
        })?;
    }
    let json = serde_json::to_string_pretty(report).expect("report serialises");
    write_atomic(&out.join("metrics.json"), |w| {
        std::io::Write::write_all(w, json.as_bytes())
    })
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

/// The `q` quantile of `values` (sorted in place), 0 when empty.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

//! The pipeline: the one stage graph that `replay`, `live` and `live --ros2` drive, built here
//! from a [`PipelineConfig`].
//!
//! ```text
//!  source thread           main thread                                     loop thread
//!  read / decode ──[4]──▶  odometry → projection → perception → viewer ──[queue]──▶ search → verify
//!  (ScanSource)    scans                       │                           keyframes   → pose graph
//!                                              └→ map export, run log                   → EstimateSink
//! ```
//!
//! Bounded channels hold the stages apart: a slow stage makes the one before it wait rather
//! than fill memory (a live source drops viewer updates instead of sweeps).

use super::config::SourceSpec;
use super::config::{PipelineConfig, SOURCE_QUEUE};
use super::global_map::{GlobalMap, thin};
use super::loop_worker::{LoopOutcome, LoopWorker};
use super::map_saves::MapSaver;
use super::report::{Recovery, RecoveryKind, RunEnd, RunLog, RunReport, SavedMap};
use super::saved_map_session::SavedMapJob;
use super::sink::{EstimateSink, Sinks};
use super::status::progress_bar;
use super::viewer::ViewerFeed;
use crate::error::{Error, Result};
use crate::io::velodyne::source::LinkCounts;
use crate::io::{FrameRange, ScanSource};
use crate::loops::detector::LoopDetector;
use crate::odometry::{OdometryConfig, OdometryEstimator, OdometryStep, estimator};
use crate::perception::{FrameView, PerceptionStage};
use crate::projection::{ProjectionParams, RangeImage, project};
use crate::saved_map::{PriorMap, SensorSignature, read_map, write_map};
use crate::scan::Scan;
use crossbeam_channel::Receiver;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Instant;

/// Runs `cfg`'s source through the whole pipeline, with perception `stages` on every projected
/// frame (each timed as `stage_ms/stage/NAME`), and writes the outputs.
pub fn run(cfg: &PipelineConfig, stages: Vec<Box<dyn PerceptionStage>>) -> Result<RunReport> {
    cfg.validate()?;
    let source = cfg.source.open(cfg.frames)?;
    let name = source.name();
    let progress = progress_bar(source.len_hint(), cfg.quiet, "frames");
    if let Some(out) = &cfg.out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let started = Instant::now();
    let mut pipeline = Pipeline::new(cfg, stages, source.is_kitti())?;
    let reader = Reader::spawn(source, cfg.dropped);
    let source_error = pipeline.drive(&reader.scans, &progress)?;
    reader.join()?;
    progress.finish_and_clear();
    // A failing source ends the run like its end would; its error is reported once every
    // output for the frames before it is written.
    let report = pipeline.finish(name, started, source_error.is_some());
    match source_error {
        Some(e) => Err(e),
        None => report,
    }
}

/// The source on its own thread, reading ahead of the pipeline into a bounded channel.
struct Reader {
    /// Each scan (or the error that ended the source) with the milliseconds it took to read.
    scans: Receiver<(Result<Scan>, f64)>,
    thread: JoinHandle<()>,
}

impl Reader {
    /// Reads `source` ahead on a thread, leaving out the frames in `dropped`.
    fn spawn(mut source: Box<dyn ScanSource>, dropped: Option<FrameRange>) -> Self {
        let (tx, scans) = crossbeam_channel::bounded(SOURCE_QUEUE);
        let thread = std::thread::spawn(move || {
            loop {
                let start = Instant::now();
                let Some(item) = source.next() else { break };
                if matches!((&item, dropped), (Ok(scan), Some(d)) if d.contains(scan.index)) {
                    continue;
                }
                let failed = item.is_err();
                if tx.send((item, start.elapsed().as_secs_f64() * 1e3)).is_err() || failed {
                    break;
                }
            }
        });
        Self { scans, thread }
    }

    fn join(self) -> Result<()> {
        // Dropping the receiver unblocks a reader waiting to send, which then ends.
        drop(self.scans);
        self.thread
            .join()
            .map_err(|_| Error::Usage("the source thread panicked".into()))
    }
}

/// The global map for `--map-out`: every frame added as it comes, rebuilt from the keyframes'
/// clouds at their corrected poses once loops have closed.
struct MapExport {
    map: GlobalMap,
    voxel_m: f64,
    /// (index in the run, thinned cloud) of every keyframe, when loop closure runs.
    keyframes: Vec<(usize, Scan)>,
}

impl MapExport {
    fn add(&mut self, scan: &Scan, step: &OdometryStep, index: usize, keyframe: bool) {
        self.map.add(scan, &step.pose);
        if keyframe {
            self.keyframes.push((index, thin(scan, self.voxel_m)));
        }
    }

    /// Rebuilds the map from the keyframes at `outcome`'s corrected poses; false (the map built
    /// on the way stands) when no loop closed.
    fn correct(&mut self, outcome: &LoopOutcome) -> bool {
        if outcome.loops_accepted == 0 {
            return false;
        }
        self.map = GlobalMap::new(self.voxel_m);
        for (i, cloud) in &self.keyframes {
            self.map.add(cloud, &outcome.poses[*i]);
        }
        true
    }
}

/// What the run does with saved maps: the prior map read and checked against the sensor, and
/// whether to keep keyframes for saving; `None` when neither `--map` nor `--save-map` is given.
fn map_job(cfg: &PipelineConfig) -> Result<Option<SavedMapJob>> {
    if cfg.map.is_none() && cfg.save_map.is_none() {
        return Ok(None);
    }
    if let Some(dir) = &cfg.save_map {
        // Checked before the run, not after it: a long run must not end unable to save.
        if dir.exists() && !dir.is_dir() {
            return Err(Error::input(dir, "--save-map needs a folder, this is a file"));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let prior = match &cfg.map {
        Some(dir) => {
            let map = read_map(dir)?;
            map.check_sensor(&crate::saved_map::store::map_file(dir), &cfg.sensor)?;
            log::info!(
                "{}: {} keyframes from {} session(s), {:.0} m of trajectory",
                dir.display(),
                map.keyframes.len(),
                map.header.sessions,
                map.trajectory_m()
            );
            Some(map)
        }
        None => None,
    };
    Ok(Some(SavedMapJob {
        prior,
        save: cfg.save_map.is_some(),
        voxel_m: cfg.save_map_voxel_m,
        localiser: cfg.localiser,
        sensor: SensorSignature::of(&cfg.sensor),
        freeze: cfg.freeze,
    }))
}

/// Writes `map` into `dir` and sums it up.
fn save_map(dir: &std::path::Path, map: &PriorMap) -> Result<SavedMap> {
    let bytes = write_map(dir, map)?;
    let travelled_m = map.header.travelled_m;
    Ok(SavedMap {
        dir: dir.to_path_buf(),
        keyframes: map.keyframes.len(),
        sessions: map.header.sessions,
        bytes,
        travelled_m,
        bytes_per_km: (travelled_m >= 1.0).then(|| bytes as f64 / (travelled_m / 1000.0)),
    })
}

/// Per-frame stage timings, milliseconds, in the order the stages ran.
#[derive(Default)]
struct Timings(Vec<(String, f64)>);

impl Timings {
    /// Runs `f`, timing it as `stage`.
    fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let out = f();
        self.0.push((stage.to_string(), t.elapsed().as_secs_f64() * 1e3));
        out
    }
}

/// The stages of one run, wired together.
struct Pipeline<'a> {
    cfg: &'a PipelineConfig,
    odometry: Box<dyn OdometryEstimator>,
    /// The odometry settings in force (KITTI's corrections resolved for the source).
    odometry_cfg: OdometryConfig,
    params: ProjectionParams,
    stages: Vec<Box<dyn PerceptionStage>>,
    viewer: ViewerFeed,
    export: Option<MapExport>,
    loops: Option<LoopWorker>,
    keyframe_every: usize,
    log: RunLog,
    /// The estimate sink, told poses in the frame asked for.
    sink: Option<Arc<dyn EstimateSink>>,
    /// Since the trouble began: the silence before it (seconds), its first frame's timestamp and
    /// the lost frames since; `None` while tracking.
    trouble: Option<(f64, f64, usize)>,
}

impl<'a> Pipeline<'a> {
    /// Builds every stage `cfg` asks for; `is_kitti` turns on KITTI's scan corrections unless
    /// the configuration says otherwise.
    fn new(cfg: &'a PipelineConfig, stages: Vec<Box<dyn PerceptionStage>>, is_kitti: bool) -> Result<Self> {
        let mut odometry_cfg = cfg.odometry;
        odometry_cfg.kitti_correction = Some(odometry_cfg.kitti_correction.unwrap_or(is_kitti));
        let params = ProjectionParams::from_sensor(&cfg.sensor);
        let views = stages.iter().flat_map(|s| s.views()).collect();
        let viewer = ViewerFeed::open(cfg, &params, views)?;
        let job = map_job(cfg)?;
        if let Some(prior) = job.as_ref().and_then(|j| j.prior.as_ref()) {
            viewer.prior_map(prior)?;
            if let Some(s) = &cfg.status {
                s.start_localising();
            }
        }
        // The robot hears the base's poses; the viewer and the status line the sensor's.
        let sink = cfg.output_sink();
        let loops = match cfg.loops {
            Some(c) => {
                let detector = LoopDetector::new(c.detector, cfg.weights.as_deref())?;
                let status = cfg.status.clone().map(|s| s as Arc<dyn EstimateSink>);
                let listeners: Vec<_> = sink
                    .iter()
                    .cloned()
                    .chain(viewer.loop_listener())
                    .chain(status)
                    .collect();
                let all = (!listeners.is_empty()).then(|| Arc::new(Sinks(listeners)) as Arc<dyn EstimateSink>);
                let saver = cfg
                    .save_requests
                    .clone()
                    .zip(cfg.save_map.clone())
                    .map(|(requests, dir)| MapSaver::new(requests, dir));
                Some(LoopWorker::spawn_in_map(c, detector, all, job, saver)?)
            }
            None => None,
        };
        Ok(Self {
            cfg,
            odometry: estimator(cfg.odometry_kind, odometry_cfg),
            odometry_cfg,
            viewer,
            params,
            stages,
            export: cfg.map_out.as_ref().map(|_| MapExport {
                map: GlobalMap::new(cfg.map_voxel_m),
                voxel_m: cfg.map_voxel_m,
                keyframes: Vec::new(),
            }),
            keyframe_every: cfg.loops.map_or(1, |c| c.search.keyframe_every.max(1)),
            loops,
            log: RunLog::default(),
            sink,
            trouble: None,
        })
    }

    /// Processes scans until the source ends, fails (its error is returned, to be reported
    /// once every output is written) or a stop is asked for.
    fn drive(
        &mut self,
        scans: &Receiver<(Result<Scan>, f64)>,
        progress: &indicatif::ProgressBar,
    ) -> Result<Option<Error>> {
        for (item, source_ms) in scans.iter() {
            if self.cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                log::warn!("stopped after {} frames; writing outputs", self.log.len());
                break;
            }
            match item {
                Ok(scan) => self.process(scan, source_ms, self.cfg.live && !scans.is_empty())?,
                Err(e) => return Ok(Some(e)),
            }
            progress.inc(1);
        }
        Ok(None)
    }

    /// One frame through every stage; `behind` (a live source with sweeps waiting) skips the
    /// viewer.
    fn process(&mut self, scan: Scan, source_ms: f64, behind: bool) -> Result<()> {
        let frame_start = Instant::now();
        let mut timings = Timings(vec![("source".into(), source_ms)]);
        self.viewer.start_frame(&scan);
        let step = timings.time("odometry", || self.odometry.register(&scan));
        let latency_ms = scan.received.map(|r| r.elapsed().as_secs_f64() * 1e3);
        self.hand_out(&scan, &step, latency_ms);
        // Only perception stages and the viewer look at the images: a bare replay skips them.
        if !self.stages.is_empty() || self.viewer.is_active() {
            let image = timings.time("projection", || project(&scan.points, &scan.intensity, &self.params));
            self.run_stages(&scan, &step, &image, &mut timings)?;
            self.show(&scan, &step, &image, behind, &mut timings)?;
        }
        let index = self.log.len();
        if let Some(m) = self.export.as_mut() {
            let keyframe = self.loops.is_some() && scan.index.is_multiple_of(self.keyframe_every);
            m.add(&scan, &step, index, keyframe);
        }
        if let Some(w) = &self.loops {
            self.log.loop_queue_max = self.log.loop_queue_max.max(w.queue_depth());
            timings.time("loop_queue_wait", || {
                w.send(&scan, &step.pose, &step.delta, step.degenerate, step.new_chain)
            });
        }
        self.record(&timings, latency_ms)?;
        self.log.degenerate += step.degenerate as usize;
        self.note_registration(&scan, &step);
        self.log.push(
            &scan,
            step.pose,
            frame_start.elapsed().as_secs_f64() * 1e3,
            self.odometry.local_map_points(),
        );
        self.viewer.follow(&self.log)
    }

    /// Keeps the lowest fit, counts a frame whose registration failed, warns when a loss
    /// starts, records how odometry came back after a dropout or a loss, and tells the status line.
    fn note_registration(&mut self, scan: &Scan, step: &OdometryStep) {
        let silent_s = self.log.stamps.last().map_or(0.0, |t| scan.timestamp - t);
        let gap = silent_s > self.odometry_cfg.max_gap_s;
        let was_lost = self.trouble.is_some_and(|(_, _, lost)| lost > 0);
        self.log.fit_min = self.log.fit_min.min(step.fit);
        if let Some(s) = &self.cfg.status {
            s.set_lost(step.lost);
        }
        if gap || self.trouble.is_none() && step.lost {
            self.trouble = Some((if gap { silent_s } else { 0.0 }, scan.timestamp, 0));
        }
        if step.lost {
            self.log.lost += 1;
            if !was_lost {
                log::warn!(
                    "odometry lost at frame {}: {:.0} % of the scan fits the map",
                    scan.index,
                    100.0 * step.fit
                );
            }
        }
        let how = match (step.new_chain, step.lost, step.relocalised) {
            (true, _, _) => Some(RecoveryKind::NewChain),
            (false, true, _) => None,
            (false, false, true) => Some(RecoveryKind::Relocalised),
            (false, false, false) => Some(RecoveryKind::Registered),
        };
        let Some((silent, since, lost)) = self.trouble.as_mut() else {
            return;
        };
        let Some(how) = how else {
            *lost += 1;
            return;
        };
        self.log.new_chains += usize::from(how == RecoveryKind::NewChain);
        log::info!("odometry back at frame {} ({how:?})", scan.index);
        self.log.recoveries.push(Recovery {
            frame: scan.index,
            silent_s: *silent,
            lost_frames: *lost,
            seconds_to_recover: scan.timestamp - *since,
            how,
        });
        self.trouble = None;
    }

    /// Tells the status line and the estimate sink about a frame's odometry.
    fn hand_out(&mut self, scan: &Scan, step: &OdometryStep, latency_ms: Option<f64>) {
        self.log.latencies_ms.extend(latency_ms);
        if let Some(s) = &self.cfg.status {
            s.record(latency_ms);
        }
        if let Some(sink) = &self.sink {
            let dt = self.log.stamps.last().map_or(0.0, |t| scan.timestamp - t);
            sink.odometry(scan.timestamp, &step.pose, &step.delta, dt);
        }
    }

    fn run_stages(
        &mut self,
        scan: &Scan,
        step: &OdometryStep,
        image: &RangeImage,
        timings: &mut Timings,
    ) -> Result<()> {
        let view = FrameView {
            scan,
            pose: &step.pose,
            image,
        };
        for stage in self.stages.iter_mut() {
            let name = format!("stage/{}", stage.name());
            timings.time(&name, || stage.process(&view, self.viewer.viz()))?;
        }
        Ok(())
    }

    fn show(
        &mut self,
        scan: &Scan,
        step: &OdometryStep,
        image: &RangeImage,
        behind: bool,
        timings: &mut Timings,
    ) -> Result<()> {
        if !self.viewer.is_active() {
            return Ok(());
        }
        if behind {
            self.log.viz_skipped += 1;
            return Ok(());
        }
        timings.time("viz", || self.viewer.show(scan, step, image))
    }

    /// Adds a frame's timings to the totals and the viewer's series.
    fn record(&mut self, timings: &Timings, latency_ms: Option<f64>) -> Result<()> {
        for (stage, ms) in &timings.0 {
            self.log.add_stage_ms(stage, *ms);
        }
        let queue = self.loops.as_ref().map(LoopWorker::queue_depth);
        self.viewer.metrics(&timings.0, queue, latency_ms, self.link())
    }

    /// Waits for loop closure, shows and writes everything, and sums the run up; `failed` (the
    /// source ended on an error) leaves a map folder as it was.
    fn finish(mut self, source: String, started: Instant, failed: bool) -> Result<RunReport> {
        let mut outcome = self.loops.take().map(LoopWorker::finish).transpose()?;
        let map = outcome.as_mut().and_then(|o| o.map.take());
        if self.log.is_empty() {
            return Err(Error::Usage(format!("{source}: no frames to replay")));
        }
        if let Some(l) = &outcome {
            let log = &self.log;
            self.viewer.loops(l, |frame| log.position_of(frame))?;
            if let Some(m) = self.export.as_mut()
                && m.correct(l)
            {
                self.viewer.corrected_map(&m.map.points)?;
            }
        }
        let wall_s = started.elapsed().as_secs_f64();
        let link = self.link();
        self.viewer
            .finish(&self.log, outcome.as_ref().map(|l| l.poses.as_slice()))?;
        let stamps = std::mem::take(&mut self.log.stamps);
        let end = RunEnd {
            source,
            wall_s,
            link,
            local_map_points: self.odometry.local_map_points(),
            odometry: (self.cfg.odometry_kind, self.odometry_cfg),
            loops: (self.cfg.loops, outcome),
        };
        let mut report = RunReport::new(self.log, end).in_frame(self.cfg.mounting, self.cfg.pose_frame);
        report.sensor = self.cfg.sensor.name.clone();
        report.sensor_detection = self.cfg.sensor_detection.clone();
        if let (Some(dir), Some(map)) = (&self.cfg.save_map, map) {
            if failed {
                log::warn!("{}: the map is not saved, the source failed", dir.display());
            } else {
                report.saved_map = Some(save_map(dir, &map)?);
            }
        }
        if let Some(out) = &self.cfg.out {
            report.write(out, &stamps)?;
        }
        if let (Some(path), Some(m)) = (&self.cfg.map_out, &self.export) {
            m.map.write(path)?;
        }
        Ok(report)
    }

    /// The counters of a Velodyne stream's link.
    fn link(&self) -> Option<LinkCounts> {
        match &self.cfg.source {
            SourceSpec::Live(live) => Some(live.stats.snapshot()),
            _ => None,
        }
    }
}

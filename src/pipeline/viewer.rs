//! What the pipeline shows in the viewer, and how often: the sensor every frame, the scan and
//! the images every `--viz-every` frames, the map and the trajectories in growing batches,
//! and the loops once the pose graph has spoken.

use super::config::{PipelineConfig, SourceSpec};
use super::global_map::GlobalMap;
use super::loop_worker::LoopOutcome;
use super::report::RunLog;
use super::sink::EstimateSink;
use crate::error::Result;
use crate::io::velodyne::source::LinkCounts;
use crate::odometry::OdometryStep;
use crate::projection::{ProjectionParams, RangeImage};
use crate::saved_map::PriorMap;
use crate::scan::{Pose, Scan};
use crate::viz::{Eye, ImageView, Layout, LoopView, Track, Viz, VizOptions};
use std::sync::{Arc, Mutex};

/// Draws loops and the corrected trajectory in the viewer as the loop-closure thread closes
/// them (a drawing that fails is logged, not fatal: the run goes on); once a run is localised in
/// a prior map, hands the correction to the viewer so that the sensor and its scans are drawn in
/// the map's frame.
#[derive(Debug)]
struct LiveLoops(LoopView, Arc<Mutex<Pose>>);

impl EstimateSink for LiveLoops {
    fn odometry(&self, _stamp_s: f64, _pose: &Pose, _delta: &Pose, _dt_s: f64) {}

    fn corrected(&self, poses: &[Pose]) {
        if let Err(e) = self.0.log_optimised(poses) {
            log::warn!("viewer: {e}");
        }
    }

    fn loop_closed(&self, query: usize, at: &Pose, to: &Pose, _overlap: f32) {
        if let Err(e) = self.0.log_loop(query, at, to) {
            log::warn!("viewer: {e}");
        }
    }

    fn hypotheses(&self, poses: &[Pose]) {
        if let Err(e) = self.0.log_hypotheses(poses) {
            log::warn!("viewer: {e}");
        }
    }

    fn localised(&self, map_from_odometry: &Pose, fix: &Pose) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = *map_from_odometry;
        if let Err(e) = self.0.log_fix(fix) {
            log::warn!("viewer: {e}");
        }
    }
}

/// The viewer stage of a run.
pub struct ViewerFeed {
    viz: Viz,
    /// The map drawn in the viewer (coarser than the exported one).
    map: GlobalMap,
    options: VizOptions,
    /// Frames shown so far.
    frames: usize,
    /// Takes odometry poses into the frame drawn: identity, or a prior map's once localised in it.
    correction: Arc<Mutex<Pose>>,
}

impl ViewerFeed {
    /// Opens the recording `cfg` asks for, laid out for the projected images and the
    /// perception stages' `views`.
    pub fn open(cfg: &PipelineConfig, params: &ProjectionParams, views: Vec<ImageView>) -> Result<Self> {
        let mut images: Vec<ImageView> = ["range", "normal", "intensity"]
            .iter()
            .map(|name| ImageView::new(format!("images/{name}"), params.rows, params.cols))
            .collect();
        images.extend(views);
        let layout = Layout {
            images,
            eye: Eye::Auto,
            live: matches!(cfg.source, SourceSpec::Live(_) | SourceSpec::Ros2(_)),
        };
        Ok(Self {
            viz: Viz::open_run(&cfg.viz, layout, cfg.viz_options.max_points)?,
            map: GlobalMap::new(cfg.viz_options.map_voxel_m),
            options: cfg.viz_options,
            frames: 0,
            correction: Arc::new(Mutex::new(Pose::identity())),
        })
    }

    /// A listener for the loop-closure thread, drawing loops as they close (none when nothing
    /// is recorded).
    pub fn loop_listener(&self) -> Option<Arc<dyn EstimateSink>> {
        self.viz
            .loop_view()
            .map(|v| Arc::new(LiveLoops(v, self.correction.clone())) as Arc<dyn EstimateSink>)
    }

    /// Draws a saved map the run starts in: its keyframes' clouds at their poses, at the
    /// viewer's map voxel size, and their trajectory.
    pub fn prior_map(&self, prior: &PriorMap) -> Result<()> {
        if !self.is_active() {
            return Ok(());
        }
        let mut map = GlobalMap::new(self.options.map_voxel_m.max(prior.header.voxel_m));
        for k in &prior.keyframes {
            let cloud = Scan {
                points: k.points.clone(),
                intensity: k.intensity.clone(),
                ..Default::default()
            };
            map.add(&cloud, &k.pose);
        }
        let poses: Vec<Pose> = prior.keyframes.iter().map(|k| k.pose).collect();
        self.viz.log_prior_map(&map.points, &poses)
    }

    /// The recording, for perception stages to log into.
    pub fn viz(&self) -> &Viz {
        &self.viz
    }

    /// True when anything is recorded.
    pub fn is_active(&self) -> bool {
        self.viz.is_active()
    }

    /// Moves the recording's clock to `scan`, before any stage logs this frame.
    pub fn start_frame(&self, scan: &Scan) {
        self.viz.set_frame(scan);
    }

    /// Shows one processed frame: the sensor at its pose (in a prior map's frame once
    /// localised in it), and on every `every`-th frame the scan and the images; the map points
    /// added since every `refresh_every` frames.
    pub fn show(&mut self, scan: &Scan, step: &OdometryStep, image: &RangeImage) -> Result<()> {
        self.frames += 1;
        let pose = *self.correction.lock().unwrap_or_else(|e| e.into_inner()) * step.pose;
        self.viz.log_sensor(&pose)?;
        if (self.frames - 1).is_multiple_of(self.options.every) {
            self.viz.log_scan(scan)?;
            self.viz.log_images(image)?;
        }
        self.map.add(scan, &pose);
        if self.frames.is_multiple_of(self.options.refresh_every) {
            self.viz.log_map_batch(self.map.take_new())?;
        }
        Ok(())
    }

    /// Draws the trajectories recorded in `log` every `refresh_every` frames (shown or not).
    pub fn follow(&mut self, log: &RunLog) -> Result<()> {
        if log.len().is_multiple_of(self.options.refresh_every) {
            self.draw_tracks(log)?;
        }
        Ok(())
    }

    fn draw_tracks(&mut self, log: &RunLog) -> Result<()> {
        self.viz.log_track(Track::Estimate, &log.poses)?;
        self.viz
            .log_track(Track::Truth, log.truth.as_deref().unwrap_or_default())
    }

    /// Logs a frame's stage timings (`stage_ms/NAME`), the loop queue and, for live sources,
    /// the latency and the link counters.
    pub fn metrics(
        &self,
        timings: &[(String, f64)],
        loop_queue: Option<usize>,
        latency_ms: Option<f64>,
        link: Option<LinkCounts>,
    ) -> Result<()> {
        for (stage, ms) in timings {
            self.viz.log_scalar(&format!("stage_ms/{stage}"), *ms)?;
        }
        if let Some(depth) = loop_queue {
            self.viz.log_scalar("queue/loop_closure", depth as f64)?;
        }
        if let Some(ms) = latency_ms {
            self.viz.log_scalar("live/latency_ms", ms)?;
        }
        if let Some(l) = link {
            log_link(&self.viz, &l)?;
        }
        Ok(())
    }

    /// Shows what loop closure did: every keyframe's best match, the candidates refused, the
    /// loops closed (between loop-corrected positions) and the corrected trajectory.
    /// `position_of` finds a source frame among the run's frames.
    pub fn loops(&mut self, outcome: &LoopOutcome, position_of: impl Fn(usize) -> Option<usize>) -> Result<()> {
        let poses = &outcome.poses;
        let at = |frame: usize| position_of(frame).map(|i| &poses[i]);
        for c in &outcome.judged {
            self.viz.log_judged(c)?;
        }
        for r in &outcome.candidates {
            let c = &r.candidate;
            let Some((q, p)) = at(c.query).zip(at(c.reference)) else {
                continue;
            };
            if r.closed {
                self.viz.log_loop(c.query, q, p, c.overlap)?;
            } else {
                self.viz.log_candidate(c, q, p)?;
            }
        }
        self.viz.log_optimised(poses)
    }

    /// Shows the map rebuilt from the corrected poses.
    pub fn corrected_map(&self, points: &[[f32; 3]]) -> Result<()> {
        self.viz.log_corrected_map(points)
    }

    /// Logs what is left of the map and the trajectories of `log`, and closes the recording,
    /// framed on every trajectory (with the loop-corrected `optimised` when there is one).
    pub fn finish(mut self, log: &RunLog, optimised: Option<&[Pose]>) -> Result<()> {
        self.viz.log_map_batch(self.map.take_new())?;
        self.draw_tracks(log)?;
        let truth = log.truth.iter().flatten();
        let all = log.poses.iter().chain(truth).chain(optimised.unwrap_or_default());
        let eye = Eye::framing(all.map(|p| {
            let t = p.translation.vector;
            [t.x as f32, t.y as f32, t.z as f32]
        }));
        self.viz.finish(eye)
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

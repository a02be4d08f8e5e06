//! What a run measured: gathered frame by frame ([`RunLog`]), summed up as a [`RunReport`],
//! and written as trajectories, `loops.csv` and `metrics.json`.

use super::loop_worker::{LoopClosureConfig, LoopOutcome};
use super::saved_map_session::LocalisationReport;
use super::status::percentile;
use crate::error::Result;
use crate::frames::{Mounting, PoseFrame};
use crate::io::atomic::write_atomic;
use crate::io::poses;
use crate::io::velodyne::source::LinkCounts;
use crate::metrics;
use crate::odometry::{OdometryConfig, OdometryKind};
use crate::scan::{Pose, Scan};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Memory is sampled every this many frames (`memory_by_frame`).
const MEMORY_SAMPLE_EVERY: usize = 100;

/// What a replay measured; also written as `metrics.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
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
    /// Frames whose registration failed: too few points or matches, under half the points
    /// fitting the map, or implausibly fast motion. Their poses are guesses.
    pub lost_frames: usize,
    /// Lowest share of a frame's registered points within 0.5 m of the local map: how close the
    /// run came to losing track (odometry is lost under `min_fit`).
    pub odometry_fit_min: f64,
    /// Every time odometry had to find its way back: after a silence longer than `max_gap_s`,
    /// or after lost frames.
    pub recoveries: Vec<Recovery>,
    /// Odometry chains: 1, plus one for every restart after a dropout or a loss it could not
    /// recover from (their poses relative to the chain before are guesses until a loop joins them).
    pub odometry_chains: usize,
    /// Mean milliseconds per frame spent in each stage.
    pub stage_ms: BTreeMap<String, f64>,
    /// Loop-closure settings (null when off).
    pub loop_closure: Option<LoopClosureConfig>,
    /// Loop candidates with their verification, counts against ground truth, timings (null
    /// when off).
    pub loops: Option<LoopOutcome>,
    /// Largest number of frames waiting for the loop-closure thread.
    pub loop_queue_max: usize,
    /// How localisation in the prior map went (null without `--map`).
    pub localisation: Option<LocalisationReport>,
    /// The map written with `--save-map` (null without).
    pub saved_map: Option<SavedMap>,
    /// The sensor model the run used.
    pub sensor: String,
    /// What the data showed when the model was recognised from it (`--sensor auto`; null when
    /// named).
    pub sensor_detection: Option<String>,
    /// The body the written trajectories describe (`base` or `sensor`).
    pub pose_frame: PoseFrame,
    /// The sensor's mounting on the base, `[x, y, z, roll, pitch, yaw]` in metres and radians
    /// (null when none was given: the sensor is the base).
    pub lidar_to_base: Option<[f64; 6]>,
    /// Final poses, optimised when loop closure is on (the base's, or the LiDAR's when no
    /// mounting is given or `--pose-frame sensor`; frame 0 at the origin); not serialised.
    #[serde(skip)]
    pub poses: Vec<Pose>,
    /// Odometry poses; not serialised.
    #[serde(skip)]
    pub odometry_poses: Vec<Pose>,
    /// Ground-truth poses when the source has them; not serialised.
    #[serde(skip)]
    pub ground_truth: Option<Vec<Pose>>,
}

/// A map the run saved.
#[derive(Debug, Clone, Serialize)]
pub struct SavedMap {
    /// Its folder.
    pub dir: std::path::PathBuf,
    /// Keyframes in it.
    pub keyframes: usize,
    /// Runs that made it.
    pub sessions: u32,
    /// Size of its map file, bytes.
    pub bytes: u64,
    /// Distance its sessions drove, metres.
    pub travelled_m: f64,
    /// Bytes per kilometre driven (null for a map of less than a metre of driving).
    pub bytes_per_km: Option<f64>,
}

/// Memory in use after a frame.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MemorySample {
    /// Resident memory of the process, MB (from /proc on Linux; null elsewhere).
    pub rss_mb: Option<f64>,
    /// Points in the odometry's local map.
    pub local_map_points: usize,
}

/// Everything recorded frame by frame while a run goes.
#[derive(Debug)]
pub struct RunLog {
    /// Odometry's pose of every frame.
    pub poses: Vec<Pose>,
    /// Ground truth of every frame; `None` once a frame came without it.
    pub truth: Option<Vec<Pose>>,
    /// Timestamp of every frame, seconds.
    pub stamps: Vec<f64>,
    /// The source's number of every frame.
    pub frame_numbers: Vec<usize>,
    /// Processing time of every frame, milliseconds.
    pub frame_ms: Vec<f64>,
    /// Arrival-to-pose latency of every frame from a live source, milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Total milliseconds per stage.
    pub stage_total_ms: BTreeMap<String, f64>,
    /// Memory after every 100th frame.
    pub memory: BTreeMap<usize, MemorySample>,
    /// Frames the motion model carried.
    pub degenerate: usize,
    /// Frames whose registration failed (odometry lost).
    pub lost: usize,
    /// Lowest share of a frame's registered points that fit the map.
    pub fit_min: f64,
    /// Recoveries after dropouts and lost frames.
    pub recoveries: Vec<Recovery>,
    /// Chains odometry started after the first.
    pub new_chains: usize,
    /// Frames whose viewer update was dropped.
    pub viz_skipped: usize,
    /// Deepest loop-closure queue seen.
    pub loop_queue_max: usize,
}

/// How odometry came back after a dropout or lost frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecoveryKind {
    /// The frame after a dropout registered as any other (the motion model's guess was close).
    Registered,
    /// Registration failed and the frame was found again in the local map.
    Relocalised,
    /// Neither: a new odometry chain starts at the frame.
    NewChain,
}

/// One time odometry had to find its way back (`recoveries` in `metrics.json`).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Recovery {
    /// Frame number where it came back (or started a new chain).
    pub frame: usize,
    /// Silence before the trouble began: the gap between two sweeps, seconds (0 for lost frames
    /// without a gap).
    pub silent_s: f64,
    /// Lost frames before this one.
    pub lost_frames: usize,
    /// Sensor time from the first frame after the silence (or the first lost frame) to this
    /// one, seconds: 0 when the first frame back was placed.
    pub seconds_to_recover: f64,
    /// How.
    pub how: RecoveryKind,
}

impl Default for RunLog {
    fn default() -> Self {
        Self {
            poses: Vec::new(),
            truth: Some(Vec::new()),
            stamps: Vec::new(),
            frame_numbers: Vec::new(),
            frame_ms: Vec::new(),
            latencies_ms: Vec::new(),
            stage_total_ms: BTreeMap::new(),
            memory: BTreeMap::new(),
            degenerate: 0,
            lost: 0,
            fit_min: 1.0,
            recoveries: Vec::new(),
            new_chains: 0,
            viz_skipped: 0,
            loop_queue_max: 0,
        }
    }
}

impl RunLog {
    /// Records one processed frame.
    pub fn push(&mut self, scan: &Scan, pose: Pose, frame_ms: f64, local_map_points: usize) {
        self.poses.push(pose);
        self.truth = match (self.truth.take(), scan.gt_pose) {
            (Some(mut truth), Some(pose)) => {
                truth.push(pose);
                Some(truth)
            }
            _ => None,
        };
        self.stamps.push(scan.timestamp);
        self.frame_numbers.push(scan.index);
        self.frame_ms.push(frame_ms);
        if self.poses.len().is_multiple_of(MEMORY_SAMPLE_EVERY) {
            let sample = MemorySample {
                rss_mb: proc_status_mb("VmRSS:"),
                local_map_points,
            };
            self.memory.insert(self.poses.len(), sample);
        }
    }

    /// Adds `ms` to a stage's total.
    pub fn add_stage_ms(&mut self, stage: &str, ms: f64) {
        *self.stage_total_ms.entry(stage.to_string()).or_default() += ms;
    }

    /// Frames recorded.
    pub fn len(&self) -> usize {
        self.poses.len()
    }

    /// True before the first frame.
    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    /// Index of source frame `frame` among the frames recorded.
    pub fn position_of(&self, frame: usize) -> Option<usize> {
        self.frame_numbers.binary_search(&frame).ok()
    }
}

/// What the run was and what its parts reported at the end, for [`RunReport::new`].
pub struct RunEnd {
    /// What was replayed.
    pub source: String,
    /// Seconds from the first frame to the end.
    pub wall_s: f64,
    /// Link counters of a Velodyne stream.
    pub link: Option<LinkCounts>,
    /// Points left in the odometry's local map.
    pub local_map_points: usize,
    /// The odometry used, with its settings.
    pub odometry: (OdometryKind, OdometryConfig),
    /// Loop-closure settings and outcome.
    pub loops: (Option<LoopClosureConfig>, Option<LoopOutcome>),
}

impl RunReport {
    /// Sums up `log`: the final trajectory (loop-corrected when closure ran) scored against the
    /// ground truth, timings as percentiles and per-stage means.
    ///
    /// Accuracy is the sensor's: the trajectory registration estimated, against the sensor's
    /// ground truth.
    pub fn new(mut log: RunLog, end: RunEnd) -> Self {
        let odometry_poses = std::mem::take(&mut log.poses);
        let poses = match &end.loops.1 {
            Some(l) => l.poses.clone(),
            None => odometry_poses.clone(),
        };
        let ground_truth = log.truth.take();
        let accuracy = ground_truth
            .as_ref()
            .map_or_else(Default::default, |g| metrics::evaluate(&poses, g).accuracy);
        let ate_rmse_odom_m = ground_truth
            .as_ref()
            .and_then(|g| metrics::ate_rmse(&odometry_poses, g));
        let frames = poses.len();
        let latencies = log.latencies_ms;
        let latency = |q| (!latencies.is_empty()).then(|| percentile(&mut latencies.clone(), q));
        Self {
            source: end.source,
            frames,
            wall_s: end.wall_s,
            fps: frames as f64 / end.wall_s.max(1e-9),
            accuracy,
            ate_rmse_odom_m,
            frame_ms_p50: percentile(&mut log.frame_ms, 0.5),
            frame_ms_p99: percentile(&mut log.frame_ms, 0.99),
            latency_ms_p50: latency(0.5),
            latency_ms_p99: latency(0.99),
            link: end.link,
            viz_frames_skipped: log.viz_skipped,
            local_map_points: end.local_map_points,
            peak_rss_mb: proc_status_mb("VmHWM:"),
            memory_by_frame: log.memory,
            odometry_kind: end.odometry.0,
            odometry: end.odometry.1,
            degenerate_frames: log.degenerate,
            lost_frames: log.lost,
            odometry_fit_min: log.fit_min,
            odometry_chains: 1 + log.new_chains,
            recoveries: log.recoveries,
            stage_ms: log
                .stage_total_ms
                .into_iter()
                .map(|(k, v)| (k, v / frames as f64))
                .collect(),
            loop_closure: end.loops.0,
            localisation: end.loops.1.as_ref().and_then(|l| l.localisation.clone()),
            saved_map: None,
            loops: end.loops.1,
            loop_queue_max: log.loop_queue_max,
            poses,
            odometry_poses,
            ground_truth,
            pose_frame: PoseFrame::Sensor,
            lidar_to_base: None,
            sensor: String::new(),
            sensor_detection: None,
        }
    }

    /// One line for the terminal: frames, speed, accuracy, loops, and for live sources the
    /// latency and the link.
    pub fn summary(&self) -> String {
        let ate = self
            .accuracy
            .ate_rmse_m
            .map_or("n/a (no ground truth)".to_string(), |v| format!("{v:.3} m"));
        let mut line = format!(
            "{}: {} frames in {:.1} s ({:.1} frames/s), ATE {ate}{}",
            self.source,
            self.frames,
            self.wall_s,
            self.fps,
            self.loops_summary()
        );
        if self.lost_frames > 0 {
            line += &format!(", odometry lost on {} frames", self.lost_frames);
        }
        let relocalised = self
            .recoveries
            .iter()
            .filter(|r| r.how == RecoveryKind::Relocalised)
            .count();
        if relocalised > 0 {
            line += &format!(", relocalised {relocalised} times");
        }
        if self.odometry_chains > 1 {
            let joins = self.loops.as_ref().map_or(&[][..], |l| &l.chain_joins[..]);
            let joined = joins.iter().filter(|j| j.joined_at.is_some()).count();
            line += &format!(
                ", {} odometry chains ({joined} of {} breaks joined)",
                self.odometry_chains,
                self.odometry_chains - 1
            );
        }
        if let Some(d) = &self.sensor_detection {
            line += &format!(", sensor {d}");
        }
        if let Some(l) = &self.localisation {
            line += &match (l.fix_frame, l.seconds_to_fix) {
                (Some(frame), Some(s)) => format!(
                    ", localised in the map at frame {frame} after {s:.1} s{}",
                    l.fix_error_m.map_or(String::new(), |e| format!(" ({e:.2} m off)"))
                ),
                _ => ", not localised in the map: poses stay in the run's own frame".into(),
            };
        }
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

    fn loops_summary(&self) -> String {
        let Some(l) = &self.loops else { return String::new() };
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
    }

    /// The report with its trajectories (final, odometry, ground truth) moved from the sensor
    /// to the `frame` asked for, the sensor being mounted on the base as `given`; the accuracy
    /// figures stay the sensor's. A moved ground truth starts at the identity, as the estimate
    /// does.
    pub fn in_frame(mut self, given: Mounting, frame: PoseFrame) -> Self {
        self.pose_frame = frame;
        self.lidar_to_base = (!given.is_identity()).then(|| given.xyz_rpy());
        let mounting = frame.mounting(given);
        if !mounting.is_identity() {
            self.poses = mounting.base_poses(&self.poses);
            self.odometry_poses = mounting.base_poses(&self.odometry_poses);
            self.ground_truth = self.ground_truth.map(|gt| mounting.base_poses(&from_first(&gt)));
        }
        self
    }

    /// Writes the trajectories (KITTI and TUM, `stamps` per frame), `loops.csv` and
    /// `metrics.json` into `out`, each atomically.
    pub fn write(&self, out: &Path, stamps: &[f64]) -> Result<()> {
        poses::write_kitti(&out.join("poses_kitti.txt"), &self.poses)?;
        poses::write_kitti(&out.join("poses_odom_kitti.txt"), &self.odometry_poses)?;
        poses::write_tum(&out.join("poses_tum.txt"), stamps, &self.poses)?;
        if let Some(gt) = &self.ground_truth {
            poses::write_kitti(&out.join("ground_truth_kitti.txt"), gt)?;
        }
        if let Some(loops) = &self.loops {
            write_loops_csv(&out.join("loops.csv"), loops)?;
        }
        let json = serde_json::to_string_pretty(self).expect("report serialises");
        write_atomic(&out.join("metrics.json"), |w| w.write_all(json.as_bytes()))
    }
}

/// Every loop candidate with its verification, one CSV row each.
fn write_loops_csv(path: &Path, loops: &LoopOutcome) -> Result<()> {
    write_atomic(path, |w| {
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
    })
}

/// A memory figure of this process from /proc/self/status (`VmRSS`, `VmHWM`...), MB, where the
/// system has it.
fn proc_status_mb(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `poses` relative to the first of them.
fn from_first(poses: &[Pose]) -> Vec<Pose> {
    let first_inv = poses.first().map_or_else(Pose::identity, |p| p.inverse());
    poses.iter().map(|p| first_inv * p).collect()
}

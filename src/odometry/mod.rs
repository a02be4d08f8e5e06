//! LiDAR odometry after KISS-ICP (Vizzo et al., RA-L 2023): deskew, range crop, double
//! voxelization, constant-velocity prediction, robust point-to-point ICP against a voxel-hash
//! local map, and an adaptive correspondence threshold; ours on top, a point-to-plane refinement
//! of each registration. Frames that cannot be registered fall back to the motion model and are
//! counted.

pub mod align;
pub mod degeneracy;
pub mod frame_to_frame;
pub mod local_map;
pub mod preprocess;
pub mod relocalise;
pub mod threshold;

use crate::error::{Error, Result};
use crate::registration::{normals_at, voxel_downsample};
use crate::scan::{Pose, Scan};
use align::align_to_map;
use degeneracy::Constraints;
use local_map::VoxelHashMap;
use nalgebra::{Point3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};
use threshold::{AdaptiveThreshold, model_error};

/// Odometry settings; every default is KISS-ICP's (DESIGN.md §3) unless marked otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OdometryConfig {
    /// Points beyond this range are dropped, metres (KISS-ICP: 100).
    pub max_range_m: f64,
    /// Points within this range are dropped, metres (KISS-ICP: 0).
    pub min_range_m: f64,
    /// Map voxel size, metres; 0 means max_range / 100 (KISS-ICP's rule).
    pub voxel_size_m: f64,
    /// Points kept per map voxel (KISS-ICP: 20).
    pub max_points_per_voxel: usize,
    /// Correct motion within the sweep when points carry timestamps (KISS-ICP: on).
    pub deskew: bool,
    /// Deskew again with the registered motion and re-register when the prediction was off by
    /// more than the adaptive threshold or 1 m, whichever is smaller (ours: on; KISS-ICP has no
    /// such step).
    pub redeskew: bool,
    /// Apply KITTI's 0.205 degree vertical correction; unset follows the source (on for KITTI).
    pub kitti_correction: Option<bool>,
    /// Give scans without per-point times a time from their azimuth (a full turn over the frame
    /// period, the sensor facing forward at mid-sweep), so that they can be deskewed (ours: off).
    /// Not for KITTI odometry scans: they are already ego-motion compensated (KITTI's devkit),
    /// and kiss-icp 1.3.0's KITTI loader gives no times either. For raw, uncompensated
    /// recordings without times, such as KITTI raw's unsynced scans.
    pub azimuth_times: bool,
    /// Seed of the adaptive threshold, metres (KISS-ICP: 2).
    pub initial_threshold_m: f64,
    /// Prediction errors below this do not update the threshold, metres (KISS-ICP: 0.1).
    pub min_motion_m: f64,
    /// Refine each registration point-to-plane (each point drawn along the surface it lies on, its
    /// normal from its neighbours in the scan) after KISS-ICP's point-to-point ICP has placed the
    /// scan. A spinning sensor's rings on the ground and on walls move with it, and matching ring
    /// to ring pulls the estimate toward standing still; a surface does not pull along itself.
    /// Points on no surface (foliage, edges) sit the refinement out. On by default (ours): far
    /// more accurate on simulated drives and a lower frame-to-frame error on real KITTI; false
    /// keeps KISS-ICP's point-to-point registration alone (docs/data.md#odometry-settings).
    pub point_to_plane: bool,
    /// Gauss-Newton iterations at most (KISS-ICP: 500).
    pub max_iterations: usize,
    /// Stop when the update norm falls below this (KISS-ICP: 1e-4).
    pub convergence: f64,
    /// Fewer registration points than this and the frame is degenerate (ours: 100).
    pub min_points: usize,
    /// A direction of motion that fewer than this share of the registered points constrain (their
    /// map surface faces it) is degenerate: a tunnel's axis, an open field's plane. Along it the
    /// motion model's value is kept, and the frame is counted; directions with under ten times
    /// this support blend the two (ours: 0.005; 0 turns the check off).
    pub min_support: f64,
    /// Fewer matched points than this share of the source and the frame is degenerate (ours: 0.2).
    pub min_match_share: f64,
    /// A registration with fewer than this share of its points within 0.5 m of the map is lost
    /// (ours: 0.5; a registered frame of a simulated or KITTI drive fits 0.65-0.97, scans 18 m
    /// apart fit 0.17-0.49).
    pub min_fit: f64,
    /// A registration that moves faster than this is lost, metres a second (ours: 60, above any
    /// road vehicle's speed).
    pub max_speed_mps: f64,
    /// A silence between two sweeps longer than this is a dropout, seconds (ours: 0.5, five
    /// sweeps at 10 Hz): if the next sweep cannot be registered or relocalised in the local map,
    /// odometry starts a new chain there instead of extrapolating.
    pub max_gap_s: f64,
    /// After this many lost frames in a row odometry starts a new chain (ours: 5, half a second
    /// at 10 Hz); lost frames before that are left out of the local map.
    pub max_lost_frames: usize,
    /// Drop local-map voxels no scan has hit for this many frames (ours; 0: never, as KISS-ICP);
    /// unset follows the source: 600 (a minute at 10 Hz) for a live sensor, which may circle one
    /// area for hours, never for recorded sequences.
    pub max_voxel_age_frames: Option<usize>,
}

impl Default for OdometryConfig {
    fn default() -> Self {
        Self {
            max_range_m: 100.0,
            min_range_m: 0.0,
            voxel_size_m: 0.0,
            max_points_per_voxel: 20,
            deskew: true,
            redeskew: true,
            kitti_correction: None,
            azimuth_times: false,
            initial_threshold_m: 2.0,
            min_motion_m: 0.1,
            point_to_plane: true,
            max_iterations: 500,
            convergence: 1e-4,
            min_points: 100,
            min_match_share: 0.2,
            min_fit: 0.5,
            max_speed_mps: 60.0,
            max_gap_s: 0.5,
            max_lost_frames: 5,
            max_voxel_age_frames: None,
            min_support: 0.005,
        }
    }
}

impl OdometryConfig {
    /// The map voxel size in effect.
    pub fn voxel_size(&self) -> f64 {
        if self.voxel_size_m > 0.0 {
            self.voxel_size_m
        } else {
            self.max_range_m / 100.0
        }
    }

    /// This config with overrides from a TOML file and `key=value` pairs (values in TOML syntax),
    /// in that order; `origin` names the overrides in errors.
    pub fn with_overrides(&self, file: Option<&std::path::Path>, pairs: &[String]) -> Result<Self> {
        let mut table = toml::Table::try_from(self).expect("config serialises");
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            let extra: toml::Table = text
                .parse()
                .map_err(|e| Error::input(path, format!("invalid TOML: {e}")))?;
            table.extend(extra);
        }
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--set '{pair}': expected key=value")))?;
            let value: toml::Value = format!("v = {}", value.trim())
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .ok_or_else(|| Error::Usage(format!("--set '{pair}': the value is not TOML")))?;
            table.insert(key.trim().to_string(), value);
        }
        let cfg: Self = table
            .try_into()
            .map_err(|e| Error::Usage(format!("odometry settings: {e}")))?;
        if !(cfg.max_range_m > cfg.min_range_m && cfg.voxel_size() > 0.0 && cfg.max_iterations > 0) {
            return Err(Error::Usage(
                "odometry settings: need max_range_m > min_range_m >= 0 and max_iterations > 0".into(),
            ));
        }
        Ok(cfg)
    }
}

/// Which odometry a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OdometryKind {
    /// KISS-ICP-style scan-to-map odometry ([`Odometry`]): the default.
    #[default]
    Kiss,
    /// Scan-to-previous-scan point-to-plane ICP ([`frame_to_frame`]).
    FrameToFrame,
}

impl std::str::FromStr for OdometryKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f2f" | "frame-to-frame" => Ok(Self::FrameToFrame),
            "kiss" => Ok(Self::Kiss),
            _ => Err(Error::Usage(format!("unknown odometry '{s}': expected f2f or kiss"))),
        }
    }
}

/// A stream of scans in, one pose per scan out.
pub trait OdometryEstimator: Send {
    /// Registers the next scan and returns its pose at the scan's timestamp.
    fn register(&mut self, scan: &Scan) -> OdometryStep;
    /// Points held in the estimator's local map or reference scan.
    fn local_map_points(&self) -> usize;
}

/// The estimator for `kind`; `config` applies to the KISS-style odometry.
pub fn estimator(kind: OdometryKind, config: OdometryConfig) -> Box<dyn OdometryEstimator> {
    match kind {
        OdometryKind::FrameToFrame => Box::new(frame_to_frame::FrameToFrame::new(Default::default())),
        OdometryKind::Kiss => Box::new(Odometry::new(config)),
    }
}

/// What odometry concluded for one frame.
#[derive(Debug, Clone, Copy)]
pub struct OdometryStep {
    /// Pose of the sensor at the scan's timestamp (frame 0 at the origin).
    pub pose: Pose,
    /// Motion since the previous frame.
    pub delta: Pose,
    /// Points used for registration.
    pub source_points: usize,
    /// Correspondences in the final ICP iteration.
    pub correspondences: usize,
    /// True when the registration was not trusted and the motion model was used instead.
    pub degenerate: bool,
    /// Share of the registered points that lie within [`FIT_DISTANCE_M`] of the map at the pose
    /// registration found, counted in its last iteration (1 for the first frame, which makes
    /// the map).
    pub fit: f64,
    /// True when the registration failed: too few points or matches, a poor fit (under
    /// `min_fit`), or a motion faster than `max_speed_mps`, and relocalising in the local map
    /// failed too. The pose is then a guess.
    pub lost: bool,
    /// The registration failed (or followed a dropout) and the pose was found again by searching
    /// the local map ([`relocalise`]).
    pub relocalised: bool,
    /// The frame starts a new odometry chain: the local map was started again from it, at the
    /// motion model's guess, after a dropout or too many lost frames. Its pose relative to the
    /// frames before it is unknown.
    pub new_chain: bool,
}

/// A registered point this close to the local map counts as fitting it, metres: a few
/// centimetres of noise and the map's point spacing (at most 20 points in a 1 m voxel) where
/// the pose is right; most points land metres off where it is not.
pub const FIT_DISTANCE_M: f64 = 0.5;

/// How fast a sensor whose motion odometry does not know (at its start, or standing before a
/// dropout) is searched for after a gap, metres a second (ours: a car in town).
const UNKNOWN_SPEED_MPS: f64 = 10.0;

/// A predicted turn faster than this a frame (3 degrees) may end before the next sweep too far
/// from the prediction for ICP's basin: the scan is then also registered from straight on (ours;
/// the simulated drives turn 6.5 degrees a sweep at U-turns, whose end left both ICPs 4 degrees
/// off, and 2.4 at corners, whose end they follow).
const TURNING_RAD: f64 = 3.0 * std::f64::consts::PI / 180.0;

/// One registration fits clearly better than another when it brings this share of the points
/// more within [`FIT_DISTANCE_M`] of the map (ours: 3 %; registrations from two starts that
/// reach the same pose differ by under 0.5 %, one left degrees off fits 10-30 % fewer).
const CLEARLY_BETTER_FIT: f64 = 0.03;

/// A registration farther than this from the prediction (metres at `max_range`, as the adaptive
/// threshold measures it), or than sigma where that is smaller, deskews the scan again with the
/// motion found (ours: 1 m, a 0.6 degree turn at 100 m; steady driving deviates under 0.2 m, and
/// sigma grows to 2 m after the U-turns of the simulated drives, too late for a turn that ends
/// within a sweep).
const REDESKEW_DEVIATION_M: f64 = 1.0;

/// One scan deskewed, downsampled and aligned.
struct Registered {
    /// Points at half the voxel size: what the map receives.
    frame: Vec<Point3<f64>>,
    /// Points at 1.5 voxels: what was aligned.
    source: Vec<Point3<f64>>,
    aligned: align::Alignment,
    /// Seconds after the timestamp the deskewed scan refers to.
    reference_s: f64,
}

/// KISS-ICP-style odometry state.
#[derive(Clone)]
pub struct Odometry {
    config: OdometryConfig,
    map: VoxelHashMap,
    threshold: AdaptiveThreshold,
    /// Registered pose of the last scan at its reference time (timestamp, or mid-sweep when deskewed).
    last_reference: Pose,
    /// Motion per second, as the last frame pair showed it.
    last_delta: Pose,
    last_period_s: f64,
    last_timestamp: Option<f64>,
    /// The first scan, kept until the second shows how the sensor moves (see
    /// [`Odometry::restart_in_motion`]).
    first_scan: Option<Box<Scan>>,
    /// Lost frames in a row.
    lost_streak: usize,
}

fn empty_map(config: &OdometryConfig) -> VoxelHashMap {
    VoxelHashMap::new(config.voxel_size(), config.max_range_m, config.max_points_per_voxel)
        .with_max_age(config.max_voxel_age_frames.unwrap_or(0))
}

impl Odometry {
    /// Fresh odometry at the origin.
    pub fn new(config: OdometryConfig) -> Self {
        Self {
            map: empty_map(&config),
            threshold: AdaptiveThreshold::new(config.initial_threshold_m, config.min_motion_m, config.max_range_m),
            config,
            last_reference: Pose::identity(),
            last_delta: Pose::identity(),
            last_period_s: 0.1,
            last_timestamp: None,
            first_scan: None,
            lost_streak: 0,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &OdometryConfig {
        &self.config
    }

    /// Points in the local map (its memory is bounded by the range pruning).
    pub fn map_points(&self) -> usize {
        self.map.point_count()
    }

    /// Registers the next scan and returns its pose at the scan's timestamp.
    pub fn register(&mut self, scan: &Scan) -> OdometryStep {
        // Frames may be missing: the constant-velocity prediction spans the real elapsed time.
        let period = match self.last_timestamp {
            Some(t) if scan.timestamp > t => scan.timestamp - t,
            _ => self.last_period_s,
        };
        let predicted_delta = preprocess::scale_motion(&self.last_delta, period / self.last_period_s);
        let prediction = self.last_reference * predicted_delta;
        let mut registered = self.align_scan(scan, period, &predicted_delta, &prediction);
        if let Some(first) = self.first_scan.take() {
            let motion = self.last_reference.inverse() * registered.aligned.pose;
            if model_error(&motion, self.config.max_range_m) > self.config.min_motion_m {
                registered = self.restart_in_motion(&first, scan, period, &motion, &registered.aligned.pose);
            }
        } else if self.last_timestamp.is_none() && self.config.deskew && self.sweep_times(scan, period).is_some() {
            self.first_scan = Some(Box::new(scan.clone()));
        }
        let (mut reference, degenerate) = self.trusted_pose(&registered, &prediction);
        let mut fit = self.fit(&registered);
        let mut lost = self.starved(&registered) || self.failed(fit, &reference, period);
        let gap = self.last_timestamp.is_some() && period > self.config.max_gap_s;
        // After a gap a registration may also have converged on the wrong place with a passing
        // fit: the search runs then too, and its pose is taken only where it fits better.
        let found = (lost || gap)
            .then(|| self.relocalise(scan, &registered, &prediction, period, fit))
            .flatten();
        let relocalised = lost && found.is_some();
        if let Some(r) = found {
            (reference, fit, lost) = (r.pose, r.fit, false);
        }
        self.lost_streak = if lost { self.lost_streak + 1 } else { 0 };
        let new_chain = lost && (gap || self.lost_streak > self.config.max_lost_frames);
        if new_chain {
            // What lies between the last good frame and this one is unknown: a new local map
            // starts here, at the motion model's guess.
            reference = prediction;
            self.map = empty_map(&self.config);
            self.threshold = AdaptiveThreshold::new(
                self.config.initial_threshold_m,
                self.config.min_motion_m,
                self.config.max_range_m,
            );
            self.lost_streak = 0;
        }
        if !degenerate && !lost {
            self.threshold.update(&(prediction.inverse() * reference));
        }
        if !lost || new_chain {
            // A lost frame's points would spoil the map the next frames try to register against.
            let world: Vec<Point3<f64>> = registered.frame.iter().map(|p| reference * p).collect();
            self.map.update(&world, &Point3::from(reference.translation.vector));
        }
        let delta = self.last_reference.inverse() * reference;
        if self.last_timestamp.is_some() && !lost {
            self.last_delta = delta;
            self.last_period_s = period;
        }
        self.last_reference = reference;
        self.last_timestamp = Some(scan.timestamp);
        OdometryStep {
            pose: reference * preprocess::scale_motion(&delta, -registered.reference_s / period),
            delta,
            source_points: registered.source.len(),
            correspondences: registered.aligned.correspondences,
            degenerate,
            fit,
            lost,
            relocalised,
            new_chain,
        }
    }

    /// The scan found again in the local map ([`relocalise`]) when that fits better than `fit`,
    /// the registration's, and passes the lost tests.
    fn relocalise(
        &self,
        scan: &Scan,
        registered: &Registered,
        prediction: &Pose,
        period: f64,
        fit: f64,
    ) -> Option<relocalise::Relocalisation> {
        let start = std::time::Instant::now();
        let bounds = (3.0 * self.threshold.sigma(), self.threshold.sigma());
        // Without a motion to go by, the sensor may have gone anywhere a car goes meanwhile.
        let standstill = self.last_delta.translation.vector.norm() < self.config.min_motion_m;
        let unknown_m = if standstill { UNKNOWN_SPEED_MPS * period } else { 0.0 };
        let found = relocalise::relocalise(
            &registered.source,
            &self.map,
            &self.last_reference,
            prediction,
            unknown_m,
            bounds,
        );
        log::debug!(
            "frame {}: registration fit {fit:.2}, relocalised {found:?} in {:.0} ms",
            scan.index,
            start.elapsed().as_secs_f64() * 1e3
        );
        found.filter(|r| r.fit >= fit.max(self.config.min_fit) && !self.failed(r.fit, &r.pose, period))
    }

    /// A registration to `pose` that fits under `min_fit` of its points, or that moves faster
    /// than `max_speed_mps` from the last pose over `period` seconds.
    fn failed(&self, fit: f64, pose: &Pose, period: f64) -> bool {
        let speed = (self.last_reference.inverse() * pose).translation.vector.norm() / period;
        fit < self.config.min_fit || speed > self.config.max_speed_mps
    }

    /// Too few points or matches to trust the registration at all (an empty map has nothing to
    /// match: the first frame is not starved).
    fn starved(&self, registered: &Registered) -> bool {
        let (source, aligned) = (&registered.source, &registered.aligned);
        !self.map.is_empty()
            && (source.len() < self.config.min_points
                || (aligned.correspondences as f64) < self.config.min_match_share * source.len() as f64)
    }

    /// Share of the registered points within [`FIT_DISTANCE_M`] of the map (1 while the map
    /// is empty: the first frame makes it).
    fn fit(&self, registered: &Registered) -> f64 {
        if self.map.is_empty() || registered.source.is_empty() {
            return 1.0;
        }
        registered.aligned.fitting as f64 / registered.source.len() as f64
    }

    /// Deskews, downsamples and aligns the scan to the map, starting at `prediction`. A sudden
    /// change of motion (a turn begins or ends) makes the prediction, and with it the deskew,
    /// wrong: when the registration lands farther than sigma (or [`REDESKEW_DEVIATION_M`]) from the
    /// prediction, the scan is deskewed again with the motion just found and registered once more
    /// (ours).
    fn align_scan(&self, scan: &Scan, period: f64, predicted_delta: &Pose, prediction: &Pose) -> Registered {
        let times = self.sweep_times(scan, period);
        let first = self.deskew_and_align(scan, times.as_deref(), period, predicted_delta, prediction);
        let sigma = self.threshold.sigma();
        let deviation = model_error(&(prediction.inverse() * first.aligned.pose), self.config.max_range_m);
        let off = deviation > sigma.min(REDESKEW_DEVIATION_M);
        if self.config.redeskew && times.is_some() && !self.map.is_empty() && off {
            let motion = self.last_reference.inverse() * first.aligned.pose;
            return self.deskew_and_align(scan, times.as_deref(), period, &motion, &first.aligned.pose);
        }
        first
    }

    /// Per-point times of the sweep for deskewing, when deskewing is on and the scan has them
    /// (or they are made from azimuth).
    fn sweep_times<'a>(&self, scan: &'a Scan, period: f64) -> Option<std::borrow::Cow<'a, [f32]>> {
        let times = match &scan.point_time {
            Some(t) => Some(std::borrow::Cow::Borrowed(t.as_slice())),
            None if self.config.azimuth_times => {
                Some(std::borrow::Cow::Owned(preprocess::azimuth_times(&scan.points, period)))
            }
            None => None,
        };
        times.filter(|_| self.config.deskew)
    }

    /// Deskews the scan with `motion` (per `period`), downsamples it and aligns it to the map from
    /// `initial`.
    fn deskew_and_align(
        &self,
        scan: &Scan,
        times: Option<&[f32]>,
        period: f64,
        motion: &Pose,
        initial: &Pose,
    ) -> Registered {
        // Deskewed scans are registered at mid-sweep: an error in the predicted motion then shifts
        // the scan's two halves in opposite directions instead of biasing its pose, which keeps the
        // velocity feedback stable (the sweep start would amplify errors, the end damps them less).
        let reference_s = times.map_or(0.0, preprocess::mid_sweep_s);
        let v = self.config.voxel_size();
        let points = self.preprocess_with(scan, times, motion, period, reference_s);
        let frame = voxel_downsample(&points, 0.5 * v);
        let source = voxel_downsample(&frame, 1.5 * v);
        let normals = self.source_normals(&source, &frame);
        let aligned = self.align(&source, &normals, initial);
        Registered {
            frame,
            source,
            aligned,
            reference_s,
        }
    }

    /// `source` aligned to the map from `initial`. Point-to-point ICP (KISS-ICP's) places the scan
    /// first: its basin is wide enough for a turn begun between two sweeps, where a surface lets
    /// point-to-plane ICP stay at the prediction's heading. With `normals`, point-to-plane ICP then
    /// refines from there (ours): the rings the sensor draws on the ground and walls, matched point
    /// to point, pull the estimate towards standing still.
    fn align(&self, source: &[Point3<f64>], normals: &[Option<Vector3<f64>>], initial: &Pose) -> align::Alignment {
        let sigma = self.threshold.sigma();
        let run = |normals: &[Option<Vector3<f64>>], from: &Pose| {
            let (iterations, convergence) = (self.config.max_iterations, self.config.convergence);
            let source = align::Source {
                points: source,
                normals,
            };
            align_to_map(source, &self.map, *from, 3.0 * sigma, sigma, iterations, convergence)
        };
        let mut placed = run(&[], initial);
        if let Some(straight) = self.straight_on(initial) {
            // A turn that ends between two sweeps leaves the prediction degrees off, too far for
            // either ICP: the scan is also placed from straight on, and the start that fits
            // clearly more of its points wins.
            let other = run(&[], &straight);
            if other.fitting > placed.fitting + (CLEARLY_BETTER_FIT * source.len() as f64) as usize {
                placed = other;
            }
        }
        if normals.is_empty() {
            return placed;
        }
        run(normals, &placed.pose)
    }

    /// `initial` without its turn since the last frame, when it turns more than
    /// [`TURNING_RAD`] (a turn under way may end before the next sweep).
    fn straight_on(&self, initial: &Pose) -> Option<Pose> {
        let motion = self.last_reference.inverse() * initial;
        (motion.rotation.angle() > TURNING_RAD)
            .then(|| self.last_reference * Pose::from_parts(motion.translation, UnitQuaternion::identity()))
    }

    /// The surface normal at each registration point, from its neighbours in the scan, when
    /// registering point-to-plane; empty (point-to-point for all) when that is off or too few
    /// points lie on surfaces to register by.
    fn source_normals(&self, source: &[Point3<f64>], frame: &[Point3<f64>]) -> Vec<Option<Vector3<f64>>> {
        if !self.config.point_to_plane {
            return Vec::new();
        }
        let normals = normals_at(source, frame);
        let planar = normals.iter().flatten().count();
        if planar < self.config.min_points {
            return Vec::new();
        }
        normals
    }

    /// A recording that starts mid-drive: the first scan went into the map undeskewed (no motion
    /// was known), and a skewed scan in the map pulls the next registrations off (ours; KISS-ICP
    /// keeps it). Once the second scan shows the motion, the map is rebuilt from the first scan
    /// deskewed with it, and the second is deskewed and registered again against that map.
    fn restart_in_motion(
        &mut self,
        first: &Scan,
        scan: &Scan,
        period: f64,
        motion: &Pose,
        aligned: &Pose,
    ) -> Registered {
        let v = self.config.voxel_size();
        let first_times = self.sweep_times(first, period);
        let reference_s = first_times.as_deref().map_or(0.0, preprocess::mid_sweep_s);
        let points = self.preprocess_with(first, first_times.as_deref(), motion, period, reference_s);
        let world: Vec<Point3<f64>> = voxel_downsample(&points, 0.5 * v)
            .iter()
            .map(|p| self.last_reference * p)
            .collect();
        self.map = empty_map(&self.config);
        self.map
            .update(&world, &Point3::from(self.last_reference.translation.vector));
        let times = self.sweep_times(scan, period);
        self.deskew_and_align(scan, times.as_deref(), period, motion, aligned)
    }

    /// The pose to keep and whether the frame was degenerate: the registration's pose, or the
    /// motion model's where the registration cannot be trusted (too few points or matches: all of
    /// it; directions the scene does not constrain: those).
    fn trusted_pose(&self, registered: &Registered, prediction: &Pose) -> (Pose, bool) {
        let (source, aligned) = (&registered.source, &registered.aligned);
        if self.map.is_empty() {
            return (aligned.pose, false);
        }
        if self.starved(registered) {
            return (*prediction, true);
        }
        if self.config.min_support <= 0.0 {
            return (aligned.pose, false);
        }
        let c = Constraints::analyse(source, &aligned.pose, &self.map, self.config.min_support);
        log::debug!("{} normals, weakest direction support {:.4}", c.normals, c.weakest);
        (c.constrain(prediction, &aligned.pose), c.degenerate)
    }

    fn preprocess_with(
        &self,
        scan: &Scan,
        times: Option<&[f32]>,
        motion: &Pose,
        period: f64,
        reference_s: f64,
    ) -> Vec<Point3<f64>> {
        let deskewed = times.map(|t| preprocess::deskew(&scan.points, t, motion, period, reference_s));
        let kitti = self.config.kitti_correction == Some(true);
        preprocess::prepare(
            &scan.points,
            deskewed,
            kitti,
            self.config.min_range_m,
            self.config.max_range_m,
        )
    }
}

impl OdometryEstimator for Odometry {
    fn register(&mut self, scan: &Scan) -> OdometryStep {
        Odometry::register(self, scan)
    }

    fn local_map_points(&self) -> usize {
        self.map_points()
    }
}

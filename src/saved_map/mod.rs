//! Maps that outlive a run: a saved map holds what a later run needs to start inside it — the
//! keyframes' poses after the last optimisation, their thinned clouds, their place descriptors
//! and the pose graph — and [`localise`] finds where a new run starts in one.
//!
//! ```text
//!  run 1: replay … --save-map DIR          run 2: replay … --map DIR
//!  keyframes → store::write (DIR/map.bin)   store::read → Localiser: descriptors → ICP → agreement
//! ```

pub mod localise;
pub mod merge;
pub mod store;

use crate::loops::detector::LoopMethod;
use crate::loops::scan_context::ScanContext;
use crate::scan::Pose;
use crate::sensor::SensorModel;
use serde::{Deserialize, Serialize};

pub use localise::{Fix, Hypothesis, Localiser, LocaliserConfig};
pub use store::{FORMAT_VERSION, MAP_FILE, read_map, write_map};

/// What a map's descriptors and clouds depend on in the sensor: scans from a sensor with another
/// signature describe places differently, so a map only serves runs with the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorSignature {
    /// The sensor model's name.
    pub name: String,
    /// Rows of its projected images (beams).
    pub rows: usize,
    /// Columns of its projected images.
    pub columns: usize,
    /// Upper edge of its vertical window, degrees.
    pub fov_up_deg: f64,
    /// Lower edge of its vertical window, degrees.
    pub fov_down_deg: f64,
}

impl SensorSignature {
    /// The signature of `sensor`.
    pub fn of(sensor: &SensorModel) -> Self {
        Self {
            name: sensor.name.clone(),
            rows: sensor.rows,
            columns: sensor.columns,
            fov_up_deg: sensor.fov_up_deg,
            fov_down_deg: sensor.fov_down_deg,
        }
    }
}

impl std::fmt::Display for SensorSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' ({}x{}, {:+.1}..{:+.1} deg)",
            self.name, self.rows, self.columns, self.fov_down_deg, self.fov_up_deg
        )
    }
}

/// Everything about a map but its keyframes: the header of the map file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapHeader {
    /// The sensor the map was made with.
    pub sensor: SensorSignature,
    /// The loop detector whose descriptors the keyframes carry beside Scan Context.
    pub detector: LoopMethod,
    /// Voxel size the keyframe clouds were thinned to, metres.
    pub voxel_m: f64,
    /// Runs that made the map (1 for a map saved once; each extending run adds one).
    pub sessions: u32,
    /// Distance driven by all sessions, metres.
    pub travelled_m: f64,
    /// Ground-truth pose of the map frame's origin (the first session's first frame) in the
    /// source's ground-truth frame, 3x4 row-major, when the source had ground truth: later runs
    /// score their poses in the map frame against it.
    pub ground_truth_origin: Option<[f64; 12]>,
}

/// OverlapNet's leg features of one keyframe, as stored: row-major `(rows, columns)` volumes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeatures {
    /// Shape of each volume: (feature columns N, features F).
    pub shape: (usize, usize),
    /// The volume.
    pub volume: Vec<f32>,
    /// The half-turned volume, when the model decodes with one.
    pub half_turn: Option<Vec<f32>>,
}

/// One keyframe of a saved map.
#[derive(Debug, Clone)]
pub struct MapKeyframe {
    /// Session (run) that added it, from 0.
    pub session: u32,
    /// Its frame number in that run's source.
    pub frame: u32,
    /// Its pose in the map frame, after the session's last optimisation.
    pub pose: Pose,
    /// Its scan in its own frame, thinned to [`MapHeader::voxel_m`].
    pub points: Vec<[f32; 3]>,
    /// Intensity of each point, in [0, 1].
    pub intensity: Vec<f32>,
    /// Its Scan Context descriptor.
    pub scan_context: ScanContext,
    /// Its OverlapNet features, when the map was made with OverlapNet.
    pub overlapnet: Option<StoredFeatures>,
    /// Its true pose in the map frame (relative to [`MapHeader::ground_truth_origin`]), when the
    /// source had ground truth: later runs score their localisation against it.
    pub ground_truth: Option<Pose>,
}

/// Which kind of constraint a pose-graph edge was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    /// Odometry between consecutive keyframes.
    Odometry,
    /// A verified loop.
    Loop,
}

/// One edge of the map's pose graph, between two of its keyframes (by index).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapEdge {
    /// Keyframe the measurement is expressed in.
    pub from: u32,
    /// Keyframe measured.
    pub to: u32,
    /// Pose of `to` in `from`'s frame.
    pub measurement: Pose,
    /// Odometry or loop.
    pub kind: EdgeKind,
}

/// A saved map in memory.
#[derive(Debug, Clone)]
pub struct PriorMap {
    /// Sensor, detector, sessions.
    pub header: MapHeader,
    /// Keyframes, in the order they were added.
    pub keyframes: Vec<MapKeyframe>,
    /// The pose graph's edges between them.
    pub edges: Vec<MapEdge>,
}

impl PriorMap {
    /// Length of the keyframes' trajectory, metres (each session's keyframes in order).
    pub fn trajectory_m(&self) -> f64 {
        self.keyframes
            .windows(2)
            .filter(|w| w[0].session == w[1].session)
            .map(|w| (w[1].pose.translation.vector - w[0].pose.translation.vector).norm())
            .sum()
    }

    /// Refuses a run whose sensor differs from the map's (named `path` in the error).
    pub fn check_sensor(&self, path: &std::path::Path, sensor: &SensorModel) -> crate::Result<()> {
        let run = SensorSignature::of(sensor);
        if run != self.header.sensor {
            return Err(crate::Error::input(
                path,
                format!(
                    "the map was made with sensor {}, this run's sensor is {}",
                    self.header.sensor, run
                ),
            ));
        }
        Ok(())
    }
}

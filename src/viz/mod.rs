//! The rerun recording: every stage's output on a `frame` and a `time` timeline, saved to an
//! `.rrd` file (atomically), spawned into a viewer, or streamed to one, with a layout
//! ([`blueprint`]) that opens on the whole run.

pub mod blueprint;
pub mod encode;
mod recording;

pub use blueprint::{Eye, ImageView, Layout};
pub use recording::{LoopView, TRACK_PIECE, Track, Viz};
use std::path::PathBuf;

/// Where the recording goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum VizTarget {
    /// No recording.
    #[default]
    None,
    /// Save to an `.rrd` file.
    Save(PathBuf),
    /// Start a viewer (the `rerun` binary on PATH) and stream to it.
    Spawn,
    /// Stream to a running viewer at this address (`host:port` or a `rerun+http://` URL).
    Connect(String),
}

/// What a run's recording holds and how often: the knobs that trade recording size for detail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VizOptions {
    /// The scan and the images go to the viewer every this many frames (1: every frame).
    pub every: usize,
    /// At most this many points of a scan are logged (the viewer does not need all 120k).
    pub max_points: usize,
    /// Voxel size of the map drawn in the viewer, metres.
    pub map_voxel_m: f64,
    /// The drawn map and the trajectories are brought up to date every this many frames.
    pub refresh_every: usize,
}

impl Default for VizOptions {
    fn default() -> Self {
        Self {
            every: 1,
            max_points: 4_000,
            map_voxel_m: 0.5,
            refresh_every: 10,
        }
    }
}

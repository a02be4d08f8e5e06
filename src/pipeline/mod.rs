//! The streaming pipeline: the one stage graph that `replay`, `live` and `live --ros2` drive.
//! [`run`] builds it (source → odometry → projection → perception → viewer, with loop closure on
//! its own thread) from a [`PipelineConfig`]; [`replay`], [`live`] and [`ros2`] are its
//! front-ends, and [`report`] writes what a run measured. Offline jobs are in [`crate::jobs`].

pub mod config;
pub mod global_map;
pub mod live;
pub mod loop_worker;
pub mod map_saves;
pub mod replay;
pub mod report;
pub mod ros2;
pub mod run;
pub mod saved_map_session;
pub mod sink;
pub mod status;
pub mod viewer;

pub use crate::viz::VizOptions;
pub use config::{PipelineConfig, SourceSpec};
pub use replay::{replay, replay_with_stages};
pub use report::RunReport;
pub use sink::EstimateSink;

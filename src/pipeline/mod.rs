//! The pipeline: stages composed into runs. [`run`] builds the one stage graph (source →
//! odometry → projection → perception → viewer, with loop closure on its own thread) from a
//! [`PipelineConfig`]; [`replay`], [`live`] and [`ros2`] are its front-ends. Beside it:
//! `gt_pairs` labels scan pairs for the loop detectors, `train` fits OverlapNet, `eval_loops`
//! judges the detectors and `match_scans` compares two scan files.

pub mod config;
pub mod eval_loops;
pub mod gt_pairs;
pub mod inspect;
pub mod ivr_cam;
pub mod liif;
pub mod live;
pub mod loop_worker;
pub mod map;
pub mod map_session;
pub mod match_scans;
pub mod replay;
pub mod report;
pub mod ros2;
pub mod run;
pub mod sim_velodyne;
pub mod sink;
pub mod status;
pub mod train;
pub mod train_data;
pub mod viewer;

pub use crate::viz::VizOptions;
pub use config::{PipelineConfig, ReplayConfig, SourceSpec};
pub use replay::{replay, replay_with_stages};
pub use report::ReplayReport;
pub use sink::EstimateSink;

//! The pipeline: stages composed into runs. `replay` streams a source through odometry,
//! projection, the loop search and the viewer, and writes trajectories and metrics; `gt_pairs`
//! labels scan pairs for the loop detectors, `train` fits OverlapNet, `eval_loops` judges the
//! detectors and `match_scans` compares two scan files.

pub mod eval_loops;
pub mod gt_pairs;
pub mod inspect;
pub mod ivr_cam;
pub mod liif;
pub mod live;
pub mod loop_worker;
pub mod map;
pub mod match_scans;
pub mod replay;
pub mod ros2;
pub mod sim_velodyne;
pub mod train;

pub use replay::{ReplayConfig, ReplayReport, SourceSpec, replay, replay_with_stages};

//! Offline jobs: the commands that are not the streaming pipeline, one file per command (matching
//! `src/cli/`). They label, train, evaluate, inspect, simulate and decode; some run the pipeline
//! ([`crate::pipeline`]) as a step, and the pipeline never calls them.

pub mod batch;
pub mod cam;
pub mod decode;
pub mod eval_liif;
pub mod eval_loops;
pub mod gt_pairs;
pub mod match_scans;
pub mod merge_maps;
pub mod project;
pub mod sim_ros2;
pub mod sim_velodyne;
pub mod stats;
pub mod synth;
pub mod train;
pub mod train_liif;

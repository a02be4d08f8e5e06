//! The pipeline: stages composed into runs. `replay` streams a source through odometry,
//! projection and the viewer, and writes trajectories and metrics; `gt_pairs` labels scan pairs
//! for the loop detectors and `eval_loops` judges them.

pub mod eval_loops;
pub mod gt_pairs;
pub mod inspect;
pub mod map;
pub mod replay;

pub use replay::{ReplayConfig, ReplayReport, SourceSpec, replay};

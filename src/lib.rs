//! overlap-slam: a streaming LiDAR SLAM pipeline.
//!
//! Stages, in the order data flows through them:
//! [`io`] (scan sources) and [`sim`] (the simulated world) -> [`odometry`] (built on
//! [`registration`]) -> [`projection`] (range, normal and intensity images) -> [`overlapnet`]
//! and [`loops`] (place recognition, loop search and verification, judged against
//! [`ground_truth`]) -> [`graph`] (the pose-graph back-end) and [`saved_map`] (maps that outlive
//! a run), with [`perception`] stages hooked onto the projected frames -> [`viz`] (rerun),
//! composed by [`pipeline`], the streaming graph; [`metrics`] scores trajectories. Stages exchange
//! the plain types of [`scan`]. Offline work (labelling, training, evaluation, simulation and
//! decoding commands) is in [`jobs`], and [`cli`] is the command line over all of it.

pub mod allocator;
pub mod cli;
pub mod error;
pub mod frames;
pub mod graph;
pub mod ground_truth;
pub mod io;
pub mod jobs;
pub mod loops;
pub mod metrics;
pub mod odometry;
pub mod overlapnet;
pub mod perception;
pub mod pipeline;
pub mod projection;
pub mod registration;
pub mod saved_map;
pub mod scan;
pub mod sensor;
pub mod sim;
pub mod viz;

pub use error::{Error, Result};
pub use scan::{Pose, Scan};

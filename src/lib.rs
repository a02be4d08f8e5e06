//! overlap-slam: a streaming LiDAR SLAM pipeline.
//!
//! Stages, in the order data flows through them:
//! [`io`] (scan sources) and [`sim`] (the simulated world) -> [`odometry`] (built on
//! [`registration`]) -> [`projection`] (range, normal and intensity images) -> [`overlapnet`]
//! and [`loops`] (place recognition, loop search and verification) -> [`graph`] (the pose-graph
//! back-end), with [`perception`] stages hooked onto the projected frames -> [`viz`] (rerun),
//! composed by [`pipeline`]; [`metrics`] scores trajectories. Stages exchange the plain types of
//! [`scan`].

pub mod allocator;
pub mod error;
pub mod graph;
pub mod io;
pub mod loops;
pub mod map;
pub mod metrics;
pub mod odometry;
pub mod overlapnet;
pub mod perception;
pub mod pipeline;
pub mod projection;
pub mod registration;
pub mod scan;
pub mod sensor;
pub mod sim;
pub mod viz;

pub use error::{Error, Result};
pub use scan::{Pose, Scan};

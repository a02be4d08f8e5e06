//! Scan registration: voxel downsampling and a robust point-to-plane ICP. Odometry uses it frame
//! to frame; loop-closure verification reuses it to check a candidate's relative pose.

pub mod icp;
pub mod voxel;

pub use icp::{IcpConfig, IcpResult, Target, normals_at, point_to_plane};
pub use voxel::voxel_downsample;

//! `overlap-slam sim-ros2`: the simulated drive published as ROS 2 PointCloud2 (or recorded).

use super::args::{print_json, stop_on_ctrl_c};
use clap::Args;
use overlap_slam::Result;
use overlap_slam::pipeline::ros2::{SimRos2Config, sim_ros2};
use overlap_slam::sensor::SensorModel;
use overlap_slam::sim::{Scene, SimConfig};
use std::path::PathBuf;

/// Arguments of `sim-ros2`.
#[derive(Args)]
pub struct SimRos2Args {
    /// PointCloud2 topic to publish the simulated sensor on (ROS_DOMAIN_ID's domain).
    topic: Option<String>,
    /// Also publish the ground truth as nav_msgs/Odometry on this topic.
    #[arg(long)]
    gt_topic: Option<String>,
    /// Frame id of the clouds.
    #[arg(long, default_value = "lidar")]
    frame_id: String,
    /// Record the clouds and ground truth to this MCAP file (rosbag2 storage).
    #[arg(long)]
    bag_out: Option<PathBuf>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    /// Seed of the simulated world and drive.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scene of the simulated drive: street, corridor, open-field.
    #[arg(long, default_value = "street")]
    scene: Scene,
    /// Sweeps to drive (default: the simulated drive's length).
    #[arg(long)]
    sweeps: Option<usize>,
    /// Another drive through the same world (0: the default drive).
    #[arg(long, default_value_t = 0)]
    drive: u64,
    /// Start this many sweeps into the drive (somewhere inside a map of the world).
    #[arg(long, default_value_t = 0)]
    first_sweep: usize,
    /// Publish as fast as possible instead of at 10 Hz.
    #[arg(long)]
    fast: bool,
    /// Seconds to wait for subscribers before the first cloud.
    #[arg(long, default_value_t = 2.0)]
    discovery_wait: f64,
}

impl SimRos2Args {
    /// Publishes the drive and prints what was sent as JSON.
    pub fn run(self) -> Result<()> {
        let cfg = SimRos2Config {
            sim: SimConfig {
                seed: self.seed,
                scene: self.scene,
                drive_seed: self.drive,
                frames: self.sweeps.map(|n| n + self.first_sweep),
                sensor: SensorModel::from_name_or_path(&self.sensor)?,
                ..SimConfig::default()
            },
            topic: self.topic,
            frame_id: self.frame_id,
            first_frame: self.first_sweep,
            gt_topic: self.gt_topic,
            bag_out: self.bag_out,
            realtime: !self.fast,
            discovery_wait_s: self.discovery_wait,
            stop: Some(stop_on_ctrl_c()),
        };
        print_json(&sim_ros2(&cfg)?);
        Ok(())
    }
}

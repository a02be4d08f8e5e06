//! `overlap-slam sim-ros2`: the simulated drive published as ROS 2 PointCloud2 (or recorded).

use super::args::{SimDriveArgs, print_json, scene_parser, stop_on_ctrl_c};
use crate::Result;
use crate::frames::Mounting;
use crate::jobs::sim_ros2::{SimRos2Config, sim_ros2};
use crate::sensor::SensorModel;
use crate::sim::{Scene, SimConfig};
use clap::Args;
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
    /// Mount the sensor on the car at x,y,z,roll,pitch,yaw (metres, radians; or a .toml file
    /// with xyz and rpy) under --base-frame: the ground truth is then the base's, and the
    /// mounting is published (and recorded) on /tf_static.
    #[arg(long, value_name = "X,Y,Z,ROLL,PITCH,YAW|FILE", allow_hyphen_values = true)]
    lidar_to_base: Option<String>,
    /// The car's base frame, parent of the clouds' frame on /tf_static.
    #[arg(long, default_value = "base_link")]
    base_frame: String,
    /// Record the clouds and ground truth to this MCAP file (rosbag2 storage).
    #[arg(long)]
    bag_out: Option<PathBuf>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    /// Scene of the simulated drive.
    #[arg(long, default_value = "street", value_parser = scene_parser())]
    scene: Scene,
    #[command(flatten)]
    drive: SimDriveArgs,
    /// Seconds to wait for subscribers before the first cloud.
    #[arg(long, default_value_t = 2.0)]
    discovery_wait: f64,
}

impl SimRos2Args {
    /// Publishes the drive and prints what was sent as JSON.
    pub fn run(self) -> Result<()> {
        let drive = self.drive;
        let cfg = SimRos2Config {
            sim: SimConfig {
                seed: drive.seed,
                scene: self.scene,
                drive_seed: drive.drive,
                frames: drive.sweeps.map(|n| n + drive.first_sweep),
                sensor: SensorModel::from_name_or_path(&self.sensor)?,
                mounting: self.lidar_to_base.as_deref().map(Mounting::parse).transpose()?,
                ..SimConfig::default()
            },
            base_frame: self.base_frame,
            topic: self.topic,
            frame_id: self.frame_id,
            first_frame: drive.first_sweep,
            gt_topic: self.gt_topic,
            bag_out: self.bag_out,
            realtime: !drive.fast,
            discovery_wait_s: self.discovery_wait,
            stop: Some(stop_on_ctrl_c()),
        };
        print_json(&sim_ros2(&cfg)?);
        Ok(())
    }
}

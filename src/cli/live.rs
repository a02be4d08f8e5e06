//! `overlap-slam live`: the pipeline on a Velodyne (UDP or pcap) or on a ROS 2 topic.

use super::args::{PacketArgs, PipelineArgs, stop_on_ctrl_c};
use crate::Result;
use crate::io::FrameRange;
use crate::io::ros::dds::Ros2Input;
use crate::io::velodyne::Model;
use crate::pipeline::live::live;
use crate::pipeline::ros2::{FIRST_CLOUD_WAIT_S, Ros2Names, live_ros2};
use crate::pipeline::{RunReport, SourceSpec};
use crate::sensor::SensorModel;
use crate::sensor::detect;
use crate::sim::SimConfig;
use clap::Args;
use std::time::Duration;

/// Arguments of `live`.
#[derive(Args)]
pub struct LiveArgs {
    /// Subscribe to this ROS 2 sensor_msgs/PointCloud2 topic over DDS (no ROS install needed;
    /// domain from ROS_DOMAIN_ID) instead of reading Velodyne packets.
    #[arg(long, conflicts_with_all = ["udp", "pcap"])]
    ros2: Option<String>,
    #[command(flatten)]
    ros2_out: Ros2OutArgs,
    #[command(flatten)]
    packets: PacketArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// What `live --ros2` publishes.
#[derive(Args)]
struct Ros2OutArgs {
    /// nav_msgs/Odometry topic for the odometry estimate (in --odom-frame).
    #[arg(long, default_value = "/overlap_slam/odometry")]
    odometry_topic: String,
    /// nav_msgs/Path topic for the loop-corrected trajectory (in --map-frame).
    #[arg(long, default_value = "/overlap_slam/path")]
    path_topic: String,
    /// Fixed frame of the odometry (REP 105).
    #[arg(long, default_value = "odom")]
    odom_frame: String,
    /// Frame of the loop-corrected path.
    #[arg(long, default_value = "map")]
    map_frame: String,
    /// std_msgs/Empty topic: every message saves the map into --save-map while the run goes on.
    #[arg(long, default_value = "/overlap_slam/save_map")]
    save_map_topic: String,
}

impl Ros2OutArgs {
    fn names(self, base_frame: String) -> Ros2Names {
        Ros2Names {
            odometry_topic: self.odometry_topic,
            path_topic: self.path_topic,
            odom_frame: self.odom_frame,
            map_frame: self.map_frame,
            base_frame,
            save_map_topic: self.save_map_topic,
        }
    }
}

impl LiveArgs {
    /// Runs until the stream ends (or Ctrl-C) and prints the summary line.
    pub fn run(self) -> Result<()> {
        let quiet = self.pipeline.quiet;
        let report = match self.ros2.clone() {
            Some(topic) => self.run_ros2(topic)?,
            None => self.run_packets()?,
        };
        if !quiet {
            println!("{}", report.summary());
        }
        Ok(())
    }

    fn run_ros2(self, topic: String) -> Result<RunReport> {
        let stop = stop_on_ctrl_c();
        let input = Ros2Input {
            topic,
            idle_timeout_s: self.packets.idle_timeout,
            stats: Default::default(),
            stop: Some(stop.clone()),
            early: Default::default(),
        };
        let frames = FrameRange {
            start: 0,
            end: self.packets.sweeps,
        };
        // With `auto` the first cloud (kept for the run) shows the sensor. A named one is taken as
        // it is: the run subscribes only once its pipeline is set up.
        let auto = self.packets.sensor == detect::AUTO;
        let first_scan = || {
            let wait = Duration::from_secs_f64(FIRST_CLOUD_WAIT_S);
            auto.then(|| input.first_scan(wait).ok().flatten()).flatten()
        };
        let (sensor, detection) = detect::choose(&ros2_sensor_name(&self.packets.sensor), first_scan)?;
        let stages = self.pipeline.stages()?;
        let names = self.ros2_out.names(self.pipeline.base_frame.clone());
        // `live_ros2` puts in the topic as the source.
        let mut cfg = self.pipeline.config(placeholder(), frames, sensor, stop)?;
        cfg.sensor_detection = detection.map(|d| d.to_string());
        live_ros2(input, names, cfg, stages)
    }

    fn run_packets(self) -> Result<RunReport> {
        let stop = stop_on_ctrl_c();
        let (source, recognised) = self.packets.source(stop.clone())?;
        let stages = self.pipeline.stages()?;
        // `live` puts in the packet source and the sensor's projection model.
        let mut cfg = self
            .pipeline
            .config(placeholder(), FrameRange::all(), SensorModel::hdl64(), stop)?;
        cfg.sensor_detection = recognised;
        live(source, cfg, stages)
    }
}

/// The source a live front-end replaces with its stream.
fn placeholder() -> SourceSpec {
    SourceSpec::Simulated(SimConfig::default())
}

/// A `--sensor` for `live --ros2` in the projection models' names: the Velodyne names of
/// packet input (vlp16, hdl32e, hdl64e) map to theirs; `auto`, other models and files pass as
/// they are.
fn ros2_sensor_name(name: &str) -> String {
    match name.parse::<Model>() {
        Ok(m) => m.sensor_model_name().to_string(),
        Err(_) => name.to_string(),
    }
}

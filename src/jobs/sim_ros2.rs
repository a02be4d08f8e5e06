//! `sim-ros2`: the simulated drive published as ROS 2 PointCloud2 over DDS at the sensor's rate
//! (with its ground truth as `nav_msgs/Odometry`) and/or recorded to an MCAP file, for tests and
//! demos without a sensor.

use crate::error::{Error, Result};
use crate::io::ros::cloud::encode_scan;
use crate::io::ros::dds::{RawCdr, RawWriter, Ros2Node, reliable_qos, sensor_qos, static_qos};
use crate::io::ros::messages::{Header, encode_odometry, encode_tf, types};
use crate::io::ros::record::McapRecorder;
use crate::io::ros::tf::TF_STATIC;
use crate::sim::{SimConfig, Simulation};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `sim-ros2` publishes.
#[derive(Debug, Clone)]
pub struct SimRos2Config {
    /// The simulated drive.
    pub sim: SimConfig,
    /// Frames of the drive skipped before the first cloud sent.
    pub first_frame: usize,
    /// PointCloud2 topic to publish on (`None`: record only).
    pub topic: Option<String>,
    /// Frame id of the clouds.
    pub frame_id: String,
    /// The car's base frame: with a mounting in `sim`, the parent of `frame_id` on
    /// `/tf_static` and the body of the ground truth.
    pub base_frame: String,
    /// Also publish the ground truth as `nav_msgs/Odometry` on this topic.
    pub gt_topic: Option<String>,
    /// Record the clouds (and ground truth) to this MCAP file.
    pub bag_out: Option<PathBuf>,
    /// Publish at the sensor's rate (10 Hz) rather than as fast as possible.
    pub realtime: bool,
    /// Seconds to wait before the first cloud, for subscribers to be discovered.
    pub discovery_wait_s: f64,
    /// Set to stop early (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
}

/// What `sim-ros2` sent.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SimRos2Report {
    /// Clouds published (or recorded).
    pub clouds: usize,
    /// Points in them.
    pub points: usize,
    /// Seconds from the first cloud to the last.
    pub wall_s: f64,
}

/// Where `sim-ros2` sends each cloud and ground-truth pose: DDS topics, an MCAP file, or both.
struct SimOutputs {
    clouds: Option<RawWriter>,
    gt: Option<RawWriter>,
    tf_static: Option<RawWriter>,
    bag: Option<McapRecorder>,
    /// Held for the writers' lifetime.
    node: Option<Ros2Node>,
}

impl SimOutputs {
    fn open(cfg: &SimRos2Config) -> Result<Self> {
        let node = cfg.topic.as_ref().map(|_| Ros2Node::new()).transpose()?;
        let writer = |topic: &Option<String>, ty: &str, qos| match (&node, topic) {
            (Some(n), Some(t)) => n.writer(t, ty, &qos).map(Some),
            _ => Ok(None),
        };
        Ok(Self {
            clouds: writer(&cfg.topic, types::POINT_CLOUD2, sensor_qos())?,
            gt: writer(&cfg.gt_topic, types::ODOMETRY, reliable_qos())?,
            tf_static: match cfg.sim.mounting {
                Some(_) => writer(&Some(TF_STATIC.to_string()), types::TF_MESSAGE, static_qos())?,
                None => None,
            },
            bag: cfg.bag_out.as_deref().map(McapRecorder::create).transpose()?,
            node,
        })
    }

    /// Publishes and records frame `i`'s cloud and ground truth, both CDR-encoded.
    fn send(&mut self, cfg: &SimRos2Config, i: usize, stamp_ns: i64, cloud: Vec<u8>, odom: Vec<u8>) -> Result<()> {
        if let Some(b) = self.bag.as_mut() {
            let topic = cfg.topic.as_deref().unwrap_or("/points");
            b.write(topic, types::POINT_CLOUD2, stamp_ns, &cloud)?;
            let gt_topic = cfg.gt_topic.as_deref().unwrap_or("/ground_truth");
            b.write(gt_topic, types::ODOMETRY, stamp_ns, &odom)?;
        }
        if let Some(w) = &self.clouds {
            w.write(RawCdr(cloud), None)
                .map_err(|e| Error::Usage(format!("ROS 2: publishing cloud {i}: {e:?}")))?;
        }
        if let Some(w) = &self.gt {
            let _ = w.write(RawCdr(odom), None);
        }
        Ok(())
    }

    /// Publishes and records the mounting on `/tf_static` (base frame → the clouds' frame).
    fn send_static(&mut self, cfg: &SimRos2Config, stamp_ns: i64) -> Result<()> {
        let Some(mounting) = cfg.sim.mounting else {
            return Ok(());
        };
        let header = Header {
            stamp_ns,
            frame_id: cfg.base_frame.clone(),
        };
        let tf = encode_tf(&header, &cfg.frame_id, &mounting.base_from_sensor);
        if let Some(b) = self.bag.as_mut() {
            b.write(TF_STATIC, types::TF_MESSAGE, stamp_ns, &tf)?;
        }
        if let Some(w) = &self.tf_static {
            w.write(RawCdr(tf), None)
                .map_err(|e| Error::Usage(format!("ROS 2: publishing {TF_STATIC}: {e:?}")))?;
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some(b) = self.bag {
            b.finish()?;
        }
        // Best-effort samples still in flight are lost if the participant goes at once.
        if self.node.is_some() {
            std::thread::sleep(Duration::from_millis(500));
        }
        Ok(())
    }
}

/// Publishes (and/or records) the simulated drive as PointCloud2, stamped with wall-clock time.
pub fn sim_ros2(cfg: &SimRos2Config) -> Result<SimRos2Report> {
    if cfg.topic.is_none() && cfg.bag_out.is_none() {
        return Err(Error::Usage("sim-ros2 needs a TOPIC and/or --bag-out FILE".into()));
    }
    let sim = Simulation::new(&cfg.sim);
    let mut outputs = SimOutputs::open(cfg)?;
    if outputs.node.is_some() {
        std::thread::sleep(Duration::from_secs_f64(cfg.discovery_wait_s));
    }
    let epoch_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i64;
    outputs.send_static(cfg, epoch_ns)?;
    let started = Instant::now();
    let mut report = SimRos2Report::default();
    for i in cfg.first_frame..sim.frames() {
        if cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
            break;
        }
        let due = Duration::from_secs_f64(sim.frame_time(i) - sim.frame_time(cfg.first_frame));
        if cfg.realtime && started.elapsed() < due {
            std::thread::sleep(due - started.elapsed());
        }
        let scan = sim.scan(i);
        let stamp_ns = epoch_ns + (sim.frame_time(i) * 1e9) as i64;
        let header = Header {
            stamp_ns,
            frame_id: "map".into(),
        };
        // With a mounting the truth is the base's, as a robot's localisation states it.
        let (body, truth) = match cfg.sim.mounting {
            Some(_) => (&cfg.base_frame, sim.base_gt_pose(i)),
            None => (&cfg.frame_id, sim.gt_pose(i)),
        };
        let odom = encode_odometry(&header, body, &truth, [0.0; 3], [0.0; 3]);
        outputs.send(cfg, i, stamp_ns, encode_scan(&scan, stamp_ns, &cfg.frame_id), odom)?;
        report.clouds += 1;
        report.points += scan.len();
    }
    report.wall_s = started.elapsed().as_secs_f64();
    outputs.finish()?;
    Ok(report)
}

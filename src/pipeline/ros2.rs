//! The pipeline on ROS 2: `live --ros2 TOPIC` subscribes to a PointCloud2 topic and publishes the
//! estimate for the rest of the robot (odometry, the loop-corrected path, the odom → base
//! transform on `/tf`, and the run's health on `/diagnostics` once a second).

use super::config::{PipelineConfig, SourceSpec};
use super::live::run_with_heartbeat;
use super::map_saves::SaveRequests;
use super::report::RunReport;
use super::sink::EstimateSink;
use super::status::{RunState, RunStatus};
use crate::error::Result;
use crate::io::ros::dds::{RawCdr, RawReader, RawWriter, Ros2Counts, Ros2Input, Ros2Node, reliable_qos};
use crate::io::ros::messages::{
    DiagnosticStatus, Header, encode_diagnostics, encode_odometry, encode_path, encode_tf, types,
};
use crate::perception::PerceptionStage;
use crate::scan::Pose;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Names of what `live --ros2` publishes (REP 105 frames by default).
#[derive(Debug, Clone)]
pub struct Ros2Names {
    /// `nav_msgs/Odometry` topic: the odometry estimate, in the odometry frame.
    pub odometry_topic: String,
    /// `nav_msgs/Path` topic: every pose so far, loop-corrected, in the map frame.
    pub path_topic: String,
    /// Fixed frame of odometry (`odom`).
    pub odom_frame: String,
    /// Frame of the loop-corrected path (`map`).
    pub map_frame: String,
    /// The sensor's (robot's) frame (`base_link`).
    pub base_frame: String,
    /// `std_msgs/Empty` topic: every message saves the map (with `--save-map`).
    pub save_map_topic: String,
}

impl Default for Ros2Names {
    fn default() -> Self {
        Self {
            odometry_topic: "/overlap_slam/odometry".into(),
            path_topic: "/overlap_slam/path".into(),
            odom_frame: "odom".into(),
            map_frame: "map".into(),
            base_frame: "base_link".into(),
            save_map_topic: "/overlap_slam/save_map".into(),
        }
    }
}

/// How long a run waits for the first cloud, when it needs one to recognise the sensor
/// (`--sensor auto`) or to learn the clouds' frame and `/tf_static`'s chain to it (no
/// `--lidar-to-base`), before it starts without (hdl64; no mounting), seconds. tf2's static
/// broadcasters latch: `/tf_static` is heard at once by a late subscriber.
pub const FIRST_CLOUD_WAIT_S: f64 = 10.0;

/// The path is republished every this many frames (and at every loop closure).
const PATH_EVERY: usize = 10;

/// What has been estimated so far, to build the path from.
#[derive(Default)]
struct Trajectory {
    stamps_ns: Vec<i64>,
    odometry: Vec<Pose>,
    /// Loop-corrected poses of the first frames, from the last correction.
    corrected: Vec<Pose>,
}

impl Trajectory {
    /// Every frame's pose: corrected where the pose graph has spoken, odometry moved by the last
    /// correction after that.
    fn path(&self) -> Vec<(i64, Pose)> {
        let k = self.corrected.len().min(self.odometry.len());
        let shift = match k {
            0 => Pose::identity(),
            _ => self.corrected[k - 1] * self.odometry[k - 1].inverse(),
        };
        (0..self.odometry.len())
            .map(|i| {
                let pose = if i < k {
                    self.corrected[i]
                } else {
                    shift * self.odometry[i]
                };
                (self.stamps_ns[i], pose)
            })
            .collect()
    }
}

/// Publishes the estimate on ROS 2.
pub struct Ros2Outputs {
    names: Ros2Names,
    odometry: RawWriter,
    path: RawWriter,
    tf: RawWriter,
    diagnostics: RawWriter,
    trajectory: Mutex<Trajectory>,
    /// `map -> odom` once a run in a saved map is localised, with the latest stamp.
    map_from_odom: Mutex<Option<Pose>>,
    _node: Ros2Node,
}

impl std::fmt::Debug for Ros2Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ros2Outputs").field("names", &self.names).finish()
    }
}

impl Ros2Outputs {
    /// Advertises the odometry, path and `/tf` topics.
    pub fn new(names: Ros2Names) -> Result<Self> {
        let node = Ros2Node::new()?;
        let one = crate::io::ros::dds::latest_qos();
        Ok(Self {
            odometry: node.writer(&names.odometry_topic, types::ODOMETRY, &reliable_qos())?,
            path: node.writer(&names.path_topic, types::PATH, &one)?,
            tf: node.writer("/tf", types::TF_MESSAGE, &reliable_qos())?,
            diagnostics: node.writer("/diagnostics", types::DIAGNOSTIC_ARRAY, &reliable_qos())?,
            names,
            trajectory: Mutex::new(Trajectory::default()),
            map_from_odom: Mutex::new(None),
            _node: node,
        })
    }

    fn send(writer: &RawWriter, what: &str, bytes: Vec<u8>) {
        // A subscriber that cannot keep up must not stop the robot's odometry: log and go on.
        if let Err(e) = writer.write(RawCdr(bytes), None) {
            log::warn!("ROS 2: publishing {what} failed: {e:?}");
        }
    }

    fn publish_path(&self, t: &Trajectory) {
        let Some(last) = t.stamps_ns.last() else { return };
        let header = Header {
            stamp_ns: *last,
            frame_id: self.names.map_frame.clone(),
        };
        Self::send(&self.path, "the path", encode_path(&header, &t.path()));
    }

    /// Publishes the run's health on `/diagnostics` (`diagnostic_msgs/DiagnosticArray`, as the
    /// robot's monitoring reads it): clouds taken in the last second (`rate_hz`), latency,
    /// clouds received, dropped and malformed, lost frames, the state and the loops closed.
    /// ERROR while lost, WARN while localising or without clouds, OK otherwise; the hardware id
    /// is the cloud topic.
    pub fn publish_diagnostics(&self, status: &RunStatus, rate_hz: f64, clouds: &Ros2Counts, topic: &str) {
        let state = status.state();
        let level = match state {
            RunState::Lost => 2,
            _ if state == RunState::Localising || rate_hz == 0.0 => 1,
            _ => 0,
        };
        let values = [
            ("state", state.name().to_string()),
            ("rate_hz", format!("{rate_hz:.1}")),
            ("latency_ms", format!("{:.1}", status.last_latency_ms())),
            ("latency_p99_ms", format!("{:.1}", status.latency_p99_ms())),
            ("frames", status.frames().to_string()),
            ("clouds_received", clouds.received.to_string()),
            ("clouds_dropped", clouds.lost.to_string()),
            ("clouds_malformed", clouds.malformed.to_string()),
            ("lost_frames", status.lost_frames().to_string()),
            ("loops", status.loops().to_string()),
        ];
        let report = DiagnosticStatus {
            level,
            name: "overlap_slam: odometry".into(),
            message: state.name().into(),
            hardware_id: topic.into(),
            values: values.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        let header = Header {
            stamp_ns: now,
            frame_id: String::new(),
        };
        Self::send(
            &self.diagnostics,
            "/diagnostics",
            encode_diagnostics(&header, &[report]),
        );
    }

    /// Publishes `map -> odom` on `/tf` at `stamp_ns`, as ROS localisers do.
    fn publish_map_to_odom(&self, stamp_ns: i64, map_from_odom: &Pose) {
        let header = Header {
            stamp_ns,
            frame_id: self.names.map_frame.clone(),
        };
        Self::send(
            &self.tf,
            "/tf",
            encode_tf(&header, &self.names.odom_frame, map_from_odom),
        );
    }
}

impl EstimateSink for Ros2Outputs {
    fn odometry(&self, stamp_s: f64, pose: &Pose, delta: &Pose, dt_s: f64) {
        let stamp_ns = (stamp_s * 1e9).round() as i64;
        let header = Header {
            stamp_ns,
            frame_id: self.names.odom_frame.clone(),
        };
        let (v, w) = if dt_s > 0.0 {
            (delta.translation.vector / dt_s, delta.rotation.scaled_axis() / dt_s)
        } else {
            Default::default()
        };
        let odom = encode_odometry(&header, &self.names.base_frame, pose, [v.x, v.y, v.z], [w.x, w.y, w.z]);
        Self::send(&self.odometry, "odometry", odom);
        Self::send(&self.tf, "/tf", encode_tf(&header, &self.names.base_frame, pose));
        if let Some(m) = *self.map_from_odom.lock().expect("map lock") {
            self.publish_map_to_odom(stamp_ns, &m);
        }
        let mut t = self.trajectory.lock().expect("trajectory lock");
        t.stamps_ns.push(stamp_ns);
        t.odometry.push(*pose);
        if t.odometry.len().is_multiple_of(PATH_EVERY) {
            self.publish_path(&t);
        }
    }

    fn corrected(&self, poses: &[Pose]) {
        let mut t = self.trajectory.lock().expect("trajectory lock");
        t.corrected = poses.to_vec();
        self.publish_path(&t);
    }

    fn localised(&self, map_from_odometry: &Pose, _fix: &Pose) {
        *self.map_from_odom.lock().expect("map lock") = Some(*map_from_odometry);
        let stamp_ns = *self
            .trajectory
            .lock()
            .expect("trajectory lock")
            .stamps_ns
            .last()
            .unwrap_or(&0);
        self.publish_map_to_odom(stamp_ns, map_from_odometry);
    }
}

/// Runs the pipeline on a live ROS 2 topic, publishing the estimate under `names`.
pub fn live_ros2(
    input: Ros2Input,
    names: Ros2Names,
    pipeline: PipelineConfig,
    stages: Vec<Box<dyn PerceptionStage>>,
) -> Result<RunReport> {
    let stats = input.stats.clone();
    let topic = input.topic.clone();
    let mut pipeline = pipeline;
    if pipeline.mounting_from_tf {
        let wait = std::time::Duration::from_secs_f64(FIRST_CLOUD_WAIT_S);
        if let Some(m) = crate::io::ros::tf::live_mounting(&input, &names.base_frame, wait)? {
            pipeline.mounting = m;
        }
    }
    let mut pipeline = pipeline.for_stream(SourceSpec::Ros2(input), true);
    let save_topic = names.save_map_topic.clone();
    let outputs = Arc::new(Ros2Outputs::new(names)?);
    pipeline.sink = Some(outputs.clone());
    let (link_stats, last_frames) = (stats.clone(), AtomicUsize::new(0));
    let link = move || {
        let c = link_stats.snapshot();
        format!(
            "clouds {} received, {} lost, {} malformed",
            c.received, c.lost, c.malformed
        )
    };
    let save_trigger = pipeline
        .save_requests
        .clone()
        .map(|requests| -> Result<_> {
            let node = Ros2Node::new()?;
            let reader = node.reader(&save_topic, types::EMPTY, &reliable_qos())?;
            Ok((node, reader, requests))
        })
        .transpose()?;
    let heartbeat = move |status: &RunStatus| {
        let frames = status.frames();
        let rate_hz = frames.saturating_sub(last_frames.swap(frames, Ordering::Relaxed)) as f64;
        outputs.publish_diagnostics(status, rate_hz, &stats.snapshot(), &topic);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let listener = save_trigger.map(|(node, reader, requests)| {
        let stop = stop.clone();
        std::thread::spawn(move || {
            ask_on_messages(reader, &requests, &stop);
            drop(node);
        })
    });
    let result = run_with_heartbeat(pipeline, stages, link, Some(Box::new(heartbeat)));
    stop.store(true, Ordering::Relaxed);
    if let Some(thread) = listener {
        let _ = thread.join();
    }
    result
}

/// Asks for a map save at every message `reader` takes, until `stop`.
fn ask_on_messages(mut reader: RawReader, requests: &SaveRequests, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match reader.take_next_sample() {
            Ok(Some(_)) => {
                log::info!("ROS 2: map save asked for");
                requests.ask();
            }
            Ok(None) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => {
                log::warn!("ROS 2: the save-map trigger failed: {e:?}");
                return;
            }
        }
    }
}

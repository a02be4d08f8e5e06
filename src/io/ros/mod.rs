//! ROS recordings as scan sources: rosbag2 (MCAP or SQLite 3) and ROS 1 `.bag` files, read
//! through one [`Container`] trait; `sensor_msgs/PointCloud2` decoded by its own fields
//! ([`cloud`]); ground truth from an `Odometry` or `PoseStamped` topic, matched by time.

pub mod cloud;
pub mod dds;
pub mod messages;
pub mod record;
pub mod ros1;
pub mod rosbag2;
pub mod tf;
pub mod wire;

use crate::error::{Error, Result};
use crate::frames::BaseFrame;
use crate::io::{FrameRange, ScanSource};
use crate::scan::{Pose, Scan};
use messages::{PointCloud2, StampedPose, types};
use std::path::{Path, PathBuf};
use wire::Encoding;

/// A topic in a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Message type, ROS 2 spelling (`sensor_msgs/msg/PointCloud2`).
    pub msg_type: String,
    /// Messages on it, when the file's index says.
    pub count: Option<u64>,
}

/// One message as the container stores it.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// Topic it was published on.
    pub topic: &'a str,
    /// Its type, ROS 2 spelling.
    pub msg_type: &'a str,
    /// The serialised message.
    pub data: &'a [u8],
}

/// A recording file format: lists its topics and hands over messages in file order.
pub trait Container: Send {
    /// How messages are serialised.
    fn encoding(&self) -> Encoding;
    /// Topics with their types (and counts where the file has an index).
    fn topics(&self) -> Result<Vec<Topic>>;
    /// Calls `visit` with each message on `topics`, in file order, until it returns false. A
    /// broken file is an error after every complete message before the break was visited.
    fn for_each(&self, topics: &[&str], visit: &mut dyn FnMut(Message<'_>) -> bool) -> Result<()>;
}

/// True when `path` looks like a recording: a rosbag2 folder, or an `.mcap`, `.db3` or `.bag` file.
pub fn is_bag(path: &Path) -> bool {
    if path.is_dir() {
        return path.join("metadata.yaml").is_file();
    }
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["mcap", "db3", "bag"].contains(&e.to_ascii_lowercase().as_str()))
}

/// Opens a recording of any supported kind.
pub fn open_container(path: &Path) -> Result<Box<dyn Container>> {
    if !path.exists() {
        return Err(Error::input(path, "no such file or folder"));
    }
    if path.is_dir() {
        return Ok(Box::new(rosbag2::Rosbag2::open_folder(path)?));
    }
    if let Some(storage) = rosbag2::Storage::from_path(path) {
        return storage.open(path, false);
    }
    Ok(Box::new(ros1::Ros1Bag::open(path)?))
}

/// What to read from a recording.
#[derive(Debug, Clone, Default)]
pub struct BagOptions {
    /// The PointCloud2 topic; `None` takes the only one.
    pub topic: Option<String>,
    /// An `Odometry` or `PoseStamped` topic with ground truth.
    pub gt_topic: Option<String>,
    /// Which clouds (numbered from 0 in file order) to take.
    pub frames: FrameRange,
    /// The robot's base and the sensor's mounting on it, for ground truth stated for the base.
    pub base: BaseFrame,
}

fn list(topics: &[Topic]) -> String {
    let names: Vec<String> = topics.iter().map(|t| format!("{} ({})", t.name, t.msg_type)).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// The cloud topic to read: the one asked for, or the only PointCloud2 topic.
pub fn pick_cloud_topic(path: &Path, topics: &[Topic], asked: Option<&str>) -> Result<Topic> {
    let clouds: Vec<&Topic> = topics.iter().filter(|t| t.msg_type == types::POINT_CLOUD2).collect();
    match asked {
        Some(name) => {
            let t = topics
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::input(path, format!("no topic '{name}' (topics: {})", list(topics))))?;
            if t.msg_type != types::POINT_CLOUD2 {
                return Err(Error::input(
                    path,
                    format!("topic '{name}' is {}, not {}", t.msg_type, types::POINT_CLOUD2),
                ));
            }
            Ok(t.clone())
        }
        None => match clouds.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::input(
                path,
                format!("no PointCloud2 topic (topics: {})", list(topics)),
            )),
            many => Err(Error::input(
                path,
                format!(
                    "{} PointCloud2 topics: {}; pick one with --topic",
                    many.len(),
                    many.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            )),
        },
    }
}

/// Ground-truth poses sorted by time, to be matched to scans.
#[derive(Debug, Clone)]
pub struct PoseTrack {
    stamps_ns: Vec<i64>,
    poses: Vec<Pose>,
}

/// A scan this far outside the ground truth's time span gets the nearest end's pose, farther
/// none (a 10 Hz period: a sweep stamped at its start precedes a pose stamped mid-sweep by half).
const GT_SLACK_NS: i64 = 100_000_000;

impl PoseTrack {
    /// A track from stamped poses in any order.
    pub fn new(mut poses: Vec<(i64, Pose)>) -> Self {
        poses.sort_by_key(|p| p.0);
        poses.dedup_by_key(|p| p.0);
        let (stamps_ns, poses) = poses.into_iter().unzip();
        Self { stamps_ns, poses }
    }

    /// The track of a body whose pose is `pose` in the tracked one's frame: every pose times
    /// `pose`.
    pub fn moved_by(mut self, pose: &Pose) -> Self {
        for p in &mut self.poses {
            *p *= pose;
        }
        self
    }

    /// The pose at `t_ns`: interpolated between the two around it (linear in position, slerp
    /// in rotation), the nearest end within 100 ms outside the span, otherwise none.
    pub fn at(&self, t_ns: i64) -> Option<Pose> {
        let i = self.stamps_ns.partition_point(|s| *s <= t_ns);
        let n = self.stamps_ns.len();
        if n == 0 {
            return None;
        }
        if i == 0 || i == n {
            let end = if i == 0 { 0 } else { n - 1 };
            return ((self.stamps_ns[end] - t_ns).abs() <= GT_SLACK_NS).then_some(self.poses[end]);
        }
        let (t0, t1) = (self.stamps_ns[i - 1], self.stamps_ns[i]);
        let f = (t_ns - t0) as f64 / (t1 - t0) as f64;
        Some(self.poses[i - 1].lerp_slerp(&self.poses[i], f))
    }
}

/// Reads every pose on `topic`, and the frame they are the poses of (an `Odometry`'s
/// `child_frame_id`; `None` for `PoseStamped`).
pub fn read_pose_track(
    path: &Path,
    bag: &dyn Container,
    topics: &[Topic],
    topic: &str,
) -> Result<(PoseTrack, Option<String>)> {
    let t = topics.iter().find(|t| t.name == topic).ok_or_else(|| {
        Error::input(
            path,
            format!("no ground-truth topic '{topic}' (topics: {})", list(topics)),
        )
    })?;
    if t.msg_type != types::ODOMETRY && t.msg_type != types::POSE_STAMPED {
        return Err(Error::input(
            path,
            format!(
                "ground-truth topic '{topic}' is {}: want {} or {}",
                t.msg_type,
                types::ODOMETRY,
                types::POSE_STAMPED
            ),
        ));
    }
    let (mut poses, mut frame, mut bad) = (Vec::new(), None, None);
    bag.for_each(
        &[topic],
        &mut |m| match StampedPose::decode(m.data, bag.encoding(), &t.msg_type) {
            Ok(p) => {
                poses.push((p.header.stamp_ns, p.pose));
                frame = frame.take().or(p.child_frame);
                true
            }
            Err(e) => {
                bad = Some(format!("{topic} message {}: {e}", poses.len()));
                false
            }
        },
    )?;
    if let Some(e) = bad {
        return Err(Error::input(path, e));
    }
    if poses.is_empty() {
        return Err(Error::input(
            path,
            format!("ground-truth topic '{topic}' has no messages"),
        ));
    }
    Ok((PoseTrack::new(poses), frame))
}

/// The ground truth on `gt_topic` as the sensor's poses: moved from the frame it states (its
/// `child_frame_id`) to the clouds' frame.
fn sensor_ground_truth(
    path: &Path,
    bag: &dyn Container,
    topics: &[Topic],
    gt_topic: &str,
    cloud_topic: &str,
    opts: &BagOptions,
) -> Result<PoseTrack> {
    let (track, truth) = read_pose_track(path, bag, topics, gt_topic)?;
    let frames = tf::GroundTruthFrames {
        topic: gt_topic,
        truth: truth.as_deref(),
        cloud_topic,
        base: &opts.base,
    };
    let moved = tf::truth_from_sensor(path, bag, topics, &frames)?;
    Ok(track.moved_by(&moved))
}

/// Decodes message `n` of `topic` into a scan numbered `n`, with its pose from `gt` when given.
pub fn scan_from_message(
    path: &Path,
    topic: &str,
    n: usize,
    encoding: Encoding,
    data: &[u8],
    gt: Option<&PoseTrack>,
) -> Result<Scan> {
    let bad = |e: String| Error::input(path, format!("{topic} message {n}: {e}"));
    let cloud = PointCloud2::decode(data, encoding).map_err(bad)?;
    let mut scan = cloud::decode_cloud(&cloud).map_err(bad)?;
    if scan.is_empty() {
        return Err(bad("cloud has no finite points".into()));
    }
    scan.index = n;
    scan.gt_pose = gt.and_then(|g| g.at(cloud.header.stamp_ns));
    Ok(scan)
}

/// Scans from a recording's PointCloud2 topic, read and decoded on a thread of their own so that
/// file reading overlaps the pipeline.
pub struct BagSource {
    name: String,
    len: Option<usize>,
    has_gt: bool,
    rx: crossbeam_channel::Receiver<Result<Scan>>,
}

/// Clouds decoded ahead of the pipeline.
const READ_AHEAD: usize = 2;

impl BagSource {
    /// Opens `path` and starts reading the cloud topic.
    pub fn open(path: &Path, opts: &BagOptions) -> Result<Self> {
        let bag = open_container(path)?;
        let topics = bag.topics()?;
        let topic = pick_cloud_topic(path, &topics, opts.topic.as_deref())?;
        let gt = match &opts.gt_topic {
            Some(g) => Some(sensor_ground_truth(path, bag.as_ref(), &topics, g, &topic.name, opts)?),
            None => None,
        };
        let len = topic.count.map(|c| opts.frames.clamp_to(c as usize).len());
        if len == Some(0) {
            return Err(Error::input(
                path,
                format!("no clouds on {} in frame range {:?}", topic.name, opts.frames),
            ));
        }
        let name = format!("{} {}", path.display(), topic.name);
        let has_gt = gt.is_some();
        let (tx, rx) = crossbeam_channel::bounded(READ_AHEAD);
        let (path, frames): (PathBuf, FrameRange) = (path.to_path_buf(), opts.frames);
        std::thread::spawn(move || {
            let mut n = 0;
            let encoding = bag.encoding();
            let read = bag.for_each(&[topic.name.as_str()], &mut |m| {
                let frame = n;
                n += 1;
                if !frames.contains(frame) {
                    return frames.end.is_none_or(|e| frame < e);
                }
                let scan = scan_from_message(&path, &topic.name, frame, encoding, m.data, gt.as_ref());
                let failed = scan.is_err();
                tx.send(scan).is_ok() && !failed
            });
            match read {
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
                Ok(()) if n <= frames.start => {
                    let _ = tx.send(Err(Error::input(
                        &path,
                        format!("{} has {n} clouds: none in frame range {frames:?}", topic.name),
                    )));
                }
                Ok(()) => {}
            }
        });
        Ok(Self { name, len, has_gt, rx })
    }
}

impl Iterator for BagSource {
    type Item = Result<Scan>;

    fn next(&mut self) -> Option<Result<Scan>> {
        self.rx.recv().ok()
    }
}

impl ScanSource for BagSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn len_hint(&self) -> Option<usize> {
        self.len
    }

    fn has_ground_truth(&self) -> bool {
        self.has_gt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn ground_truth_is_interpolated_to_the_stamp_and_held_a_period_past_its_ends() {
        let a = Pose::new(Vector3::new(0.0, 0.0, 0.0), Vector3::new(0.0, 0.0, 0.0));
        let b = Pose::new(Vector3::new(2.0, 0.0, 0.0), Vector3::new(0.0, 0.0, 0.2));
        let track = PoseTrack::new(vec![(2_000, b), (1_000, a)]);
        let mid = track.at(1_500).unwrap();
        assert!((mid.translation.vector - Vector3::new(1.0, 0.0, 0.0)).norm() < 1e-12);
        assert!((mid.rotation.angle() - 0.1).abs() < 1e-12);
        assert_eq!(track.at(2_000 + GT_SLACK_NS), Some(b));
        assert_eq!(track.at(1_000 - GT_SLACK_NS - 1), None);
    }

    #[test]
    fn the_only_cloud_topic_is_taken_and_several_are_listed() {
        let t = |name: &str, ty: &str| Topic {
            name: name.into(),
            msg_type: ty.into(),
            count: None,
        };
        let path = Path::new("x.mcap");
        let one = [t("/imu", "sensor_msgs/msg/Imu"), t("/points", types::POINT_CLOUD2)];
        assert_eq!(pick_cloud_topic(path, &one, None).unwrap().name, "/points");
        let two = [t("/a", types::POINT_CLOUD2), t("/b", types::POINT_CLOUD2)];
        let err = pick_cloud_topic(path, &two, None).unwrap_err().to_string();
        assert_eq!(err, "x.mcap: 2 PointCloud2 topics: /a, /b; pick one with --topic");
        let err = pick_cloud_topic(path, &one, Some("/imu")).unwrap_err().to_string();
        assert_eq!(
            err,
            "x.mcap: topic '/imu' is sensor_msgs/msg/Imu, not sensor_msgs/msg/PointCloud2"
        );
    }
}

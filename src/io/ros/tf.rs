//! The sensor's mounting as a ROS system states it: the static transforms on `/tf_static`
//! (robot_state_publisher's URDF, or `static_transform_publisher`), chained from the robot's base
//! frame to the frame the clouds are stamped in.

use super::messages::{PointCloud2, decode_tf_as, types};
use super::wire::Encoding;
use super::{Container, Topic};
use crate::error::{Error, Result};
use crate::frames::{BaseFrame, Mounting};
use crate::scan::Pose;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::Path;

/// The topic of static transforms.
pub const TF_STATIC: &str = "/tf_static";

/// One static transform: `child`'s pose in `parent`.
#[derive(Debug, Clone, PartialEq)]
pub struct StaticTransform {
    /// The parent frame.
    pub parent: String,
    /// The child frame.
    pub child: String,
    /// The child's pose in the parent frame.
    pub pose: Pose,
}

/// Every transform of one `tf2_msgs/TFMessage` on `/tf_static`.
pub fn decode_static(bytes: &[u8], encoding: Encoding) -> std::result::Result<Vec<StaticTransform>, String> {
    Ok(decode_tf_as(bytes, encoding)?
        .into_iter()
        .map(|(header, child, pose)| StaticTransform {
            parent: trim(&header.frame_id),
            child: trim(&child),
            pose,
        })
        .collect())
}

/// ROS 1 names frames with a leading slash at times (`/base_link`); tf2 does not.
fn trim(frame: &str) -> String {
    frame.trim_start_matches('/').to_string()
}

/// The pose of frame `sensor` in frame `base`, chained through `transforms` in either
/// direction; the error lists the frames seen when no chain joins the two.
pub fn mounting_between(
    transforms: &[StaticTransform],
    base: &str,
    sensor: &str,
) -> std::result::Result<Mounting, String> {
    let (base, sensor) = (trim(base), trim(sensor));
    // Each frame's neighbours: (frame, the neighbour's pose in this frame).
    let mut links: HashMap<&str, Vec<(&str, Pose)>> = HashMap::new();
    for t in transforms {
        links.entry(&t.parent).or_default().push((&t.child, t.pose));
        links.entry(&t.child).or_default().push((&t.parent, t.pose.inverse()));
    }
    let mut reached: HashMap<&str, Pose> = HashMap::from([(base.as_str(), Pose::identity())]);
    let mut queue = VecDeque::from([base.as_str()]);
    while let Some(frame) = queue.pop_front() {
        let here = reached[frame];
        for (next, pose) in links.get(frame).into_iter().flatten() {
            if !reached.contains_key(next) {
                reached.insert(next, here * pose);
                queue.push_back(next);
            }
        }
    }
    reached.get(sensor.as_str()).map(|p| Mounting::at(*p)).ok_or_else(|| {
        let seen: BTreeSet<&str> = links.keys().copied().collect();
        let seen: Vec<&str> = seen.into_iter().collect();
        format!(
            "/tf_static has no chain from {base} to {sensor} (frames seen: {})",
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        )
    })
}

/// The mounting `transforms` state for frame `sensor` under frame `base`: `None` when they
/// name neither frame (a tree of other robots or other parts: the sensor is then the base), an
/// error (see [`mounting_between`]) when they name one without a chain to the other.
pub fn mounting_in(
    transforms: &[StaticTransform],
    base: &str,
    sensor: &str,
) -> std::result::Result<Option<Mounting>, String> {
    let named = |frame: &str| {
        transforms
            .iter()
            .any(|t| t.parent == trim(frame) || t.child == trim(frame))
    };
    if !named(base) && !named(sensor) {
        log::info!("{TF_STATIC} names neither {base} nor {sensor}: the sensor's frame is taken as the base's");
        return Ok(None);
    }
    let mounting = mounting_between(transforms, base, sensor)?;
    let [x, y, z, roll, pitch, yaw] = mounting.xyz_rpy();
    log::info!(
        "{TF_STATIC} puts {sensor} at {x:.3},{y:.3},{z:.3} m, rpy {roll:.4},{pitch:.4},{yaw:.4} rad under {base}"
    );
    Ok(Some(mounting))
}

/// Every transform on a recording's `/tf_static` (none when it has no such topic).
fn recorded_transforms(path: &Path, bag: &dyn Container, topics: &[Topic]) -> Result<Vec<StaticTransform>> {
    if !topics
        .iter()
        .any(|t| t.name == TF_STATIC && t.msg_type == types::TF_MESSAGE)
    {
        return Ok(Vec::new());
    }
    let encoding = bag.encoding();
    let (mut transforms, mut bad) = (Vec::new(), None);
    bag.for_each(&[TF_STATIC], &mut |m| match decode_static(m.data, encoding) {
        Ok(t) => {
            transforms.extend(t);
            true
        }
        Err(e) => {
            bad = Some(format!("{TF_STATIC}: {e}"));
            false
        }
    })?;
    match bad {
        Some(e) => Err(Error::input(path, e)),
        None => Ok(transforms),
    }
}

/// The frame the first cloud on `cloud_topic` is stamped in.
fn first_cloud_frame(path: &Path, bag: &dyn Container, cloud_topic: &str) -> Result<String> {
    let mut frame = None;
    bag.for_each(&[cloud_topic], &mut |m| {
        frame = Some(PointCloud2::decode(m.data, bag.encoding()).map(|c| c.header.frame_id));
        false
    })?;
    match frame {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(Error::input(path, format!("{cloud_topic} message 0: {e}"))),
        None => Err(Error::input(path, format!("{cloud_topic} has no clouds"))),
    }
}

/// The mounting a recording's `/tf_static` states for the frame of its clouds on `cloud_topic`
/// under frame `base`: `None` when the recording has no `/tf_static` or it names neither frame.
pub fn recorded_mounting(
    path: &Path,
    bag: &dyn Container,
    topics: &[Topic],
    cloud_topic: &str,
    base: &str,
) -> Result<Option<Mounting>> {
    let transforms = recorded_transforms(path, bag, topics)?;
    if transforms.is_empty() {
        return Ok(None);
    }
    let frame = first_cloud_frame(path, bag, cloud_topic)?;
    mounting_in(&transforms, base, &frame)
        .map_err(|e| Error::input(path, format!("{e}; give --lidar-to-base to say where the sensor sits")))
}

/// Where a recording's ground truth is taken: the frame its poses are of, and the run's base.
pub struct GroundTruthFrames<'a> {
    /// The ground-truth topic, to name in errors.
    pub topic: &'a str,
    /// The frame whose poses the ground truth gives (`Odometry`'s `child_frame_id`); `None` or
    /// empty when it does not say (a `PoseStamped`), which is taken as the sensor's.
    pub truth: Option<&'a str>,
    /// The clouds' topic.
    pub cloud_topic: &'a str,
    /// The run's base frame and the sensor's mounting on it (given, or from `/tf_static`).
    pub base: &'a BaseFrame,
}

/// The pose of the clouds' frame in the frame the ground truth describes, to move ground truth
/// to the sensor (`truth · truth_from_sensor`); see [`sensor_in_truth_frame`].
pub fn truth_from_sensor(
    path: &Path,
    bag: &dyn Container,
    topics: &[Topic],
    frames: &GroundTruthFrames,
) -> Result<Pose> {
    let truth = match frames.truth.map(trim) {
        Some(t) if !t.is_empty() => t,
        _ => return Ok(Pose::identity()),
    };
    let sensor = trim(&first_cloud_frame(path, bag, frames.cloud_topic)?);
    // The static tree is read only when the answer is neither the sensor's nor the base's.
    let transforms = if truth != sensor && truth != trim(&frames.base.name) {
        recorded_transforms(path, bag, topics)?
    } else {
        Vec::new()
    };
    let pose = sensor_in_truth_frame(&truth, &sensor, frames.base, &transforms)
        .map_err(|e| {
            Error::input(
                path,
                format!(
                    "ground truth on {}: {e}; give --base-frame {truth} with --lidar-to-base to say where the sensor sits in it",
                    frames.topic
                ),
            )
        })?;
    if pose != Pose::identity() {
        let [x, y, z, roll, pitch, yaw] = Mounting::at(pose).xyz_rpy();
        log::info!(
            "ground truth on {} is the pose of {truth}: moved to {sensor} at {x:.3},{y:.3},{z:.3} m, rpy {roll:.4},{pitch:.4},{yaw:.4} rad",
            frames.topic
        );
    }
    Ok(pose)
}

/// The pose of frame `sensor` in frame `truth`: identity when they are one, the run's mounting
/// when `truth` is its base, and otherwise the chain through the static `transforms`.
pub fn sensor_in_truth_frame(
    truth: &str,
    sensor: &str,
    base: &BaseFrame,
    transforms: &[StaticTransform],
) -> std::result::Result<Pose, String> {
    let (truth, sensor) = (trim(truth), trim(sensor));
    if truth == sensor {
        return Ok(Pose::identity());
    }
    if truth == trim(&base.name) {
        return Ok(base.mounting.base_from_sensor);
    }
    mounting_between(transforms, &truth, &sensor)
        .map(|m| m.base_from_sensor)
        .map_err(|e| format!("the poses of {truth}, not of the clouds' frame {sensor}, and {e}"))
}

/// [`recorded_mounting`] of the recording at `path`, its clouds on `topic` (or the only cloud
/// topic).
pub fn bag_mounting(path: &Path, topic: Option<&str>, base: &str) -> Result<Option<Mounting>> {
    let bag = super::open_container(path)?;
    let topics = bag.topics()?;
    let clouds = super::pick_cloud_topic(path, &topics, topic)?;
    recorded_mounting(path, bag.as_ref(), &topics, &clouds.name, base)
}

/// The mounting the live ROS 2 graph states for the clouds of `input`: their frame from the
/// first cloud (kept for the run), and `/tf_static`'s chain to it from `base`, each waited for
/// up to `wait`. `None` (the sensor is then the base) when no cloud comes or `/tf_static` names
/// neither frame; an error when it names one without a chain to the other.
pub fn live_mounting(input: &super::dds::Ros2Input, base: &str, wait: std::time::Duration) -> Result<Option<Mounting>> {
    use super::dds::{Ros2Node, static_qos};
    let node = Ros2Node::new()?;
    let mut statics = node.reader(TF_STATIC, types::TF_MESSAGE, &static_qos())?;
    let start = std::time::Instant::now();
    let frame = input.first_frame_id(wait)?;
    let mut transforms = Vec::new();
    // Latched transforms come with discovery, which the subscription above started before the
    // wait for the first cloud: a second of listening in all is enough, and a run whose first
    // cloud came later does not wait longer (the clouds meanwhile would only queue up).
    let until = start.elapsed().max(std::time::Duration::from_secs(1));
    loop {
        while let Ok(Some(s)) = statics.take_next_sample() {
            match decode_static(&s.into_value().0, Encoding::Cdr) {
                Ok(t) => transforms.extend(t),
                Err(e) => log::warn!("{TF_STATIC}: {e}"),
            }
        }
        if start.elapsed() >= until {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let Some(frame) = frame else {
        log::info!("no cloud on {}: the sensor's frame is taken as the base's", input.topic);
        return Ok(None);
    };
    mounting_in(&transforms, base, &frame)
        .map_err(|e| Error::Usage(format!("{e}; give --lidar-to-base to say where the sensor sits")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn link(parent: &str, child: &str, x: f64, z: f64, yaw: f64) -> StaticTransform {
        StaticTransform {
            parent: parent.into(),
            child: child.into(),
            pose: Pose::new(Vector3::new(x, 0.0, z), Vector3::new(0.0, 0.0, yaw)),
        }
    }

    #[test]
    fn a_chain_of_static_links_composes_in_either_direction() {
        let tree = [
            link("base_link", "mast", 0.5, 1.0, 0.0),
            link("mast", "os_sensor", 0.0, 0.5, std::f64::consts::FRAC_PI_2),
            link("base_link", "imu", 0.1, 0.2, 0.0),
        ];
        let m = mounting_between(&tree, "/base_link", "os_sensor").unwrap();
        let t = m.base_from_sensor.translation.vector;
        assert!((t - Vector3::new(0.5, 0.0, 1.5)).norm() < 1e-12, "{t}");
        // Asked the other way round: the inverse.
        let back = mounting_between(&tree, "os_sensor", "base_link").unwrap();
        assert!((back.base_from_sensor * m.base_from_sensor).translation.vector.norm() < 1e-12);
        assert_eq!(
            mounting_between(&tree, "base_link", "base_link").unwrap(),
            Mounting::default()
        );
    }

    #[test]
    fn a_tree_naming_neither_frame_leaves_the_sensor_as_the_base() {
        let other_robot = [link("base_7", "lidar_7", 0.5, 1.0, 0.0)];
        assert_eq!(mounting_in(&other_robot, "base_link", "velodyne"), Ok(None));
        assert_eq!(mounting_in(&[], "base_link", "velodyne"), Ok(None));
        // Naming one of them is a tree about this robot: a missing link is an error.
        assert!(mounting_in(&other_robot, "base_7", "velodyne").is_err());
    }

    #[test]
    fn a_missing_link_names_the_frames_seen() {
        let tree = [
            link("base_link", "imu", 0.1, 0.2, 0.0),
            link("velodyne_mount", "velodyne", 0.0, 0.1, 0.0),
        ];
        let e = mounting_between(&tree, "base_link", "velodyne").unwrap_err();
        assert_eq!(
            e,
            "/tf_static has no chain from base_link to velodyne (frames seen: base_link, imu, velodyne, velodyne_mount)"
        );
    }

    #[test]
    fn ground_truth_is_moved_from_the_frame_it_states_to_the_sensor() {
        let mounted = BaseFrame {
            name: "base_link".into(),
            mounting: Mounting::at(link("base_link", "lidar", 0.5, 1.7, 0.1).pose),
        };
        let tree = [
            link("base_link", "lidar", 0.5, 1.7, 0.1),
            link("base_link", "gps", -1.0, 1.0, 0.0),
        ];
        let at = |truth| sensor_in_truth_frame(truth, "lidar", &mounted, &tree);
        assert_eq!(at("lidar"), Ok(Pose::identity()));
        assert_eq!(at("/lidar"), Ok(Pose::identity()));
        assert_eq!(at("base_link"), Ok(mounted.mounting.base_from_sensor));
        // A third frame goes through the tree: gps -> base_link -> lidar.
        let gps = at("gps").unwrap();
        assert!(
            (gps.translation.vector - Vector3::new(1.5, 0.0, 0.7)).norm() < 1e-12,
            "{gps}"
        );
        assert_eq!(
            at("odom_truth"),
            Err("the poses of odom_truth, not of the clouds' frame lidar, and /tf_static has no chain from odom_truth to lidar (frames seen: base_link, gps, lidar)".into())
        );
    }
}

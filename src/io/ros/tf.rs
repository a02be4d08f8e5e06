//! The sensor's mounting as a ROS system states it: the static transforms on `/tf_static`
//! (robot_state_publisher's URDF, or `static_transform_publisher`), chained from the robot's base
//! frame to the frame the clouds are stamped in.

use super::messages::{PointCloud2, decode_tf_as, types};
use super::wire::Encoding;
use super::{Container, Topic};
use crate::error::{Error, Result};
use crate::frames::Mounting;
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

/// The mounting a recording's `/tf_static` states for the frame of its clouds on `cloud_topic`
/// under frame `base`: `None` when the recording has no `/tf_static` or it names neither frame.
pub fn recorded_mounting(
    path: &Path,
    bag: &dyn Container,
    topics: &[Topic],
    cloud_topic: &str,
    base: &str,
) -> Result<Option<Mounting>> {
    if !topics
        .iter()
        .any(|t| t.name == TF_STATIC && t.msg_type == types::TF_MESSAGE)
    {
        return Ok(None);
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
    if let Some(e) = bad {
        return Err(Error::input(path, e));
    }
    let mut frame = None;
    bag.for_each(&[cloud_topic], &mut |m| {
        frame = Some(PointCloud2::decode(m.data, encoding).map(|c| c.header.frame_id));
        false
    })?;
    let frame = match frame {
        Some(Ok(f)) => f,
        Some(Err(e)) => return Err(Error::input(path, format!("{cloud_topic} message 0: {e}"))),
        None => return Err(Error::input(path, format!("{cloud_topic} has no clouds"))),
    };
    mounting_in(&transforms, base, &frame)
        .map_err(|e| Error::input(path, format!("{e}; give --lidar-to-base to say where the sensor sits")))
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
}

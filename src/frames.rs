//! Coordinate frames the ROS way (REP 105: map → odom → base_link → sensor): where the LiDAR is
//! mounted on the robot, and the robot base's trajectory that follows from the sensor's.
//!
//! Odometry, loop closure and saved maps all work in the sensor's frame (the scans' own). What
//! leaves the pipeline (poses files, ROS 2 odometry and `/tf`) is the base's pose: the sensor
//! trajectory conjugated by the mounting, so that at the first frame the base sits at the odom
//! frame's origin, and a pitched or raised sensor neither tilts nor lifts the base's path.

use crate::error::{Error, Result};
use crate::scan::Pose;
use nalgebra::{Translation3, UnitQuaternion, Vector3};
use serde::Deserialize;
use std::path::Path;

/// The sensor's pose on the robot: `base_link → sensor` as ROS's `/tf_static` states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mounting {
    /// The sensor's pose in the base frame (a point in the sensor frame, times this, is in the
    /// base frame).
    pub base_from_sensor: Pose,
}

impl Default for Mounting {
    /// The sensor is the base (no mounting given).
    fn default() -> Self {
        Self::at(Pose::identity())
    }
}

/// A mounting file: URDF's `<origin xyz rpy>` as TOML, metres and radians.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountingFile {
    /// Sensor position in the base frame, metres.
    xyz: [f64; 3],
    /// Roll, pitch, yaw of the sensor in the base frame, radians (fixed axes X, Y, Z, as URDF).
    #[serde(default)]
    rpy: [f64; 3],
}

impl Mounting {
    /// The sensor at `base_from_sensor`.
    pub fn at(base_from_sensor: Pose) -> Self {
        Self { base_from_sensor }
    }

    /// The sensor at `xyz` (metres) turned by `rpy` (roll, pitch, yaw, radians, about the base's
    /// fixed X, Y and Z axes, as URDF and REP 103 define them).
    pub fn from_xyz_rpy(xyz: [f64; 3], rpy: [f64; 3]) -> Self {
        let rotation = UnitQuaternion::from_euler_angles(rpy[0], rpy[1], rpy[2]);
        Self::at(Pose::from_parts(Translation3::from(Vector3::from(xyz)), rotation))
    }

    /// Reads `--lidar-to-base`: six comma-separated numbers `x,y,z,roll,pitch,yaw` (metres,
    /// radians), or a TOML file with `xyz = [x, y, z]` and `rpy = [roll, pitch, yaw]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.extension().is_some_and(|e| e == "toml") {
            return Self::read(path);
        }
        let values: Vec<f64> = spec
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::Usage(mounting_usage(spec)))?;
        match values.as_slice() {
            [x, y, z, roll, pitch, yaw] if values.iter().all(|v| v.is_finite()) => {
                Ok(Self::from_xyz_rpy([*x, *y, *z], [*roll, *pitch, *yaw]))
            }
            _ => Err(Error::Usage(mounting_usage(spec))),
        }
    }

    /// Reads a mounting TOML file (`xyz`, `rpy`).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: MountingFile = toml::from_str(&text).map_err(|e| Error::input(path, e.message().to_string()))?;
        if !file.xyz.iter().chain(&file.rpy).all(|v| v.is_finite()) {
            return Err(Error::input(path, "xyz and rpy must be finite numbers"));
        }
        Ok(Self::from_xyz_rpy(file.xyz, file.rpy))
    }

    /// The mounting as `[x, y, z, roll, pitch, yaw]`, metres and radians.
    pub fn xyz_rpy(&self) -> [f64; 6] {
        let t = self.base_from_sensor.translation.vector;
        let (roll, pitch, yaw) = self.base_from_sensor.rotation.euler_angles();
        [t.x, t.y, t.z, roll, pitch, yaw]
    }

    /// True when the sensor is the base.
    pub fn is_identity(&self) -> bool {
        self.base_from_sensor == Pose::identity()
    }

    /// The base's pose for a sensor pose given relative to the sensor's first pose (or the
    /// motion between two sensor poses): `M · P · M⁻¹`, relative to the base's first pose.
    pub fn base_pose(&self, sensor_pose: &Pose) -> Pose {
        self.base_from_sensor * sensor_pose * self.base_from_sensor.inverse()
    }

    /// [`Self::base_pose`] of every pose.
    pub fn base_poses(&self, sensor_poses: &[Pose]) -> Vec<Pose> {
        sensor_poses.iter().map(|p| self.base_pose(p)).collect()
    }
}

/// The robot's base frame by name, with the sensor's mounting on it: what a recording's ground
/// truth stated for the base needs to become the sensor's.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseFrame {
    /// The base frame's name (`--base-frame`, REP 105's `base_link`).
    pub name: String,
    /// The sensor's mounting on the base.
    pub mounting: Mounting,
}

impl Default for BaseFrame {
    /// REP 105's `base_link`, the sensor at its origin.
    fn default() -> Self {
        Self {
            name: "base_link".into(),
            mounting: Mounting::default(),
        }
    }
}

/// Which body the poses a run hands out describe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PoseFrame {
    /// The robot's base (`base_link`), moved from the sensor by the mounting.
    #[default]
    Base,
    /// The LiDAR itself.
    Sensor,
}

impl PoseFrame {
    /// The mounting that moves sensor poses to this body, for a sensor mounted as `given`:
    /// `given` for the base, identity for the sensor itself.
    pub fn mounting(self, given: Mounting) -> Mounting {
        match self {
            PoseFrame::Base => given,
            PoseFrame::Sensor => Mounting::default(),
        }
    }
}

fn mounting_usage(spec: &str) -> String {
    format!(
        "--lidar-to-base {spec:?}: expected x,y,z,roll,pitch,yaw (metres, radians; six finite numbers) or a .toml file with xyz and rpy"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(a: Vector3<f64>, b: Vector3<f64>) -> bool {
        (a - b).norm() < 1e-9
    }

    #[test]
    fn parses_six_numbers_and_refuses_anything_else() {
        let m = Mounting::parse("0.5, 0, 1.2, 0, 0.1, 0").unwrap();
        assert!(near(m.base_from_sensor.translation.vector, Vector3::new(0.5, 0.0, 1.2)));
        assert!((m.base_from_sensor.rotation.euler_angles().1 - 0.1).abs() < 1e-12);
        for bad in ["1,2,3", "1,2,3,4,5,6,7", "a,0,0,0,0,0", "0,0,0,0,0,inf", ""] {
            let e = Mounting::parse(bad).unwrap_err().to_string();
            assert!(e.contains("x,y,z,roll,pitch,yaw"), "{bad}: {e}");
        }
    }

    #[test]
    fn reads_urdf_style_toml_and_names_a_bad_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("lidar.toml");
        std::fs::write(&good, "xyz = [0.5, 0.0, 1.2]\nrpy = [0.0, 0.1, 0.0]\n").unwrap();
        assert_eq!(
            Mounting::parse(good.to_str().unwrap()).unwrap(),
            Mounting::parse("0.5,0,1.2,0,0.1,0").unwrap()
        );
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "xyz = [0.5, 0.0]\n").unwrap();
        let e = Mounting::parse(bad.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("bad.toml"), "{e}");
    }

    #[test]
    fn a_pitched_sensor_driving_level_gives_a_level_base() {
        // The base drives 10 m straight ahead on level ground; the sensor sits 1.2 m up and
        // 0.5 m forward, pitched 0.1 rad: in its own first frame it climbs or sinks.
        let m = Mounting::from_xyz_rpy([0.5, 0.0, 1.2], [0.0, 0.1, 0.0]);
        let base_motion = Pose::translation(10.0, 0.0, 0.0);
        let sensor_motion = m.base_from_sensor.inverse() * base_motion * m.base_from_sensor;
        assert!(sensor_motion.translation.vector.z.abs() > 0.9);
        let base = m.base_pose(&sensor_motion);
        assert!(near(base.translation.vector, Vector3::new(10.0, 0.0, 0.0)), "{base:?}");
        assert!(base.rotation.angle() < 1e-12);
        assert!(Mounting::default().is_identity() && !m.is_identity());
    }
}

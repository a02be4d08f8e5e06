//! The ROS messages overlap-slam reads and writes, as plain data: `sensor_msgs/PointCloud2` in,
//! `nav_msgs/Odometry` / `geometry_msgs/PoseStamped` in as ground truth, and `nav_msgs/Odometry`,
//! `nav_msgs/Path`, `tf2_msgs/TFMessage` and `diagnostic_msgs/DiagnosticArray` out. Field order follows the ROS message definitions.

use super::wire::{Encoding, Reader, WireResult, Writer};
use crate::scan::Pose;
use nalgebra::{Quaternion, Translation3, UnitQuaternion};

/// ROS 2 type names of the messages, as bags and DDS name them.
pub mod types {
    /// A point cloud.
    pub const POINT_CLOUD2: &str = "sensor_msgs/msg/PointCloud2";
    /// Odometry: a pose with covariance and a twist.
    pub const ODOMETRY: &str = "nav_msgs/msg/Odometry";
    /// A pose with a header.
    pub const POSE_STAMPED: &str = "geometry_msgs/msg/PoseStamped";
    /// A sequence of stamped poses.
    pub const PATH: &str = "nav_msgs/msg/Path";
    /// Transforms between frames.
    pub const TF_MESSAGE: &str = "tf2_msgs/msg/TFMessage";
    /// Health reports for the robot's monitoring (`/diagnostics`).
    pub const DIAGNOSTIC_ARRAY: &str = "diagnostic_msgs/msg/DiagnosticArray";
    /// A message that carries nothing: a trigger.
    pub const EMPTY: &str = "std_msgs/msg/Empty";

    /// The ROS 2 name for a type written either way (`pkg/msg/Name` or ROS 1's `pkg/Name`).
    pub fn normalise(name: &str) -> String {
        match name.split('/').collect::<Vec<_>>().as_slice() {
            [pkg, ty] => format!("{pkg}/msg/{ty}"),
            _ => name.to_string(),
        }
    }
}

/// `std_msgs/Header`: when and in which frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    /// Nanoseconds since the epoch.
    pub stamp_ns: i64,
    /// Coordinate frame of the data.
    pub frame_id: String,
}

impl Header {
    fn read(r: &mut Reader<'_>, encoding: Encoding) -> WireResult<Self> {
        if encoding == Encoding::Ros1 {
            r.u32()?; // seq, dropped in ROS 2
        }
        Ok(Self {
            stamp_ns: r.time_ns()?,
            frame_id: r.string()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.time_ns(self.stamp_ns);
        w.string(&self.frame_id);
    }
}

/// `sensor_msgs/PointField` datatypes (the constants of the message definition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    /// INT8 = 1
    I8,
    /// UINT8 = 2
    U8,
    /// INT16 = 3
    I16,
    /// UINT16 = 4
    U16,
    /// INT32 = 5
    I32,
    /// UINT32 = 6
    U32,
    /// FLOAT32 = 7
    F32,
    /// FLOAT64 = 8
    F64,
}

impl Datatype {
    /// The datatype for a PointField code.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::I8,
            2 => Self::U8,
            3 => Self::I16,
            4 => Self::U16,
            5 => Self::I32,
            6 => Self::U32,
            7 => Self::F32,
            8 => Self::F64,
            _ => return None,
        })
    }

    /// The PointField code.
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// Bytes one value takes.
    pub fn size(self) -> usize {
        match self {
            Self::I8 | Self::U8 => 1,
            Self::I16 | Self::U16 => 2,
            Self::I32 | Self::U32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// True for FLOAT32 and FLOAT64.
    pub fn is_float(self) -> bool {
        matches!(self, Self::F32 | Self::F64)
    }
}

/// `sensor_msgs/PointField`: one named attribute inside each point.
#[derive(Debug, Clone, PartialEq)]
pub struct PointField {
    /// Attribute name (`x`, `intensity`, `t`...).
    pub name: String,
    /// Byte offset within the point.
    pub offset: u32,
    /// Raw datatype code (validated when the cloud is decoded).
    pub datatype: u8,
    /// Values per point.
    pub count: u32,
}

impl PointField {
    /// A single-valued field.
    pub fn new(name: &str, offset: u32, datatype: Datatype) -> Self {
        Self {
            name: name.into(),
            offset,
            datatype: datatype.code(),
            count: 1,
        }
    }
}

/// `sensor_msgs/PointCloud2`, with its data borrowed from the message bytes.
#[derive(Debug, Clone)]
pub struct PointCloud2<'a> {
    /// Scan time and sensor frame.
    pub header: Header,
    /// Rows (1 for unorganised clouds, beams for organised ones).
    pub height: u32,
    /// Points per row.
    pub width: u32,
    /// The layout of one point.
    pub fields: Vec<PointField>,
    /// Byte order of the point data.
    pub is_bigendian: bool,
    /// Bytes per point.
    pub point_step: u32,
    /// Bytes per row.
    pub row_step: u32,
    /// The points.
    pub data: &'a [u8],
    /// False when some points may be invalid (NaN).
    pub is_dense: bool,
}

impl<'a> PointCloud2<'a> {
    /// Reads a PointCloud2 message.
    pub fn decode(bytes: &'a [u8], encoding: Encoding) -> WireResult<Self> {
        let r = &mut Reader::new(bytes, encoding)?;
        let header = Header::read(r, encoding)?;
        let height = r.u32()?;
        let width = r.u32()?;
        // Each PointField takes at least 13 bytes (empty name, offset, datatype, count).
        let n = r.len(13)?;
        let fields = (0..n)
            .map(|_| {
                Ok(PointField {
                    name: r.string()?,
                    offset: r.u32()?,
                    datatype: r.u8()?,
                    count: r.u32()?,
                })
            })
            .collect::<WireResult<Vec<_>>>()?;
        let is_bigendian = r.bool()?;
        let point_step = r.u32()?;
        let row_step = r.u32()?;
        let len = r.len(1)?;
        let data = r.bytes(len)?;
        let is_dense = r.bool()?;
        Ok(Self {
            header,
            height,
            width,
            fields,
            is_bigendian,
            point_step,
            row_step,
            data,
            is_dense,
        })
    }

    /// The message as little-endian CDR.
    pub fn encode_cdr(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.header.write(&mut w);
        w.u32(self.height);
        w.u32(self.width);
        w.u32(self.fields.len() as u32);
        for f in &self.fields {
            w.string(&f.name);
            w.u32(f.offset);
            w.u8(f.datatype);
            w.u32(f.count);
        }
        w.u8(self.is_bigendian as u8);
        w.u32(self.point_step);
        w.u32(self.row_step);
        w.byte_seq(self.data);
        w.u8(self.is_dense as u8);
        w.finish()
    }
}

/// A pose at a time, from `nav_msgs/Odometry` or `geometry_msgs/PoseStamped`.
#[derive(Debug, Clone, PartialEq)]
pub struct StampedPose {
    /// Time and frame of the pose.
    pub header: Header,
    /// The frame whose pose this is: `Odometry`'s `child_frame_id`; `None` for a `PoseStamped`,
    /// which does not say.
    pub child_frame: Option<String>,
    /// The pose.
    pub pose: Pose,
}

fn read_pose(r: &mut Reader<'_>) -> WireResult<Pose> {
    let (x, y, z) = (r.f64()?, r.f64()?, r.f64()?);
    let (qx, qy, qz, qw) = (r.f64()?, r.f64()?, r.f64()?, r.f64()?);
    let q = Quaternion::new(qw, qx, qy, qz);
    if !(q.norm() > 1e-9 && [x, y, z].iter().all(|v| v.is_finite())) {
        return Err("pose with a zero or non-finite quaternion or position".into());
    }
    Ok(Pose::from_parts(
        Translation3::new(x, y, z),
        UnitQuaternion::from_quaternion(q),
    ))
}

fn write_pose(w: &mut Writer, pose: &Pose) {
    let t = pose.translation.vector;
    let q = pose.rotation.quaternion();
    for v in [t.x, t.y, t.z, q.i, q.j, q.k, q.w] {
        w.f64(v);
    }
}

impl StampedPose {
    /// Reads a message of type `msg_type` (Odometry or PoseStamped, either spelling).
    pub fn decode(bytes: &[u8], encoding: Encoding, msg_type: &str) -> WireResult<Self> {
        let r = &mut Reader::new(bytes, encoding)?;
        let header = Header::read(r, encoding)?;
        let child_frame = match types::normalise(msg_type).as_str() {
            types::ODOMETRY => Some(r.string()?),
            types::POSE_STAMPED => None,
            other => {
                return Err(format!(
                    "{other} is not a pose type (want {} or {})",
                    types::ODOMETRY,
                    types::POSE_STAMPED
                ));
            }
        };
        Ok(Self {
            header,
            child_frame,
            pose: read_pose(r)?,
        })
    }
}

/// `nav_msgs/Odometry` as CDR: the pose of `child_frame` in `header.frame_id`, with a twist in
/// the child frame and unknown covariances (-1 on the diagonal's first element, REP 105 style).
pub fn encode_odometry(
    header: &Header,
    child_frame: &str,
    pose: &Pose,
    linear: [f64; 3],
    angular: [f64; 3],
) -> Vec<u8> {
    let mut w = Writer::new();
    header.write(&mut w);
    w.string(child_frame);
    write_pose(&mut w, pose);
    write_covariance(&mut w);
    for v in linear.iter().chain(&angular) {
        w.f64(*v);
    }
    write_covariance(&mut w);
    w.finish()
}

fn write_covariance(w: &mut Writer) {
    // 6x6 row-major; -1 in the first element marks it as unknown.
    for i in 0..36 {
        w.f64(if i == 0 { -1.0 } else { 0.0 });
    }
}

/// `nav_msgs/Path` as CDR: every pose stamped with its own time, all in `frame_id`.
pub fn encode_path(header: &Header, poses: &[(i64, Pose)]) -> Vec<u8> {
    let mut w = Writer::new();
    header.write(&mut w);
    w.u32(poses.len() as u32);
    for (stamp_ns, pose) in poses {
        Header {
            stamp_ns: *stamp_ns,
            frame_id: header.frame_id.clone(),
        }
        .write(&mut w);
        write_pose(&mut w, pose);
    }
    w.finish()
}

/// `tf2_msgs/TFMessage` as CDR with one `geometry_msgs/TransformStamped`: `child` in `header.frame_id`.
pub fn encode_tf(header: &Header, child: &str, pose: &Pose) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(1);
    header.write(&mut w);
    w.string(child);
    write_pose(&mut w, pose);
    w.finish()
}

/// Reads a `tf2_msgs/TFMessage` back: (parent, child, stamp, pose) of each transform.
pub fn decode_tf(bytes: &[u8]) -> WireResult<Vec<(Header, String, Pose)>> {
    decode_tf_as(bytes, Encoding::Cdr)
}

/// [`decode_tf`] for a message serialised as `encoding` (ROS 1 bags: ROS 1's).
pub fn decode_tf_as(bytes: &[u8], encoding: Encoding) -> WireResult<Vec<(Header, String, Pose)>> {
    let r = &mut Reader::new(bytes, encoding)?;
    let n = r.len(16)?;
    (0..n)
        .map(|_| {
            let header = Header::read(r, encoding)?;
            let child = r.string()?;
            Ok((header, child, read_pose(r)?))
        })
        .collect()
}

/// Reads a `nav_msgs/Path` back: the stamped poses.
pub fn decode_path(bytes: &[u8]) -> WireResult<(Header, Vec<StampedPose>)> {
    let r = &mut Reader::new(bytes, Encoding::Cdr)?;
    let header = Header::read(r, Encoding::Cdr)?;
    let n = r.len(16)?;
    let poses = (0..n)
        .map(|_| {
            let header = Header::read(r, Encoding::Cdr)?;
            Ok(StampedPose {
                header,
                child_frame: None,
                pose: read_pose(r)?,
            })
        })
        .collect::<WireResult<_>>()?;
    Ok((header, poses))
}

/// One `diagnostic_msgs/DiagnosticStatus`: how one part of the robot is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagnosticStatus {
    /// 0 OK, 1 WARN, 2 ERROR, 3 STALE (the message's constants).
    pub level: u8,
    /// Which part reports, e.g. `overlap_slam: odometry`.
    pub name: String,
    /// A short human-readable state.
    pub message: String,
    /// The device the report is about.
    pub hardware_id: String,
    /// Named values, as text.
    pub values: Vec<(String, String)>,
}

/// `diagnostic_msgs/DiagnosticArray` as CDR.
pub fn encode_diagnostics(header: &Header, statuses: &[DiagnosticStatus]) -> Vec<u8> {
    let mut w = Writer::new();
    header.write(&mut w);
    w.u32(statuses.len() as u32);
    for s in statuses {
        w.u8(s.level);
        w.string(&s.name);
        w.string(&s.message);
        w.string(&s.hardware_id);
        w.u32(s.values.len() as u32);
        for (key, value) in &s.values {
            w.string(key);
            w.string(value);
        }
    }
    w.finish()
}

/// Reads a `diagnostic_msgs/DiagnosticArray` back.
pub fn decode_diagnostics(bytes: &[u8]) -> WireResult<(Header, Vec<DiagnosticStatus>)> {
    let r = &mut Reader::new(bytes, Encoding::Cdr)?;
    let header = Header::read(r, Encoding::Cdr)?;
    let n = r.len(17)?;
    let statuses = (0..n)
        .map(|_| {
            let (level, name, message, hardware_id) = (r.u8()?, r.string()?, r.string()?, r.string()?);
            let k = r.len(8)?;
            let values = (0..k)
                .map(|_| Ok((r.string()?, r.string()?)))
                .collect::<WireResult<_>>()?;
            Ok(DiagnosticStatus {
                level,
                name,
                message,
                hardware_id,
                values,
            })
        })
        .collect::<WireResult<_>>()?;
    Ok((header, statuses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointcloud2_round_trips_through_cdr() {
        let data: Vec<u8> = (0..24).collect();
        let cloud = PointCloud2 {
            header: Header {
                stamp_ns: 1_700_000_000_123_456_789,
                frame_id: "lidar".into(),
            },
            height: 1,
            width: 2,
            fields: vec![PointField {
                name: "x".into(),
                offset: 0,
                datatype: 7,
                count: 1,
            }],
            is_bigendian: false,
            point_step: 12,
            row_step: 24,
            data: &data,
            is_dense: true,
        };
        let bytes = cloud.encode_cdr();
        let back = PointCloud2::decode(&bytes, Encoding::Cdr).unwrap();
        assert_eq!(back.header, cloud.header);
        assert_eq!(back.fields, cloud.fields);
        assert_eq!(
            (back.width, back.point_step, back.row_step, back.data),
            (2, 12, 24, &data[..])
        );
        for cut in [3, 10, bytes.len() - 1] {
            assert!(
                PointCloud2::decode(&bytes[..cut], Encoding::Cdr).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn odometry_decodes_as_ground_truth() {
        let pose = Pose::new(
            nalgebra::Vector3::new(1.0, -2.0, 0.5),
            nalgebra::Vector3::new(0.0, 0.0, 0.3),
        );
        let header = Header {
            stamp_ns: 5_000_000_000,
            frame_id: "odom".into(),
        };
        let bytes = encode_odometry(&header, "base_link", &pose, [1.0, 0.0, 0.0], [0.0; 3]);
        let back = StampedPose::decode(&bytes, Encoding::Cdr, "nav_msgs/Odometry").unwrap();
        assert_eq!(back.header, header);
        assert!((back.pose.to_homogeneous() - pose.to_homogeneous()).abs().max() < 1e-12);
        let err = StampedPose::decode(&bytes, Encoding::Cdr, "std_msgs/msg/String").unwrap_err();
        assert!(err.contains("is not a pose type"), "{err}");
        let tf = decode_tf(&encode_tf(&header, "base_link", &pose)).unwrap();
        assert_eq!((tf[0].0.frame_id.as_str(), tf[0].1.as_str()), ("odom", "base_link"));
        let (_, path) = decode_path(&encode_path(&header, &[(1, pose), (2, Pose::identity())])).unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(path[1].header.stamp_ns, 2);
    }

    #[test]
    fn diagnostics_round_trip() {
        let header = Header {
            stamp_ns: 1_500_000_000,
            frame_id: String::new(),
        };
        let status = DiagnosticStatus {
            level: 1,
            name: "overlap_slam: odometry".into(),
            message: "localising".into(),
            hardware_id: "/points".into(),
            values: vec![("rate_hz".into(), "9.9".into()), ("lost_frames".into(), "0".into())],
        };
        let bytes = encode_diagnostics(&header, std::slice::from_ref(&status));
        assert_eq!(decode_diagnostics(&bytes).unwrap(), (header, vec![status]));
        assert!(decode_diagnostics(&bytes[..bytes.len() - 3]).is_err());
    }
}

//! `sensor_msgs/PointCloud2` to [`Scan`], by the cloud's own `fields`: any byte layout, either
//! byte order, organised or not, with the drivers' names and units for intensity, per-point time
//! and ring.

use super::messages::{Datatype, PointCloud2, PointField};
use crate::io::{INTENSITY_NAMES, RING_NAMES, TIME_NAMES};
use crate::scan::Scan;

/// A float time field above this many seconds is absolute (epoch) time, not an offset.
const ABSOLUTE_TIME_S: f64 = 1e6;

/// Where one attribute sits in a point and how to read it.
#[derive(Debug, Clone, Copy)]
struct FieldReader {
    offset: usize,
    datatype: Datatype,
    big_endian: bool,
}

impl FieldReader {
    #[inline(always)]
    fn bytes<const N: usize>(&self, point: &[u8]) -> [u8; N] {
        let mut b: [u8; N] = point[self.offset..self.offset + N].try_into().expect("N bytes");
        if self.big_endian {
            b.reverse();
        }
        b
    }

    /// The value in `point` (which holds at least `offset + size` bytes).
    #[inline(always)]
    fn get(&self, point: &[u8]) -> f64 {
        match self.datatype {
            Datatype::F32 => f32::from_le_bytes(self.bytes(point)) as f64,
            Datatype::F64 => f64::from_le_bytes(self.bytes(point)),
            Datatype::I8 => self.bytes::<1>(point)[0] as i8 as f64,
            Datatype::U8 => self.bytes::<1>(point)[0] as f64,
            Datatype::I16 => i16::from_le_bytes(self.bytes(point)) as f64,
            Datatype::U16 => u16::from_le_bytes(self.bytes(point)) as f64,
            Datatype::I32 => i32::from_le_bytes(self.bytes(point)) as f64,
            Datatype::U32 => u32::from_le_bytes(self.bytes(point)) as f64,
        }
    }

    /// The value as f32, with a fast path for the common float32 coordinates.
    #[inline(always)]
    fn get_f32(&self, point: &[u8]) -> f32 {
        match self.datatype {
            Datatype::F32 => f32::from_le_bytes(self.bytes(point)),
            _ => self.get(point) as f32,
        }
    }
}

/// The readers a cloud's layout gives.
struct Layout {
    xyz: [FieldReader; 3],
    intensity: Option<(FieldReader, &'static str)>,
    time: Option<(FieldReader, &'static str)>,
    ring: Option<FieldReader>,
}

fn field_names(fields: &[PointField]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

impl Layout {
    fn new(cloud: &PointCloud2<'_>) -> Result<Self, String> {
        let step = cloud.point_step as usize;
        let reader = |f: &PointField| -> Result<FieldReader, String> {
            let datatype = Datatype::from_code(f.datatype)
                .ok_or_else(|| format!("field '{}' has unknown datatype {}", f.name, f.datatype))?;
            let end = f.offset as usize + datatype.size();
            if end > step {
                return Err(format!(
                    "field '{}' at offset {} ({} bytes) runs past the {step}-byte point",
                    f.name,
                    f.offset,
                    datatype.size()
                ));
            }
            Ok(FieldReader {
                offset: f.offset as usize,
                datatype,
                big_endian: cloud.is_bigendian,
            })
        };
        let find = |names: &[&'static str]| -> Result<Option<(FieldReader, &'static str)>, String> {
            for name in names {
                if let Some(f) = cloud.fields.iter().find(|f| f.name == *name && f.count >= 1) {
                    return Ok(Some((reader(f)?, *name)));
                }
            }
            Ok(None)
        };
        let axis = |name: &'static str| -> Result<FieldReader, String> {
            let (r, _) = find(&[name])?
                .ok_or_else(|| format!("cloud has no '{name}' field (fields: {})", field_names(&cloud.fields)))?;
            if !r.datatype.is_float() {
                return Err(format!("field '{name}' is {:?}: want float32 or float64", r.datatype));
            }
            Ok(r)
        };
        Ok(Self {
            xyz: [axis("x")?, axis("y")?, axis("z")?],
            intensity: find(INTENSITY_NAMES)?,
            time: find(TIME_NAMES)?,
            ring: find(RING_NAMES)?.map(|(r, _)| r),
        })
    }
}

/// Checks that the sizes in the message agree with each other and with the data.
fn check_geometry(cloud: &PointCloud2<'_>) -> Result<(), String> {
    let (w, h) = (cloud.width as usize, cloud.height as usize);
    if w == 0 || h == 0 {
        return Err(format!("cloud has no points ({h} x {w})"));
    }
    if cloud.point_step == 0 {
        return Err("point_step is 0".into());
    }
    let row = w
        .checked_mul(cloud.point_step as usize)
        .filter(|r| *r <= cloud.row_step as usize)
        .ok_or_else(|| {
            format!(
                "row_step {} is shorter than width {w} x point_step {}",
                cloud.row_step, cloud.point_step
            )
        })?;
    debug_assert!(row > 0);
    let expected = (cloud.row_step as usize).checked_mul(h);
    if expected != Some(cloud.data.len()) {
        return Err(format!(
            "data holds {} bytes but height {h} x row_step {} needs {}",
            cloud.data.len(),
            cloud.row_step,
            expected.map_or("more than memory".into(), |e| e.to_string())
        ));
    }
    Ok(())
}

/// Decodes a cloud into a scan in its sensor frame at the message's stamp. Points with a
/// non-finite coordinate (organised clouds' missing returns) or exactly at the origin (Ouster's
/// missing returns) are dropped. Intensity is scaled into [0, 1] as KITTI's: integer fields by
/// their type's maximum, float fields above 1 as 0–255 values. Per-point times become seconds
/// from the stamp, whatever the driver's unit. The scan may be empty.
pub fn decode_cloud(cloud: &PointCloud2<'_>) -> Result<Scan, String> {
    check_geometry(cloud)?;
    let layout = Layout::new(cloud)?;
    let (w, h) = (cloud.width as usize, cloud.height as usize);
    let (step, row_step) = (cloud.point_step as usize, cloud.row_step as usize);
    let n = w * h;
    let mut points = Vec::with_capacity(n);
    let mut intensity = Vec::with_capacity(n);
    let mut times = layout.time.map(|_| Vec::with_capacity(n));
    let mut rings = layout.ring.map(|_| Vec::with_capacity(n));
    let [xr, yr, zr] = layout.xyz;
    for row in cloud.data.chunks_exact(row_step).take(h) {
        for p in row[..w * step].chunks_exact(step) {
            let xyz = [xr.get_f32(p), yr.get_f32(p), zr.get_f32(p)];
            if !xyz.iter().all(|c| c.is_finite()) || xyz == [0.0; 3] {
                continue;
            }
            points.push(xyz);
            intensity.push(layout.intensity.map_or(0.0, |(r, _)| r.get_f32(p)));
            if let (Some(t), Some((r, _))) = (times.as_mut(), layout.time) {
                t.push(r.get(p));
            }
            if let (Some(v), Some(r)) = (rings.as_mut(), layout.ring) {
                v.push(r.get(p) as u16);
            }
        }
    }
    if let Some((r, _)) = layout.intensity {
        normalise_intensity(&mut intensity, r.datatype);
    }
    let stamp_s = cloud.header.stamp_ns as f64 * 1e-9;
    Ok(Scan {
        timestamp: stamp_s,
        point_time: times
            .zip(layout.time)
            .map(|(t, (r, _))| seconds_from_stamp(t, r.datatype, cloud.header.stamp_ns)),
        points,
        intensity,
        ring: rings,
        ..Scan::default()
    })
}

/// KITTI's reflectance convention, [0, 1], from whatever the driver stores.
fn normalise_intensity(values: &mut [f32], datatype: Datatype) {
    let scale = match datatype {
        Datatype::U8 | Datatype::I8 => 255.0,
        Datatype::U16 | Datatype::I16 => 65535.0,
        Datatype::U32 | Datatype::I32 => u32::MAX as f32,
        // Velodyne and Ouster drivers publish float intensities on a 0-255 scale.
        Datatype::F32 | Datatype::F64 if values.iter().any(|v| *v > 1.0) => 255.0,
        _ => 1.0,
    };
    if scale != 1.0 {
        values.iter_mut().for_each(|v| *v = (*v / scale).clamp(0.0, 1.0));
    }
}

/// Per-point times as seconds after the stamp: float fields are seconds (absolute when they look
/// like epoch time), integer fields nanoseconds from the stamp.
fn seconds_from_stamp(raw: Vec<f64>, datatype: Datatype, stamp_ns: i64) -> Vec<f32> {
    if datatype.is_float() {
        let absolute = raw
            .iter()
            .find(|t| t.is_finite())
            .is_some_and(|t| t.abs() > ABSOLUTE_TIME_S);
        // Split the stamp so that epoch seconds lose no precision in the subtraction.
        let (sec, nsec) = (
            stamp_ns.div_euclid(1_000_000_000) as f64,
            stamp_ns.rem_euclid(1_000_000_000) as f64 * 1e-9,
        );
        let offset = |t: f64| if absolute { (t - sec) - nsec } else { t };
        raw.into_iter().map(|t| offset(t) as f32).collect()
    } else {
        raw.into_iter().map(|t| (t * 1e-9) as f32).collect()
    }
}

/// The Velodyne driver's point layout (`velodyne_pointcloud`): x y z intensity float32, ring
/// uint16, time float32; 22 bytes a point.
pub fn velodyne_fields() -> Vec<PointField> {
    vec![
        PointField::new("x", 0, Datatype::F32),
        PointField::new("y", 4, Datatype::F32),
        PointField::new("z", 8, Datatype::F32),
        PointField::new("intensity", 12, Datatype::F32),
        PointField::new("ring", 16, Datatype::U16),
        PointField::new("time", 18, Datatype::F32),
    ]
}

/// A scan as a PointCloud2 in the Velodyne driver's layout (x y z intensity float32, ring
/// uint16, time float32 seconds from the stamp; 22 bytes a point), CDR-encoded: what
/// `sim-ros2` publishes and records. Intensity goes out on the driver's 0–255 scale.
pub fn encode_scan(scan: &Scan, stamp_ns: i64, frame_id: &str) -> Vec<u8> {
    const STEP: usize = 22;
    let mut data = vec![0u8; scan.len() * STEP];
    for (i, p) in data.chunks_exact_mut(STEP).enumerate() {
        for (k, c) in scan.points[i].iter().enumerate() {
            p[4 * k..4 * k + 4].copy_from_slice(&c.to_le_bytes());
        }
        p[12..16].copy_from_slice(&(scan.intensity[i] * 255.0).to_le_bytes());
        let ring = scan.ring.as_ref().map_or(0, |r| r[i]);
        p[16..18].copy_from_slice(&ring.to_le_bytes());
        let t = scan.point_time.as_ref().map_or(0.0, |t| t[i]);
        p[18..22].copy_from_slice(&t.to_le_bytes());
    }
    PointCloud2 {
        header: super::messages::Header {
            stamp_ns,
            frame_id: frame_id.into(),
        },
        height: 1,
        width: scan.len() as u32,
        fields: velodyne_fields(),
        is_bigendian: false,
        point_step: STEP as u32,
        row_step: (STEP * scan.len()) as u32,
        data: &data,
        is_dense: true,
    }
    .encode_cdr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::ros::messages::Header;

    fn field(name: &str, offset: u32, datatype: Datatype) -> PointField {
        PointField::new(name, offset, datatype)
    }

    fn cloud<'a>(
        fields: Vec<PointField>,
        step: u32,
        width: u32,
        height: u32,
        data: &'a [u8],
        be: bool,
    ) -> PointCloud2<'a> {
        PointCloud2 {
            header: Header {
                stamp_ns: 1_600_000_000_500_000_000,
                frame_id: "os_sensor".into(),
            },
            height,
            width,
            fields,
            is_bigendian: be,
            point_step: step,
            row_step: step * width,
            data,
            is_dense: false,
        }
    }

    /// Ouster-like: x y z f32, pad, intensity f32 @16, t u32 @20, ring u16 @26; 2 x 2 organised
    /// with one NaN and one zero point.
    fn ouster_points(be: bool) -> Vec<u8> {
        let mut data = Vec::new();
        let pts: [([f32; 3], f32, u32, u16); 4] = [
            ([1.0, 2.0, 3.0], 510.0, 25_000_000, 0),
            ([f32::NAN, 0.0, 0.0], 0.0, 0, 0),
            ([0.0, 0.0, 0.0], 0.0, 0, 1),
            ([-4.0, 5.5, -0.25], 25.5, 50_000_000, 1),
        ];
        for (xyz, i, t, ring) in pts {
            let mut p = vec![0u8; 32];
            let put = |p: &mut Vec<u8>, off: usize, b: &[u8]| {
                let mut b = b.to_vec();
                if be {
                    b.reverse();
                }
                p[off..off + b.len()].copy_from_slice(&b);
            };
            for (k, c) in xyz.iter().enumerate() {
                put(&mut p, 4 * k, &c.to_le_bytes());
            }
            put(&mut p, 16, &i.to_le_bytes());
            put(&mut p, 20, &t.to_le_bytes());
            put(&mut p, 26, &ring.to_le_bytes());
            data.extend(p);
        }
        data
    }

    fn ouster_fields() -> Vec<PointField> {
        vec![
            field("x", 0, Datatype::F32),
            field("y", 4, Datatype::F32),
            field("z", 8, Datatype::F32),
            field("intensity", 16, Datatype::F32),
            field("t", 20, Datatype::U32),
            field("ring", 26, Datatype::U16),
        ]
    }

    #[test]
    fn organised_cloud_in_both_byte_orders() {
        for be in [false, true] {
            let data = ouster_points(be);
            let scan = decode_cloud(&cloud(ouster_fields(), 32, 2, 2, &data, be)).unwrap();
            assert_eq!(
                scan.points,
                vec![[1.0, 2.0, 3.0], [-4.0, 5.5, -0.25]],
                "big endian {be}"
            );
            assert_eq!(scan.intensity, vec![1.0, 0.1]);
            assert_eq!(scan.point_time, Some(vec![0.025, 0.05]));
            assert_eq!(scan.ring, Some(vec![0, 1]));
            assert_eq!(scan.timestamp, 1_600_000_000.5);
        }
    }

    #[test]
    fn absolute_float64_timestamps_become_offsets() {
        // x y z f64, timestamp f64 absolute seconds (Hesai).
        let mut data = Vec::new();
        for (x, t) in [(1.0f64, 1_600_000_000.5f64), (2.0, 1_600_000_000.599_9)] {
            for v in [x, 0.0, 0.0, t] {
                data.extend(v.to_le_bytes());
            }
        }
        let fields = vec![
            field("x", 0, Datatype::F64),
            field("y", 8, Datatype::F64),
            field("z", 16, Datatype::F64),
            field("timestamp", 24, Datatype::F64),
        ];
        let scan = decode_cloud(&cloud(fields, 32, 2, 1, &data, false)).unwrap();
        let t = scan.point_time.unwrap();
        assert!(t[0].abs() < 1e-6 && (t[1] - 0.0999).abs() < 1e-6, "{t:?}");
        assert_eq!(scan.intensity, vec![0.0, 0.0]);
    }

    #[test]
    fn inconsistent_layouts_are_named() {
        let data = ouster_points(false);
        let err = |fields: Vec<PointField>, step: u32, width: u32, data: &[u8]| {
            decode_cloud(&cloud(fields, step, width, 2, data, false)).unwrap_err()
        };
        let no_z: Vec<_> = ouster_fields().into_iter().filter(|f| f.name != "z").collect();
        assert_eq!(
            err(no_z, 32, 2, &data),
            "cloud has no 'z' field (fields: x, y, intensity, t, ring)"
        );
        let mut past = ouster_fields();
        past[4].offset = 30;
        assert_eq!(
            err(past, 32, 2, &data),
            "field 't' at offset 30 (4 bytes) runs past the 32-byte point"
        );
        assert_eq!(
            err(ouster_fields(), 32, 2, &data[..100]),
            "data holds 100 bytes but height 2 x row_step 64 needs 128"
        );
        assert_eq!(err(ouster_fields(), 32, 0, &[]), "cloud has no points (2 x 0)");
        let mut int_x = ouster_fields();
        int_x[0].datatype = Datatype::U16.code();
        assert_eq!(err(int_x, 32, 2, &data), "field 'x' is U16: want float32 or float64");
        let mut c = cloud(ouster_fields(), 32, 2, 2, &data, false);
        c.row_step = 40;
        assert_eq!(
            decode_cloud(&c).unwrap_err(),
            "row_step 40 is shorter than width 2 x point_step 32"
        );
    }
}

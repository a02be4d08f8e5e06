//! PCD point clouds (ascii, binary, binary_compressed) through `pcd-rs`: fields x, y, z and,
//! when present, intensity, time and ring.

use crate::error::{Error, Result};
use crate::io::{INTENSITY_NAMES, RING_NAMES, TIME_NAMES};
use crate::scan::Scan;
use pcd_rs::{DynReader, DynRecord, Field, ValueKind};
use std::path::Path;

/// Reads a PCD file from disk.
pub fn read_pcd(path: &Path) -> Result<Scan> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_pcd(&bytes, path)
}

/// Decodes PCD bytes; `path` names the source in errors.
pub fn parse_pcd(bytes: &[u8], path: &Path) -> Result<Scan> {
    let bad = |e: pcd_rs::Error| Error::input(path, format!("invalid PCD: {e}"));
    let reader = DynReader::from_bytes(bytes).map_err(bad)?;
    let fields = &reader.meta().field_defs.fields;
    let index_of = |names: &[&str]| names.iter().find_map(|n| fields.iter().position(|f| f.name == *n));
    let mut axes = [0usize; 3];
    for (k, axis) in ["x", "y", "z"].iter().enumerate() {
        axes[k] = index_of(&[axis]).ok_or_else(|| Error::input(path, format!("PCD has no '{axis}' field")))?;
    }
    let intensity = index_of(INTENSITY_NAMES);
    let time = index_of(TIME_NAMES);
    // Integer time fields (Ouster's `t`) count nanoseconds; float ones count seconds.
    let time_scale = match time.map(|i| fields[i].kind) {
        Some(ValueKind::F32 | ValueKind::F64) | None => 1.0,
        Some(_) => 1e-9,
    };
    let ring = index_of(RING_NAMES);
    let declared = reader.meta().num_points as usize;

    let mut scan = Scan {
        points: Vec::with_capacity(declared.min(bytes.len())),
        ..Default::default()
    };
    let mut times = Vec::new();
    let mut rings = Vec::new();
    for record in reader {
        let record = record.map_err(bad)?;
        let get = |i: usize| first_value(&record, i);
        let (Some(x), Some(y), Some(z)) = (get(axes[0]), get(axes[1]), get(axes[2])) else {
            return Err(Error::input(path, "record is shorter than the header's FIELDS"));
        };
        scan.points.push([x as f32, y as f32, z as f32]);
        scan.intensity.push(intensity.and_then(get).unwrap_or(0.0) as f32);
        if let Some(i) = time {
            times.push((get(i).unwrap_or(0.0) * time_scale) as f32);
        }
        if let Some(i) = ring {
            rings.push(get(i).unwrap_or(0.0).clamp(0.0, u16::MAX as f64) as u16);
        }
    }
    if scan.points.len() != declared {
        return Err(Error::input(
            path,
            format!("header declares {declared} points, data holds {}", scan.points.len()),
        ));
    }
    scan.point_time = time.map(|_| times);
    scan.ring = ring.map(|_| rings);
    Ok(scan)
}

fn first_value(record: &DynRecord, index: usize) -> Option<f64> {
    Some(match record.0.get(index)? {
        Field::I8(v) => *v.first()? as f64,
        Field::I16(v) => *v.first()? as f64,
        Field::I32(v) => *v.first()? as f64,
        Field::I64(v) => *v.first()? as f64,
        Field::U8(v) => *v.first()? as f64,
        Field::U16(v) => *v.first()? as f64,
        Field::U32(v) => *v.first()? as f64,
        Field::U64(v) => *v.first()? as f64,
        Field::F32(v) => *v.first()? as f64,
        Field::F64(v) => *v.first()?,
    })
}

/// Encodes a scan as a binary PCD with x y z intensity (and time, ring when present).
pub fn encode_pcd_binary(scan: &Scan) -> Vec<u8> {
    let mut names = vec!["x", "y", "z", "intensity"];
    let mut sizes = vec!["4", "4", "4", "4"];
    let mut types = vec!["F", "F", "F", "F"];
    if scan.point_time.is_some() {
        names.push("time");
        sizes.push("4");
        types.push("F");
    }
    if scan.ring.is_some() {
        names.push("ring");
        sizes.push("2");
        types.push("U");
    }
    let n = scan.len();
    let counts = vec!["1"; names.len()];
    let mut out = format!(
        "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS {}\nSIZE {}\nTYPE {}\nCOUNT {}\n\
         WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n",
        names.join(" "),
        sizes.join(" "),
        types.join(" "),
        counts.join(" ")
    )
    .into_bytes();
    for i in 0..n {
        for v in scan.points[i].iter().chain(std::iter::once(&scan.intensity[i])) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        if let Some(t) = &scan.point_time {
            out.extend_from_slice(&t[i].to_le_bytes());
        }
        if let Some(r) = &scan.ring {
            out.extend_from_slice(&r[i].to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_with_intensity_and_ns_time() {
        let text = "VERSION 0.7\nFIELDS x y z intensity t\nSIZE 4 4 4 4 4\nTYPE F F F F U\nCOUNT 1 1 1 1 1\n\
                    WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA ascii\n1 2 3 0.5 1000000\n4 5 6 0.75 2000000\n";
        let s = parse_pcd(text.as_bytes(), Path::new("a.pcd")).unwrap();
        assert_eq!(s.points[1], [4.0, 5.0, 6.0]);
        assert_eq!(s.intensity, vec![0.5, 0.75]);
        let t = s.point_time.unwrap();
        assert!((t[0] - 0.001).abs() < 1e-9 && (t[1] - 0.002).abs() < 1e-9);
    }

    #[test]
    fn binary_round_trip() {
        let scan = Scan {
            points: vec![[1.0, 2.0, 3.0], [-1.0, 0.5, 9.0]],
            intensity: vec![0.1, 0.2],
            point_time: Some(vec![0.0, 0.05]),
            ring: Some(vec![3, 60]),
            ..Default::default()
        };
        let back = parse_pcd(&encode_pcd_binary(&scan), Path::new("b.pcd")).unwrap();
        assert_eq!(back.points, scan.points);
        assert_eq!(back.intensity, scan.intensity);
        assert_eq!(back.point_time, scan.point_time);
        assert_eq!(back.ring, scan.ring);
    }

    #[test]
    fn missing_field_and_garbage_are_errors() {
        let text = "VERSION 0.7\nFIELDS x y\nSIZE 4 4\nTYPE F F\nCOUNT 1 1\nWIDTH 1\nHEIGHT 1\n\
                    VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 1\nDATA ascii\n1 2\n";
        let e = parse_pcd(text.as_bytes(), Path::new("c.pcd")).unwrap_err().to_string();
        assert_eq!(e, "c.pcd: PCD has no 'z' field");
        assert!(
            parse_pcd(b"\x00\x01garbage", Path::new("d.pcd"))
                .unwrap_err()
                .to_string()
                .starts_with("d.pcd: invalid PCD")
        );
    }
}

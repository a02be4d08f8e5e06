//! PLY point clouds (ascii and binary) through `ply-rs-bw`: the `vertex` element's x, y, z and,
//! when present, intensity, time and ring.

use crate::error::{Error, Result};
use crate::io::{INTENSITY_NAMES, RING_NAMES, TIME_NAMES};
use crate::scan::Scan;
use ply_rs_bw::parser::Parser;
use ply_rs_bw::ply::{DefaultElement, Property};
use std::path::Path;

/// Reads a PLY file from disk.
pub fn read_ply(path: &Path) -> Result<Scan> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_ply(&bytes, path)
}

/// Decodes PLY bytes; `path` names the source in errors.
pub fn parse_ply(bytes: &[u8], path: &Path) -> Result<Scan> {
    check_header_bounds(bytes).map_err(|m| Error::input(path, m))?;
    let parser = Parser::<DefaultElement>::new();
    let ply = parser
        .read_ply(&mut std::io::Cursor::new(bytes))
        .map_err(|e| Error::input(path, format!("invalid PLY: {e}")))?;
    let vertices = ply
        .payload
        .get("vertex")
        .ok_or_else(|| Error::input(path, "no 'vertex' element"))?;
    let vertex_def = ply.header.elements.get("vertex").expect("payload has vertex");
    let has = |name: &str| vertex_def.properties.contains_key(name);
    for axis in ["x", "y", "z"] {
        if !has(axis) {
            return Err(Error::input(
                path,
                format!("vertex element lacks the '{axis}' property"),
            ));
        }
    }
    let pick = |names: &[&str]| names.iter().find(|n| has(n)).map(|n| n.to_string());
    let intensity_key = pick(INTENSITY_NAMES);
    let time_key = pick(TIME_NAMES);
    let ring_key = pick(RING_NAMES);

    let mut scan = Scan {
        points: Vec::with_capacity(vertices.len()),
        ..Default::default()
    };
    let mut times = Vec::new();
    let mut rings = Vec::new();
    for v in vertices {
        let get = |k: &str| v.get(k).and_then(scalar);
        let (Some(x), Some(y), Some(z)) = (get("x"), get("y"), get("z")) else {
            return Err(Error::input(path, "x, y and z must be scalar properties"));
        };
        scan.points.push([x as f32, y as f32, z as f32]);
        scan.intensity
            .push(intensity_key.as_deref().and_then(get).unwrap_or(0.0) as f32);
        if let Some(k) = &time_key {
            times.push(get(k).unwrap_or(0.0) as f32);
        }
        if let Some(k) = &ring_key {
            rings.push(get(k).unwrap_or(0.0).clamp(0.0, u16::MAX as f64) as u16);
        }
    }
    scan.point_time = time_key.map(|_| times);
    scan.ring = ring_key.map(|_| rings);
    Ok(scan)
}

fn scalar(p: &Property) -> Option<f64> {
    Some(match *p {
        Property::Char(v) => v as f64,
        Property::UChar(v) => v as f64,
        Property::Short(v) => v as f64,
        Property::UShort(v) => v as f64,
        Property::Int(v) => v as f64,
        Property::UInt(v) => v as f64,
        Property::Float(v) => v as f64,
        Property::Double(v) => v,
        _ => return None,
    })
}

/// Rejects headers whose counts could make the parser reserve far more memory than the file
/// holds: element counts above the byte count, and lists with 32-bit length prefixes.
fn check_header_bounds(bytes: &[u8]) -> std::result::Result<(), String> {
    if !bytes.starts_with(b"ply") {
        return Err("not a PLY file (no 'ply' magic)".into());
    }
    let end = find(bytes, b"end_header").ok_or("PLY header has no 'end_header'")?;
    let header = String::from_utf8_lossy(&bytes[..end]);
    for line in header.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["element", name, count] => {
                let n: u64 = count
                    .parse()
                    .map_err(|_| format!("element '{name}': bad count '{count}'"))?;
                if n > bytes.len() as u64 {
                    return Err(format!(
                        "element '{name}' claims {n} entries, more than the file's {} bytes",
                        bytes.len()
                    ));
                }
            }
            ["property", "list", index, ..] if matches!(*index, "int" | "uint" | "int32" | "uint32") => {
                return Err("lists with 32-bit lengths are not supported".into());
            }
            _ => {}
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASCII: &str = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n\
        property float z\nproperty float intensity\nproperty double time\nproperty ushort ring\nend_header\n\
        1 2 3 0.5 0.01 7\n4 5 6 0.25 0.02 9\n";

    #[test]
    fn reads_ascii_with_optional_fields() {
        let s = parse_ply(ASCII.as_bytes(), Path::new("a.ply")).unwrap();
        assert_eq!(s.points, vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        assert_eq!(s.intensity, vec![0.5, 0.25]);
        assert_eq!(s.point_time.unwrap(), vec![0.01, 0.02]);
        assert_eq!(s.ring.unwrap(), vec![7, 9]);
    }

    #[test]
    fn reads_binary_little_endian() {
        let mut bytes =
            b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
                .to_vec();
        for v in [1.5f32, -2.0, 0.25] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let s = parse_ply(&bytes, Path::new("b.ply")).unwrap();
        assert_eq!(s.points, vec![[1.5, -2.0, 0.25]]);
        assert!(s.point_time.is_none());
    }

    #[test]
    fn missing_axis_and_absurd_counts_are_errors() {
        let no_z = ASCII
            .replace("property float z\n", "")
            .replace("1 2 3", "1 2")
            .replace("4 5 6", "4 5");
        let e = parse_ply(no_z.as_bytes(), Path::new("c.ply")).unwrap_err().to_string();
        assert_eq!(e, "c.ply: vertex element lacks the 'z' property");
        let huge = ASCII.replace("vertex 2", "vertex 4000000000");
        assert!(
            parse_ply(huge.as_bytes(), Path::new("d.ply"))
                .unwrap_err()
                .to_string()
                .contains("claims")
        );
        assert!(parse_ply(b"garbage", Path::new("e.ply")).is_err());
    }
}

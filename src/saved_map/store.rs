//! The map file, `DIR/map.bin`: one file written atomically, so a run that fails never leaves a
//! damaged map, and read defensively, since a map is input like any other file.
//!
//! ```text
//!  magic "OVSLMAP\n" | version u32 | header length u32 | header (JSON, MapHeader)
//!  | body length u64 | packed length u64 | body (LZ4 block) | CRC-32 of everything before
//!  body: keyframes u32, each: session u32, frame u32, pose (t xyz, q wxyz: 7 f64),
//!        points u32, xyz i16 ×3 (centimetres), intensity u8, Scan Context bins f32 ×1200,
//!        OverlapNet features (flag u8, N u32, F u32, f16 ×N·F, half-turn flag u8, f16 ×N·F),
//!        ground truth (flag u8, 7 f64)
//!        edges u32, each: from u32, to u32, kind u8, measurement (7 f64)
//! ```
//! All numbers are little-endian. `DIR/summary.json` repeats the header for people; the reader
//! ignores it.

use super::{EdgeKind, MapEdge, MapHeader, MapKeyframe, PriorMap, StoredFeatures};
use crate::error::{Error, Result};
use crate::io::atomic::write_bytes_atomic;
use crate::io::ros::wire::{Encoding, Reader};
use crate::loops::scan_context::{RINGS, SECTORS, ScanContext};
use crate::scan::Pose;
use half::f16;
use nalgebra::{Quaternion, Translation3, UnitQuaternion};
use std::path::{Path, PathBuf};

/// The map file inside a map folder.
pub const MAP_FILE: &str = "map.bin";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"OVSLMAP\n";
/// Keyframe points are stored to this step, metres (1 cm: far below the thinning voxel).
const POINT_STEP_M: f32 = 0.01;
/// LZ4 expands nothing by more than this factor: a larger claimed body is a corrupt file.
const LZ4_MAX_RATIO: u64 = 255;

/// Path of the map file in `dir`.
pub fn map_file(dir: &Path) -> PathBuf {
    dir.join(MAP_FILE)
}

/// Writes `map` into folder `dir` (created when missing): `map.bin` atomically, then
/// `summary.json`. Returns the map file's size in bytes.
pub fn write_map(dir: &Path, map: &PriorMap) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = map_file(dir);
    let bytes = encode(map).map_err(|msg| Error::input(&path, msg))?;
    write_bytes_atomic(&path, &bytes)?;
    let summary = serde_json::json!({
        "format": "overlap-slam map",
        "version": FORMAT_VERSION,
        "header": map.header,
        "keyframes": map.keyframes.len(),
        "edges": map.edges.len(),
        "bytes": bytes.len(),
    });
    let text = serde_json::to_string_pretty(&summary).expect("plain JSON");
    write_bytes_atomic(&dir.join("summary.json"), text.as_bytes())?;
    Ok(bytes.len() as u64)
}

/// Reads the map in folder `dir`; every problem is one error naming the file.
pub fn read_map(dir: &Path) -> Result<PriorMap> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::input(dir, "not a folder (a map is a folder holding map.bin)"));
    }
    if !dir.is_dir() {
        return Err(Error::input(dir, "no such map folder"));
    }
    let path = map_file(dir);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    decode(&bytes).map_err(|msg| Error::input(&path, msg))
}

/// The map file's bytes.
pub fn encode(map: &PriorMap) -> std::result::Result<Vec<u8>, String> {
    let mut body = Vec::new();
    put_u32(&mut body, map.keyframes.len() as u32);
    for k in &map.keyframes {
        encode_keyframe(&mut body, k);
    }
    put_u32(&mut body, map.edges.len() as u32);
    for e in &map.edges {
        put_u32(&mut body, e.from);
        put_u32(&mut body, e.to);
        body.push(matches!(e.kind, EdgeKind::Loop) as u8);
        put_pose(&mut body, &e.measurement);
    }
    if body.len() > i32::MAX as usize {
        return Err(format!(
            "the map's body is {} bytes, more than format 1 holds",
            body.len()
        ));
    }
    let packed = lz4::block::compress(&body, None, false).map_err(|e| format!("compressing: {e}"))?;
    let header = serde_json::to_vec(&map.header).expect("plain JSON");
    let mut out = Vec::with_capacity(packed.len() + header.len() + 40);
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, FORMAT_VERSION);
    put_u32(&mut out, header.len() as u32);
    out.extend_from_slice(&header);
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&(packed.len() as u64).to_le_bytes());
    out.extend_from_slice(&packed);
    let crc = crc32fast::hash(&out);
    put_u32(&mut out, crc);
    Ok(out)
}

/// A map from the map file's bytes; the error says what is wrong, never panics.
pub fn decode(bytes: &[u8]) -> std::result::Result<PriorMap, String> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err("not an overlap-slam map (bad magic)".into());
    }
    if bytes.len() < MAGIC.len() + 12 {
        return Err("truncated: shorter than the file's preamble".into());
    }
    let version = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().expect("4 bytes"));
    if version != FORMAT_VERSION {
        return Err(format!(
            "map format version {version}; this build reads version {FORMAT_VERSION}"
        ));
    }
    let (content, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(content) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err("truncated or corrupted (checksum mismatch)".into());
    }
    let mut r = Reader::new(&content[MAGIC.len() + 4..], Encoding::Ros1)?;
    let header_len = r.u32()? as usize;
    let header: MapHeader = serde_json::from_slice(r.bytes(header_len)?).map_err(|e| format!("bad header: {e}"))?;
    check_header(&header)?;
    let raw_len = r.u64()?;
    let packed_len = r.u64()?;
    if packed_len != r.remaining() as u64 {
        return Err(format!("body is {} bytes, header says {packed_len}", r.remaining()));
    }
    if raw_len > i32::MAX as u64 || raw_len > packed_len.saturating_mul(LZ4_MAX_RATIO) + 64 {
        return Err(format!("implausible body length {raw_len}"));
    }
    let packed = r.bytes(packed_len as usize)?;
    let body = lz4::block::decompress(packed, Some(raw_len as i32)).map_err(|e| format!("bad body: {e}"))?;
    let mut r = Reader::new(&body, Encoding::Ros1)?;
    // Each keyframe takes at least its fixed fields: a count beyond the body is corrupt.
    let count = r.len(8 + 56 + 4 + 4 * RINGS * SECTORS + 2)?;
    let keyframes = (0..count)
        .map(|i| decode_keyframe(&mut r).map_err(|e| format!("keyframe {i}: {e}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let edges = decode_edges(&mut r, keyframes.len())?;
    if r.remaining() != 0 {
        return Err(format!("{} bytes after the last edge", r.remaining()));
    }
    Ok(PriorMap {
        header,
        keyframes,
        edges,
    })
}

/// Refuses a header whose ground-truth origin is not a rigid transform (it is turned into a
/// pose, whose rotation must be orthonormal).
fn check_header(header: &MapHeader) -> std::result::Result<(), String> {
    let Some(r) = header.ground_truth_origin else {
        return Ok(());
    };
    let rotation = nalgebra::Matrix3::new(r[0], r[1], r[2], r[4], r[5], r[6], r[8], r[9], r[10]);
    let rigid = r.iter().all(|v| v.is_finite())
        && (rotation.transpose() * rotation - nalgebra::Matrix3::identity())
            .abs()
            .max()
            < 1e-6
        && rotation.determinant() > 0.0;
    if !rigid {
        return Err("bad header: the ground-truth origin is not a rigid transform".into());
    }
    Ok(())
}

fn encode_keyframe(out: &mut Vec<u8>, k: &MapKeyframe) {
    put_u32(out, k.session);
    put_u32(out, k.frame);
    put_pose(out, &k.pose);
    let max = i16::MAX as f32 * POINT_STEP_M;
    let kept: Vec<usize> = (0..k.points.len())
        .filter(|&i| k.points[i].iter().all(|v| v.abs() < max))
        .collect();
    put_u32(out, kept.len() as u32);
    for &i in &kept {
        for v in k.points[i] {
            out.extend_from_slice(&((v / POINT_STEP_M).round() as i16).to_le_bytes());
        }
    }
    for &i in &kept {
        out.push((k.intensity.get(i).copied().unwrap_or(0.0).clamp(0.0, 1.0) * 255.0).round() as u8);
    }
    for b in &k.scan_context.bins {
        out.extend_from_slice(&b.to_le_bytes());
    }
    match &k.overlapnet {
        None => out.push(0),
        Some(f) => {
            out.push(1);
            put_u32(out, f.shape.0 as u32);
            put_u32(out, f.shape.1 as u32);
            put_halves(out, &f.volume);
            match &f.half_turn {
                None => out.push(0),
                Some(h) => {
                    out.push(1);
                    put_halves(out, h);
                }
            }
        }
    }
    match &k.ground_truth {
        None => out.push(0),
        Some(p) => {
            out.push(1);
            put_pose(out, p);
        }
    }
}

fn decode_keyframe(r: &mut Reader) -> std::result::Result<MapKeyframe, String> {
    let session = r.u32()?;
    let frame = r.u32()?;
    let pose = read_pose(r)?;
    let n = r.len(7)?;
    let points = r
        .bytes(6 * n)?
        .chunks_exact(6)
        .map(|c| std::array::from_fn(|k| i16::from_le_bytes([c[2 * k], c[2 * k + 1]]) as f32 * POINT_STEP_M))
        .collect();
    let intensity = r.bytes(n)?.iter().map(|&b| b as f32 / 255.0).collect();
    let bins = (0..RINGS * SECTORS)
        .map(|_| r.f32())
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if bins.iter().any(|b| !b.is_finite()) {
        return Err("Scan Context bins are not finite".into());
    }
    let overlapnet = match r.u8()? {
        0 => None,
        1 => Some(decode_features(r)?),
        f => return Err(format!("bad OverlapNet flag {f}")),
    };
    let ground_truth = match r.u8()? {
        0 => None,
        1 => Some(read_pose(r)?),
        f => return Err(format!("bad ground-truth flag {f}")),
    };
    Ok(MapKeyframe {
        session,
        frame,
        pose,
        points,
        intensity,
        scan_context: ScanContext::from_bins(bins),
        overlapnet,
        ground_truth,
    })
}

fn decode_features(r: &mut Reader) -> std::result::Result<StoredFeatures, String> {
    let shape = (r.u32()? as usize, r.u32()? as usize);
    let len = shape.0.checked_mul(shape.1).ok_or("feature shape overflows")?;
    let volume = read_halves(r, len)?;
    let half_turn = match r.u8()? {
        0 => None,
        1 => Some(read_halves(r, len)?),
        f => return Err(format!("bad half-turn flag {f}")),
    };
    Ok(StoredFeatures {
        shape,
        volume,
        half_turn,
    })
}

fn decode_edges(r: &mut Reader, keyframes: usize) -> std::result::Result<Vec<MapEdge>, String> {
    let count = r.len(4 + 4 + 1 + 56)?;
    (0..count)
        .map(|i| {
            let (from, to) = (r.u32()?, r.u32()?);
            if from as usize >= keyframes || to as usize >= keyframes {
                return Err(format!(
                    "edge {i} joins keyframes {from} and {to}; the map has {keyframes}"
                ));
            }
            let kind = match r.u8()? {
                0 => EdgeKind::Odometry,
                1 => EdgeKind::Loop,
                k => return Err(format!("edge {i}: bad kind {k}")),
            };
            Ok(MapEdge {
                from,
                to,
                measurement: read_pose(r)?,
                kind,
            })
        })
        .collect()
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_pose(out: &mut Vec<u8>, pose: &Pose) {
    let t = pose.translation.vector;
    let q = pose.rotation.quaternion();
    for v in [t.x, t.y, t.z, q.w, q.i, q.j, q.k] {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn put_halves(out: &mut Vec<u8>, values: &[f32]) {
    for v in values {
        out.extend_from_slice(&f16::from_f32(*v).to_le_bytes());
    }
}

fn read_halves(r: &mut Reader, n: usize) -> std::result::Result<Vec<f32>, String> {
    let bytes = r.bytes(n.checked_mul(2).ok_or("feature volume overflows")?)?;
    Ok(bytes
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect())
}

/// A pose stored as translation and unit quaternion; refuses non-finite numbers and quaternions
/// far from unit length.
fn read_pose(r: &mut Reader) -> std::result::Result<Pose, String> {
    let mut v = [0.0; 7];
    for x in &mut v {
        *x = r.f64()?;
    }
    let q = Quaternion::new(v[3], v[4], v[5], v[6]);
    if v.iter().any(|x| !x.is_finite()) || (q.norm() - 1.0).abs() > 1e-6 {
        return Err("a pose is not a rigid transform".into());
    }
    Ok(Pose::from_parts(
        Translation3::new(v[0], v[1], v[2]),
        UnitQuaternion::from_quaternion(q),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loops::detector::LoopMethod;
    use crate::saved_map::SensorSignature;
    use crate::sensor::SensorModel;
    use nalgebra::Vector3;

    fn small_map() -> PriorMap {
        let pose = |x: f64, yaw: f64| Pose::new(Vector3::new(x, 1.0, 0.5), Vector3::new(0.0, 0.0, yaw));
        let keyframe = |i: u32, overlapnet: bool| MapKeyframe {
            session: 0,
            frame: i * 10,
            pose: pose(i as f64 * 8.0, 0.1 * i as f64),
            points: vec![[1.234, -5.0, 0.5], [40.0, 2.5, -1.75], [500.0, 0.0, 0.0]],
            intensity: vec![0.0, 0.5, 1.0],
            scan_context: ScanContext::new(&[[3.0, 4.0, 1.0], [-10.0, 2.0, 0.5]]),
            overlapnet: overlapnet.then(|| StoredFeatures {
                shape: (2, 3),
                volume: vec![0.5, -1.0, 2.0, 0.25, 0.0, 8.0],
                half_turn: Some(vec![1.0; 6]),
            }),
            ground_truth: (i == 0).then(|| pose(0.1, 0.0)),
        };
        PriorMap {
            header: MapHeader {
                sensor: SensorSignature::of(&SensorModel::hdl64()),
                detector: LoopMethod::OverlapNet,
                voxel_m: 0.5,
                sessions: 1,
                travelled_m: 16.0,
                ground_truth_origin: Some([1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            },
            keyframes: vec![keyframe(0, true), keyframe(1, false)],
            edges: vec![MapEdge {
                from: 0,
                to: 1,
                measurement: pose(8.0, 0.1),
                kind: EdgeKind::Odometry,
            }],
        }
    }

    #[test]
    fn a_map_round_trips_to_the_centimetre_and_half_precision() {
        let map = small_map();
        let back = decode(&encode(&map).unwrap()).unwrap();
        assert_eq!(back.header, map.header);
        assert_eq!(back.edges, map.edges);
        for (a, b) in map.keyframes.iter().zip(&back.keyframes) {
            assert_eq!((a.session, a.frame), (b.session, b.frame));
            assert!((a.pose.inverse() * b.pose).translation.vector.norm() < 1e-12);
            // The point 500 m out does not fit in 16 bits of centimetres and is left out.
            assert_eq!(b.points.len(), 2);
            for (p, q) in a.points.iter().zip(&b.points) {
                assert!(p.iter().zip(q).all(|(x, y)| (x - y).abs() <= 0.005), "{p:?} {q:?}");
            }
            assert_eq!(b.intensity, vec![0.0, 128.0 / 255.0]);
            assert_eq!(a.scan_context, b.scan_context);
            assert_eq!(a.overlapnet, b.overlapnet, "these values are exact in f16");
            assert_eq!(a.ground_truth.is_some(), b.ground_truth.is_some());
        }
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error_not_a_panic() {
        let bytes = encode(&small_map()).unwrap();
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_err(), "prefix of {n} bytes");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x5a;
            assert!(decode(&b).is_err(), "byte {i} flipped");
        }
    }

    #[test]
    fn a_ground_truth_origin_that_is_not_rigid_is_refused() {
        let mut map = small_map();
        map.header.ground_truth_origin = Some([0.0; 12]);
        let err = decode(&encode(&map).unwrap()).unwrap_err();
        assert_eq!(err, "bad header: the ground-truth origin is not a rigid transform");
    }

    #[test]
    fn a_valid_checksum_over_nonsense_is_still_refused() {
        // A body that claims a million keyframes, with a checksum that matches: the count is
        // checked against the bytes there are before anything is allocated.
        let header = serde_json::to_vec(&small_map().header).unwrap();
        let mut raw = 1_000_000u32.to_le_bytes().to_vec();
        raw.extend_from_slice(&0u32.to_le_bytes());
        let packed = lz4::block::compress(&raw, None, false).unwrap();
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&(packed.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&packed);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let err = decode(&bytes).unwrap_err();
        assert!(err.contains("a length of 1000000 at byte 0 runs past"), "{err}");
    }
}

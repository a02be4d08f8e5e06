//! KITTI odometry layout: `velodyne/NNNNNN.bin` scans, `calib.txt`, `poses.txt` / `poses/XX.txt`,
//! `times.txt` (DESIGN.md §2).

use crate::error::{Error, Result};
use crate::io::FrameRange;
use crate::io::poses::{matrix_from_3x4, pose_from_3x4, read_kitti_poses};
use crate::io::sequence::{FileSequence, SequenceEntry, list_files_with_ext, select_frames};
use crate::scan::{Pose, Scan};
use nalgebra::Matrix4;
use std::path::{Path, PathBuf};

/// Bytes per KITTI point: x, y, z, reflectance as little-endian f32.
const POINT_BYTES: usize = 16;

/// Decodes the bytes of one KITTI `.bin` scan; `path` names it in errors.
pub fn parse_bin(bytes: &[u8], path: &Path) -> Result<Scan> {
    if !bytes.len().is_multiple_of(POINT_BYTES) {
        return Err(Error::input(
            path,
            format!(
                "size {} bytes is not a multiple of 16 (x, y, z, reflectance as f32): corrupt scan",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / POINT_BYTES;
    let mut points = Vec::with_capacity(n);
    let mut intensity = Vec::with_capacity(n);
    for chunk in bytes.chunks_exact(POINT_BYTES) {
        let f = |k: usize| f32::from_le_bytes([chunk[4 * k], chunk[4 * k + 1], chunk[4 * k + 2], chunk[4 * k + 3]]);
        points.push([f(0), f(1), f(2)]);
        intensity.push(f(3));
    }
    Ok(Scan {
        points,
        intensity,
        ..Default::default()
    })
}

/// Reads one KITTI `.bin` scan from disk.
pub fn read_bin(path: &Path) -> Result<Scan> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_bin(&bytes, path)
}

/// Encodes a scan in the KITTI `.bin` layout.
pub fn encode_bin(scan: &Scan) -> Vec<u8> {
    let mut out = Vec::with_capacity(scan.len() * POINT_BYTES);
    for (p, i) in scan.points.iter().zip(&scan.intensity) {
        for v in [p[0], p[1], p[2], *i] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// Reads `Tr` (velodyne -> rectified camera 0) from a KITTI `calib.txt` as a 4x4 matrix.
pub fn read_calib_tr(path: &Path) -> Result<Matrix4<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim().strip_prefix("Tr:") else {
            continue;
        };
        let vals: Vec<f64> = rest
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::input(path, format!("line {}: Tr: {e}", i + 1)))?;
        if vals.len() != 12 {
            return Err(Error::input(
                path,
                format!("line {}: Tr has {} numbers, expected 12", i + 1, vals.len()),
            ));
        }
        let m = matrix_from_3x4(&vals);
        if m.try_inverse().is_none() {
            return Err(Error::input(path, "Tr is not invertible"));
        }
        return Ok(m);
    }
    Err(Error::input(path, "no 'Tr:' line"))
}

/// Camera-frame KITTI poses to LiDAR-frame poses: `T_lidar = Tr^-1 * T_cam * Tr`.
pub fn camera_to_lidar_poses(cam: &[Pose], tr: &Matrix4<f64>) -> Vec<Pose> {
    let tr_inv = tr.try_inverse().expect("Tr checked invertible on read");
    cam.iter()
        .map(|p| {
            let m = tr_inv * p.to_homogeneous() * tr;
            let flat: Vec<f64> = (0..3).flat_map(|r| (0..4).map(move |c| m[(r, c)])).collect();
            pose_from_3x4(&flat)
        })
        .collect()
}

/// LiDAR-frame poses back to KITTI camera-frame poses: `T_cam = Tr * T_lidar * Tr^-1`.
pub fn lidar_to_camera_poses(lidar: &[Pose], tr: &Matrix4<f64>) -> Vec<Pose> {
    let tr_inv = tr.try_inverse().expect("Tr checked invertible on read");
    lidar
        .iter()
        .map(|p| {
            let m = tr * p.to_homogeneous() * tr_inv;
            let flat: Vec<f64> = (0..3).flat_map(|r| (0..4).map(move |c| m[(r, c)])).collect();
            pose_from_3x4(&flat)
        })
        .collect()
}

/// Where the parts of a KITTI sequence live.
#[derive(Debug, Clone)]
struct KittiLayout {
    scans_dir: PathBuf,
    calib: Option<PathBuf>,
    poses: Option<PathBuf>,
    times: Option<PathBuf>,
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.is_file().then_some(p)
}

fn detect_layout(dir: &Path) -> KittiLayout {
    let velodyne = dir.join("velodyne");
    let (scans_dir, meta_dir) = if velodyne.is_dir() {
        (velodyne, dir)
    } else {
        (dir.to_path_buf(), dir)
    };
    // dataset/sequences/XX keeps its ground truth in dataset/poses/XX.txt.
    let sequence_poses = || {
        let name = meta_dir.file_name()?;
        let parent = meta_dir.parent()?;
        (parent.file_name()? == "sequences")
            .then(|| {
                parent
                    .parent()
                    .map(|root| root.join("poses").join(format!("{}.txt", name.to_string_lossy())))
            })
            .flatten()
            .and_then(existing)
    };
    KittiLayout {
        scans_dir,
        calib: existing(meta_dir.join("calib.txt")),
        poses: existing(meta_dir.join("poses.txt")).or_else(sequence_poses),
        times: existing(meta_dir.join("times.txt")),
    }
}

fn read_times(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| Error::input(path, format!("line {}: not a time in seconds: '{}'", i + 1, l.trim())))
        })
        .collect()
}

/// Frame number from a KITTI file name (`000042.bin` -> 42).
fn frame_number(path: &Path) -> Option<usize> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// Opens frames `frames` of a KITTI sequence folder (flat layout, `sequences/XX`, or bare `.bin`
/// files). The frames are chosen first; the poses and times then need lines up to the last one.
pub fn open_sequence(dir: &Path, frames: FrameRange) -> Result<FileSequence> {
    let layout = detect_layout(dir);
    let files = list_files_with_ext(&layout.scans_dir, "bin")?;
    if files.is_empty() {
        return Err(Error::input(&layout.scans_dir, "no .bin scans in this folder"));
    }
    let numbered = files.iter().all(|f| frame_number(f).is_some());
    let all = files.into_iter().enumerate().map(|(i, path)| SequenceEntry {
        frame: if numbered { frame_number(&path).unwrap() } else { i },
        path,
    });
    let (entries, last_frame) = select_frames(all, frames, dir)?;

    let gt = match &layout.poses {
        Some(p) => {
            let cam = read_kitti_poses(p)?;
            if cam.len() <= last_frame {
                return Err(Error::input(
                    p,
                    format!(
                        "{} poses but the frames read go up to {last_frame}: too few lines",
                        cam.len()
                    ),
                ));
            }
            match &layout.calib {
                Some(c) => Some(camera_to_lidar_poses(&cam, &read_calib_tr(c)?)),
                None => {
                    log::warn!(
                        "{}: no calib.txt beside the poses; ground truth used as given (LiDAR frame)",
                        dir.display()
                    );
                    Some(cam)
                }
            }
        }
        None => None,
    };
    let times = match &layout.times {
        Some(t) => {
            let times = read_times(t)?;
            if times.len() <= last_frame {
                return Err(Error::input(
                    t,
                    format!("{} times but the frames read go up to {last_frame}", times.len()),
                ));
            }
            Some(times)
        }
        None => None,
    };
    Ok(FileSequence::new(format!("KITTI {}", dir.display()), entries, read_bin, gt, times).kitti())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_round_trip_and_corrupt_size() {
        let scan = Scan {
            points: vec![[1.0, 2.0, 3.0], [-4.0, 5.5, 0.25]],
            intensity: vec![0.5, 0.0],
            ..Default::default()
        };
        let bytes = encode_bin(&scan);
        assert_eq!(bytes.len(), 32);
        let back = parse_bin(&bytes, Path::new("x.bin")).unwrap();
        assert_eq!(back.points, scan.points);
        assert_eq!(back.intensity, scan.intensity);
        let err = parse_bin(&bytes[..31], Path::new("x.bin")).unwrap_err().to_string();
        assert!(err.starts_with("x.bin: size 31 bytes is not a multiple of 16"), "{err}");
    }

    #[test]
    fn camera_lidar_conversion_round_trips() {
        let tr = matrix_from_3x4(&[0.0, -1.0, 0.0, 0.1, 0.0, 0.0, -1.0, -0.05, 1.0, 0.0, 0.0, -0.3]);
        let cam = vec![
            Pose::identity(),
            Pose::new(
                nalgebra::Vector3::new(0.2, 0.0, 5.0),
                nalgebra::Vector3::new(0.0, 0.3, 0.0),
            ),
        ];
        let lidar = camera_to_lidar_poses(&cam, &tr);
        // Forward motion along camera z is forward motion along LiDAR x.
        assert!((lidar[1].translation.vector.x - 5.0).abs() < 0.4);
        let back = lidar_to_camera_poses(&lidar, &tr);
        assert!((back[1].to_homogeneous() - cam[1].to_homogeneous()).norm() < 1e-9);
    }
}

//! Trajectory files: KITTI (3x4 row-major per line) and TUM (`t tx ty tz qx qy qz qw`).

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::scan::Pose;
use nalgebra::{Matrix3, Matrix4, Quaternion, Rotation3, Translation3, UnitQuaternion};
use std::io::Write;
use std::path::Path;

/// A trajectory read from disk: poses and, for TUM files, their timestamps.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    /// One pose per line.
    pub poses: Vec<Pose>,
    /// Timestamps from a TUM file; `None` for KITTI files.
    pub stamps: Option<Vec<f64>>,
}

/// Reads a KITTI or TUM trajectory, telling them apart by the column count (12 or 8).
pub fn read_trajectory(path: &Path) -> Result<Trajectory> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let rows = parse_rows(&text, path)?;
    match rows.first().map(|r| r.len()) {
        None => Err(Error::input(path, "poses file is empty")),
        Some(12) => kitti_rows_to_poses(&rows, path).map(|poses| Trajectory { poses, stamps: None }),
        Some(8) => tum_rows_to_poses(&rows, path),
        Some(n) => Err(Error::input(
            path,
            format!("line 1 has {n} columns: expected 12 (KITTI 3x4) or 8 (TUM)"),
        )),
    }
}

/// Reads a KITTI pose file (12 numbers a line).
pub fn read_kitti_poses(path: &Path) -> Result<Vec<Pose>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    kitti_rows_to_poses(&parse_rows(&text, path)?, path)
}

fn parse_rows(text: &str, path: &Path) -> Result<Vec<Vec<f64>>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split_whitespace()
            .map(|t| t.parse::<f64>())
            .collect::<std::result::Result<Vec<f64>, _>>()
            .map_err(|e| Error::input(path, format!("line {}: {e}", i + 1)))?;
        if row.iter().any(|v| !v.is_finite()) {
            return Err(Error::input(path, format!("line {}: non-finite number", i + 1)));
        }
        rows.push((i + 1, row));
    }
    let width = rows.first().map(|(_, r)| r.len()).unwrap_or(0);
    if let Some((line, r)) = rows.iter().find(|(_, r)| r.len() != width) {
        return Err(Error::input(
            path,
            format!("line {line} has {} columns, the first line has {width}", r.len()),
        ));
    }
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

fn kitti_rows_to_poses(rows: &[Vec<f64>], path: &Path) -> Result<Vec<Pose>> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            if r.len() != 12 {
                return Err(Error::input(
                    path,
                    format!("line {}: {} columns, a KITTI pose has 12", i + 1, r.len()),
                ));
            }
            Ok(pose_from_3x4(r))
        })
        .collect()
}

fn tum_rows_to_poses(rows: &[Vec<f64>], path: &Path) -> Result<Trajectory> {
    let mut poses = Vec::with_capacity(rows.len());
    let mut stamps = Vec::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let q = Quaternion::new(r[7], r[4], r[5], r[6]);
        if q.norm() < 1e-9 {
            return Err(Error::input(path, format!("line {}: zero quaternion", i + 1)));
        }
        stamps.push(r[0]);
        poses.push(Pose::from_parts(
            Translation3::new(r[1], r[2], r[3]),
            UnitQuaternion::from_quaternion(q),
        ));
    }
    Ok(Trajectory {
        poses,
        stamps: Some(stamps),
    })
}

/// A pose from 12 row-major numbers of a 3x4 `[R|t]`, the rotation re-orthonormalised.
pub fn pose_from_3x4(r: &[f64]) -> Pose {
    let m = Matrix3::new(r[0], r[1], r[2], r[4], r[5], r[6], r[8], r[9], r[10]);
    let rot = Rotation3::from_matrix(&m);
    Pose::from_parts(
        Translation3::new(r[3], r[7], r[11]),
        UnitQuaternion::from_rotation_matrix(&rot),
    )
}

/// The 4x4 homogeneous matrix of an affine 3x4 (used for calibration, which need not be rigid).
pub fn matrix_from_3x4(r: &[f64]) -> Matrix4<f64> {
    Matrix4::new(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], 0.0, 0.0, 0.0, 1.0,
    )
}

/// Writes poses as KITTI lines (3x4 row-major), atomically.
pub fn write_kitti(path: &Path, poses: &[Pose]) -> Result<()> {
    write_atomic(path, |w| {
        for p in poses {
            let m = p.to_homogeneous();
            let vals: Vec<String> = (0..3)
                .flat_map(|r| (0..4).map(move |c| (r, c)))
                .map(|(r, c)| format!("{:.9e}", m[(r, c)]))
                .collect();
            writeln!(w, "{}", vals.join(" "))?;
        }
        Ok(())
    })
}

/// Writes poses as TUM lines with the given timestamps, atomically.
pub fn write_tum(path: &Path, stamps: &[f64], poses: &[Pose]) -> Result<()> {
    write_atomic(path, |w| {
        for (t, p) in stamps.iter().zip(poses) {
            let tr = p.translation.vector;
            let q = p.rotation.quaternion();
            writeln!(
                w,
                "{t:.6} {:.9} {:.9} {:.9} {:.9} {:.9} {:.9} {:.9}",
                tr.x, tr.y, tr.z, q.i, q.j, q.k, q.w
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn kitti_and_tum_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let poses: Vec<Pose> = (0..5)
            .map(|i| {
                Pose::new(
                    Vector3::new(i as f64, 2.0 * i as f64, 0.5),
                    Vector3::new(0.0, 0.1, 0.3 * i as f64),
                )
            })
            .collect();
        let k = dir.path().join("p.txt");
        write_kitti(&k, &poses).unwrap();
        let t = dir.path().join("p.tum");
        write_tum(&t, &[0.0, 0.1, 0.2, 0.3, 0.4], &poses).unwrap();
        for path in [&k, &t] {
            let back = read_trajectory(path).unwrap();
            for (a, b) in back.poses.iter().zip(&poses) {
                assert!((a.to_homogeneous() - b.to_homogeneous()).norm() < 1e-6);
            }
        }
        assert_eq!(read_trajectory(&t).unwrap().stamps.unwrap()[2], 0.2);
    }

    #[test]
    fn wrong_column_counts_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.txt");
        std::fs::write(&p, "1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 0 0 0 1\n").unwrap();
        let e = read_trajectory(&p).unwrap_err().to_string();
        assert!(e.contains("bad.txt") && e.contains("line 2 has 11 columns"), "{e}");
        std::fs::write(&p, "1 2 3\n").unwrap();
        let e = read_trajectory(&p).unwrap_err().to_string();
        assert!(e.contains("3 columns"), "{e}");
    }
}

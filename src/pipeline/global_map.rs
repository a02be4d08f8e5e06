//! The global map: every scan placed at its pose, kept at one point per voxel with its
//! intensity, for the viewer and for `--map-out` (PLY or PCD).

use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use crate::io::pcd::encode_pcd_binary;
use crate::io::sequence::has_ext;
use crate::registration::voxel::voxel_key;
use crate::scan::{Pose, Scan};
use std::collections::HashSet;
use std::io::Write;
use std::path::Path;

/// World-frame points, one per voxel, in the order they were first seen.
#[derive(Debug, Clone)]
pub struct GlobalMap {
    voxel_m: f64,
    occupied: HashSet<(i32, i32, i32), crate::registration::voxel::VoxelHasher>,
    /// Map points, world frame.
    pub points: Vec<[f32; 3]>,
    /// Their intensities.
    pub intensity: Vec<f32>,
    flushed: usize,
}

impl GlobalMap {
    /// An empty map keeping one point per `voxel_m` cube.
    pub fn new(voxel_m: f64) -> Self {
        Self {
            voxel_m,
            occupied: Default::default(),
            points: Vec::new(),
            intensity: Vec::new(),
            flushed: 0,
        }
    }

    /// Adds the scan's points, moved by `pose`, to voxels not yet occupied.
    pub fn add(&mut self, scan: &Scan, pose: &Pose) {
        for (p, i) in scan.points.iter().zip(&scan.intensity) {
            let w = pose * nalgebra::Point3::new(p[0] as f64, p[1] as f64, p[2] as f64);
            if self.occupied.insert(voxel_key(&w, self.voxel_m)) {
                self.points.push([w.x as f32, w.y as f32, w.z as f32]);
                self.intensity.push(*i);
            }
        }
    }

    /// Points added since the last call (to stream the map in batches).
    pub fn take_new(&mut self) -> &[[f32; 3]] {
        let start = self.flushed;
        self.flushed = self.points.len();
        &self.points[start..]
    }

    /// Writes the map as binary PLY (`.ply`) or binary PCD (`.pcd`) with x, y, z, intensity.
    pub fn write(&self, path: &Path) -> Result<()> {
        if has_ext(path, "pcd") {
            let scan = Scan {
                points: self.points.clone(),
                intensity: self.intensity.clone(),
                ..Default::default()
            };
            let bytes = encode_pcd_binary(&scan);
            write_atomic(path, |w| w.write_all(&bytes))
        } else if has_ext(path, "ply") {
            write_atomic(path, |w| {
                write!(
                    w,
                    "ply\nformat binary_little_endian 1.0\ncomment overlap-slam global map\nelement vertex {}\n\
                     property float x\nproperty float y\nproperty float z\nproperty float intensity\nend_header\n",
                    self.points.len()
                )?;
                for (p, i) in self.points.iter().zip(&self.intensity) {
                    for v in [p[0], p[1], p[2], *i] {
                        w.write_all(&v.to_le_bytes())?;
                    }
                }
                Ok(())
            })
        } else {
            Err(Error::Usage(format!(
                "{}: the map is written as .ply or .pcd",
                path.display()
            )))
        }
    }
}

/// The scan with one point per `voxel_m` cube, in its own frame: what a keyframe keeps for
/// rebuilding the map after the poses are optimised.
pub fn thin(scan: &Scan, voxel_m: f64) -> Scan {
    let mut map = GlobalMap::new(voxel_m);
    map.add(scan, &Pose::identity());
    Scan {
        index: scan.index,
        timestamp: scan.timestamp,
        points: map.points,
        intensity: map.intensity,
        point_time: None,
        ring: None,
        gt_pose: scan.gt_pose,
        received: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{pcd::read_pcd, ply::read_ply};

    #[test]
    fn keeps_one_point_per_voxel_and_round_trips_through_ply_and_pcd() {
        let scan = Scan {
            points: vec![[0.1, 0.1, 0.1], [0.2, 0.1, 0.1], [1.5, 0.0, 0.0]],
            intensity: vec![0.5, 0.6, 0.7],
            ..Default::default()
        };
        let mut map = GlobalMap::new(1.0);
        map.add(&scan, &Pose::identity());
        map.add(
            &scan,
            &Pose::new(nalgebra::Vector3::new(10.0, 0.0, 0.0), nalgebra::Vector3::zeros()),
        );
        assert_eq!(map.points.len(), 4);
        assert_eq!(map.take_new().len(), 4);
        assert!(map.take_new().is_empty());
        let dir = tempfile::tempdir().unwrap();
        for name in ["m.ply", "m.pcd"] {
            let path = dir.path().join(name);
            map.write(&path).unwrap();
            let back = if name.ends_with("ply") {
                read_ply(&path).unwrap()
            } else {
                read_pcd(&path).unwrap()
            };
            assert_eq!(back.points, map.points);
            assert_eq!(back.intensity, map.intensity);
        }
        assert!(map.write(&dir.path().join("m.xyz")).is_err());
    }
}

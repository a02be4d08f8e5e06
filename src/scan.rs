//! The plain data types every stage exchanges: a LiDAR scan and a rigid pose.

/// Rigid transform in 3-D (rotation + translation), double precision.
pub type Pose = nalgebra::Isometry3<f64>;

/// One LiDAR sweep as it leaves a source, in the sensor frame.
///
/// Per-point attributes are parallel vectors: `points[i]`, `intensity[i]`, `point_time[i]`,
/// `ring[i]` describe the same return.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Position of the scan in its sequence (frame number in the source, not a counter).
    pub index: usize,
    /// Acquisition time of the sweep in seconds (start of the sweep).
    pub timestamp: f64,
    /// Cartesian points in metres, sensor frame (x forward, y left, z up).
    pub points: Vec<[f32; 3]>,
    /// Reflectance in [0, 1] (KITTI convention); 0 where the source has none.
    pub intensity: Vec<f32>,
    /// Seconds since `timestamp` at which each point was measured, when the source knows.
    pub point_time: Option<Vec<f32>>,
    /// Laser (beam) number of each point, when the source knows.
    pub ring: Option<Vec<u16>>,
    /// Ground-truth pose of the sensor in the world (LiDAR frame of scan 0 for KITTI).
    pub gt_pose: Option<Pose>,
    /// When the last packet of the sweep arrived (live sources): the start of its latency.
    pub received: Option<std::time::Instant>,
}

impl Scan {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when the scan holds no point.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Removes points with a NaN or infinite coordinate or intensity; returns how many went.
    pub fn drop_non_finite(&mut self) -> usize {
        let keep: Vec<bool> = self
            .points
            .iter()
            .zip(&self.intensity)
            .map(|(p, i)| p.iter().all(|c| c.is_finite()) && i.is_finite())
            .collect();
        let dropped = keep.iter().filter(|k| !**k).count();
        if dropped > 0 {
            self.retain_mask(&keep);
        }
        dropped
    }

    /// Keeps the points whose entry in `keep` is true, in every per-point vector.
    pub fn retain_mask(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &[T], keep: &[bool]) -> Vec<T> {
            v.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect()
        }
        self.points = filter(&self.points, keep);
        self.intensity = filter(&self.intensity, keep);
        if let Some(t) = &self.point_time {
            self.point_time = Some(filter(t, keep));
        }
        if let Some(r) = &self.ring {
            self.ring = Some(filter(r, keep));
        }
    }

    /// Points as f64 vectors, the precision registration works in.
    pub fn points_f64(&self) -> Vec<nalgebra::Point3<f64>> {
        self.points
            .iter()
            .map(|p| nalgebra::Point3::new(p[0] as f64, p[1] as f64, p[2] as f64))
            .collect()
    }
}

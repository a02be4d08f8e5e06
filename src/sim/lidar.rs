//! A simulated spinning LiDAR: per-beam elevations from a `calib/` model, one firing per azimuth
//! step, the vehicle moving during the sweep, range noise, dropouts that grow on dark and distant
//! surfaces, reflectance from surface reflectivity and incidence angle, and per-point timestamps.

use super::world::World;
use crate::scan::{Pose, Scan};
use crate::sensor::SensorModel;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use std::f64::consts::{PI, TAU};

/// Largest deviation of a beam from its nominal elevation (0.05 degrees).
const BEAM_JITTER_RAD: f64 = 0.05 * PI / 180.0;

/// The roof of the KITTI car below the sensor, in the sensor frame: half length, half width and
/// depth below the optical centre, metres. The lowest beams end on it ahead and behind.
const EGO_ROOF: [f64; 3] = [1.3, 0.85, 0.45];

/// Largest tilt of the sensor on its mount, about x and y (0.6 degrees): real mounts are never
/// level, which is why rows of a real range image wave with azimuth.
pub const MOUNT_TILT_RAD: f64 = 0.6 * PI / 180.0;

/// Reported intensities below this read as 0 (the sensor's quantisation of weak echoes).
const INTENSITY_FLOOR: f32 = 0.06;

/// Azimuth bins used to cull objects per firing direction.
const CULL_BINS: usize = 360;

/// One simulated sensor: its model and the per-beam quirks drawn for it.
#[derive(Debug, Clone)]
pub struct SimLidar {
    sensor: SensorModel,
    /// (cos, sin) of each beam's elevation, top beam first.
    beams: Vec<(f64, f64)>,

    /// Per-beam intensity gain: real lasers differ in power and calibration.
    beam_gain: Vec<f32>,
    /// Per-beam offset of the laser's origin perpendicular to the beam, in its vertical plane
    /// (Velodyne's vertical offset correction), metres; zero but for packet simulation.
    vertical_offset_m: Vec<f64>,
}

/// A returned point before it is packed into a [`Scan`].
struct Return {
    point: [f32; 3],
    intensity: f32,
    time: f32,
    ring: u16,
}

impl SimLidar {
    /// A sensor built from `sensor`, its beam quirks drawn from `seed`.
    pub fn new(sensor: SensorModel, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB0A5);
        // Real beams sit a little off their nominal elevation and differ in power.
        let beams: Vec<(f64, f64)> = sensor
            .beam_elevations_rad()
            .iter()
            .map(|e| e + rng.random_range(-BEAM_JITTER_RAD..BEAM_JITTER_RAD))
            .map(|e| (e.cos(), e.sin()))
            .collect();
        let beam_gain = beams.iter().map(|_| rng.random_range(0.7..1.3)).collect();
        Self {
            vertical_offset_m: vec![0.0; beams.len()],
            sensor,
            beams,
            beam_gain,
        }
    }

    /// A sensor whose beams point exactly at `elevations_rad` (in laser order) from origins
    /// raised by `vertical_offsets_m`, as a calibration table says, with no jitter: what the
    /// packet simulator fires so that decoded points can be checked against it.
    pub fn with_exact_beams(
        sensor: SensorModel,
        elevations_rad: &[f64],
        vertical_offsets_m: &[f64],
        seed: u64,
    ) -> Self {
        let mut lidar = Self::new(sensor, seed);
        lidar.beams = elevations_rad.iter().map(|e| (e.cos(), e.sin())).collect();
        lidar.beam_gain.resize(lidar.beams.len(), 1.0);
        lidar.vertical_offset_m = vertical_offsets_m.to_vec();
        lidar.vertical_offset_m.resize(lidar.beams.len(), 0.0);
        lidar
    }

    /// The sensor model.
    pub fn sensor(&self) -> &SensorModel {
        &self.sensor
    }

    /// Simulates the sweep centred on time `t0`: it starts and ends behind the vehicle and faces
    /// forward at `t0`, as KITTI's scans do (their timestamps and poses are the cameras', which
    /// fire as the LiDAR faces forward). `pose_at(t)` is the sensor's world pose at time `t`.
    /// Points are in the sensor frame at their own firing time, as a real sensor reports them;
    /// `point_time` counts seconds from `t0` (negative for the first half of the sweep).
    pub fn sweep(&self, world: &World, pose_at: &(dyn Fn(f64) -> Pose + Sync), t0: f64, seed: u64) -> Scan {
        let steps = self.sensor.azimuth_steps();
        let period = self.sensor.sweep_period_s();
        let mid = pose_at(t0);
        let start = pose_at(t0 - period / 2.0);
        let travel = (mid.translation.vector - start.translation.vector).norm();
        let bins = self.cull(world, &mid, travel + 0.5);
        let noise = Normal::new(0.0, self.sensor.range_noise_m.max(1e-9)).expect("finite sigma");

        let columns: Vec<Vec<Return>> = (0..steps)
            .into_par_iter()
            .map(|k| {
                let dt = (k as f64 / steps as f64 - 0.5) * period;
                let pose = pose_at(t0 + dt);
                // Clockwise spin starting behind the vehicle, as Velodynes report in KITTI.
                let azimuth = PI - k as f64 * TAU / steps as f64;
                let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64);
                self.fire_column(world, &pose, azimuth, dt as f32, &bins, &noise, &mut rng)
            })
            .collect();

        let n: usize = columns.iter().map(Vec::len).sum();
        let mut scan = Scan {
            points: Vec::with_capacity(n),
            intensity: Vec::with_capacity(n),
            point_time: Some(Vec::with_capacity(n)),
            ring: Some(Vec::with_capacity(n)),
            ..Default::default()
        };
        for r in columns.into_iter().flatten() {
            scan.points.push(r.point);
            scan.intensity.push(r.intensity);
            scan.point_time.as_mut().expect("set above").push(r.time);
            scan.ring.as_mut().expect("set above").push(r.ring);
        }
        scan
    }

    #[allow(clippy::too_many_arguments)]
    fn fire_column(
        &self,
        world: &World,
        pose: &Pose,
        azimuth: f64,
        time: f32,
        bins: &[Vec<(u32, f32)>],
        noise: &Normal<f64>,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Return> {
        let (sa, ca) = azimuth.sin_cos();
        let rot = pose.rotation.to_rotation_matrix();
        let heading = rot * nalgebra::Vector3::new(ca, sa, 0.0);
        let candidates = &bins[azimuth_bin(heading.y.atan2(heading.x))];
        (0..self.beams.len())
            .filter_map(|ring| {
                let (point, intensity, _) = self.fire_beam(world, pose, ring, (sa, ca), candidates, noise, rng)?;
                Some(Return {
                    point,
                    intensity,
                    time,
                    ring: ring as u16,
                })
            })
            .collect()
    }

    /// Fires beam `ring` at the azimuth whose (sin, cos) is `azimuth` (counter-clockwise in the
    /// sensor frame) from `pose`, against the objects `candidates` (a bin of [`Self::cull`]):
    /// the point in the sensor frame, its intensity and its range along the beam, or `None` when
    /// no echo comes back.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn fire_beam(
        &self,
        world: &World,
        pose: &Pose,
        ring: usize,
        (sa, ca): (f64, f64),
        candidates: &[(u32, f32)],
        noise: &Normal<f64>,
        rng: &mut ChaCha8Rng,
    ) -> Option<([f32; 3], f32, f64)> {
        let (ce, se) = self.beams[ring];
        if hits_ego_roof(ce, se, ca, sa) {
            return None;
        }
        let local = nalgebra::Vector3::new(ce * ca, ce * sa, se);
        let rot = pose.rotation.to_rotation_matrix();
        let d = rot * local;
        // The laser's origin, off the optical centre perpendicular to the beam.
        let origin = nalgebra::Vector3::new(-se * ca, -se * sa, ce) * self.vertical_offset_m[ring];
        let o = pose.translation.vector + rot * origin;
        let hit = world.cast(
            [o.x, o.y, o.z],
            [d.x, d.y, d.z],
            self.sensor.max_range_m,
            candidates,
            rng.random_range(0.0..1.0),
        )?;
        let range = hit.t + noise.sample(rng);
        if range < self.sensor.min_range_m || range > self.sensor.max_range_m {
            return None;
        }
        let cos_inc = (d.x * hit.normal[0] + d.y * hit.normal[1] + d.z * hit.normal[2]).abs() as f32;
        let echo = hit.reflectivity * (0.7 + 0.3 * cos_inc);
        // Weak echoes from far, dark or grazing surfaces fall under the detection threshold.
        let far = (range / self.sensor.max_range_m) as f32;
        let p_drop = self.sensor.dropout as f32 + (far * far * 2.0 + 0.02) * (1.0 - echo.min(1.0)).powi(3);
        if rng.random_range(0.0..1.0f32) < p_drop {
            return None;
        }
        let raw = echo * self.beam_gain[ring] * (1.0 - 0.25 * far) + rng.random_range(-0.02..0.02f32);
        let intensity = if raw < INTENSITY_FLOOR { 0.0 } else { raw.min(1.0) };
        let point = [
            (origin.x + range * local.x) as f32,
            (origin.y + range * local.y) as f32,
            (origin.z + range * local.z) as f32,
        ];
        Some((point, intensity, range))
    }

    /// For each azimuth bin around `center`, the objects within range that can lie in it, nearest
    /// first, with their nearest possible distance.
    pub(crate) fn cull(&self, world: &World, center: &Pose, margin: f64) -> Vec<Vec<(u32, f32)>> {
        let c = center.translation.vector;
        let mut bins: Vec<Vec<(u32, f32)>> = vec![Vec::new(); CULL_BINS];
        let bin_width = TAU / CULL_BINS as f64;
        for (k, obj) in world.objects.iter().enumerate() {
            let (dx, dy) = (obj.center[0] - c.x, obj.center[1] - c.y);
            let dist = dx.hypot(dy);
            let r = obj.radius + margin;
            let near = (dist - r).max(0.0);
            if near > self.sensor.max_range_m {
                continue;
            }
            if dist <= r {
                bins.iter_mut().for_each(|b| b.push((k as u32, 0.0)));
                continue;
            }
            let half = (r / dist).asin() + bin_width;
            let center_angle = dy.atan2(dx);
            let first = ((center_angle - half + PI) / bin_width).floor() as i64;
            let last = ((center_angle + half + PI) / bin_width).floor() as i64;
            for b in first..=last {
                bins[b.rem_euclid(CULL_BINS as i64) as usize].push((k as u32, near as f32));
            }
        }
        for b in &mut bins {
            b.sort_by(|x, y| x.1.total_cmp(&y.1));
        }
        bins
    }
}

/// True when a beam (elevation cos/sin, azimuth cos/sin) ends on the vehicle's own roof.
fn hits_ego_roof(ce: f64, se: f64, ca: f64, sa: f64) -> bool {
    if se >= 0.0 {
        return false;
    }
    let t = EGO_ROOF[2] / -se;
    (t * ce * ca).abs() < EGO_ROOF[0] && (t * ce * sa).abs() < EGO_ROOF[1]
}

/// The cull bin of a world-frame direction `angle` (radians, counter-clockwise).
pub(crate) fn azimuth_bin(angle: f64) -> usize {
    (((angle + PI) / TAU * CULL_BINS as f64).floor() as i64).rem_euclid(CULL_BINS as i64) as usize
}

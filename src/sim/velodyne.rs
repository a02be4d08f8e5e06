//! The packet simulator behind `sim-velodyne`: a simulated drive fired on a Velodyne's own
//! schedule (each laser at its firing time and azimuth) and packed into its data packets, so
//! the driver can be tested end to end without a sensor.

use super::lidar::{SimLidar, azimuth_bin};
use super::{SimConfig, Simulation};
use crate::io::velodyne::encode::{Firing, encode, slot};
use crate::io::velodyne::packet::{self, BLOCKS, CHANNELS, HOUR_US, PACKET_BYTES};
use crate::io::velodyne::timing::Timing;
use crate::io::velodyne::{Calibration, Model, ReturnMode};
use crate::scan::Pose;
use crate::sensor::SensorModel;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::Normal;
use rayon::prelude::*;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct PacketSimConfig {
    /// The sensor.
    pub model: Model,
    /// World, route and noise seed.
    pub seed: u64,
    /// Sweeps to drive; `None`: the simulated drive's own length.
    pub sweeps: Option<usize>,
    /// Azimuth of the first firing, degrees clockwise from forward (where `live` cuts sweeps by
    /// default).
    pub start_azimuth_deg: f64,
    /// The sensor's clock at the first packet, microseconds past the hour.
    pub start_timestamp_us: u32,
    /// Which drive through the world ([`SimConfig::drive_seed`]).
    pub drive_seed: u64,
    /// Sweeps of the drive skipped before the first one sent: the sensor starts mid-drive.
    pub first_sweep: usize,
}

impl Default for PacketSimConfig {
    fn default() -> Self {
        Self {
            model: Model::Vlp16,
            seed: 0,
            sweeps: None,
            start_azimuth_deg: 0.0,
            start_timestamp_us: 0,
            drive_seed: 0,
            first_sweep: 0,
        }
    }
}

/// One simulated data packet.
#[derive(Debug, Clone)]
pub struct SimPacket {
    /// The UDP payload.
    pub bytes: [u8; PACKET_BYTES],
    /// Seconds from the first packet.
    pub time_s: f64,
    /// Exact echoes in the order a decoder yields them (sensor frame at each firing), for
    /// checking decoded points.
    pub truth: Vec<[f32; 3]>,
}

/// One laser's echo: the exact point and what the packet carries.
#[derive(Debug, Clone, Copy)]
struct Echo {
    point: [f32; 3],
    raw: u16,
    reflectivity: u8,
}

/// A drive fired as packets.
pub struct PacketSim {
    cfg: PacketSimConfig,
    sim: Simulation,
    lidar: SimLidar,
    timing: Timing,
    resolution_m: f64,
    sweep_period_s: f64,
    sweeps: usize,
}

impl PacketSim {
    /// Plans the drive and builds the sensor from its calibration table in `calib/`.
    pub fn new(cfg: PacketSimConfig) -> Self {
        let sensor = SensorModel::builtin(cfg.model.sensor_model_name()).expect("shipped sensor models are valid");
        let sim = Simulation::new(&SimConfig {
            seed: cfg.seed,
            drive_seed: cfg.drive_seed,
            frames: cfg.sweeps.map(|n| n + cfg.first_sweep),
            sensor: sensor.clone(),
            ..Default::default()
        });
        let calib = Calibration::builtin(cfg.model);
        let elevations: Vec<f64> = calib.lasers.iter().map(|l| l.elevation_rad).collect();
        let offsets: Vec<f64> = calib.lasers.iter().map(|l| l.vertical_offset_m).collect();
        let lidar = SimLidar::with_exact_beams(sensor.clone(), &elevations, &offsets, cfg.seed);
        Self {
            sweeps: sim.frames().saturating_sub(cfg.first_sweep),
            timing: Timing::of(cfg.model),
            resolution_m: calib.distance_resolution_m,
            sweep_period_s: sensor.sweep_period_s(),
            cfg,
            sim,
            lidar,
        }
    }

    /// The sensor's world pose `t` seconds after the first packet.
    fn world_pose(&self, t: f64) -> Pose {
        self.sim
            .world_pose(t + self.cfg.first_sweep as f64 * self.sweep_period_s)
    }

    /// Sweeps in the drive.
    pub fn sweeps(&self) -> usize {
        self.sweeps
    }

    /// Seconds per sweep.
    pub fn sweep_period_s(&self) -> f64 {
        self.sweep_period_s
    }

    /// Seconds between packets.
    pub fn packet_period_s(&self) -> f64 {
        Timing::packet_period_us(self.cfg.model, ReturnMode::Strongest) * 1e-6
    }

    /// Packets that cover every sweep.
    pub fn packets(&self) -> usize {
        (self.sweeps as f64 * self.sweep_period_s / self.packet_period_s()).ceil() as usize + 1
    }

    /// Ground truth of each sweep: the sensor at mid-sweep (where the odometry reports it),
    /// relative to sweep 0.
    pub fn ground_truth(&self) -> Vec<Pose> {
        let at = |k: usize| self.world_pose((k as f64 + 0.5) * self.sweep_period_s);
        let origin = at(0).inverse();
        (0..self.sweeps).map(|k| origin * at(k)).collect()
    }

    /// Packets `range`, simulated in parallel.
    pub fn chunk(&self, range: std::ops::Range<usize>) -> Vec<SimPacket> {
        if range.is_empty() {
            return Vec::new();
        }
        let period = self.packet_period_s();
        let (t0, t1) = (range.start as f64 * period, range.end as f64 * period);
        let centre = self.world_pose(0.5 * (t0 + t1));
        let travel = (self.world_pose(t1).translation.vector - self.world_pose(t0).translation.vector).norm();
        let bins = self.lidar.cull(self.sim.world(), &centre, travel + 0.5);
        range.into_par_iter().map(|k| self.packet(k, &bins)).collect()
    }

    /// Packet `k`, with `bins` the objects culled around it.
    fn packet(&self, k: usize, bins: &[Vec<(u32, f32)>]) -> SimPacket {
        let model = self.cfg.model;
        let per_packet = Timing::firings_per_packet(model, ReturnMode::Strongest);
        let noise = Normal::new(0.0, self.lidar.sensor().range_noise_m.max(1e-9)).expect("finite sigma");
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64);
        let echoes: Vec<Vec<Option<Echo>>> = (0..per_packet)
            .map(|j| self.firing(k * per_packet + j, bins, &noise, &mut rng))
            .collect();
        let firings: Vec<Firing> = echoes
            .iter()
            .zip(0..)
            .map(|(lasers, j)| Firing {
                azimuth: self.firing_azimuth_cdeg(k * per_packet + j).round().rem_euclid(36000.0) as u16,
                distance: lasers.iter().map(|e| e.map_or(0, |e| e.raw)).collect(),
                reflectivity: lasers.iter().map(|e| e.map_or(0, |e| e.reflectivity)).collect(),
            })
            .collect();
        let time_s = k as f64 * self.packet_period_s();
        let timestamp = (self.cfg.start_timestamp_us as u64 + (time_s * 1e6).round() as u64) % HOUR_US as u64;
        let packet = encode(model, ReturnMode::Strongest, &firings, timestamp as u32).expect("one packet's firings");
        // The echoes in the order a decoder reads them: block by block, channel by channel.
        let truth = (0..BLOCKS)
            .flat_map(|b| (0..CHANNELS).map(move |c| slot(model, b, c)))
            .filter_map(|(j, laser)| echoes[j][laser].map(|e| e.point))
            .collect();
        SimPacket {
            bytes: packet::write(&packet, model),
            time_s,
            truth,
        }
    }

    /// Azimuth of global firing `n`'s first laser, hundredths of a degree clockwise (unwrapped).
    fn firing_azimuth_cdeg(&self, n: usize) -> f64 {
        let t = n as f64 * self.timing.firing_period_us * 1e-6;
        self.cfg.start_azimuth_deg * 100.0 + 36000.0 / self.sweep_period_s * t
    }

    /// Every laser of global firing `n`, each at its own time and azimuth.
    fn firing(
        &self,
        n: usize,
        bins: &[Vec<(u32, f32)>],
        noise: &Normal<f64>,
        rng: &mut ChaCha8Rng,
    ) -> Vec<Option<Echo>> {
        let t = n as f64 * self.timing.firing_period_us * 1e-6;
        let pose = self.world_pose(t);
        let rotation = pose.rotation.to_rotation_matrix();
        let azimuth_cdeg = self.firing_azimuth_cdeg(n);
        let turn_cdeg_per_s = 36000.0 / self.sweep_period_s;
        (0..self.cfg.model.lasers())
            .map(|laser| {
                let offset_s = (laser % self.timing.lasers_in_sequence) as f64 * self.timing.laser_step_us * 1e-6;
                // Clockwise azimuth, in hundredths of a degree, to a counter-clockwise angle.
                let angle = -((azimuth_cdeg + turn_cdeg_per_s * offset_s) * 0.01).to_radians();
                let (sa, ca) = angle.sin_cos();
                let heading = rotation * nalgebra::Vector3::new(ca, sa, 0.0);
                let candidates = &bins[azimuth_bin(heading.y.atan2(heading.x))];
                let (point, intensity, range) =
                    self.lidar
                        .fire_beam(self.sim.world(), &pose, laser, (sa, ca), candidates, noise, rng)?;
                let raw = (range / self.resolution_m).round();
                (raw >= 1.0 && raw <= u16::MAX as f64).then(|| Echo {
                    point,
                    raw: raw as u16,
                    reflectivity: (intensity * 255.0).round() as u8,
                })
            })
            .collect()
    }
}

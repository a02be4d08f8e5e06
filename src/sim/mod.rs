//! The simulated world and sensor: a deterministic, seeded source of realistic LiDAR sweeps with
//! exact ground truth, used as the embedded default, for tests, and to train the learned models.

pub mod geometry;
pub mod lidar;
pub mod route;
pub mod velodyne;
pub mod world;

use crate::error::{Error, Result};
use crate::frames::Mounting;
use crate::io::atomic::write_bytes_atomic;
use crate::io::{FrameRange, ScanSource, kitti, poses};
use crate::scan::{Pose, Scan};
use crate::sensor::SensorModel;
use lidar::SimLidar;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use route::{DriveParams, LoopRoad, Route};
use std::path::Path;
use std::sync::Arc;
pub use world::Scene;
use world::World;

/// KITTI sequence 00's calibration, written beside simulated sequences so that they load (and
/// convert between camera and LiDAR frames) exactly like real ones.
pub const KITTI_00_CALIB: &str = "\
P0: 7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 0.000000000000e+00 0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P1: 7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 -3.861448000000e+02 0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 0.000000000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00
P2: 7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 4.538225000000e+01 0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 -1.130887000000e-01 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 3.779761000000e-03
P3: 7.188560000000e+02 0.000000000000e+00 6.071928000000e+02 -3.372877000000e+02 0.000000000000e+00 7.188560000000e+02 1.852157000000e+02 2.369057000000e+00 0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 4.915215000000e-03
Tr: 4.276802385584e-04 -9.999672484946e-01 -8.084491683471e-03 -1.198459927713e-02 -7.210626507497e-03 8.081198471645e-03 -9.999413164504e-01 -5.403984729748e-02 9.999738645903e-01 4.859485810390e-04 -7.206933692422e-03 -2.921968648686e-01
";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// World, route and noise seed.
    pub seed: u64,
    /// Number of frames; `None` drives until both revisits are done.
    pub frames: Option<usize>,
    /// The LiDAR.
    pub sensor: SensorModel,
    /// How the car drives.
    pub drive: DriveParams,
    /// What surrounds the road.
    pub scene: Scene,
    /// Which drive through the world: 0 is the default drive; any other is another drive
    /// through the same world (another speed, another turn-around point, other sensor noise),
    /// the way a robot comes back to a site it mapped.
    pub drive_seed: u64,
    /// Where the LiDAR sits on the car (`base_link → sensor`, the base on the ground under the
    /// rear axle's middle); `None`: the sensor's model height, level but for a small random
    /// mounting tilt (every drive before mountings existed).
    pub mounting: Option<Mounting>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            frames: None,
            sensor: SensorModel::hdl64(),
            drive: DriveParams::default(),
            scene: Scene::Street,
            drive_seed: 0,
            mounting: None,
        }
    }
}

/// A simulated drive: world, route and sensor, queried frame by frame.
pub struct Simulation {
    world: World,
    route: Route,
    lidar: SimLidar,
    /// The world's seed.
    world_seed: u64,
    /// Which drive through it.
    drive_seed: u64,
    /// Seed of the sensor noise.
    seed: u64,
    frames: usize,
    origin_inv: Pose,
    /// Sensor frame relative to the level vehicle frame (mount tilt).
    mount: Pose,
    /// Height of the vehicle frame above the ground: the sensor's model height, or 0 when a
    /// mounting puts the sensor above a base on the ground.
    base_height_m: f64,
}

impl Simulation {
    /// Builds the world and plans the drive for `config`.
    pub fn new(config: &SimConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let lx = rng.random_range(60.0..120.0);
        let ly = rng.random_range(40.0..75.0);
        let r = rng.random_range(10.0..16.0);
        let road = match config.scene {
            Scene::Street => LoopRoad::rounded_rectangle(lx, ly, r),
            // Long straights, so that the bends stay out of the sensor's reach for a while.
            Scene::Tunnel | Scene::OpenField => LoopRoad::rounded_rectangle(800.0, 60.0, 14.0),
        };
        let period = config.sensor.sweep_period_s();
        let drive = drive_variant(config.drive, config.drive_seed);
        // Plan for the longest drive we may need; the default stops once back on the revisited stretch.
        let lap_time = road.perimeter() / drive.turn_mps.max(1.0);
        let planned = config.frames.map_or(lap_time * 3.0, |f| f as f64 * period + 10.0);
        let route = Route::new(road.clone(), drive, planned);
        let frames = config.frames.unwrap_or_else(|| {
            let back =
                route.turn_start() + std::f64::consts::PI * route::LANE_OFFSET_M + road.perimeter() * drive.extra_laps;
            let mut f = 0;
            while route.distance_at(f as f64 * period) < back {
                f += 1;
            }
            f
        });
        let world = World::generate(config.seed, road, config.scene);
        let noise_seed = config.seed ^ config.drive_seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let lidar = SimLidar::new(config.sensor.clone(), noise_seed);
        let tilt = lidar::MOUNT_TILT_RAD;
        let tilt = Pose::new(
            nalgebra::Vector3::zeros(),
            nalgebra::Vector3::new(rng.random_range(-tilt..tilt), rng.random_range(-tilt..tilt), 0.0),
        );
        let (mount, base_height_m) = match config.mounting {
            Some(m) => (m.base_from_sensor, 0.0),
            None => (tilt, config.sensor.mount_height_m),
        };
        let mut sim = Self {
            world,
            route,
            lidar,
            world_seed: config.seed,
            drive_seed: config.drive_seed,
            seed: noise_seed,
            frames,
            origin_inv: Pose::identity(),
            mount,
            base_height_m,
        };
        sim.origin_inv = sim.world_pose(0.0).inverse();
        sim
    }

    /// Number of frames in the drive.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// The sensor model.
    pub fn sensor(&self) -> &SensorModel {
        self.lidar.sensor()
    }

    /// The world the sensor moves through.
    pub fn world(&self) -> &World {
        &self.world
    }

    /// Time of frame `i`, seconds.
    pub fn frame_time(&self, i: usize) -> f64 {
        i as f64 * self.sensor().sweep_period_s()
    }

    /// Sensor pose in the world frame at time `t`.
    pub fn world_pose(&self, t: f64) -> Pose {
        self.base_world_pose(t) * self.mount
    }

    /// Pose of the car's base (the vehicle frame) in the world frame at time `t`.
    fn base_world_pose(&self, t: f64) -> Pose {
        let p = self.route.pose_at_time(t);
        self.world.vehicle_pose(p.xy, p.yaw, self.base_height_m)
    }

    /// Ground-truth pose of the car's base at frame `i` relative to its pose at frame 0 (the
    /// trajectory `base_link` follows in the odom frame).
    pub fn base_gt_pose(&self, i: usize) -> Pose {
        self.base_world_pose(0.0).inverse() * self.base_world_pose(self.frame_time(i))
    }

    /// Ground-truth pose of frame `i` relative to frame 0 (the KITTI convention).
    pub fn gt_pose(&self, i: usize) -> Pose {
        self.origin_inv * self.world_pose(self.frame_time(i))
    }

    /// Frame `i` as KITTI's odometry scans are: every point moved into the sensor frame at the
    /// scan's timestamp with the true motion (KITTI used its GPS/IMU), without per-point times.
    pub fn motion_compensated_scan(&self, i: usize) -> Scan {
        let mut scan = self.scan(i);
        let Some(times) = scan.point_time.take() else {
            return scan;
        };
        let t0 = scan.timestamp;
        let to_reference = self.world_pose(t0).inverse();
        let mut cached: Option<(f32, Pose)> = None;
        for (p, dt) in scan.points.iter_mut().zip(times) {
            // Points come in firings that share one time: one pose per firing.
            let motion = match cached {
                Some((t, m)) if t == dt => m,
                _ => {
                    let m = to_reference * self.world_pose(t0 + dt as f64);
                    cached = Some((dt, m));
                    m
                }
            };
            let q = motion * nalgebra::Point3::new(p[0] as f64, p[1] as f64, p[2] as f64);
            *p = [q.x as f32, q.y as f32, q.z as f32];
        }
        scan
    }

    /// Simulates frame `i`.
    pub fn scan(&self, i: usize) -> Scan {
        let t0 = self.frame_time(i);
        let pose_at = |t: f64| self.world_pose(t);
        let mut scan = self.lidar.sweep(
            &self.world,
            &pose_at,
            t0,
            self.seed.wrapping_mul(1_000_003).wrapping_add(i as u64),
        );
        scan.index = i;
        scan.timestamp = t0;
        scan.gt_pose = Some(self.gt_pose(i));
        scan
    }
}

/// The drive numbered `drive_seed` through a world: the default's for 0; otherwise a cruise
/// speed of 6.5-10.5 m/s and a turn-around 5-45 % of a lap past the start, drawn from the seed.
fn drive_variant(default: DriveParams, drive_seed: u64) -> DriveParams {
    if drive_seed == 0 {
        return default;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(drive_seed);
    DriveParams {
        cruise_mps: rng.random_range(6.5..10.5),
        extra_laps: rng.random_range(0.05..0.45),
        ..default
    }
}

/// A simulated drive as a scan source.
pub struct SimSource {
    sim: Arc<Simulation>,
    frames: std::ops::Range<usize>,
}

impl SimSource {
    /// Frames `range` of `sim`.
    pub fn new(sim: Arc<Simulation>, range: FrameRange) -> Self {
        let frames = range.clamp_to(sim.frames());
        Self { sim, frames }
    }

    /// The simulation behind the source.
    pub fn simulation(&self) -> &Arc<Simulation> {
        &self.sim
    }
}

impl Iterator for SimSource {
    type Item = Result<Scan>;
    fn next(&mut self) -> Option<Self::Item> {
        let i = self.frames.next()?;
        Some(Ok(self.sim.scan(i)))
    }
}

impl ScanSource for SimSource {
    fn name(&self) -> String {
        let drive = match self.sim.drive_seed {
            0 => String::new(),
            d => format!(", drive {d}"),
        };
        format!(
            "simulated drive (seed {}{drive}, {})",
            self.sim.world_seed,
            self.sim.sensor().name
        )
    }
    fn len_hint(&self) -> Option<usize> {
        Some(self.frames.len())
    }
    fn has_ground_truth(&self) -> bool {
        true
    }
}

/// Writes frames `range` of `sim` in the KITTI flat layout (`velodyne/`, `calib.txt`,
/// `poses.txt` in the camera frame, `times.txt`); `on_frame` is told after each scan. The scans
/// are ego-motion compensated, as KITTI's odometry scans are.
pub fn write_kitti_flat(sim: &Simulation, dir: &Path, range: FrameRange, on_frame: &dyn Fn(usize)) -> Result<()> {
    let velodyne = dir.join("velodyne");
    std::fs::create_dir_all(&velodyne).map_err(|e| Error::io(&velodyne, e))?;
    let frames = range.clamp_to(sim.frames());
    let mut lidar_poses = Vec::with_capacity(frames.len());
    let mut times = String::new();
    for (k, i) in frames.clone().enumerate() {
        let scan = sim.motion_compensated_scan(i);
        write_bytes_atomic(&velodyne.join(format!("{k:06}.bin")), &kitti::encode_bin(&scan))?;
        lidar_poses.push(sim.gt_pose(frames.start).inverse() * sim.gt_pose(i));
        times.push_str(&format!("{:.6e}\n", sim.frame_time(i) - sim.frame_time(frames.start)));
        on_frame(k);
    }
    let calib_path = dir.join("calib.txt");
    write_bytes_atomic(&calib_path, KITTI_00_CALIB.as_bytes())?;
    let tr = kitti::read_calib_tr(&calib_path)?;
    poses::write_kitti(&dir.join("poses.txt"), &kitti::lidar_to_camera_poses(&lidar_poses, &tr))?;
    write_bytes_atomic(&dir.join("times.txt"), times.as_bytes())
}

//! Argument groups shared by several commands, and the parsers of their values.

use crate::frames::{BaseFrame, Mounting, PoseFrame};
use crate::io::velodyne::{Model, VelodyneConfig};
use crate::io::{Format, FrameRange, SourceOptions};
use crate::jobs::eval_loops::LoopMethod;
use crate::odometry::{OdometryConfig, OdometryKind};
use crate::perception::ivr_cam::CamTarget;
use crate::perception::ivr_cam::stage::IvrCamConfig;
use crate::perception::{PerceptionStage, StageKind, StageOptions, build_stages};
use crate::pipeline::live::{LiveSource, PacketInput};
use crate::pipeline::loop_worker::LoopClosureConfig;
use crate::pipeline::map_saves::SaveRequests;
use crate::pipeline::{PipelineConfig, SourceSpec, VizOptions};
use crate::sensor::SensorModel;
use crate::sensor::detect::{self, Detection};
use crate::sim::{Scene, SimConfig};
use crate::viz::VizTarget;
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Where scans come from and how to read them.
#[derive(Args)]
pub struct SourceArgs {
    /// KITTI folder, PLY/PCD file or folder, or a ROS recording (rosbag2 folder, .mcap, .db3,
    /// ROS 1 .bag); absent means the embedded simulated drive.
    pub path: Option<PathBuf>,
    /// PointCloud2 topic of a ROS recording (default: the only one).
    #[arg(long)]
    pub topic: Option<String>,
    /// Ground-truth topic of a ROS recording (nav_msgs/Odometry or geometry_msgs/PoseStamped).
    #[arg(long)]
    pub gt_topic: Option<String>,
    /// Frames to take: A..B, A.., ..B, A..=B or N.
    #[arg(long, value_parser = parse_frames)]
    pub frames: Option<FrameRange>,
    /// Frames to leave out, as a sensor that falls silent would (A..B): the run sees the gap
    /// in the timestamps and nothing between.
    #[arg(long, value_name = "A..B", value_parser = parse_frames)]
    pub drop: Option<FrameRange>,
    /// Force the input format (kitti, ply, pcd) instead of guessing from the path.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Ground-truth trajectory for PLY/PCD input (KITTI 3x4 or TUM).
    #[arg(long)]
    pub poses: Option<PathBuf>,
    /// Sensor model: auto (the shipped model nearest to what the first scan shows: its beams
    /// and their elevations), hdl64, hdl32, vlp16, os1-64, or a path to a TOML file. A simulated
    /// drive without a path uses hdl64 for auto.
    #[arg(long, default_value = detect::AUTO)]
    pub sensor: String,
    /// Seed of the simulated drive (when no path is given).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Scene of the simulated drive.
    #[arg(long, default_value = "street", value_parser = scene_parser())]
    pub scene: Scene,
    /// Another drive through the same simulated world (0: the default drive): another speed,
    /// turn-around point and sensor noise, for mapping with one drive and localising with another.
    #[arg(long, default_value_t = 0)]
    pub drive: u64,
}

impl SourceArgs {
    /// The frames asked for (all when not given).
    pub fn frame_range(&self) -> FrameRange {
        self.frames.unwrap_or_default()
    }

    /// The sensor model named by `--sensor`; see [`Self::sensor`].
    pub fn sensor_model(&self) -> Result<SensorModel> {
        self.sensor().map(|(model, _)| model)
    }

    /// The sensor model, and with `auto` what the data showed: the shipped model nearest to the
    /// first scan of the path (hdl64 for the simulated drive, or when the first scan cannot be
    /// read: the run then reports that scan's error). A shipped model named by `--sensor` that
    /// the first scan disagrees with is kept, with a warning that names both.
    pub fn sensor(&self) -> Result<(SensorModel, Option<Detection>)> {
        // The scan alone: its ground truth is read (and placed) by the run itself.
        let first_scan = || {
            let options = SourceOptions {
                gt_topic: None,
                poses: None,
                ..self.options()
            };
            let spec = SourceSpec::Path {
                path: self.path.clone()?,
                options,
            };
            spec.open(self.frame_range()).ok()?.next()?.ok()
        };
        detect::choose(&self.sensor, first_scan)
    }

    fn options(&self) -> SourceOptions {
        SourceOptions {
            format: self.format,
            frames: self.frame_range(),
            poses: self.poses.clone(),
            topic: self.topic.clone(),
            gt_topic: self.gt_topic.clone(),
            ..SourceOptions::default()
        }
    }

    /// Another recording read with the same options (format, topics, frames).
    pub fn spec_of(&self, path: &std::path::Path) -> SourceSpec {
        SourceSpec::Path {
            path: path.to_path_buf(),
            options: self.options(),
        }
    }

    /// The path to read, or the simulated drive for `sensor` when no path was given.
    pub fn spec(&self, sensor: &SensorModel) -> SourceSpec {
        match &self.path {
            Some(path) => SourceSpec::Path {
                path: path.clone(),
                options: self.options(),
            },
            // A frame range that ends beyond the default drive lengthens the drive.
            None => SourceSpec::Simulated(SimConfig {
                seed: self.seed,
                scene: self.scene,
                drive_seed: self.drive,
                frames: self.frames.and_then(|f| f.end),
                sensor: sensor.clone(),
                ..SimConfig::default()
            }),
        }
    }
}

/// What the pipeline does with the scans: outputs, viewer, odometry, loop closure.
#[derive(Args)]
pub struct PipelineArgs {
    /// Write poses_kitti.txt, poses_tum.txt and metrics.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where the LiDAR sits on the robot (base_link -> sensor): x,y,z,roll,pitch,yaw in metres
    /// and radians, or a .toml file with xyz = [..] and rpy = [..] (URDF's origin). Poses written
    /// and published are then the base's.
    #[arg(long, value_name = "X,Y,Z,ROLL,PITCH,YAW|FILE", allow_hyphen_values = true)]
    pub lidar_to_base: Option<String>,
    /// The robot's base frame: whose pose is published on /tf (odom -> base), and where a
    /// recording's /tf_static chain to the clouds' frame starts when --lidar-to-base is absent.
    #[arg(long, default_value = "base_link")]
    pub base_frame: String,
    /// Which body written and published poses describe: the robot's base, moved from the
    /// sensor by --lidar-to-base, or the sensor itself.
    #[arg(long, value_enum, default_value = "base")]
    pub pose_frame: PoseFrame,
    /// Save a rerun recording to this .rrd file.
    #[arg(long, conflicts_with_all = ["spawn", "connect"])]
    pub rrd: Option<PathBuf>,
    /// Start a rerun viewer and stream to it.
    #[arg(long, conflicts_with = "connect")]
    pub spawn: bool,
    /// Stream to a running rerun viewer (host:port or rerun+http:// URL).
    #[arg(long)]
    pub connect: Option<String>,
    /// Send the scan and the images to the viewer every N-th frame only (trajectories, map,
    /// loops and timings still every frame): a smaller recording of a long run.
    #[arg(long, default_value_t = VizOptions::default().every)]
    pub viz_every: usize,
    /// Write the global map (voxel-downsampled, with intensity) to this .ply or .pcd file.
    #[arg(long)]
    pub map_out: Option<PathBuf>,
    /// Voxel size of the exported map, metres.
    #[arg(long, default_value_t = 0.2)]
    pub map_voxel: f64,
    /// Start inside the map saved in this folder: localise in it (Scan Context or OverlapNet
    /// descriptors, then ICP), then write every pose in its frame and correct the run against it.
    #[arg(long, value_name = "DIR")]
    pub map: Option<PathBuf>,
    /// Save the map (keyframes, descriptors, pose graph) into this folder when the run ends,
    /// and while it runs at every SIGUSR1 (`kill -USR1 PID`) or, with --ros2, every message on
    /// the save-map topic; with --map, this run's keyframes extend that map.
    #[arg(long, value_name = "DIR")]
    pub save_map: Option<PathBuf>,
    /// Localise in the --map without changing it: pure localisation, no keyframes added and
    /// no loops within the run.
    #[arg(long, requires = "map", conflicts_with = "save_map")]
    pub freeze: bool,
    /// Odometry: kiss (KISS-ICP-style scan-to-map, default) or f2f (frame-to-frame point-to-plane ICP).
    #[arg(long, default_value = "kiss", value_parser = parse_odometry)]
    pub odometry: OdometryKind,
    /// KISS odometry settings from a TOML file (keys as in metrics.json's "odometry").
    #[arg(long)]
    pub odometry_config: Option<PathBuf>,
    /// Override one odometry setting, e.g. `--set voxel_size_m=0.8` (repeatable; after the file).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Odometry only: no loop search, verification or pose graph.
    #[arg(long)]
    pub no_loops: bool,
    /// Loop detector scoring candidates and seeding ICP verification with its yaw: scancontext
    /// (the default: it ranks real scans' pairs best), overlapnet, overlapnet-mimo (refuses
    /// candidates its subnetworks disagree on), or fused (both: the product of their scores,
    /// OverlapNet's yaw). `match` and `eval-loops` default to overlapnet.
    #[arg(long, default_value = "scancontext")]
    pub loop_detector: LoopMethod,
    /// OverlapNet weights for the loop search (.safetensors with its .json beside it, or the
    /// authors' Keras HDF5 file model_geo.weight); default: shipped.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Perception stage run on every projected frame and shown in rerun (repeatable): liif, ivr-cam.
    #[arg(long = "stage", value_name = "NAME", value_parser = parse_stage)]
    pub stages: Vec<StageKind>,
    /// LIIF stage: keep every N-th of the 64 rows before rendering them back (4: a 16-row scan).
    #[arg(long, default_value_t = 4)]
    pub liif_factor: usize,
    /// IVR-CAM stage: explain every N-th frame.
    #[arg(long, default_value_t = 5)]
    pub cam_every: usize,
    /// IVR-CAM stage: the decision explained, yaw (the head that works) or overlap (Grad-CAM).
    #[arg(long, default_value = "yaw", value_parser = parse_cam_target)]
    pub cam_target: CamTarget,
    /// No progress bar and no summary line.
    #[arg(long)]
    pub quiet: bool,
}

impl PipelineArgs {
    /// The perception stages asked for, with their shipped weights.
    pub fn stages(&self) -> Result<Vec<Box<dyn PerceptionStage>>> {
        build_stages(
            &self.stages,
            &StageOptions {
                liif_factor: self.liif_factor,
                ivr_cam: IvrCamConfig {
                    every: self.cam_every,
                    target: self.cam_target,
                    ..IvrCamConfig::default()
                },
                overlapnet_weights: self.weights.clone(),
            },
        )
    }

    fn viz_target(&self) -> VizTarget {
        match (&self.rrd, self.spawn, &self.connect) {
            (Some(path), _, _) => VizTarget::Save(path.clone()),
            (None, true, _) => VizTarget::Spawn,
            (None, false, Some(addr)) => VizTarget::Connect(addr.clone()),
            _ => VizTarget::None,
        }
    }

    /// The pipeline configuration for `source`, stopped by `stop`.
    pub fn config(
        self,
        source: SourceSpec,
        frames: FrameRange,
        sensor: SensorModel,
        stop: Arc<AtomicBool>,
    ) -> Result<PipelineConfig> {
        let odometry = OdometryConfig::default().with_overrides(self.odometry_config.as_deref(), &self.set)?;
        let mounting = match &self.lidar_to_base {
            Some(spec) => Mounting::parse(spec)?,
            None => recorded_mounting(&source, &self.base_frame)?.unwrap_or_default(),
        };
        let source = source.on_base(BaseFrame {
            name: self.base_frame.clone(),
            mounting,
        });
        let defaults = PipelineConfig::default();
        let save_requests = match &self.save_map {
            Some(_) => Some(Arc::new(SaveRequests::with_sigusr1()?)),
            None => None,
        };
        Ok(PipelineConfig {
            source,
            frames,
            viz: self.viz_target(),
            viz_options: VizOptions {
                every: self.viz_every,
                ..defaults.viz_options
            },
            out: self.out,
            sensor,
            odometry_kind: self.odometry,
            odometry,
            map_out: self.map_out,
            map_voxel_m: self.map_voxel,
            map: self.map,
            save_map: self.save_map,
            save_requests,
            freeze: self.freeze,
            loops: (!self.no_loops).then(|| LoopClosureConfig {
                detector: self.loop_detector,
                ..LoopClosureConfig::default()
            }),
            weights: self.weights,
            quiet: self.quiet,
            stop: Some(stop),
            mounting,
            mounting_from_tf: self.lidar_to_base.is_none(),
            pose_frame: self.pose_frame,
            ..defaults
        })
    }
}

/// The mounting a recording's `/tf_static` states under `base` (`None` for other sources, or a
/// recording without `/tf_static`).
fn recorded_mounting(source: &SourceSpec, base: &str) -> Result<Option<Mounting>> {
    let SourceSpec::Path { path, options } = source else {
        return Ok(None);
    };
    if !crate::io::ros::is_bag(path) {
        return Ok(None);
    }
    crate::io::ros::tf::bag_mounting(path, options.topic.as_deref(), base)
}

/// Where Velodyne packets come from and how to read them.
#[derive(Args)]
pub struct PacketArgs {
    /// Listen for data packets on this UDP address.
    #[arg(long, conflicts_with = "pcap")]
    pub udp: Option<String>,
    /// Read the packets from a pcap capture instead.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// The sensor: auto (Velodyne packets name it: the product byte, the HDL-64E's lower
    /// blocks; a ROS 2 topic's first cloud shows its beams), vlp16, hdl32e or hdl64e; with
    /// --ros2 also os1-64 or a sensor TOML file.
    #[arg(long, default_value = detect::AUTO)]
    pub sensor: String,
    /// Per-laser calibration (Velodyne db.xml or ROS YAML); default: the table in calib/ (HDL-64E: nominal).
    #[arg(long)]
    pub calib: Option<PathBuf>,
    /// Cut sweeps at this azimuth, degrees clockwise from forward.
    #[arg(long, default_value_t = 0.0)]
    pub cut_angle: f64,
    /// UDP port of the data packets in a pcap capture.
    #[arg(long, default_value_t = 2368)]
    pub port: u16,
    /// Replay a pcap capture at its recorded pace (default: as fast as the pipeline goes).
    #[arg(long)]
    pub realtime: bool,
    /// End a UDP stream after this many seconds without a datagram (default: wait for Ctrl-C).
    #[arg(long)]
    pub idle_timeout: Option<f64>,
    /// Stop after this many sweeps.
    #[arg(long)]
    pub sweeps: Option<usize>,
}

impl PacketArgs {
    /// The packet source these options name, and with `--sensor auto` how its sensor was
    /// recognised (to report).
    pub fn source(self, stop: Arc<AtomicBool>) -> Result<(LiveSource, Option<String>)> {
        let input = match (self.udp, self.pcap) {
            (Some(addr), _) => PacketInput::Udp {
                addr,
                idle_timeout_s: self.idle_timeout,
            },
            (None, Some(path)) => PacketInput::Pcap {
                path,
                port: self.port,
                realtime: self.realtime,
            },
            (None, None) => {
                return Err(Error::Usage(
                    "give --udp ADDR or --pcap FILE (or, for live, --ros2 TOPIC)".into(),
                ));
            }
        };
        let auto = self.sensor == detect::AUTO;
        let mut source = LiveSource {
            input,
            velodyne: VelodyneConfig {
                model: if auto { Model::Vlp16 } else { self.sensor.parse()? },
                calibration: self.calib,
                cut_deg: self.cut_angle,
                max_sweeps: self.sweeps,
            },
            stats: Default::default(),
            stop: Some(stop),
            early: Default::default(),
        };
        if !auto {
            // A packet of another model fails to parse, and the log names both.
            return Ok((source, None));
        }
        let recognised = match source.model_on_the_wire()? {
            Some(model) => {
                log::info!("sensor recognised from its packets: {}", model.label());
                source.velodyne.model = model;
                Some(format!("{} (from its data packets)", model.label()))
            }
            None => {
                log::warn!("no data packet named its sensor: VLP-16 assumed (give --sensor)");
                None
            }
        };
        Ok((source, recognised))
    }
}

/// Seeds as `A..B` (B excluded) or a comma-separated list.
pub fn parse_seeds(s: &str) -> std::result::Result<Vec<u64>, String> {
    let bad = |_| format!("seeds '{s}': want A..B or a comma-separated list");
    let seeds: Vec<u64> = match s.split_once("..") {
        Some((a, b)) => (a.parse().map_err(bad)?..b.parse().map_err(bad)?).collect(),
        None => s
            .split(',')
            .map(|x| x.trim().parse().map_err(bad))
            .collect::<std::result::Result<_, _>>()?,
    };
    if seeds.is_empty() {
        return Err(format!("seeds '{s}': empty"));
    }
    Ok(seeds)
}

/// Frame pairs as `Q:R,Q:R,...`.
pub fn parse_pairs(s: &str) -> std::result::Result<Vec<(usize, usize)>, String> {
    let bad = || format!("pairs '{s}': want Q:R,Q:R,... (frame numbers)");
    s.split(',')
        .map(|p| {
            let (q, r) = p.trim().split_once(':').ok_or_else(bad)?;
            Ok((q.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
        })
        .collect()
}

/// Any value with a `FromStr` that fails with our [`Error`], as clap wants it.
fn parse_with<T: std::str::FromStr<Err = Error>>(s: &str) -> std::result::Result<T, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// `--frames A..B` and friends.
pub fn parse_frames(s: &str) -> std::result::Result<FrameRange, String> {
    parse_with(s)
}

/// `--cam-target` / `--target`: yaw or overlap.
pub fn parse_cam_target(s: &str) -> std::result::Result<CamTarget, String> {
    parse_with(s)
}

fn parse_stage(s: &str) -> std::result::Result<StageKind, String> {
    parse_with(s)
}

fn parse_odometry(s: &str) -> std::result::Result<OdometryKind, String> {
    parse_with(s)
}

pub fn parse_format(s: &str) -> std::result::Result<Format, String> {
    parse_with(s)
}

/// A flag raised by Ctrl-C, so that a run stops after its current frame with its outputs written.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    // Without a handler (one is installed already) Ctrl-C simply ends the process as before.
    let _ = ctrlc::set_handler(move || raised.store(true, std::sync::atomic::Ordering::Relaxed));
    flag
}

/// Prints a report as one line of JSON.
pub fn print_json(report: &impl serde::Serialize) {
    println!("{}", serde_json::to_string(report).expect("report serialises"));
}

/// `--scene`'s parser: its values come from [`Scene::NAMES`], so `--help` lists every scene.
pub fn scene_parser() -> impl clap::builder::TypedValueParser<Value = Scene> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Scene::NAMES).try_map(|name| name.parse::<Scene>())
}

/// The drive a simulated sensor follows and its pace (`sim-velodyne`, `sim-ros2`).
#[derive(Args)]
pub struct SimDriveArgs {
    /// Seed of the simulated world and drive.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sweeps to drive (default: the simulated drive's length, about a minute).
    #[arg(long)]
    pub sweeps: Option<usize>,
    /// Another drive through the same world (0: the default drive).
    #[arg(long, default_value_t = 0)]
    pub drive: u64,
    /// Start the sensor this many sweeps into the drive (somewhere inside a map of the world).
    #[arg(long, default_value_t = 0)]
    pub first_sweep: usize,
    /// Send as fast as possible instead of at the sensor's rate (10 sweeps a second).
    #[arg(long)]
    pub fast: bool,
}

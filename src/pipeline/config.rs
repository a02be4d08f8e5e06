//! One run's configuration: where scans come from, what runs on them and where results go,
//! with every default in one place.

use super::loop_worker::LoopClosureConfig;
use super::map_saves::SaveRequests;
use super::sink::{EstimateSink, MountedSink};
use super::status::RunStatus;
use crate::error::{Error, Result};
use crate::frames::{BaseFrame, Mounting, PoseFrame};
use crate::io::ros::dds::Ros2Input;
use crate::io::velodyne::LiveSource;
use crate::io::{self, FrameRange, ScanSource, SourceOptions};
use crate::odometry::{OdometryConfig, OdometryKind};
use crate::saved_map::LocaliserConfig;
use crate::sensor::SensorModel;
use crate::sim::{SimConfig, SimSource, Simulation};
use crate::viz::{VizOptions, VizTarget};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Scans read ahead of the one being processed: the source thread's channel depth.
pub const SOURCE_QUEUE: usize = 4;

/// Local-map voxels no sweep has hit for this many frames are dropped in live runs: a minute at
/// 10 Hz, longer than a lap of the simulated loop, so places revisited within a minute keep their
/// map (`--set max_voxel_age_frames=0` turns it off).
pub const LIVE_MAX_VOXEL_AGE_FRAMES: usize = 600;

/// Where scans come from.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// The embedded default: a simulated drive generated in memory.
    Simulated(SimConfig),
    /// A file or folder on disk.
    Path { path: PathBuf, options: SourceOptions },
    /// A Velodyne packet stream: a live UDP socket or a pcap capture.
    Live(LiveSource),
    /// A live ROS 2 PointCloud2 topic.
    Ros2(Ros2Input),
}

impl SourceSpec {
    /// Opens frames `frames` of the source.
    pub fn open(&self, frames: FrameRange) -> Result<Box<dyn ScanSource>> {
        Ok(match self {
            SourceSpec::Simulated(sim) => Box::new(SimSource::new(Arc::new(Simulation::new(sim)), frames)),
            SourceSpec::Path { path, options } => io::open_source(
                path,
                &SourceOptions {
                    frames,
                    ..options.clone()
                },
            )?,
            SourceSpec::Live(live) => Box::new(live.open(frames)?),
            SourceSpec::Ros2(input) => Box::new(input.open(frames)?),
        })
    }

    /// The source with its recording's ground truth taken on `base` (only files read it).
    pub fn on_base(self, base: BaseFrame) -> Self {
        match self {
            SourceSpec::Path { path, options } => SourceSpec::Path {
                path,
                options: SourceOptions { base, ..options },
            },
            other => other,
        }
    }
}

/// Everything a run needs; every default in one place ([`Default`]). `replay`, `live` and
/// `live --ros2` all build the same pipeline from it.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Scans to process.
    pub source: SourceSpec,
    /// Frames to take (applies to every kind of source).
    pub frames: FrameRange,
    /// Frames left out as though the sensor fell silent (`--drop`); `None`: none.
    pub dropped: Option<FrameRange>,
    /// Folder for `poses_kitti.txt`, `poses_tum.txt`, `metrics.json`; none writes nothing.
    pub out: Option<PathBuf>,
    /// Recording target.
    pub viz: VizTarget,
    /// What the recording holds and how often.
    pub viz_options: VizOptions,
    /// Sensor model for the projected images.
    pub sensor: SensorModel,
    /// How the sensor model was recognised from the data (`--sensor auto`), to report; `None`
    /// when it was named.
    pub sensor_detection: Option<String>,
    /// Which odometry runs.
    pub odometry_kind: OdometryKind,
    /// Settings of the KISS-style odometry.
    pub odometry: OdometryConfig,
    /// Write the global map here (`.ply` or `.pcd`).
    pub map_out: Option<PathBuf>,
    /// Voxel size of the exported map, metres.
    pub map_voxel_m: f64,
    /// A saved map to start in (`--map DIR`): the run localises in it and then works in its frame.
    pub map: Option<PathBuf>,
    /// Save the map into this folder when the run ends (`--save-map DIR`); with `map`, the run's
    /// keyframes extend that map.
    pub save_map: Option<PathBuf>,
    /// Voxel size saved keyframe clouds are thinned to, metres.
    pub save_map_voxel_m: f64,
    /// Save the map into `save_map` while the run goes on, whenever these ask (SIGUSR1, the
    /// ROS 2 trigger).
    pub save_requests: Option<Arc<SaveRequests>>,
    /// Localise in `map` without changing it (`--freeze`): no keyframes added, no loops within
    /// the run, nothing saved.
    pub freeze: bool,
    /// Relocalisation in a saved map.
    pub localiser: LocaliserConfig,
    /// Loop closure: OverlapNet loop search, ICP verification, pose graph (`None`: odometry only).
    pub loops: Option<LoopClosureConfig>,
    /// OverlapNet weights for the loop search; `None`: the shipped model.
    pub weights: Option<PathBuf>,
    /// Hide the progress bar.
    pub quiet: bool,
    /// Set (by a Ctrl-C handler, say) to stop after the current frame with every output written.
    pub stop: Option<Arc<AtomicBool>>,
    /// A live source: when sweeps wait behind the one being processed, the viewer is not fed
    /// (only visualisation is dropped, never a sweep).
    pub live: bool,
    /// Updated after every frame, for a status line.
    pub status: Option<Arc<RunStatus>>,
    /// Told every frame's odometry and every loop correction.
    pub sink: Option<Arc<dyn EstimateSink>>,
    /// Where the LiDAR sits on the robot (`base_link → sensor`); identity: the sensor is the base.
    pub mounting: Mounting,
    /// Whether poses handed out and written are the base's or the sensor's.
    pub pose_frame: PoseFrame,
    /// Take the mounting from the live ROS 2 graph's `/tf_static` (`--lidar-to-base` absent);
    /// recordings' are read when the configuration is made.
    pub mounting_from_tf: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            source: SourceSpec::Simulated(SimConfig::default()),
            frames: FrameRange::all(),
            dropped: None,
            out: None,
            viz: VizTarget::None,
            viz_options: VizOptions::default(),
            sensor: SensorModel::hdl64(),
            sensor_detection: None,
            odometry_kind: OdometryKind::default(),
            odometry: OdometryConfig::default(),
            map_out: None,
            map_voxel_m: 0.2,
            map: None,
            save_map: None,
            // Half-metre voxels: the prior map shown in rerun stays legible, and verification
            // thins to 1 m anyway (7 bytes a point in the map file before compression).
            save_map_voxel_m: 0.5,
            save_requests: None,
            freeze: false,
            localiser: LocaliserConfig::default(),
            loops: Some(LoopClosureConfig::default()),
            weights: None,
            quiet: false,
            stop: None,
            live: false,
            status: None,
            sink: None,
            mounting: Mounting::default(),
            pose_frame: PoseFrame::default(),
            mounting_from_tf: false,
        }
    }
}

impl PipelineConfig {
    /// The estimate sink, its poses in the frame asked for.
    pub fn output_sink(&self) -> Option<Arc<dyn EstimateSink>> {
        let sink = self.sink.clone()?;
        let mounting = self.pose_frame.mounting(self.mounting);
        Some(match mounting.is_identity() {
            true => sink,
            false => Arc::new(MountedSink::new(mounting, sink)),
        })
    }

    /// Refuses settings no run can use.
    pub fn validate(&self) -> Result<()> {
        if self.map_voxel_m.is_nan() || self.map_voxel_m <= 0.0 {
            return Err(Error::Usage(format!(
                "map voxel size must be positive, got {}",
                self.map_voxel_m
            )));
        }
        if (self.map.is_some() || self.save_map.is_some()) && self.loops.is_none() {
            return Err(Error::Usage(
                "--map and --save-map need loop closure (drop --no-loops)".into(),
            ));
        }
        if self.freeze && self.map.is_none() {
            return Err(Error::Usage("--freeze needs --map: the map to localise in".into()));
        }
        if self.freeze && self.save_map.is_some() {
            return Err(Error::Usage(
                "--freeze keeps the map as it is: drop --save-map (or --freeze to extend the map)".into(),
            ));
        }
        if self.save_map_voxel_m.is_nan() || self.save_map_voxel_m <= 0.0 {
            return Err(Error::Usage(format!(
                "saved map voxel size must be positive, got {}",
                self.save_map_voxel_m
            )));
        }
        if self.viz_options.every == 0 {
            return Err(Error::Usage("--viz-every must be at least 1".into()));
        }
        Ok(())
    }

    /// Settings for a sensor that runs for hours: a robot may circle one area, so local-map
    /// voxels it no longer sees age out (unless set otherwise) and drift cannot grow the map,
    /// or memory, without end; `paced` streams will not wait, so the viewer is fed only when
    /// no sweep waits.
    pub fn for_stream(mut self, source: SourceSpec, paced: bool) -> Self {
        self.odometry
            .max_voxel_age_frames
            .get_or_insert(LIVE_MAX_VOXEL_AGE_FRAMES);
        self.live = paced;
        self.source = source;
        self
    }
}

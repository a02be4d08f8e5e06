//! The `overlap-slam` command: parses arguments and calls the library.

use clap::{Args, Parser, Subcommand};
use overlap_slam::io::ros::dds::Ros2Input;
use overlap_slam::io::velodyne::VelodyneConfig;
use overlap_slam::io::{Format, FrameRange, SourceOptions};
use overlap_slam::metrics::evaluate_files;
use overlap_slam::odometry::{OdometryConfig, OdometryKind};
use overlap_slam::overlapnet::train::default_repetitions;
use overlap_slam::overlapnet::{ModelConfig, YawDecoding};
use overlap_slam::perception::ivr_cam::CamTarget;
use overlap_slam::perception::ivr_cam::stage::IvrCamConfig;
use overlap_slam::perception::liif::LiifConfig;
use overlap_slam::perception::liif::train::StepConfig;
use overlap_slam::perception::{StageKind, StageOptions, build_stages};
use overlap_slam::pipeline::live::{LiveSource, PacketInput, decode, live};
use overlap_slam::pipeline::loop_worker::ClosureConfig;
use overlap_slam::pipeline::ros2::{Ros2Names, SimRos2Config, live_ros2, sim_ros2};
use overlap_slam::pipeline::sim_velodyne::{LinkFaults, SimVelodyneConfig, sim_velodyne};
use overlap_slam::pipeline::{ReplayConfig, SourceSpec, replay_with_stages};
use overlap_slam::pipeline::{eval_loops, gt_pairs, inspect, ivr_cam, liif, match_scans, train};
use overlap_slam::projection::ProjectionParams;
use overlap_slam::sensor::SensorModel;
use overlap_slam::sim::velodyne::PacketSimConfig;
use overlap_slam::sim::{Scene, SimConfig};
use overlap_slam::viz::VizTarget;
use overlap_slam::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

#[derive(Parser)]
#[command(
    name = "overlap-slam",
    version,
    about = "Streaming LiDAR SLAM with OverlapNet loop closure, shown in rerun"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay a sequence (or the embedded simulated drive) through odometry and the viewer.
    Replay(ReplayArgs),
    /// Write a simulated drive in the KITTI layout, with ground truth.
    Synth(SynthArgs),
    /// Write a scan's range, normal and intensity images as PNG files.
    Project(ProjectArgs),
    /// Summarise the projected images of a sequence as JSON (valid pixels per row, histograms).
    Stats(StatsArgs),
    /// Score an estimated trajectory against ground truth (ATE, RPE, KITTI t_rel / r_rel) as JSON.
    Eval(EvalArgs),
    /// Label scan pairs with ground-truth overlap and yaw (CSV), optionally balanced over overlap.
    GtPairs(GtPairsArgs),
    /// Judge a loop detector on a posed sequence: PR curve, AUC, F1max, recall@1, yaw error.
    EvalLoops(EvalLoopsArgs),
    /// Compare two scan files: predicted overlap and relative yaw as one JSON object.
    Match(MatchArgs),
    /// Train OverlapNet on simulated drives (checkpointed, resumable), validating on held-out worlds.
    Train(TrainArgs),
    /// Run the pipeline live: on a Velodyne over UDP (or a pcap capture), or on a ROS 2 topic.
    Live(LiveArgs),
    /// Send a simulated drive as Velodyne packets over UDP at the real rate, or record it as pcap.
    SimVelodyne(SimVelodyneArgs),
    /// Publish a simulated drive as ROS 2 PointCloud2 over DDS at 10 Hz, or record it as MCAP.
    SimRos2(SimRos2Args),
    /// Decode Velodyne packets (UDP or pcap) into sweeps without SLAM: counts, or one PCD file per sweep.
    Decode(DecodeArgs),
    /// Train LIIF range-image super-resolution on simulated HDL-64E drives (checkpointed, resumable).
    TrainLiif(TrainLiifArgs),
    /// Measure LIIF against bilinear and nearest upsampling on posed scans, and loop detection downstream.
    EvalLiif(EvalLiifArgs),
    /// Explain OverlapNet's decision on frame pairs per column; compare min-max, max and IVR normalisation.
    Cam(CamArgs),
}

/// Where Velodyne packets come from and how to read them.
#[derive(Args)]
struct PacketArgs {
    /// Listen for data packets on this UDP address.
    #[arg(long, conflicts_with = "pcap")]
    udp: Option<String>,
    /// Read the packets from a pcap capture instead.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// The sensor: vlp16, hdl32e or hdl64e.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    /// Per-laser calibration (Velodyne db.xml or ROS YAML); default: the table in calib/ (HDL-64E: nominal).
    #[arg(long)]
    calib: Option<PathBuf>,
    /// Cut sweeps at this azimuth, degrees clockwise from forward.
    #[arg(long, default_value_t = 0.0)]
    cut_angle: f64,
    /// UDP port of the data packets in a pcap capture.
    #[arg(long, default_value_t = 2368)]
    port: u16,
    /// Replay a pcap capture at its recorded pace (default: as fast as the pipeline goes).
    #[arg(long)]
    realtime: bool,
    /// End a UDP stream after this many seconds without a datagram (default: wait for Ctrl-C).
    #[arg(long)]
    idle_timeout: Option<f64>,
    /// Stop after this many sweeps.
    #[arg(long)]
    sweeps: Option<usize>,
}

#[derive(Args)]
struct DecodeArgs {
    #[command(flatten)]
    packets: PacketArgs,
    /// Write each sweep here as NNNNNN.pcd (x y z intensity time ring).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct LiveArgs {
    /// Subscribe to this ROS 2 sensor_msgs/PointCloud2 topic over DDS (no ROS install needed;
    /// domain from ROS_DOMAIN_ID) instead of reading Velodyne packets.
    #[arg(long, conflicts_with_all = ["udp", "pcap"])]
    ros2: Option<String>,
    #[command(flatten)]
    ros2_out: Ros2OutArgs,
    #[command(flatten)]
    packets: PacketArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// What `live --ros2` publishes.
#[derive(Args)]
struct Ros2OutArgs {
    /// nav_msgs/Odometry topic for the odometry estimate (in --odom-frame).
    #[arg(long, default_value = "/overlap_slam/odometry")]
    odometry_topic: String,
    /// nav_msgs/Path topic for the loop-corrected trajectory (in --map-frame).
    #[arg(long, default_value = "/overlap_slam/path")]
    path_topic: String,
    /// Fixed frame of the odometry (REP 105).
    #[arg(long, default_value = "odom")]
    odom_frame: String,
    /// Frame of the loop-corrected path.
    #[arg(long, default_value = "map")]
    map_frame: String,
    /// The robot's frame, whose pose is published on /tf (odom -> base).
    #[arg(long, default_value = "base_link")]
    base_frame: String,
}

#[derive(Args)]
struct SimRos2Args {
    /// PointCloud2 topic to publish the simulated sensor on (ROS_DOMAIN_ID's domain).
    topic: Option<String>,
    /// Also publish the ground truth as nav_msgs/Odometry on this topic.
    #[arg(long)]
    gt_topic: Option<String>,
    /// Frame id of the clouds.
    #[arg(long, default_value = "lidar")]
    frame_id: String,
    /// Record the clouds and ground truth to this MCAP file (rosbag2 storage).
    #[arg(long)]
    bag_out: Option<PathBuf>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    /// Seed of the simulated world and drive.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scene of the simulated drive: street, corridor, open-field.
    #[arg(long, default_value = "street")]
    scene: Scene,
    /// Sweeps to drive (default: the simulated drive's length).
    #[arg(long)]
    sweeps: Option<usize>,
    /// Publish as fast as possible instead of at 10 Hz.
    #[arg(long)]
    fast: bool,
    /// Seconds to wait for subscribers before the first cloud.
    #[arg(long, default_value_t = 2.0)]
    discovery_wait: f64,
}

#[derive(Args)]
struct SimVelodyneArgs {
    /// Send the packets to this UDP address.
    #[arg(long)]
    udp: Option<String>,
    /// Record the packets (Ethernet/IPv4/UDP frames) to this pcap file.
    #[arg(long)]
    pcap_out: Option<PathBuf>,
    /// The sensor: vlp16, hdl32e or hdl64e.
    #[arg(long, default_value = "vlp16")]
    sensor: String,
    /// Seed of the simulated world and drive.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sweeps to drive (default: the simulated drive's length, about a minute).
    #[arg(long)]
    sweeps: Option<usize>,
    /// Send as fast as possible instead of at the sensor's rate.
    #[arg(long)]
    fast: bool,
    /// Probability that a packet is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability that a packet is sent after the next one.
    #[arg(long, default_value_t = 0.0)]
    reorder: f64,
    /// Probability that a packet is corrupted.
    #[arg(long, default_value_t = 0.0)]
    malformed: f64,
    /// Probability that a foreign datagram precedes a packet.
    #[arg(long, default_value_t = 0.0)]
    foreign: f64,
    /// Restart the sensor (clock back to zero) this many seconds in.
    #[arg(long)]
    restart_at: Option<f64>,
    /// Sensor clock at the first packet, seconds past the hour.
    #[arg(long, default_value_t = 0.0)]
    start_clock: f64,
    /// Write each sweep's ground truth here (TUM, stamped with the sensor clock at the sweep's start).
    #[arg(long)]
    gt_out: Option<PathBuf>,
    /// No progress bar and no summary.
    #[arg(long)]
    quiet: bool,
}

/// Where scans come from and how to read them.
#[derive(Args)]
struct SourceArgs {
    /// KITTI folder, PLY/PCD file or folder, or a ROS recording (rosbag2 folder, .mcap, .db3,
    /// ROS 1 .bag); absent means the embedded simulated drive.
    path: Option<PathBuf>,
    /// PointCloud2 topic of a ROS recording (default: the only one).
    #[arg(long)]
    topic: Option<String>,
    /// Ground-truth topic of a ROS recording (nav_msgs/Odometry or geometry_msgs/PoseStamped).
    #[arg(long)]
    gt_topic: Option<String>,
    /// Frames to take: A..B, A.., ..B, A..=B or N.
    #[arg(long, value_parser = parse_frames)]
    frames: Option<FrameRange>,
    /// Force the input format (kitti, ply, pcd) instead of guessing from the path.
    #[arg(long, value_parser = parse_format)]
    format: Option<Format>,
    /// Ground-truth trajectory for PLY/PCD input (KITTI 3x4 or TUM).
    #[arg(long)]
    poses: Option<PathBuf>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "hdl64")]
    sensor: String,
    /// Seed of the simulated drive (when no path is given).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scene of the simulated drive: street, corridor, open-field.
    #[arg(long, default_value = "street")]
    scene: Scene,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    source: SourceArgs,
    #[command(flatten)]
    pipeline: PipelineArgs,
}

/// What the pipeline does with the scans: outputs, viewer, odometry, loop closure.
#[derive(Args)]
struct PipelineArgs {
    /// Write poses_kitti.txt, poses_tum.txt and metrics.json here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Save a rerun recording to this .rrd file.
    #[arg(long, conflicts_with_all = ["spawn", "connect"])]
    rrd: Option<PathBuf>,
    /// Start a rerun viewer and stream to it.
    #[arg(long, conflicts_with = "connect")]
    spawn: bool,
    /// Stream to a running rerun viewer (host:port or rerun+http:// URL).
    #[arg(long)]
    connect: Option<String>,
    /// Write the global map (voxel-downsampled, with intensity) to this .ply or .pcd file.
    #[arg(long)]
    map_out: Option<PathBuf>,
    /// Voxel size of the exported map, metres.
    #[arg(long, default_value_t = 0.2)]
    map_voxel: f64,
    /// Odometry: kiss (KISS-ICP-style scan-to-map, default) or f2f (frame-to-frame point-to-plane ICP).
    #[arg(long, default_value = "kiss", value_parser = parse_odometry)]
    odometry: OdometryKind,
    /// KISS odometry settings from a TOML file (keys as in metrics.json's "odometry").
    #[arg(long)]
    odometry_config: Option<PathBuf>,
    /// Override one odometry setting, e.g. `--set voxel_size_m=0.8` (repeatable; after the file).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Odometry only: no loop search, verification or pose graph.
    #[arg(long)]
    no_loops: bool,
    /// Loop detector judging candidates and seeding ICP verification with its yaw: overlapnet,
    /// overlapnet-mimo (refuses candidates its subnetworks disagree on) or scancontext.
    #[arg(long, default_value = "overlapnet")]
    loop_detector: eval_loops::LoopMethod,
    /// OverlapNet weights for the loop search (.safetensors with its .json beside it, or the
    /// authors' Keras HDF5 file model_geo.weight); default: shipped.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Perception stage run on every projected frame and shown in rerun (repeatable): liif, ivr-cam.
    #[arg(long = "stage", value_name = "NAME", value_parser = parse_stage)]
    stages: Vec<StageKind>,
    /// LIIF stage: keep every N-th of the 64 rows before rendering them back (4: a 16-row scan).
    #[arg(long, default_value_t = 4)]
    liif_factor: usize,
    /// IVR-CAM stage: explain every N-th frame.
    #[arg(long, default_value_t = 5)]
    cam_every: usize,
    /// IVR-CAM stage: the decision explained, yaw (the head that works) or overlap (Grad-CAM).
    #[arg(long, default_value = "yaw", value_parser = parse_cam_target)]
    cam_target: CamTarget,
    /// No progress bar and no summary line.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct TrainLiifArgs {
    /// Checkpoint folder: liif.safetensors (+ .json), adam.safetensors, state.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the training checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Simulated worlds to train on: A..B (seeds).
    #[arg(long, default_value = "100..106", value_parser = parse_seeds)]
    seeds: ::std::vec::Vec<u64>,
    /// Keep every N-th frame of each drive.
    #[arg(long, default_value_t = 8)]
    every: usize,
    /// Also train on these real posed scans (a KITTI folder), half of every batch on average.
    #[arg(long)]
    real: Option<PathBuf>,
    /// Frames of --real to train on: A..B, A.., ..B, A..=B or N.
    #[arg(long, value_parser = parse_frames)]
    real_frames: Option<FrameRange>,
    /// Start from these weights (.safetensors) instead of fresh ones: a new run (fine-tuning).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Steps to reach (over all runs).
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    /// Crops per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Columns per crop.
    #[arg(long, default_value_t = 128)]
    crop_cols: usize,
    /// Adam learning rate (halved for the last quarter of the steps).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the batches.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop with a checkpoint after this many minutes (resume later with --resume).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct CamArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Frame pairs to explain: Q:R,Q:R,...
    #[arg(long, value_parser = parse_pairs)]
    pairs: ::std::vec::Vec<(usize, usize)>,
    /// The decision explained: yaw or overlap.
    #[arg(long, default_value = "yaw", value_parser = parse_cam_target)]
    target: CamTarget,
    /// IVR's percentile, in [0, 1].
    #[arg(long, default_value_t = overlap_slam::perception::ivr_cam::normalise::DEFAULT_IVR_PERCENTILE)]
    percentile: f32,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// A column is shared when at least this share of its returns overlap (ground truth).
    #[arg(long, default_value_t = 0.5)]
    shared_column: f32,
    /// A normalised score at or above this lights a column.
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Output folder (cam.json, cam.png).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct EvalLiifArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Keep every N-th scan read.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// LIIF weights (.safetensors with its .json beside it); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Row factors to measure, comma-separated (2: 32 of 64 rows kept, 4: 16).
    #[arg(long, default_value = "2,4", value_delimiter = ',')]
    factors: Vec<usize>,
    /// Also judge loop detection on scans thinned by this factor and rendered back (0: skip).
    #[arg(long, default_value_t = 4)]
    downstream_factor: usize,
    /// Detectors for the downstream figure, comma-separated.
    #[arg(long, default_value = "overlapnet,scancontext", value_delimiter = ',')]
    downstream: Vec<eval_loops::LoopMethod>,
    /// Pairs fewer than this many frames apart are not judged.
    #[arg(long, default_value_t = 100)]
    min_gap: usize,
    /// Ground-truth overlap above which a pair is a loop.
    #[arg(long, default_value_t = 0.3)]
    loop_overlap: f32,
    /// Output folder (liif_eval.json).
    #[arg(long)]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EvalArgs {
    /// Ground-truth trajectory.
    #[arg(long)]
    gt: PathBuf,
    /// Estimated trajectory.
    #[arg(long)]
    est: PathBuf,
    /// Trajectory format of both files (kitti: one pose a line, matched by line; tum: matched by timestamp).
    #[arg(long, default_value = "kitti", value_parser = ["kitti", "tum"])]
    format: String,
    /// KITTI calib.txt: both trajectories are camera-frame KITTI poses, scored in the LiDAR frame.
    #[arg(long)]
    calib: Option<PathBuf>,
}

#[derive(Args)]
struct SynthArgs {
    /// Output folder (KITTI flat layout: velodyne/, calib.txt, poses.txt, times.txt).
    #[arg(long)]
    out: PathBuf,
    /// World and noise seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scene: street, corridor, open-field.
    #[arg(long, default_value = "street")]
    scene: Scene,
    /// Number of frames; default drives until both revisits are done.
    #[arg(long)]
    frames: Option<usize>,
    /// Sensor model: hdl64, hdl32, vlp16, os1-64, or a path to a TOML file.
    #[arg(long, default_value = "hdl64")]
    sensor: String,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct ProjectArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output folder for range.png, normal.png, intensity.png.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct StatsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output JSON file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct GtPairsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Output CSV: query,reference,overlap,yaw_deg,yaw_bin.
    #[arg(long)]
    out: PathBuf,
    /// Keep every N-th scan.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Skip pairs fewer than this many frames apart.
    #[arg(long, default_value_t = 1)]
    min_gap: usize,
    /// Balance over overlap as OverlapNet does: bins under 0.4 cut to the size of the 0.4-0.5 bin.
    #[arg(long, conflicts_with = "per_bin")]
    balance: bool,
    /// Balance over overlap: keep at most this many pairs per 0.1-wide bin.
    #[arg(long)]
    per_bin: Option<usize>,
    /// Seed of the balanced sampling.
    #[arg(long, default_value_t = 0)]
    sample_seed: u64,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct EvalLoopsArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Loop detector: overlapnet, overlapnet-mimo (with its subnetworks' spread) or scancontext.
    #[arg(long, default_value = "overlapnet")]
    method: eval_loops::LoopMethod,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder: loops_eval.json, pr_curve.csv, pr_curve.png, pairs.csv.
    #[arg(long)]
    out: PathBuf,
    /// Keep every N-th scan.
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Judge only pairs at least this many frames apart (OverlapNet's protocol: 100).
    #[arg(long, default_value_t = 100)]
    min_gap: usize,
    /// Ground-truth overlap above which a pair is a loop (OverlapNet's protocol: 0.3).
    #[arg(long, default_value_t = 0.3)]
    loop_overlap: f32,
    /// Scans turned by known angles to judge the yaw on.
    #[arg(long, default_value_t = 50)]
    rotated_copies: usize,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
struct MatchArgs {
    /// The query scan (.bin, .ply or .pcd).
    scan_a: PathBuf,
    /// The reference scan.
    scan_b: PathBuf,
    /// Loop detector: overlapnet, overlapnet-mimo (with its subnetworks' spread) or scancontext.
    #[arg(long, default_value = "overlapnet")]
    method: eval_loops::LoopMethod,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
}

#[derive(Args)]
struct TrainArgs {
    /// Checkpoint folder: overlapnet.safetensors (+ .json), best.safetensors (+ .json, the epoch
    /// with the best validation AUC), adam.safetensors, state.json.
    #[arg(long)]
    out: PathBuf,
    /// Continue the training checkpointed in --out.
    #[arg(long)]
    resume: bool,
    /// Simulated worlds to train on: A..B (seeds).
    #[arg(long, default_value = "100..108", value_parser = parse_seeds)]
    seeds: ::std::vec::Vec<u64>,
    /// Held-out simulated worlds to validate on after each epoch.
    #[arg(long, default_value = "900..902", value_parser = parse_seeds)]
    val_seeds: ::std::vec::Vec<u64>,
    /// Scene of the simulated drives.
    #[arg(long, default_value = "street")]
    scene: Scene,
    /// Keep every N-th frame of a training drive.
    #[arg(long, default_value_t = 5)]
    every: usize,
    /// Keep every N-th frame of a validation drive.
    #[arg(long, default_value_t = 10)]
    val_every: usize,
    /// Validation pairs per 0.1-wide overlap bin.
    #[arg(long, default_value_t = 20)]
    val_per_bin: usize,
    /// Input channels: a comma-separated list of range, normals, intensity.
    #[arg(long, default_value = "range,normals")]
    channels: overlap_slam::overlapnet::Channels,
    /// Every layer this many times narrower than the paper's network (1: paper size; 4: the
    /// compact variant shipped, about 10x cheaper a pair).
    #[arg(long, default_value_t = 4)]
    width_divisor: usize,
    /// The authors' legs (valid padding, 360 feature columns spanning 288 degrees, scans also
    /// described half-turned) instead of circular ones (450 columns spanning the whole turn).
    #[arg(long)]
    valid_legs: bool,
    /// MIMO subnetworks (Havasi et al., ICLR 2021): M pairs through one network per input, M
    /// answers whose spread is the uncertainty (1: a plain network; 3: the shipped MIMO model).
    #[arg(long, default_value_t = 1)]
    subnetworks: usize,
    /// Feature channels each MIMO subnetwork owns out of the legs (default: the legs' width
    /// shared out evenly).
    #[arg(long)]
    subnetwork_features: Option<usize>,
    /// MIMO batch repetition: each step's distinct pairs fill the batch this many times
    /// (default: 1 for one subnetwork, 2 for MIMO).
    #[arg(long)]
    batch_repetition: Option<usize>,
    /// MIMO input repetition: share of rows where every subnetwork reads the same pair
    /// (default: 0 for one subnetwork, 0.5 for MIMO).
    #[arg(long)]
    input_repetition: Option<f64>,
    /// Epochs to train.
    #[arg(long, default_value_t = 6)]
    epochs: usize,
    /// Pairs per epoch, drawn afresh from the balanced set each epoch (0: the whole set).
    #[arg(long, default_value_t = 1200)]
    epoch_pairs: usize,
    /// Share of each batch given to scans paired with themselves turned at random (yaw training).
    #[arg(long, default_value_t = 0.125)]
    self_pairs: f64,
    /// Pairs per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 2e-4)]
    lr: f64,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop with a checkpoint after this many steps (resume later with --resume).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Stop with a checkpoint after this many minutes (resume later with --resume).
    #[arg(long)]
    max_minutes: Option<f64>,
    /// Steps between checkpoints.
    #[arg(long, default_value_t = 20)]
    checkpoint_every: usize,
    /// Save losses and validation figures as rerun scalars to this .rrd file.
    #[arg(long)]
    rrd: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Seeds as `A..B` (B excluded) or a comma-separated list.
fn parse_seeds(s: &str) -> std::result::Result<Vec<u64>, String> {
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

fn parse_frames(s: &str) -> std::result::Result<FrameRange, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_cam_target(s: &str) -> std::result::Result<CamTarget, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

/// Frame pairs as `Q:R,Q:R,...`.
fn parse_pairs(s: &str) -> std::result::Result<Vec<(usize, usize)>, String> {
    let bad = || format!("pairs '{s}': want Q:R,Q:R,... (frame numbers)");
    s.split(',')
        .map(|p| {
            let (q, r) = p.trim().split_once(':').ok_or_else(bad)?;
            Ok((q.parse().map_err(|_| bad())?, r.parse().map_err(|_| bad())?))
        })
        .collect()
}

fn parse_stage(s: &str) -> std::result::Result<StageKind, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_odometry(s: &str) -> std::result::Result<OdometryKind, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_format(s: &str) -> std::result::Result<Format, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl SourceArgs {
    fn options(&self) -> SourceOptions {
        SourceOptions {
            format: self.format,
            frames: self.frames.unwrap_or_default(),
            poses: self.poses.clone(),
            topic: self.topic.clone(),
            gt_topic: self.gt_topic.clone(),
        }
    }

    /// The path to read, or the simulated drive for `sensor` when no path was given.
    fn spec(&self, sensor: &SensorModel) -> SourceSpec {
        match &self.path {
            Some(path) => SourceSpec::Path {
                path: path.clone(),
                options: self.options(),
            },
            // A frame range that ends beyond the default drive lengthens the drive.
            None => SourceSpec::Simulated(SimConfig {
                seed: self.seed,
                scene: self.scene,
                frames: self.frames.and_then(|f| f.end),
                sensor: sensor.clone(),
                ..SimConfig::default()
            }),
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let source = a.source.spec(&sensor);
            let quiet = a.pipeline.quiet;
            let stages = a.pipeline.stages()?;
            let cfg = a
                .pipeline
                .config(source, a.source.frames.unwrap_or_default(), sensor, stop_on_ctrl_c())?;
            let report = replay_with_stages(&cfg, stages)?;
            if !quiet {
                println!("{}", report.summary());
            }
            Ok(())
        }
        Command::Live(a) if a.ros2.is_some() => {
            let stop = stop_on_ctrl_c();
            let quiet = a.pipeline.quiet;
            let sensor = ros2_sensor(&a.packets.sensor)?;
            let input = Ros2Input {
                topic: a.ros2.clone().unwrap_or_default(),
                idle_timeout_s: a.packets.idle_timeout,
                stats: Default::default(),
                stop: Some(stop.clone()),
            };
            let frames = FrameRange {
                start: 0,
                end: a.packets.sweeps,
            };
            let stages = a.pipeline.stages()?;
            let placeholder = SourceSpec::Simulated(SimConfig::default());
            let cfg = a.pipeline.config(placeholder, frames, sensor, stop)?;
            let report = live_ros2(input, a.ros2_out.names(), cfg, stages)?;
            if !quiet {
                println!("{}", report.summary());
            }
            Ok(())
        }
        Command::SimRos2(a) => {
            let cfg = SimRos2Config {
                sim: SimConfig {
                    seed: a.seed,
                    scene: a.scene,
                    frames: a.sweeps,
                    sensor: SensorModel::from_name_or_path(&a.sensor)?,
                    ..SimConfig::default()
                },
                topic: a.topic,
                frame_id: a.frame_id,
                gt_topic: a.gt_topic,
                bag_out: a.bag_out,
                realtime: !a.fast,
                discovery_wait_s: a.discovery_wait,
                stop: Some(stop_on_ctrl_c()),
            };
            let report = sim_ros2(&cfg)?;
            println!("{}", serde_json::to_string(&report).expect("report serialises"));
            Ok(())
        }
        Command::Live(a) => {
            let stop = stop_on_ctrl_c();
            let source = a.packets.source(stop.clone())?;
            let quiet = a.pipeline.quiet;
            // `live` puts in the packet source and the sensor's projection model.
            let placeholder = SourceSpec::Simulated(SimConfig::default());
            let stages = a.pipeline.stages()?;
            let cfg = a
                .pipeline
                .config(placeholder, FrameRange::all(), SensorModel::hdl64(), stop)?;
            let report = live(source, cfg, stages)?;
            if !quiet {
                println!("{}", report.summary());
            }
            Ok(())
        }
        Command::Decode(a) => {
            let source = a.packets.source(stop_on_ctrl_c())?;
            let report = decode(&source, a.out.as_deref())?;
            println!("{}", serde_json::to_string(&report).expect("report serialises"));
            Ok(())
        }
        Command::SimVelodyne(a) => {
            let cfg = SimVelodyneConfig {
                sim: PacketSimConfig {
                    model: a.sensor.parse()?,
                    seed: a.seed,
                    sweeps: a.sweeps,
                    start_azimuth_deg: 0.0,
                    start_timestamp_us: (a.start_clock.rem_euclid(3600.0) * 1e6) as u32,
                },
                udp: a.udp,
                pcap_out: a.pcap_out,
                gt_out: a.gt_out,
                realtime: !a.fast,
                faults: LinkFaults {
                    loss: a.loss,
                    reorder: a.reorder,
                    malformed: a.malformed,
                    foreign: a.foreign,
                    restart_at_s: a.restart_at,
                },
                stop: Some(stop_on_ctrl_c()),
                quiet: a.quiet,
            };
            let report = sim_velodyne(&cfg)?;
            if !a.quiet {
                println!("{}", serde_json::to_string(&report).expect("report serialises"));
            }
            Ok(())
        }
        Command::Synth(a) => {
            let sensor = SensorModel::from_name_or_path(&a.sensor)?;
            let config = SimConfig {
                seed: a.seed,
                scene: a.scene,
                frames: a.frames,
                sensor,
                ..SimConfig::default()
            };
            let n = inspect::synth(&config, FrameRange::all(), &a.out, a.quiet)?;
            if !a.quiet {
                println!("wrote {n} simulated frames to {}", a.out.display());
            }
            Ok(())
        }
        Command::Project(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let mut source = a.source.spec(&sensor).open(a.source.frames.unwrap_or_default())?;
            let img = inspect::project_to_pngs(source.as_mut(), &ProjectionParams::from_sensor(&sensor), &a.out)?;
            println!(
                "wrote range.png, normal.png, intensity.png to {} ({} of {} pixels valid)",
                a.out.display(),
                img.valid_count(),
                img.rows * img.cols
            );
            Ok(())
        }
        Command::Eval(a) => {
            let report = evaluate_files(&a.gt, &a.est, a.format == "tum", a.calib.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            Ok(())
        }
        Command::GtPairs(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let report = gt_pairs::gt_pairs(&gt_pairs::GtPairsConfig {
                source: a.source.spec(&sensor),
                frames: a.source.frames.unwrap_or_default(),
                every: a.every,
                sensor,
                min_gap: a.min_gap,
                balance: match (a.balance, a.per_bin) {
                    (_, Some(n)) => Some(gt_pairs::Balance::PerBin(n)),
                    (true, None) => Some(gt_pairs::Balance::OverlapNet),
                    (false, None) => None,
                },
                seed: a.sample_seed,
                out: a.out.clone(),
                quiet: a.quiet,
            })?;
            println!(
                "{} scans, {} pairs labelled, {} written to {} in {:.1} s; per 0.1 of overlap: {:?}",
                report.scans,
                report.labelled,
                report.written,
                a.out.display(),
                report.wall_s,
                report.histogram
            );
            Ok(())
        }
        Command::EvalLoops(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let r = eval_loops::eval_loops(&eval_loops::EvalLoopsConfig {
                source: a.source.spec(&sensor),
                frames: a.source.frames.unwrap_or_default(),
                every: a.every,
                sensor,
                method: a.method,
                weights: a.weights,
                min_gap: a.min_gap,
                loop_overlap: a.loop_overlap,
                rotated_copies: a.rotated_copies,
                seed: 0,
                out: a.out.clone(),
                quiet: a.quiet,
            })?;
            let deg = |v: Option<f64>| v.map_or("n/a".to_string(), |d| format!("{d:.2}°"));
            println!(
                "{} scans, {} pairs ({} loops): AUC {:.3}, F1max {:.3}, recall@1 {:.3}, yaw error {} (turned copies {}); results in {}",
                r.scans,
                r.scores.pairs,
                r.scores.loops,
                r.scores.auc,
                r.scores.f1_max,
                r.scores.recall_at_1,
                deg(r.scores.yaw_err_mean_deg),
                deg(r.yaw_rotated_err_mean_deg),
                a.out.display()
            );
            Ok(())
        }
        Command::Match(a) => {
            let report = match_scans::match_scans(&a.scan_a, &a.scan_b, a.method, a.weights.as_deref())?;
            println!("{}", serde_json::to_string(&report).expect("report serialises"));
            Ok(())
        }
        Command::Train(a) => {
            overlap_slam::allocator::tune_allocator();
            let repetitions = default_repetitions(a.subnetworks);
            let cfg = train::TrainConfig {
                out: a.out.clone(),
                model: ModelConfig {
                    channels: a.channels,
                    width_divisor: a.width_divisor,
                    circular_legs: !a.valid_legs,
                    aligned_overlap: !a.valid_legs,
                    yaw_decoding: YawDecoding::FeatureColumns,
                    subnetworks: a.subnetworks.max(1),
                    subnetwork_features: a.subnetwork_features,
                    ..ModelConfig::default()
                },
                seeds: a.seeds,
                val_seeds: a.val_seeds,
                scene: a.scene,
                every: a.every,
                val_every: a.val_every,
                val_per_bin: a.val_per_bin,
                epochs: a.epochs,
                epoch_pairs: (a.epoch_pairs > 0).then_some(a.epoch_pairs),
                self_pair_share: a.self_pairs,
                batch: a.batch,
                batch_repetition: a.batch_repetition.unwrap_or(repetitions.0),
                input_repetition: a.input_repetition.unwrap_or(repetitions.1),
                lr: a.lr,
                seed: a.seed,
                resume: a.resume,
                max_steps: a.max_steps,
                max_minutes: a.max_minutes,
                checkpoint_every: a.checkpoint_every,
                viz: a.rrd.map_or(VizTarget::None, VizTarget::Save),
                quiet: a.quiet,
            };
            let state = train::train(&cfg)?;
            println!(
                "{} epochs and {} steps done in {:.0} s; weights in {}",
                state.epoch,
                state.steps,
                state.wall_s,
                a.out.join("overlapnet.safetensors").display()
            );
            if let Some(r) = state.history.last() {
                println!(
                    "last validation: overlap MAE {:.3}, AUC {:.3}, F1max {:.3}, yaw error {:.2}°",
                    r.val_overlap_mae, r.val_auc, r.val_f1_max, r.val_yaw_err_mean_deg
                );
            }
            Ok(())
        }
        Command::TrainLiif(a) => {
            let state = liif::train_liif(&liif::TrainLiifConfig {
                out: a.out.clone(),
                model: LiifConfig::default(),
                seeds: a.seeds,
                every: a.every,
                real: a.real.map(|path| {
                    let spec = SourceSpec::Path {
                        path,
                        options: SourceOptions::default(),
                    };
                    (spec, a.real_frames.unwrap_or_default())
                }),
                init: a.init,
                step: StepConfig {
                    batch: a.batch,
                    crop_cols: a.crop_cols,
                    ..StepConfig::default()
                },
                steps: a.steps,
                lr: a.lr,
                seed: a.seed,
                resume: a.resume,
                max_minutes: a.max_minutes,
                checkpoint_every: a.checkpoint_every.max(1),
                quiet: a.quiet,
            })?;
            let last = state
                .history
                .last()
                .map_or(String::new(), |h| format!(", last range L1 {:.3} m", h.1));
            println!(
                "{} steps on {} images in {:.0} s{last}; weights in {}",
                state.steps,
                state.images,
                state.seconds,
                a.out.join("liif.safetensors").display()
            );
            Ok(())
        }
        Command::EvalLiif(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let r = liif::eval_liif(&liif::EvalLiifConfig {
                source: a.source.spec(&sensor),
                frames: a.source.frames.unwrap_or_default(),
                every: a.every,
                weights: a.weights,
                factors: a.factors,
                downstream_factor: (a.downstream_factor > 0).then_some(a.downstream_factor),
                downstream_methods: a.downstream,
                min_gap: a.min_gap,
                loop_overlap: a.loop_overlap,
                out: a.out.clone(),
                quiet: a.quiet,
            })?;
            for c in &r.upsampling {
                for (name, s) in [("liif", c.liif), ("bilinear", c.bilinear), ("nearest", c.nearest)] {
                    println!(
                        "{} rows -> 64, {name:8}: MAE {:.3} m, within 0.5 m {:.3}, returns rendered {:.3}, invented {:.3}",
                        c.sparse_rows, s.mae_m, s.within_half_m, s.recall, s.invented
                    );
                }
            }
            for d in &r.downstream {
                println!(
                    "{:?} on {}: AUC {:.3}, F1max {:.3} ({} pairs, {} loops)",
                    d.method, d.input, d.scores.auc, d.scores.f1_max, d.scores.pairs, d.scores.loops
                );
            }
            println!(
                "{} scans; results in {}",
                r.scans,
                a.out.join("liif_eval.json").display()
            );
            Ok(())
        }
        Command::Cam(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let r = ivr_cam::cam(&ivr_cam::CamConfig {
                source: a.source.spec(&sensor),
                frames: a.source.frames.unwrap_or_default(),
                pairs: a.pairs,
                target: a.target,
                percentile: a.percentile,
                weights: a.weights,
                shared_column: a.shared_column,
                threshold: a.threshold,
                out: a.out.clone(),
            })?;
            for p in &r.pairs {
                let ious: Vec<String> = p
                    .scores
                    .iter()
                    .map(|s| format!("{} IoU {:.3} (lit {:.2})", s.normalisation.name(), s.iou, s.lit))
                    .collect();
                println!(
                    "{} vs {}: overlap {:.2}, shared columns {:.2}; {}",
                    p.query,
                    p.reference,
                    p.overlap_truth,
                    p.shared,
                    ious.join(", ")
                );
            }
            let means: Vec<String> = r.mean_iou.iter().map(|(n, v)| format!("{n} {v:.3}")).collect();
            println!("mean IoU: {}; results in {}", means.join(", "), a.out.display());
            Ok(())
        }
        Command::Stats(a) => {
            let sensor = SensorModel::from_name_or_path(&a.source.sensor)?;
            let mut source = a.source.spec(&sensor).open(a.source.frames.unwrap_or_default())?;
            let stats = inspect::projection_stats(source.as_mut(), &ProjectionParams::from_sensor(&sensor))?;
            inspect::write_stats(&stats, &a.out)?;
            println!(
                "{} scans, {:.1} % of pixels valid",
                stats.scans,
                100.0 * stats.valid_share
            );
            Ok(())
        }
    }
}

impl Ros2OutArgs {
    fn names(&self) -> Ros2Names {
        Ros2Names {
            odometry_topic: self.odometry_topic.clone(),
            path_topic: self.path_topic.clone(),
            odom_frame: self.odom_frame.clone(),
            map_frame: self.map_frame.clone(),
            base_frame: self.base_frame.clone(),
        }
    }
}

/// The projection model for `live --ros2`: a Velodyne name (vlp16, hdl32e, hdl64e) or any
/// sensor model name or file.
fn ros2_sensor(name: &str) -> Result<SensorModel> {
    match name.parse::<overlap_slam::io::velodyne::Model>() {
        Ok(m) => SensorModel::builtin(m.sensor_model_name()),
        Err(_) => SensorModel::from_name_or_path(name),
    }
}

impl PacketArgs {
    /// The packet source these options name.
    fn source(self, stop: Arc<AtomicBool>) -> Result<LiveSource> {
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
        Ok(LiveSource {
            input,
            velodyne: VelodyneConfig {
                model: self.sensor.parse()?,
                calibration: self.calib,
                cut_deg: self.cut_angle,
                max_sweeps: self.sweeps,
            },
            stats: Default::default(),
            stop: Some(stop),
        })
    }
}

impl PipelineArgs {
    /// The replay configuration for `source`.
    /// The perception stages asked for, with their shipped weights.
    fn stages(&self) -> Result<Vec<Box<dyn overlap_slam::perception::PerceptionStage>>> {
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

    fn config(
        self,
        source: SourceSpec,
        frames: FrameRange,
        sensor: SensorModel,
        stop: Arc<AtomicBool>,
    ) -> Result<ReplayConfig> {
        let viz = match (self.rrd, self.spawn, self.connect) {
            (Some(path), _, _) => VizTarget::Save(path),
            (None, true, _) => VizTarget::Spawn,
            (None, false, Some(addr)) => VizTarget::Connect(addr),
            _ => VizTarget::None,
        };
        let odometry = OdometryConfig::default().with_overrides(self.odometry_config.as_deref(), &self.set)?;
        Ok(ReplayConfig {
            source,
            frames,
            out: self.out,
            viz,
            sensor,
            odometry_kind: self.odometry,
            odometry,
            map_out: self.map_out,
            map_voxel_m: self.map_voxel,
            loops: (!self.no_loops).then(|| ClosureConfig {
                detector: self.loop_detector,
                ..ClosureConfig::default()
            }),
            weights: self.weights,
            quiet: self.quiet,
            stop: Some(stop),
            live: false,
            status: None,
            sink: None,
        })
    }
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}

/// A flag raised by Ctrl-C, so that a run stops after its current frame with its outputs written.
fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = flag.clone();
    // Without a handler (one is installed already) Ctrl-C simply ends the process as before.
    let _ = ctrlc::set_handler(move || raised.store(true, std::sync::atomic::Ordering::Relaxed));
    flag
}

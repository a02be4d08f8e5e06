//! The command line: [`Cli`] is clap's definition of every command and flag, and one file per
//! command holds its arguments and the call into the library ([`crate::pipeline`] for `replay`
//! and `live`, [`crate::jobs`] for the offline jobs). Argument groups several commands share (the
//! source, the pipeline, the packet stream, the simulated drive) live in [`args`].

pub mod args;
pub mod batch;
pub mod cam;
pub mod decode;
pub mod eval;
pub mod eval_liif;
pub mod eval_loops;
pub mod gt_pairs;
pub mod live;
pub mod match_scans;
pub mod merge_maps;
pub mod project;
pub mod replay;
pub mod sim_ros2;
pub mod sim_velodyne;
pub mod stats;
pub mod synth;
pub mod train;
pub mod train_liif;

pub use batch::BatchArgs;
pub use cam::CamArgs;
pub use decode::DecodeArgs;
pub use eval::EvalArgs;
pub use eval_liif::EvalLiifArgs;
pub use eval_loops::EvalLoopsArgs;
pub use gt_pairs::GtPairsArgs;
pub use live::LiveArgs;
pub use match_scans::MatchArgs;
pub use merge_maps::MergeMapsArgs;
pub use project::ProjectArgs;
pub use replay::ReplayArgs;
pub use sim_ros2::SimRos2Args;
pub use sim_velodyne::SimVelodyneArgs;
pub use stats::StatsArgs;
pub use synth::SynthArgs;
pub use train::TrainArgs;
pub use train_liif::TrainLiifArgs;

use crate::Result;
use clap::{Parser, Subcommand};

/// `overlap-slam`'s command line.
#[derive(Parser)]
#[command(
    name = "overlap-slam",
    version,
    about = "Streaming LiDAR SLAM with OverlapNet loop closure, shown in rerun"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command of `overlap-slam`.
#[derive(Subcommand)]
pub enum Command {
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
    /// Train OverlapNet on simulated drives and real recordings (checkpointed, resumable),
    /// validating on held-out worlds and recordings.
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
    /// Map many recordings as batch jobs (a local process pool or a Slurm job array), with one
    /// summary row per job; a rerun skips finished jobs.
    Batch(BatchArgs),
    /// Merge saved maps of one sensor into one map, joined where they share places (verified by
    /// ICP) and solved as one pose graph in the anchor map's frame.
    MergeMaps(MergeMapsArgs),
}

impl Cli {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Replay(a) => a.run(),
            Command::Synth(a) => a.run(),
            Command::Project(a) => a.run(),
            Command::Stats(a) => a.run(),
            Command::Eval(a) => a.run(),
            Command::GtPairs(a) => a.run(),
            Command::EvalLoops(a) => a.run(),
            Command::Match(a) => a.run(),
            Command::Train(a) => a.run(),
            Command::Live(a) => a.run(),
            Command::SimVelodyne(a) => a.run(),
            Command::SimRos2(a) => a.run(),
            Command::Decode(a) => a.run(),
            Command::TrainLiif(a) => a.run(),
            Command::EvalLiif(a) => a.run(),
            Command::Cam(a) => a.run(),
            Command::Batch(a) => a.run(),
            Command::MergeMaps(a) => a.run(),
        }
    }
}

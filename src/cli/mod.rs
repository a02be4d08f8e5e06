//! One file per command: its arguments and the call into the library. Argument groups several
//! commands share (the source, the pipeline, the packet stream) live in [`args`].

mod args;
mod cam;
mod decode;
mod eval;
mod eval_liif;
mod eval_loops;
mod gt_pairs;
mod live;
mod match_scans;
mod project;
mod replay;
mod sim_ros2;
mod sim_velodyne;
mod stats;
mod synth;
mod train;
mod train_liif;

pub use cam::CamArgs;
pub use decode::DecodeArgs;
pub use eval::EvalArgs;
pub use eval_liif::EvalLiifArgs;
pub use eval_loops::EvalLoopsArgs;
pub use gt_pairs::GtPairsArgs;
pub use live::LiveArgs;
pub use match_scans::MatchArgs;
pub use project::ProjectArgs;
pub use replay::ReplayArgs;
pub use sim_ros2::SimRos2Args;
pub use sim_velodyne::SimVelodyneArgs;
pub use stats::StatsArgs;
pub use synth::SynthArgs;
pub use train::TrainArgs;
pub use train_liif::TrainLiifArgs;

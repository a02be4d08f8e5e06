//! `overlap-slam eval`: an estimated trajectory scored against ground truth.

use crate::Result;
use crate::metrics::evaluate_files;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `eval`.
#[derive(Args)]
pub struct EvalArgs {
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

impl EvalArgs {
    /// Prints the scores as pretty JSON.
    pub fn run(self) -> Result<()> {
        let report = evaluate_files(&self.gt, &self.est, self.format == "tum", self.calib.as_deref())?;
        println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
        Ok(())
    }
}

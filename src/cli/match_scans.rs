//! `overlap-slam match`: a loop detector run on one pair of scan files.

use super::args::print_json;
use crate::Result;
use crate::jobs::eval_loops::LoopMethod;
use crate::jobs::match_scans::match_scans;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `match`.
#[derive(Args)]
pub struct MatchArgs {
    /// The query scan (.bin, .ply or .pcd).
    scan_a: PathBuf,
    /// The reference scan.
    scan_b: PathBuf,
    /// Loop detector: overlapnet, overlapnet-mimo (with its subnetworks' spread), scancontext, or
    /// fused (the product of Scan Context's and OverlapNet's scores, OverlapNet's yaw).
    /// OverlapNet by default, the network under test; `replay` and `live` close loops with
    /// scancontext by default (`--loop-detector`).
    #[arg(long, default_value = "overlapnet")]
    method: LoopMethod,
    /// OverlapNet weights: a .safetensors with its .json beside it, or the authors' Keras HDF5
    /// file (model_geo.weight); default: the shipped model.
    #[arg(long)]
    weights: Option<PathBuf>,
}

impl MatchArgs {
    /// Prints the predicted overlap and yaw as JSON.
    pub fn run(self) -> Result<()> {
        print_json(&match_scans(
            &self.scan_a,
            &self.scan_b,
            self.method,
            self.weights.as_deref(),
        )?);
        Ok(())
    }
}

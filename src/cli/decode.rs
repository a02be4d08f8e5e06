//! `overlap-slam decode`: Velodyne packets into sweeps, without SLAM.

use super::args::{PacketArgs, print_json, stop_on_ctrl_c};
use crate::Result;
use crate::jobs::decode::decode;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `decode`.
#[derive(Args)]
pub struct DecodeArgs {
    #[command(flatten)]
    packets: PacketArgs,
    /// Write each sweep here as NNNNNN.pcd (x y z intensity time ring).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl DecodeArgs {
    /// Decodes the stream and prints its counts as JSON.
    pub fn run(self) -> Result<()> {
        let (source, _) = self.packets.source(stop_on_ctrl_c())?;
        print_json(&decode(&source, self.out.as_deref())?);
        Ok(())
    }
}

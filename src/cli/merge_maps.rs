//! `overlap-slam merge-maps`: saved maps of one sensor made into one.

use crate::jobs::merge_maps::merge_maps;
use crate::{Error, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `merge-maps`.
#[derive(Args)]
pub struct MergeMapsArgs {
    /// The saved maps (folders written by --save-map or merge-maps), two or more.
    #[arg(required = true, num_args = 2..)]
    maps: Vec<PathBuf>,
    /// The merged map's folder: a normal saved map (replay --map reads it, merge-maps merges it).
    #[arg(long)]
    out: PathBuf,
    /// The map whose frame the merged map keeps (one of MAPS; default: the first).
    #[arg(long)]
    anchor: Option<PathBuf>,
    /// Print nothing (the report is in OUT/merge.json).
    #[arg(long)]
    quiet: bool,
}

impl MergeMapsArgs {
    /// Merges the maps and prints the report as JSON.
    pub fn run(self) -> Result<()> {
        let anchor = match &self.anchor {
            None => 0,
            Some(a) => self
                .maps
                .iter()
                .position(|m| m == a)
                .ok_or_else(|| Error::Usage(format!("--anchor {} is not one of the maps given", a.display())))?,
        };
        let report = merge_maps(&self.maps, anchor, &self.out)?;
        if !self.quiet {
            println!("{}", serde_json::to_string_pretty(&report).expect("plain JSON"));
        }
        Ok(())
    }
}

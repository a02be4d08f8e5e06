//! `overlap-slam gt-pairs`: scan pairs labelled with ground-truth overlap and yaw.

use super::args::SourceArgs;
use crate::Result;
use crate::jobs::gt_pairs::{Balance, GtPairsConfig, gt_pairs};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `gt-pairs`.
#[derive(Args)]
pub struct GtPairsArgs {
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

impl GtPairsArgs {
    /// Labels the pairs into the CSV and prints the counts.
    pub fn run(self) -> Result<()> {
        let sensor = self.source.sensor_model()?;
        let report = gt_pairs(&GtPairsConfig {
            source: self.source.spec(&sensor),
            frames: self.source.frame_range(),
            every: self.every,
            sensor,
            min_gap: self.min_gap,
            balance: match (self.balance, self.per_bin) {
                (_, Some(n)) => Some(Balance::PerBin(n)),
                (true, None) => Some(Balance::OverlapNet),
                (false, None) => None,
            },
            seed: self.sample_seed,
            out: self.out.clone(),
            quiet: self.quiet,
        })?;
        println!(
            "{} scans, {} pairs labelled, {} written to {} in {:.1} s; per 0.1 of overlap: {:?}",
            report.scans,
            report.labelled,
            report.written,
            self.out.display(),
            report.wall_s,
            report.histogram
        );
        Ok(())
    }
}

//! `overlap-slam batch`: many recordings mapped as jobs on a local pool or a Slurm job array.

use super::Cli;
use crate::jobs::batch::{self, Engine, Manifest};
use crate::{Error, Result};
use clap::{Args, Parser, ValueEnum};
use std::path::PathBuf;

/// Arguments of `batch`.
#[derive(Args)]
pub struct BatchArgs {
    /// The manifest (TOML): the recordings, the replay options they share, Slurm resources.
    manifest: PathBuf,
    /// Where the jobs run: child processes here, or a Slurm job array.
    #[arg(long, value_enum, default_value_t = EngineArg::Local)]
    engine: EngineArg,
    /// Jobs at once with --engine local (default: the number of CPUs).
    #[arg(short = 'j', long, value_parser = clap::value_parser!(u64).range(1..))]
    jobs: Option<u64>,
    /// Run job I of the manifest in this process's place (what each Slurm array task runs).
    #[arg(long, value_name = "I", conflicts_with_all = ["engine", "jobs"])]
    task: Option<usize>,
    /// Print only the summary line.
    #[arg(long)]
    quiet: bool,
}

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    /// Child processes on this machine, -j at a time.
    Local,
    /// One Slurm job array (sbatch), followed with squeue.
    Slurm,
}

impl BatchArgs {
    /// Checks the manifest and every job's options, then runs the jobs (or the one `--task`).
    pub fn run(self) -> Result<()> {
        let path = std::fs::canonicalize(&self.manifest).map_err(|e| Error::io(&self.manifest, e))?;
        let manifest = Manifest::read(&path)?;
        check_options(&manifest)?;
        let exe = std::env::current_exe().map_err(|e| Error::io("overlap-slam", e))?;
        if let Some(index) = self.task {
            let record = batch::run_array_task(&exe, &manifest, index)?;
            println!("{}", batch::local::describe(&record));
            return Ok(());
        }
        let engine = match self.engine {
            EngineArg::Local => Engine::Local {
                workers: self.jobs.map_or_else(cpus, |j| j as usize),
            },
            EngineArg::Slurm => Engine::Slurm,
        };
        let quiet = self.quiet;
        let progress = |line: &str| {
            if !quiet {
                eprintln!("{line}");
            }
        };
        let summary = batch::run_batch(&exe, &manifest, engine, &progress)?;
        println!("{}", summary.line());
        if summary.failed > 0 {
            return Err(Error::Failed(format!(
                "{} of {} jobs did not finish: see {}",
                summary.failed,
                summary.jobs.len(),
                manifest.out.join("summary.csv").display()
            )));
        }
        Ok(())
    }
}

/// Every job's replay options as `replay` itself would read them, before any job starts.
fn check_options(manifest: &Manifest) -> Result<()> {
    for job in manifest.jobs.iter().chain(&manifest.merge) {
        let line = std::iter::once("overlap-slam".to_string()).chain(job.command.iter().cloned());
        if let Err(e) = Cli::try_parse_from(line) {
            let said = e.to_string();
            let first = said.lines().next().unwrap_or_default().trim_start_matches("error: ");
            return Err(Error::input(
                &manifest.path,
                format!("recording '{}': {first}", job.name),
            ));
        }
    }
    Ok(())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

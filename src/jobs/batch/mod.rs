//! `overlap-slam batch`: many recordings mapped as independent jobs on an existing engine — a
//! local process pool, or Slurm job arrays — each a `replay` into its own folder (and map), with
//! one summary row per job. A rerun skips the jobs that finished and retries the rest.
//!
//! ```text
//!  manifest.toml → jobs (checked before any starts) → engine: local pool | sbatch --array
//!       each job: overlap-slam replay … --out OUT/jobs/NAME [--save-map OUT/maps/NAME]
//!                 → OUT/jobs/NAME/status.json (exit, wall time, peak memory)
//!  then, with [merge], when every mapping job ended well: overlap-slam merge-maps … (locally
//!  when the pool drains; on Slurm a job with --dependency=afterok on the array)
//!  → OUT/summary.json, OUT/summary.csv
//! ```

pub mod local;
pub mod manifest;
pub mod slurm;
pub mod summary;
pub mod task;

pub use manifest::{Job, Manifest, SlurmResources};
pub use summary::{JobRow, Summary};
pub use task::{TaskRecord, TaskState};

use crate::error::{Error, Result};
use slurm::Script;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Where the jobs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Child processes on this machine, this many at a time.
    Local { workers: usize },
    /// A Slurm job array.
    Slurm,
}

impl Engine {
    /// The engine's name in records and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Local { .. } => "local",
            Engine::Slurm => "slurm",
        }
    }
}

/// Runs every job of `manifest` that has not finished, with `exe` (the `overlap-slam` binary)
/// on `engine`, then the merge when the manifest has one and every mapping job ended well; then
/// writes the summary. `progress` hears what happens, a line at a time.
pub fn run_batch(exe: &Path, manifest: &Manifest, engine: Engine, progress: &(dyn Fn(&str) + Sync)) -> Result<Summary> {
    let started = Instant::now();
    std::fs::create_dir_all(&manifest.out).map_err(|e| Error::io(&manifest.out, e))?;
    let pending: Vec<usize> = (0..manifest.jobs.len())
        .filter(|&i| !task::finished(&manifest.jobs[i]))
        .collect();
    let skipped = manifest.jobs.len() - pending.len();
    if skipped > 0 {
        progress(&format!(
            "{skipped} of {} jobs finished before: skipped",
            manifest.jobs.len()
        ));
    }
    // A merge reruns when a map it merges was made again.
    let merge = manifest
        .merge
        .as_ref()
        .filter(|m| !pending.is_empty() || !task::finished(m));
    let all_mapped = || manifest.jobs.iter().all(task::finished);
    let mut scheduler = BTreeMap::new();
    match engine {
        Engine::Local { workers } => {
            local::run(exe, manifest, &pending, workers, &|r| progress(&local::describe(r)))?;
            if let Some(job) = merge {
                if all_mapped() {
                    let record = task::run_task(exe, job, &manifest.out.join("logs"), engine.name())?;
                    progress(&local::describe(&record));
                } else {
                    progress("merge not run: not every mapping job ended well");
                }
            }
        }
        Engine::Slurm => {
            slurm::check_reachable()?;
            let array = match pending.is_empty() {
                true => None,
                false => Some(slurm::submit(exe, manifest, Script::Array(&pending), None)?),
            };
            if let Some(id) = &array {
                progress(&format!("submitted job array {id} ({} tasks)", pending.len()));
            }
            let merge_id = match merge {
                Some(_) => Some(slurm::submit(exe, manifest, Script::Merge, array.as_deref())?),
                None => None,
            };
            if let Some(id) = &merge_id {
                progress(&format!("submitted merge job {id}, to run after the array ends well"));
            }
            if let Some(id) = &array {
                slurm::follow(id, &|states| progress(&format!("{id}: {states}")))?;
                scheduler = slurm::task_states(id);
            }
            if let Some(id) = merge_id {
                if all_mapped() {
                    slurm::follow(&id, &|states| progress(&format!("{id}: {states}")))?;
                } else {
                    // Its dependency can never be met now: it would wait in the queue for ever.
                    slurm::cancel(&id);
                    progress("merge cancelled: not every mapping job ended well");
                }
                if let Some(state) = slurm::job_state(&id) {
                    scheduler.insert(manifest.jobs.len(), state);
                }
            }
        }
    }
    let summary = Summary::of(
        manifest,
        engine.name(),
        skipped,
        started.elapsed().as_secs_f64(),
        &scheduler,
    );
    summary.write(manifest)?;
    Ok(summary)
}

/// Runs job `index` of `manifest` in this process's place (a Slurm task; the index after the
/// last mapping job is the merge): fails when the job did, so that the scheduler records it.
pub fn run_array_task(exe: &Path, manifest: &Manifest, index: usize) -> Result<TaskRecord> {
    let job = manifest.jobs.iter().chain(&manifest.merge).nth(index).ok_or_else(|| {
        Error::input(
            &manifest.path,
            format!("no job {index}: the manifest has {}", manifest.jobs.len()),
        )
    })?;
    let record = task::run_task(exe, job, &manifest.out.join("logs"), Engine::Slurm.name())?;
    match record.state {
        TaskState::Ok => Ok(record),
        TaskState::Failed => Err(Error::Failed(local::describe(&record))),
    }
}

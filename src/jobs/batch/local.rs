//! The local engine: the jobs as child processes, `workers` at a time. A job that fails or
//! crashes is recorded and the others go on.

use super::manifest::Manifest;
use super::task::{TaskRecord, TaskState, run_task};
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::path::Path;

/// Runs the jobs `pending` (indices into the manifest) with `workers` running at once;
/// `progress` hears of each job as it ends. A job's failure is its record; an error is the
/// batch's own (its folder unwritable), and stops it.
pub fn run(
    exe: &Path,
    manifest: &Manifest,
    pending: &[usize],
    workers: usize,
    progress: &(dyn Fn(&TaskRecord) + Sync),
) -> Result<()> {
    let logs = manifest.out.join("logs");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers.max(1))
        .build()
        .map_err(|e| Error::Usage(format!("cannot start {workers} workers: {e}")))?;
    pool.install(|| {
        pending.par_iter().try_for_each(|&i| {
            progress(&run_task(exe, &manifest.jobs[i], &logs, "local")?);
            Ok(())
        })
    })
}

/// A job's end as one line: `drive-2 ok in 42.1 s, 512 MB`.
pub fn describe(record: &TaskRecord) -> String {
    let how = match (record.state, record.exit_code, record.signal) {
        (TaskState::Ok, _, _) => "ok".to_string(),
        (_, Some(code), _) => format!("failed (exit {code})"),
        (_, None, Some(signal)) => format!("failed (signal {signal})"),
        _ => "failed".to_string(),
    };
    format!(
        "{} {how} in {:.1} s, {:.0} MB (log {})",
        record.name,
        record.wall_s,
        record.peak_rss_mb,
        record.log.display()
    )
}

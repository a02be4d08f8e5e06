//! The local engine: the jobs as child processes, `workers` at a time. A job that fails or
//! crashes is recorded and the others go on.

use super::manifest::Manifest;
use super::task::{TaskRecord, TaskState, run_task};
use crate::error::Result;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs the jobs `pending` (indices into the manifest) with `workers` running at once;
/// `progress` hears of each job as it ends.
pub fn run(
    exe: &Path,
    manifest: &Manifest,
    pending: &[usize],
    workers: usize,
    progress: &(dyn Fn(&TaskRecord) + Sync),
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    let logs = manifest.out.join("logs");
    std::thread::scope(|scope| {
        for _ in 0..workers.clamp(1, pending.len().max(1)) {
            scope.spawn(|| {
                while let Some(&i) = pending.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match run_task(exe, &manifest.jobs[i], &logs, "local") {
                        Ok(record) => progress(&record),
                        Err(e) => {
                            // The batch's own fault (its folder unwritable): stop taking jobs.
                            first_error.lock().expect("error lock").get_or_insert(e);
                            next.store(pending.len(), Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    match first_error.into_inner().expect("error lock") {
        Some(e) => Err(e),
        None => Ok(()),
    }
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

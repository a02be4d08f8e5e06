//! One job run to its end: `overlap-slam replay` (or `merge-maps`) as a child process, its log kept, and what
//! became of it (exit, wall time, peak memory) recorded beside its outputs. Both engines run
//! jobs through here: the local pool on its threads, Slurm in each array task.

use super::manifest::Job;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// The replay exited 0.
    Ok,
    /// It exited non-zero or was killed.
    Failed,
}

/// What became of one job: `status.json` in its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The job's name.
    pub name: String,
    /// Ok or failed.
    pub state: TaskState,
    /// The replay's exit code (none when a signal ended it).
    pub exit_code: Option<i32>,
    /// The signal that ended it, if one did (a crash, an out-of-memory kill).
    pub signal: Option<i32>,
    /// Wall time, seconds.
    pub wall_s: f64,
    /// The replay's peak resident memory, MB (the kernel's high-water mark for the child).
    pub peak_rss_mb: f64,
    /// Which engine ran it (`local`, `slurm`).
    pub engine: String,
    /// The host it ran on.
    pub host: String,
    /// Its standard error.
    pub log: PathBuf,
}

/// The record of `job` in its folder.
pub fn status_file(job: &Job) -> PathBuf {
    job.out.join("status.json")
}

/// The record a run of `job` left, if any (a half-written or foreign file counts as none).
pub fn read_record(job: &Job) -> Option<TaskRecord> {
    let text = std::fs::read_to_string(status_file(job)).ok()?;
    serde_json::from_str(&text).ok()
}

/// True when a run of `job` finished well: a rerun skips it.
pub fn finished(job: &Job) -> bool {
    read_record(job).is_some_and(|r| r.state == TaskState::Ok) && job.product.is_file()
}

/// Runs `job` with the `overlap-slam` at `exe` and records how it ended. A job that fails is a
/// record, not an error; errors are the batch's own (a folder that cannot be written).
pub fn run_task(exe: &Path, job: &Job, logs: &Path, engine: &str) -> Result<TaskRecord> {
    std::fs::create_dir_all(&job.out).map_err(|e| Error::io(&job.out, e))?;
    std::fs::create_dir_all(logs).map_err(|e| Error::io(logs, e))?;
    // A record of an earlier try must not outlive this one.
    let _ = std::fs::remove_file(status_file(job));
    let log = logs.join(format!("{}.log", job.name));
    let log_file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
    let started = Instant::now();
    let child = Command::new(exe)
        .args(&job.command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| Error::io(exe, e))?;
    let (status, peak_rss_kb) = wait_with_usage(child.id() as libc::pid_t).map_err(|e| Error::io(exe, e))?;
    let (exit_code, signal) = if libc::WIFEXITED(status) {
        (Some(libc::WEXITSTATUS(status)), None)
    } else {
        (None, libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)))
    };
    let record = TaskRecord {
        name: job.name.clone(),
        state: if exit_code == Some(0) {
            TaskState::Ok
        } else {
            TaskState::Failed
        },
        exit_code,
        signal,
        wall_s: started.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_kb as f64 / 1024.0,
        engine: engine.to_string(),
        host: host_name(),
        log,
    };
    let path = status_file(job);
    write_atomic(&path, |w| {
        serde_json::to_writer_pretty(&mut *w, &record).map_err(std::io::Error::other)
    })?;
    Ok(record)
}

/// Waits for child `pid`: its wait status and its peak resident memory, KB (`wait4`'s
/// `ru_maxrss`, which counts that child alone).
fn wait_with_usage(pid: libc::pid_t) -> std::io::Result<(i32, i64)> {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is a child of this process; status and usage are valid for writes.
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited == pid {
            return Ok((status, usage.ru_maxrss));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// This host's name, for the record.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

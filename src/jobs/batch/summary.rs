//! The batch's summary: one row per job, from its record and its `metrics.json`, written as
//! `summary.json` and `summary.csv` in the batch folder.

use super::manifest::{Job, Manifest};
use super::task::{TaskState, read_record};
use crate::error::Result;
use crate::io::atomic::write_atomic;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// One job's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobRow {
    /// The job's name.
    pub name: String,
    /// `ok`, `failed`, or `not run` (no record: never started, or killed before it could write).
    pub status: String,
    /// Exit code, or the signal that ended it as `signal N`.
    pub exit: Option<String>,
    /// Frames the replay processed.
    pub frames: Option<u64>,
    /// Frames a second over the whole replay.
    pub frames_per_s: Option<f64>,
    /// ATE RMSE of the final trajectory, metres, where the recording has ground truth.
    pub ate_m: Option<f64>,
    /// Loops closed.
    pub loops: Option<u64>,
    /// Peak resident memory of the replay, MB.
    pub peak_rss_mb: Option<f64>,
    /// Wall time of the job, seconds.
    pub wall_s: Option<f64>,
    /// The scheduler's final state of the job's task (Slurm: `COMPLETED`, `FAILED`, `TIMEOUT`,
    /// `OUT_OF_MEMORY`...), when a scheduler ran it in this pass.
    pub scheduler: Option<String>,
    /// The job's output folder.
    pub out: PathBuf,
}

/// The summary of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The engine that ran this pass.
    pub engine: String,
    /// Jobs that ended well (this pass or an earlier one).
    pub ok: usize,
    /// Jobs that failed or never ran.
    pub failed: usize,
    /// Jobs this pass skipped because an earlier pass finished them.
    pub skipped: usize,
    /// Wall time of this pass, seconds.
    pub wall_s: f64,
    /// One row per job, in the manifest's order, the merge last.
    pub jobs: Vec<JobRow>,
}

/// The row of `job` as its folder stands.
pub fn row(job: &Job, scheduler: Option<String>) -> JobRow {
    let record = read_record(job);
    let metrics: Option<serde_json::Value> = std::fs::read_to_string(job.out.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let ok = record.as_ref().is_some_and(|r| r.state == TaskState::Ok);
    // Metrics count only from a run that ended well: a failed retry's folder may hold an older one.
    let metric = |key: &str| metrics.as_ref().filter(|_| ok).and_then(|m| m.get(key).cloned());
    JobRow {
        name: job.name.clone(),
        status: match &record {
            Some(r) if r.state == TaskState::Ok => "ok".into(),
            Some(_) => "failed".into(),
            None => "not run".into(),
        },
        exit: record.as_ref().and_then(|r| match (r.exit_code, r.signal) {
            (Some(code), _) => Some(code.to_string()),
            (None, Some(signal)) => Some(format!("signal {signal}")),
            (None, None) => None,
        }),
        frames: metric("frames").and_then(|v| v.as_u64()),
        frames_per_s: metric("fps").and_then(|v| v.as_f64()),
        ate_m: metric("ate_rmse_m").and_then(|v| v.as_f64()),
        loops: metric("loops").and_then(|l| l.get("loops_accepted")?.as_u64()),
        peak_rss_mb: record.as_ref().map(|r| r.peak_rss_mb),
        wall_s: record.as_ref().map(|r| r.wall_s),
        scheduler,
        out: job.out.clone(),
    }
}

impl Summary {
    /// The summary of `manifest`'s jobs as their folders stand, with the scheduler's final
    /// state of each job it ran (by index).
    pub fn of(
        manifest: &Manifest,
        engine: &str,
        skipped: usize,
        wall_s: f64,
        scheduler: &BTreeMap<usize, String>,
    ) -> Self {
        let jobs: Vec<JobRow> = (manifest.jobs.iter().chain(&manifest.merge).enumerate())
            .map(|(i, job)| row(job, scheduler.get(&i).cloned()))
            .collect();
        let ok = jobs.iter().filter(|r| r.status == "ok").count();
        Self {
            engine: engine.to_string(),
            ok,
            failed: jobs.len() - ok,
            skipped,
            wall_s,
            jobs,
        }
    }

    /// Writes `summary.json` and `summary.csv` into the batch folder, each atomically.
    pub fn write(&self, manifest: &Manifest) -> Result<()> {
        write_atomic(&manifest.out.join("summary.json"), |w| {
            serde_json::to_writer_pretty(&mut *w, self).map_err(std::io::Error::other)
        })?;
        write_atomic(&manifest.out.join("summary.csv"), |w| {
            writeln!(
                w,
                "name,status,exit,frames,frames_per_s,ate_m,loops,peak_rss_mb,wall_s,scheduler,out"
            )?;
            for r in &self.jobs {
                let text = |v: &Option<String>| v.clone().unwrap_or_default();
                let num = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
                let int = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
                writeln!(
                    w,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    r.name,
                    r.status,
                    text(&r.exit),
                    int(r.frames),
                    num(r.frames_per_s),
                    num(r.ate_m),
                    int(r.loops),
                    num(r.peak_rss_mb),
                    num(r.wall_s),
                    text(&r.scheduler),
                    r.out.display()
                )?;
            }
            Ok(())
        })
    }

    /// One line for the terminal.
    pub fn line(&self) -> String {
        format!(
            "batch ({}): {} of {} jobs ok, {} failed, {} skipped as finished, {:.1} s",
            self.engine,
            self.ok,
            self.jobs.len(),
            self.failed,
            self.skipped,
            self.wall_s
        )
    }
}

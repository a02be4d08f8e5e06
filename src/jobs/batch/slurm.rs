//! The Slurm engine: the pending jobs as one job array (`sbatch --array`), each task running
//! `overlap-slam batch MANIFEST --task I`, and the merge as a job that depends on the array
//! (`--dependency=afterok`); both followed with `squeue` until they leave the queue, and each
//! task's final state read back with `sacct` (where accounting is on) or `scontrol`.

use super::manifest::Manifest;
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// How often the queue is looked at while the array runs.
const POLL: Duration = Duration::from_secs(1);

/// How long `scontrol ping` may take: without a configuration it retries for a minute.
const PING_WAIT: Duration = Duration::from_secs(10);

/// Fails with a pointer to `--engine local` when no Slurm controller answers.
pub fn check_reachable() -> Result<()> {
    let unreachable = |why: String| {
        Error::Usage(format!(
            "Slurm is not reachable ({why}); run the batch with --engine local instead"
        ))
    };
    if let Some(conf) = std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .filter(|c| !c.exists())
    {
        return Err(unreachable(format!(
            "SLURM_CONF names {}, which does not exist",
            conf.display()
        )));
    }
    let mut child = Command::new("scontrol")
        .arg("ping")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| unreachable(format!("scontrol: {e}")))?;
    let started = std::time::Instant::now();
    while child
        .try_wait()
        .map_err(|e| unreachable(format!("scontrol: {e}")))?
        .is_none()
    {
        if started.elapsed() > PING_WAIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(unreachable(format!("scontrol ping gave no answer in {PING_WAIT:?}")));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child
        .wait_with_output()
        .map_err(|e| unreachable(format!("scontrol: {e}")))?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !said.contains("UP") {
        // Its last line says why (a fatal error, or the controller DOWN).
        let both = format!("{said}\n{}", String::from_utf8_lossy(&out.stderr));
        let last = both
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("no answer");
        return Err(unreachable(format!("scontrol ping: {last}")));
    }
    Ok(())
}

/// What a script submits: the array of pending mapping jobs, or the merge after them.
#[derive(Debug, Clone, Copy)]
pub enum Script<'a> {
    /// One task per mapping job (manifest indices).
    Array(&'a [usize]),
    /// The `[merge]` job.
    Merge,
}

/// The batch script of `what`, each task with the manifest's resources, running
/// `overlap-slam batch MANIFEST --task I`.
pub fn script(exe: &Path, manifest: &Manifest, what: Script) -> String {
    let r = &manifest.slurm;
    let logs = manifest.out.join("logs");
    let (name, extra, output, task) = match what {
        Script::Array(tasks) => {
            let indices: Vec<String> = tasks.iter().map(|i| i.to_string()).collect();
            (
                "overlap-slam-batch",
                format!("#SBATCH --array={}\n", indices.join(",")),
                "slurm-%A_%a.out",
                "\"$SLURM_ARRAY_TASK_ID\"".to_string(),
            )
        }
        Script::Merge => (
            "overlap-slam-merge",
            String::new(),
            "slurm-merge-%j.out",
            manifest.jobs.len().to_string(),
        ),
    };
    let mut text = format!(
        "#!/bin/bash\n\
         #SBATCH --job-name={name}\n\
         {extra}\
         #SBATCH --cpus-per-task={}\n\
         #SBATCH --mem={}M\n\
         #SBATCH --time={}\n\
         #SBATCH --output={}/{output}\n",
        r.cpus,
        r.mem_mb,
        r.time_min,
        logs.display()
    );
    if let Some(p) = &r.partition {
        text.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    text.push_str(&format!(
        "exec {} batch {} --task {task}\n",
        quote(&exe.display().to_string()),
        quote(&manifest.path.display().to_string())
    ));
    text
}

/// `s` in single quotes for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Writes the script of `what` into the batch folder and submits it (after job `after` ends
/// well, when given); returns its job id.
pub fn submit(exe: &Path, manifest: &Manifest, what: Script, after: Option<&str>) -> Result<String> {
    let dir = manifest.out.join("slurm");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    std::fs::create_dir_all(manifest.out.join("logs")).map_err(|e| Error::io(manifest.out.join("logs"), e))?;
    let script_path: PathBuf = dir.join(match what {
        Script::Array(_) => "array.sh",
        Script::Merge => "merge.sh",
    });
    let text = script(exe, manifest, what);
    write_atomic(&script_path, |w| w.write_all(text.as_bytes()))?;
    sbatch(&script_path, after)
}

/// Cancels job `job_id` (a merge whose mapping jobs did not all end well would wait forever).
pub fn cancel(job_id: &str) {
    let _ = Command::new("scancel").arg(job_id).output();
}

/// Submits `script` (after job `after` ends well, when given) and returns its job id.
pub fn sbatch(script: &Path, after: Option<&str>) -> Result<String> {
    let mut cmd = Command::new("sbatch");
    cmd.arg("--parsable");
    if let Some(id) = after {
        cmd.arg(format!("--dependency=afterok:{id}"));
    }
    let out = cmd.arg(script).output().map_err(|e| Error::io("sbatch", e))?;
    if !out.status.success() {
        return Err(Error::input(
            script,
            format!("sbatch refused it: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    // `--parsable` prints `id` or `id;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(Error::input(script, format!("sbatch printed no job id: {text:?}")));
    }
    Ok(id)
}

/// Waits until job `job_id` has left the queue; `progress` hears each change of its tasks'
/// states (`RUNNING 2, PENDING 3`).
pub fn follow(job_id: &str, progress: &dyn Fn(&str)) -> Result<()> {
    let mut last = String::new();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", job_id, "-o", "%T"])
            .output()
            .map_err(|e| Error::io("squeue", e))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // squeue forgets a job soon after it ends, and then says "Invalid job id".
        if !out.status.success() || text.trim().is_empty() {
            return Ok(());
        }
        let mut states: BTreeMap<&str, usize> = BTreeMap::new();
        for state in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            *states.entry(state).or_default() += 1;
        }
        let now: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let now = now.join(", ");
        if now != last {
            progress(&now);
            last = now;
        }
        std::thread::sleep(POLL);
    }
}

/// The final state of each task of array `job_id`, by array index.
pub fn task_states(job_id: &str) -> BTreeMap<usize, String> {
    final_states(job_id)
        .into_iter()
        .filter_map(|(index, state)| Some((index?, state)))
        .collect()
}

/// The final state of job `job_id` that is not an array (the merge).
pub fn job_state(job_id: &str) -> Option<String> {
    final_states(job_id).into_iter().next().map(|(_, state)| state)
}

/// Each task of job `job_id` with its array index (none outside an array) and final state:
/// from `sacct` where accounting is on, otherwise from `scontrol show job` (which keeps ended
/// jobs for a while).
fn final_states(job_id: &str) -> Vec<(Option<usize>, String)> {
    let sacct = Command::new("sacct")
        .args(["-j", job_id, "-n", "-P", "-X", "-o", "JobID,State"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|out| parse_sacct(&String::from_utf8_lossy(&out.stdout)))
        .unwrap_or_default();
    if !sacct.is_empty() {
        return sacct;
    }
    Command::new("scontrol")
        .args(["show", "job", job_id])
        .output()
        .map(|out| parse_scontrol(&String::from_utf8_lossy(&out.stdout)))
        .unwrap_or_default()
}

/// `sacct -P -o JobID,State` lines: `123_4|COMPLETED` in an array, `125|COMPLETED` outside.
fn parse_sacct(text: &str) -> Vec<(Option<usize>, String)> {
    text.lines()
        .filter_map(|line| {
            let (id, state) = line.split_once('|')?;
            let index = id.split_once('_').and_then(|(_, i)| i.parse().ok());
            Some((index, state.split_whitespace().next()?.to_string()))
        })
        .collect()
}

/// `scontrol show job` records: `JobState=COMPLETED` in each, `ArrayTaskId=4` in an array's.
fn parse_scontrol(text: &str) -> Vec<(Option<usize>, String)> {
    text.split("\n\n")
        .filter_map(|record| {
            let field = |key: &str| {
                record
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix(key).map(str::to_string))
            };
            let index = field("ArrayTaskId=").and_then(|i| i.parse().ok());
            Some((index, field("JobState=")?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_states_are_read_from_either_tool() {
        let state = |i: Option<usize>, s: &str| (i, s.to_string());
        let sacct = "17_0|COMPLETED\n17_1|FAILED\n17_2|CANCELLED by 0\n18|PENDING\n";
        assert_eq!(
            parse_sacct(sacct),
            [
                state(Some(0), "COMPLETED"),
                state(Some(1), "FAILED"),
                state(Some(2), "CANCELLED"),
                state(None, "PENDING")
            ]
        );
        let scontrol = "JobId=19 ArrayJobId=17 ArrayTaskId=1 JobName=x\n   JobState=TIMEOUT Reason=None\n\n\
                        JobId=18 ArrayJobId=17 ArrayTaskId=0 JobName=x\n   JobState=COMPLETED Reason=None\n\n\
                        JobId=20 JobName=merge\n   JobState=COMPLETED Reason=None\n";
        assert_eq!(
            parse_scontrol(scontrol),
            [
                state(Some(1), "TIMEOUT"),
                state(Some(0), "COMPLETED"),
                state(None, "COMPLETED")
            ]
        );
    }

    #[test]
    fn the_script_asks_for_the_manifests_resources_and_quotes_paths() {
        let manifest = Manifest {
            path: "/data/it's/batch.toml".into(),
            out: "/data/out".into(),
            jobs: Vec::new(),
            merge: None,
            slurm: super::super::manifest::SlurmResources {
                cpus: 2,
                mem_mb: 3000,
                time_min: 45,
                partition: Some("short".into()),
            },
        };
        let script = script(Path::new("/opt/overlap-slam"), &manifest, Script::Array(&[0, 2, 3]));
        for line in [
            "#SBATCH --array=0,2,3",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --mem=3000M",
            "#SBATCH --time=45",
            "#SBATCH --partition=short",
            "#SBATCH --output=/data/out/logs/slurm-%A_%a.out",
            r#"exec '/opt/overlap-slam' batch '/data/it'\''s/batch.toml' --task "$SLURM_ARRAY_TASK_ID""#,
        ] {
            assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
        }
    }
}

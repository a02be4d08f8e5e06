//! `overlap-slam batch`: recordings mapped as jobs on a local process pool and on a real
//! single-node Slurm started for the test; failures recorded without stopping the rest,
//! finished jobs skipped on a rerun, bad manifests refused before any job starts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames of each simulated drive: enough for odometry to be scored, short enough for CI.
const FRAMES: &str = "0..30";

fn write_manifest(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("batch.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn row<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {summary}"))
}

/// Two simulated drives and one folder of scans of the same world, every job's map saved and
/// the maps merged in drive 2's frame.
fn drives_manifest(extra: &str) -> String {
    format!(
        r#"
out = "fleet"
args = ["--frames", "{FRAMES}"]
save_map = true
{extra}
[merge]
anchor = "drive-2"

[[recording]]
name = "drive-1"
args = ["--drive", "1"]

[[recording]]
name = "drive-2"
args = ["--drive", "2"]

[[recording]]
name = "scans"
path = "scans"
"#
    )
}

#[test]
fn the_local_pool_records_a_failure_goes_on_and_a_rerun_retries_only_it() {
    let dir = tempfile::tempdir().unwrap();
    // A folder whose only scan is 7 bytes: its replay fails, the others must not.
    let scans = dir.path().join("scans");
    std::fs::create_dir(&scans).unwrap();
    std::fs::write(scans.join("000000.bin"), [0u8; 7]).unwrap();
    let manifest = write_manifest(dir.path(), &drives_manifest(""));
    let m = manifest.to_str().unwrap();
    let first = common::cli(&["batch", m, "-j", "2", "--quiet"]);
    assert_eq!(
        first.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(stderr.contains("2 of 4 jobs did not finish"), "{stderr}");
    let fleet = dir.path().join("fleet");
    let s = summary(&fleet);
    assert_eq!((s["ok"].as_u64(), s["failed"].as_u64()), (Some(2), Some(2)));
    // The merge waits for every map: not run.
    assert_eq!(row(&s, "merge")["status"], "not run");
    assert!(!fleet.join("merged").exists());
    for name in ["drive-1", "drive-2"] {
        let r = row(&s, name);
        assert_eq!(r["status"], "ok");
        assert_eq!(r["frames"], 30);
        assert!(r["ate_m"].as_f64().unwrap() < 1.0, "{r}");
        assert!(r["frames_per_s"].as_f64().unwrap() > 0.0);
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 20.0, "{r}");
        assert!(fleet.join("maps").join(name).join("map.bin").is_file());
    }
    let bad = row(&s, "scans");
    assert_eq!((&bad["status"], &bad["exit"]), (&"failed".into(), &"2".into()));
    let log = std::fs::read_to_string(fleet.join("logs/scans.log")).unwrap();
    assert!(
        log.contains("000000.bin"),
        "the failed job's log names its bad file: {log}"
    );
    // The CSV has the same rows.
    let csv = std::fs::read_to_string(fleet.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().any(|l| l.starts_with("scans,failed,2,")), "{csv}");

    // Mended, the rerun runs only the failed job, then the merge.
    let before = std::fs::read(fleet.join("jobs/drive-1/status.json")).unwrap();
    std::fs::remove_file(scans.join("000000.bin")).unwrap();
    common::cli_ok(&["synth", "--out", scans.to_str().unwrap(), "--frames", "30", "--quiet"]);
    let second = common::cli_ok(&["batch", m, "--quiet"]);
    let line = String::from_utf8_lossy(&second.stdout);
    assert!(
        line.contains("4 of 4 jobs ok, 0 failed, 2 skipped as finished"),
        "{line}"
    );
    assert_eq!(std::fs::read(fleet.join("jobs/drive-1/status.json")).unwrap(), before);
    assert_eq!(row(&summary(&fleet), "scans")["frames"], 30);
    assert_merged(&fleet);
    // Nothing left to do: a third pass runs nothing, the merge included.
    let third = common::cli_ok(&["batch", m, "--quiet"]);
    let line = String::from_utf8_lossy(&third.stdout);
    assert!(
        line.contains("4 of 4 jobs ok, 0 failed, 3 skipped as finished"),
        "{line}"
    );
}

/// The merged map holds every job's keyframes, in three sessions, drive 2 first.
fn assert_merged(fleet: &Path) {
    let merged = overlap_slam::saved_map::read_map(&fleet.join("merged")).unwrap();
    let keyframes: usize = ["drive-1", "drive-2", "scans"]
        .iter()
        .map(|n| {
            overlap_slam::saved_map::read_map(&fleet.join("maps").join(n))
                .unwrap()
                .keyframes
                .len()
        })
        .sum();
    assert_eq!((merged.keyframes.len(), merged.header.sessions), (keyframes, 3));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet.join("merged/merge.json")).unwrap()).unwrap();
    assert!(
        report["inputs"][0].as_str().unwrap().ends_with("maps/drive-2"),
        "{report}"
    );
}

#[test]
fn a_bad_manifest_is_one_line_and_exit_2_before_any_job_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "out = \"o\"\nworkers = 3\n[[recording]]\nname = \"a\"\n",
            "unknown field `workers`",
        ),
        (
            "out = \"o\"\n[[recording]]\nname = \"a\"\npath = \"gone.mcap\"\n",
            "recording 'a': no such file or folder",
        ),
        (
            "out = \"o\"\n[[recording]]\nname = \"a\"\n[[recording]]\nname = \"a\"\n",
            "recording 'a': the name is used twice",
        ),
        (
            "out = \"o\"\n[[recording]]\nname = \"a\"\nargs = [\"--frobnicate\"]\n",
            "recording 'a': unexpected argument '--frobnicate'",
        ),
    ];
    for (body, says) in cases {
        let manifest = write_manifest(dir.path(), body);
        let res = common::cli(&["batch", manifest.to_str().unwrap()]);
        common::assert_input_error(&res, &["batch.toml", says]);
        assert!(!dir.path().join("o").exists(), "{says}: a job started");
    }
}

#[test]
fn a_slurm_that_does_not_answer_points_to_the_local_engine() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write_manifest(dir.path(), "out = \"o\"\n[[recording]]\nname = \"a\"\n");
    let res = Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args(["batch", manifest.to_str().unwrap(), "--engine", "slurm"])
        .env("SLURM_CONF", dir.path().join("no-slurm.conf"))
        .output()
        .unwrap();
    common::assert_input_error(&res, &["Slurm is not reachable", "--engine local"]);
}

/// A single-node Slurm of this test's own: munged, slurmctld and slurmd with a generated
/// configuration, state and logs in a temporary folder; stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts one, or says why it cannot (no Slurm or munge installed, not root).
    fn start() -> Result<Self, String> {
        for tool in ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            if !found {
                return Err(format!(
                    "{tool} is not installed (apt-get install slurmctld slurmd slurm-client munge)"
                ));
            }
        }
        if unsafe { libc::geteuid() } != 0 {
            return Err("slurmd needs root to start jobs".into());
        }
        let cluster = Self {
            dir: tempfile::tempdir().map_err(|e| e.to_string())?,
        };
        let d = cluster.dir.path();
        for sub in ["munge", "state", "spool", "log"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        let key: Vec<u8> = (0..1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        std::fs::write(d.join("munge/key"), key).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("munge/key"), std::fs::Permissions::from_mode(0o400)).unwrap();
        std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = |p: &str| d.join(p).display().to_string();
        run_tool(
            "munged",
            &[
                "--force",
                &format!("--socket={}", path("munge/sock")),
                &format!("--key-file={}", path("munge/key")),
                &format!("--pid-file={}", path("munge/pid")),
                &format!("--log-file={}", path("munge/log")),
                &format!("--seed-file={}", path("munge/seed")),
            ],
        )?;
        std::fs::write(d.join("slurm.conf"), cluster.config()).unwrap();
        run_tool("slurmctld", &["-f", &path("slurm.conf")])?;
        run_tool("slurmd", &["-f", &path("slurm.conf")])?;
        // The node registers within a few seconds.
        for _ in 0..60 {
            let idle = Command::new("sinfo")
                .args(["-h", "-o", "%T"])
                .env("SLURM_CONF", d.join("slurm.conf"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("idle"))
                .unwrap_or(false);
            if idle {
                return Ok(cluster);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        let log = std::fs::read_to_string(d.join("log/slurmctld.log")).unwrap_or_default();
        Err(format!("the node never came up idle; slurmctld said:\n{log}"))
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        let host = String::from_utf8(Command::new("hostname").arg("-s").output().unwrap().stdout).unwrap();
        let host = host.trim();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mem_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| m.lines().next()?.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map_or(2048, |kb| kb / 1024 * 8 / 10);
        let (ctld, slurmd) = (free_port(), free_port());
        format!(
            "ClusterName=overlaptest\nSlurmctldHost={host}\nSlurmctldPort={ctld}\nSlurmdPort={slurmd}\n\
             AuthType=auth/munge\nAuthInfo=socket={d}/munge/sock\nCredType=cred/munge\n\
             SlurmUser=root\nSlurmdUser=root\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/log/slurmctld.log\nSlurmdLogFile={d}/log/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nSchedulerType=sched/backfill\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU_Memory\nReturnToService=2\n\
             MpiDefault=none\nJobAcctGatherType=jobacct_gather/linux\nAccountingStorageType=accounting_storage/none\n\
             NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN\n\
             PartitionName=batch Nodes={host} Default=YES MaxTime=INFINITE State=UP\n"
        )
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("slurm.conf")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for pid_file in ["slurmd.pid", "slurmctld.pid", "munge/pid"] {
            if let Some(pid) = std::fs::read_to_string(self.dir.path().join(pid_file))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                unsafe { libc::kill(pid, libc::SIGTERM) };
            }
        }
    }
}

fn run_tool(tool: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .map_err(|e| format!("{tool}: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => Err(format!("{tool} failed: {}", String::from_utf8_lossy(&out.stderr))),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_three_recording_batch_runs_as_a_slurm_job_array() {
    let cluster = match Cluster::start() {
        Ok(c) => c,
        Err(why) => {
            eprintln!("skipping: no single-node Slurm here: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let scans = dir.path().join("scans");
    common::cli_ok(&["synth", "--out", scans.to_str().unwrap(), "--frames", "30", "--quiet"]);
    let manifest = write_manifest(
        dir.path(),
        &drives_manifest("[slurm]\ncpus = 1\nmem_mb = 1500\ntime_min = 10\n"),
    );
    let res = Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args(["batch", manifest.to_str().unwrap(), "--engine", "slurm"])
        .env("SLURM_CONF", cluster.conf())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.contains("submitted job array"), "{stderr}");
    let fleet = dir.path().join("fleet");
    let script = std::fs::read_to_string(fleet.join("slurm/array.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0,1,2") && script.contains("#SBATCH --mem=1500M"));
    let merge = std::fs::read_to_string(fleet.join("slurm/merge.sh")).unwrap();
    assert!(merge.contains("--task 3"), "{merge}");
    assert!(stderr.contains("to run after the array ends well"), "{stderr}");
    let s = summary(&fleet);
    assert_eq!(s["engine"], "slurm");
    // All three tasks accounted for, by Slurm and by their own records.
    for name in ["drive-1", "drive-2", "scans"] {
        let r = row(&s, name);
        assert_eq!(
            (&r["status"], &r["scheduler"]),
            (&"ok".into(), &"COMPLETED".into()),
            "{r}"
        );
        assert_eq!(r["frames"], 30);
        assert!(r["peak_rss_mb"].as_f64().unwrap() > 20.0);
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fleet.join("jobs").join(name).join("status.json")).unwrap())
                .unwrap();
        assert_eq!(record["engine"], "slurm");
        assert!(fleet.join("maps").join(name).join("map.bin").is_file());
    }
    // The merge ran as its own job once the array ended well.
    let r = row(&s, "merge");
    assert_eq!(
        (&r["status"], &r["scheduler"]),
        (&"ok".into(), &"COMPLETED".into()),
        "{r}"
    );
    assert_merged(&fleet);
}

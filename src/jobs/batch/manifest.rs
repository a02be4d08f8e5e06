//! The batch manifest: which recordings to map, with what options, and what each array task may
//! ask of a cluster. Every problem in it is found before any job starts.
//!
//! ```toml
//! out = "fleet"                  # every job's folder goes under here (relative to the manifest)
//! args = ["--no-loops"]          # replay options every job gets
//! save_map = true                # each job saves its own map (OUT/maps/NAME)
//!
//! [slurm]                        # what each array task asks for
//! cpus = 1
//! mem_mb = 2048
//! time_min = 30
//!
//! [[recording]]
//! name = "monday"
//! path = "bags/monday.mcap"      # anything replay reads; none: the simulated drive
//! args = ["--topic", "/points"]  # this recording's own replay options
//! ```

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A manifest as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    out: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    save_map: bool,
    #[serde(default)]
    slurm: SlurmResources,
    #[serde(default)]
    recording: Vec<RecordingEntry>,
}

/// One `[[recording]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordingEntry {
    name: String,
    path: Option<PathBuf>,
    #[serde(default)]
    args: Vec<String>,
}

/// What each Slurm array task asks for (`[slurm]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmResources {
    /// CPUs per task (`--cpus-per-task`).
    #[serde(default = "one")]
    pub cpus: u32,
    /// Memory per task, MB (`--mem`).
    #[serde(default = "default_mem_mb")]
    pub mem_mb: u64,
    /// Wall-time limit per task, minutes (`--time`).
    #[serde(default = "default_time_min")]
    pub time_min: u64,
    /// Partition (`--partition`); none: the cluster's default.
    pub partition: Option<String>,
}

fn one() -> u32 {
    1
}

/// A replay of a few thousand frames with loop closure stays under 2 GB.
fn default_mem_mb() -> u64 {
    2048
}

fn default_time_min() -> u64 {
    60
}

impl Default for SlurmResources {
    fn default() -> Self {
        Self {
            cpus: one(),
            mem_mb: default_mem_mb(),
            time_min: default_time_min(),
            partition: None,
        }
    }
}

/// One mapping job: a replay of one recording into a folder of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The recording's name: its folder under the batch's `jobs/`.
    pub name: String,
    /// The recording (`None`: the simulated drive).
    pub path: Option<PathBuf>,
    /// Every replay option: the shared ones, then the recording's own.
    pub args: Vec<String>,
    /// The job's output folder (`--out`).
    pub out: PathBuf,
    /// The job's saved map (`--save-map`), when the batch saves maps.
    pub map: Option<PathBuf>,
}

impl Job {
    /// The `overlap-slam` arguments that run the job.
    pub fn command_line(&self) -> Vec<String> {
        let mut line = vec!["replay".to_string()];
        line.extend(self.path.iter().map(|p| p.display().to_string()));
        line.extend(self.args.iter().cloned());
        line.extend(["--out".to_string(), self.out.display().to_string(), "--quiet".into()]);
        if let Some(map) = &self.map {
            line.extend(["--save-map".to_string(), map.display().to_string()]);
        }
        line
    }
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file itself.
    pub path: PathBuf,
    /// The batch's folder: `jobs/NAME` and `maps/NAME` for each job, the summary, the scripts.
    pub out: PathBuf,
    /// The jobs, in the manifest's order.
    pub jobs: Vec<Job>,
    /// What each Slurm task asks for.
    pub slurm: SlurmResources,
}

/// Options a job's folder layout sets; a manifest that gives them is refused.
const MANAGED: [&str; 3] = ["--out", "--save-map", "--map-out"];

impl Manifest {
    /// Reads and checks the manifest at `path`: known keys only, names unique and usable as
    /// folder names, every recording present. Relative paths are taken from the manifest's
    /// folder.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let file: ManifestFile = toml::from_str(&text).map_err(|e| Error::input(path, one_line(&e)))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let out = base.join(&file.out);
        if file.recording.is_empty() {
            return Err(Error::input(path, "no [[recording]]: nothing to map"));
        }
        let mut names = BTreeSet::new();
        let mut jobs = Vec::new();
        for entry in &file.recording {
            let bad = |msg: String| Error::input(path, format!("recording '{}': {msg}", entry.name));
            check_name(&entry.name).map_err(bad)?;
            if !names.insert(entry.name.clone()) {
                return Err(bad("the name is used twice".into()));
            }
            let recording = entry.path.as_ref().map(|p| base.join(p));
            if let Some(r) = recording.as_ref().filter(|r| !r.exists()) {
                return Err(bad(format!("no such file or folder {}", r.display())));
            }
            let args: Vec<String> = file.args.iter().chain(&entry.args).cloned().collect();
            if let Some(flag) = args
                .iter()
                .find(|a| MANAGED.contains(&a.split('=').next().unwrap_or(a)))
            {
                return Err(bad(format!("{flag} is set by the batch (jobs/NAME, maps/NAME)")));
            }
            jobs.push(Job {
                name: entry.name.clone(),
                path: recording,
                args,
                out: out.join("jobs").join(&entry.name),
                map: file.save_map.then(|| out.join("maps").join(&entry.name)),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            out,
            jobs,
            slurm: file.slurm,
        })
    }
}

/// A name is a folder name: letters, digits, `.`, `_` and `-`, not starting with `.`.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let fine = !name.is_empty()
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    match fine {
        true => Ok(()),
        false => Err("a name is letters, digits, '.', '_' and '-' (it names the job's folder)".into()),
    }
}

/// A TOML error on one line: its message and where.
fn one_line(e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => format!("{message} (at byte {})", span.start),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Result<Manifest> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("drive.bin"), b"").unwrap();
        let path = dir.path().join("batch.toml");
        std::fs::write(&path, text).unwrap();
        Manifest::read(&path)
    }

    #[test]
    fn jobs_get_the_shared_options_then_their_own_and_a_folder_each() {
        let m = manifest(
            r#"
            out = "fleet"
            args = ["--no-loops"]
            save_map = true
            [slurm]
            mem_mb = 1000
            [[recording]]
            name = "sim-1"
            args = ["--drive", "1"]
            [[recording]]
            name = "file"
            path = "drive.bin"
            "#,
        )
        .unwrap();
        assert_eq!(m.jobs.len(), 2);
        let line = m.jobs[0].command_line();
        let out = m.out.join("jobs/sim-1").display().to_string();
        let map = m.out.join("maps/sim-1").display().to_string();
        assert_eq!(
            line,
            [
                "replay",
                "--no-loops",
                "--drive",
                "1",
                "--out",
                &out,
                "--quiet",
                "--save-map",
                &map
            ]
        );
        assert_eq!(m.jobs[1].path.as_ref().unwrap().file_name().unwrap(), "drive.bin");
        assert_eq!(m.slurm.mem_mb, 1000);
        assert_eq!(m.slurm.cpus, 1);
    }

    #[test]
    fn a_bad_manifest_is_one_line_naming_the_problem() {
        let err = |text: &str| manifest(text).unwrap_err().to_string();
        let unknown = err("out = \"o\"\nthreads = 4\n[[recording]]\nname = \"a\"\n");
        assert!(unknown.contains("unknown field `threads`"), "{unknown}");
        assert!(!unknown.contains('\n'), "{unknown}");
        let twice = err("out = \"o\"\n[[recording]]\nname = \"a\"\n[[recording]]\nname = \"a\"\n");
        assert!(twice.ends_with("recording 'a': the name is used twice"), "{twice}");
        let missing = err("out = \"o\"\n[[recording]]\nname = \"a\"\npath = \"nowhere.mcap\"\n");
        assert!(missing.contains("recording 'a': no such file or folder") && missing.contains("nowhere.mcap"));
        let slash = err("out = \"o\"\n[[recording]]\nname = \"../a\"\n");
        assert!(slash.contains("recording '../a': a name is letters"), "{slash}");
        let managed = err("out = \"o\"\n[[recording]]\nname = \"a\"\nargs = [\"--out\", \"x\"]\n");
        assert!(managed.contains("--out is set by the batch"), "{managed}");
        let none = err("out = \"o\"\n");
        assert!(none.ends_with("no [[recording]]: nothing to map"), "{none}");
    }
}

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
//!
//! [merge]                        # after every mapping job ends well: their maps merged
//! anchor = "monday"              # whose frame the merged map keeps (default: the first)
//! out = "merged"                 # under the batch folder (default: merged)
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
    merge: Option<MergeEntry>,
}

/// `[merge]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeEntry {
    anchor: Option<String>,
    out: Option<PathBuf>,
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

/// One job: a replay of one recording into a folder of its own, or the merge of their maps.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The recording's name (its folder under the batch's `jobs/`), or `merge`.
    pub name: String,
    /// The `overlap-slam` arguments that run it.
    pub command: Vec<String>,
    /// Its folder: the replay's `--out`, or the merged map.
    pub out: PathBuf,
    /// The file whose presence (beside a record of success) says it finished.
    pub product: PathBuf,
    /// The replay's saved map (`--save-map`), when the batch saves maps.
    pub map: Option<PathBuf>,
}

impl Job {
    /// The replay of `recording` (`None`: the simulated drive) with `args`, into `out`, saving
    /// its map into `map`.
    fn replay(name: &str, recording: Option<&Path>, args: &[String], out: PathBuf, map: Option<PathBuf>) -> Self {
        let mut command = vec!["replay".to_string()];
        command.extend(recording.map(|p| p.display().to_string()));
        command.extend(args.iter().cloned());
        command.extend(["--out".to_string(), out.display().to_string(), "--quiet".into()]);
        if let Some(map) = &map {
            command.extend(["--save-map".to_string(), map.display().to_string()]);
        }
        Self {
            name: name.to_string(),
            command,
            product: out.join("metrics.json"),
            out,
            map,
        }
    }

    /// The merge of `maps` (the anchor first) into `out`.
    fn merge(maps: &[&Path], out: PathBuf) -> Self {
        let mut command = vec!["merge-maps".to_string()];
        command.extend(maps.iter().map(|m| m.display().to_string()));
        command.extend(["--out".to_string(), out.display().to_string(), "--quiet".into()]);
        Self {
            name: MERGE_JOB.to_string(),
            command,
            product: out.join("map.bin"),
            out,
            map: None,
        }
    }
}

/// The merge job's name (no recording may take it).
pub const MERGE_JOB: &str = "merge";

/// A checked manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest file itself.
    pub path: PathBuf,
    /// The batch's folder: `jobs/NAME` and `maps/NAME` for each job, the summary, the scripts.
    pub out: PathBuf,
    /// The mapping jobs, in the manifest's order.
    pub jobs: Vec<Job>,
    /// The merge of their maps (`[merge]`), run once they have all ended well.
    pub merge: Option<Job>,
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
            if entry.name == MERGE_JOB && file.merge.is_some() {
                return Err(bad(format!("'{MERGE_JOB}' names the [merge] job")));
            }
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
            jobs.push(Job::replay(
                &entry.name,
                recording.as_deref(),
                &args,
                out.join("jobs").join(&entry.name),
                file.save_map.then(|| out.join("maps").join(&entry.name)),
            ));
        }
        let merge = match &file.merge {
            Some(m) => Some(merge_job(path, &out, m, &jobs)?),
            None => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            out,
            jobs,
            merge,
            slurm: file.slurm,
        })
    }
}

/// The `[merge]` job over `jobs`' maps, its anchor first.
fn merge_job(path: &Path, out: &Path, entry: &MergeEntry, jobs: &[Job]) -> Result<Job> {
    let bad = |msg: String| Error::input(path, format!("[merge]: {msg}"));
    let maps: Vec<&Path> = jobs.iter().filter_map(|j| j.map.as_deref()).collect();
    if maps.len() != jobs.len() {
        return Err(bad("needs save_map = true (it merges the jobs' maps)".into()));
    }
    if maps.len() < 2 {
        return Err(bad("needs two recordings or more".into()));
    }
    let anchor = match &entry.anchor {
        None => 0,
        Some(name) => jobs
            .iter()
            .position(|j| &j.name == name)
            .ok_or_else(|| bad(format!("anchor '{name}' is not a recording's name")))?,
    };
    let ordered: Vec<&Path> = std::iter::once(maps[anchor])
        .chain(maps.iter().enumerate().filter(|(i, _)| *i != anchor).map(|(_, m)| *m))
        .collect();
    let merged = out.join(entry.out.as_deref().unwrap_or(Path::new("merged")));
    Ok(Job::merge(&ordered, merged))
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
        let line = m.jobs[0].command.clone();
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
        assert!(m.jobs[1].command[1].ends_with("drive.bin"), "{:?}", m.jobs[1].command);
        assert_eq!(m.slurm.mem_mb, 1000);
        assert_eq!(m.slurm.cpus, 1);
        assert!(m.merge.is_none());
    }

    #[test]
    fn the_merge_job_takes_every_map_with_its_anchor_first() {
        let m = manifest(
            "out = \"o\"\nsave_map = true\n[merge]\nanchor = \"b\"\n\
             [[recording]]\nname = \"a\"\n[[recording]]\nname = \"b\"\n",
        )
        .unwrap();
        let merge = m.merge.unwrap();
        let map = |name: &str| m.out.join("maps").join(name).display().to_string();
        let out = m.out.join("merged").display().to_string();
        assert_eq!(
            merge.command,
            ["merge-maps", &map("b"), &map("a"), "--out", &out, "--quiet"]
        );
        let err = |text: &str| manifest(text).unwrap_err().to_string();
        let unsaved = err("out = \"o\"\n[merge]\n[[recording]]\nname = \"a\"\n[[recording]]\nname = \"b\"\n");
        assert!(
            unsaved.ends_with("[merge]: needs save_map = true (it merges the jobs' maps)"),
            "{unsaved}"
        );
        let anchor = err(
            "out = \"o\"\nsave_map = true\n[merge]\nanchor = \"c\"\n[[recording]]\nname = \"a\"\n[[recording]]\nname = \"b\"\n",
        );
        assert!(
            anchor.ends_with("[merge]: anchor 'c' is not a recording's name"),
            "{anchor}"
        );
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

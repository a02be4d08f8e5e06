//! A sequence of scan files on disk with optional ground truth and timestamps: the common shape
//! of the KITTI, PLY and PCD sources.

use crate::error::{Error, Result};
use crate::io::{FrameRange, ScanSource};
use crate::scan::{Pose, Scan};
use std::path::{Path, PathBuf};

/// Seconds between frames when a source has no timestamps (KITTI's 10 Hz).
pub const DEFAULT_FRAME_PERIOD_S: f64 = 0.1;

/// One scan file and the frame number it stands for.
#[derive(Debug, Clone)]
pub struct SequenceEntry {
    /// Frame number (indexes ground truth and timestamps).
    pub frame: usize,
    /// The scan file.
    pub path: PathBuf,
}

/// Reads one scan file.
pub type ScanReader = fn(&Path) -> Result<Scan>;

/// Scans read lazily from files, in order, with ground truth and times attached.
pub struct FileSequence {
    name: String,
    entries: Vec<SequenceEntry>,
    reader: ScanReader,
    gt: Option<Vec<Pose>>,
    times: Option<Vec<f64>>,
    next: usize,
    kitti: bool,
}

impl FileSequence {
    /// A sequence over `entries`; `gt` and `times` are indexed by frame number.
    pub fn new(
        name: String,
        entries: Vec<SequenceEntry>,
        reader: ScanReader,
        gt: Option<Vec<Pose>>,
        times: Option<Vec<f64>>,
    ) -> Self {
        Self {
            name,
            entries,
            reader,
            gt,
            times,
            next: 0,
            kitti: false,
        }
    }

    /// Marks the sequence as KITTI odometry data.
    pub fn kitti(mut self) -> Self {
        self.kitti = true;
        self
    }

    fn load(&self, entry: &SequenceEntry) -> Result<Scan> {
        let mut scan = (self.reader)(&entry.path)?;
        scan.index = entry.frame;
        scan.timestamp = self
            .times
            .as_ref()
            .map_or(entry.frame as f64 * DEFAULT_FRAME_PERIOD_S, |t| t[entry.frame]);
        scan.gt_pose = self.gt.as_ref().map(|g| g[entry.frame]);
        let dropped = scan.drop_non_finite();
        if dropped > 0 {
            log::warn!("{}: dropped {dropped} points with NaN/inf values", entry.path.display());
        }
        if scan.is_empty() {
            return Err(Error::input(&entry.path, "scan is empty (no finite points)"));
        }
        Ok(scan)
    }
}

impl Iterator for FileSequence {
    type Item = Result<Scan>;

    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.entries.get(self.next)?.clone();
        self.next += 1;
        Some(self.load(&entry))
    }
}

impl ScanSource for FileSequence {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn len_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }

    fn has_ground_truth(&self) -> bool {
        self.gt.is_some()
    }

    fn is_kitti(&self) -> bool {
        self.kitti
    }
}

/// The entries of `frames` and the last frame among them; a range without a scan is refused,
/// naming `source`. Poses and times are matched after this, so they need only reach that frame.
pub fn select_frames(
    entries: impl IntoIterator<Item = SequenceEntry>,
    frames: FrameRange,
    source: &Path,
) -> Result<(Vec<SequenceEntry>, usize)> {
    let kept: Vec<SequenceEntry> = entries.into_iter().filter(|e| frames.contains(e.frame)).collect();
    match kept.iter().map(|e| e.frame).max() {
        Some(last) => Ok((kept, last)),
        None => Err(Error::input(source, format!("no scans in frame range {frames:?}"))),
    }
}

/// Files in `dir` whose extension is `ext` (case-insensitive), sorted by name.
pub fn list_files_with_ext(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && has_ext(p, ext))
        .collect();
    files.sort();
    Ok(files)
}

/// True when `path` ends in `.ext` (case-insensitive).
pub fn has_ext(path: &Path, ext: &str) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

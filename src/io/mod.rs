//! Scan sources: every way scans enter the pipeline, behind one iterator trait.
//!
//! A source yields `Result<Scan>` in frame order. File formats are recognised from the path;
//! [`Format`] overrides the guess.

pub mod atomic;
pub mod frames;
pub mod keras;
pub mod kitti;
pub mod pcd;
pub mod ply;
pub mod poses;
pub mod ros;
pub mod sequence;
pub mod velodyne;
pub mod weights;

pub use frames::FrameRange;
pub use sequence::FileSequence;

use crate::error::{Error, Result};
use crate::scan::Scan;
use sequence::{ScanReader, SequenceEntry, has_ext, list_files_with_ext, select_frames};
use std::path::{Path, PathBuf};

/// Field names accepted for a point's reflectance in PLY, PCD and PointCloud2, first match wins
/// (Ouster's `reflectivity` after its `intensity`).
pub const INTENSITY_NAMES: &[&str] = &[
    "intensity",
    "reflectivity",
    "reflectance",
    "remission",
    "scalar_intensity",
    "i",
];
/// Field names accepted for a point's time within the sweep, first match wins: Velodyne `time`,
/// Ouster `t`, Hesai `timestamp`, Livox `offset_time`.
pub const TIME_NAMES: &[&str] = &["time", "t", "timestamp", "offset_time", "time_offset"];
/// Field names accepted for a point's laser (beam) number.
pub const RING_NAMES: &[&str] = &["ring", "laser_id", "beam", "line", "channel"];

/// An ordered stream of scans.
pub trait ScanSource: Iterator<Item = Result<Scan>> + Send {
    /// What the source reads, for logs and the viewer.
    fn name(&self) -> String;
    /// How many scans remain, when known.
    fn len_hint(&self) -> Option<usize>;
    /// True when scans carry ground-truth poses.
    fn has_ground_truth(&self) -> bool;
    /// True for KITTI odometry data, whose scans need the 0.205 degree vertical correction.
    fn is_kitti(&self) -> bool {
        false
    }
}

/// On-disk scan formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// KITTI odometry `.bin` scans (flat folder, `sequences/XX`, or bare files).
    Kitti,
    /// PLY point clouds.
    Ply,
    /// PCD point clouds.
    Pcd,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "kitti" | "bin" => Ok(Format::Kitti),
            "ply" => Ok(Format::Ply),
            "pcd" => Ok(Format::Pcd),
            _ => Err(Error::Usage(format!(
                "unknown format '{s}': expected kitti, ply or pcd"
            ))),
        }
    }
}

impl Format {
    fn extension(self) -> &'static str {
        match self {
            Format::Kitti => "bin",
            Format::Ply => "ply",
            Format::Pcd => "pcd",
        }
    }

    /// The function that reads one scan file of this format.
    pub fn reader(self) -> ScanReader {
        match self {
            Format::Kitti => kitti::read_bin,
            Format::Ply => ply::read_ply,
            Format::Pcd => pcd::read_pcd,
        }
    }
}

/// How to open a path as a source.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// Force a format instead of guessing from the path.
    pub format: Option<Format>,
    /// Frames to take.
    pub frames: FrameRange,
    /// Ground-truth trajectory for PLY/PCD (KITTI 3x4 or TUM); KITTI finds its own.
    pub poses: Option<PathBuf>,
    /// PointCloud2 topic of a recording (ROS bag); `None` takes the only one.
    pub topic: Option<String>,
    /// Ground-truth `Odometry` / `PoseStamped` topic of a recording.
    pub gt_topic: Option<String>,
    /// The robot's base and the sensor's mounting on it, for a recording's ground truth stated
    /// for the base.
    pub base: crate::frames::BaseFrame,
}

/// Opens any scan source on disk: a ROS recording (rosbag2 folder, `.mcap`, `.db3`, `.bag`) or
/// a file or folder of scans.
pub fn open_source(path: &Path, opts: &SourceOptions) -> Result<Box<dyn ScanSource>> {
    if opts.format.is_none() && ros::is_bag(path) {
        if opts.poses.is_some() {
            return Err(Error::Usage(
                "--poses is for PLY/PCD folders; a recording's ground truth comes from --gt-topic".into(),
            ));
        }
        let bag = ros::BagOptions {
            topic: opts.topic.clone(),
            gt_topic: opts.gt_topic.clone(),
            frames: opts.frames,
            base: opts.base.clone(),
        };
        return Ok(Box::new(ros::BagSource::open(path, &bag)?));
    }
    if opts.topic.is_some() || opts.gt_topic.is_some() {
        return Err(Error::input(
            path,
            "--topic and --gt-topic need a ROS recording (.mcap, .db3, .bag or a rosbag2 folder)",
        ));
    }
    Ok(Box::new(open(path, opts)?))
}

/// Guesses the format of a file or folder.
pub fn detect_format(path: &Path) -> Result<Format> {
    if !path.exists() {
        return Err(Error::input(path, "no such file or folder"));
    }
    if path.is_file() {
        for f in [Format::Kitti, Format::Ply, Format::Pcd] {
            if has_ext(path, f.extension()) {
                return Ok(f);
            }
        }
        return Err(Error::input(
            path,
            "unknown scan file type: expected .bin, .ply, .pcd, or a ROS recording .mcap, .db3, .bag (or pass --format)",
        ));
    }
    if path.join("velodyne").is_dir() {
        return Ok(Format::Kitti);
    }
    let mut best = None;
    for f in [Format::Kitti, Format::Ply, Format::Pcd] {
        let n = list_files_with_ext(path, f.extension())?.len();
        if n > 0 && best.is_none_or(|(_, m)| n > m) {
            best = Some((f, n));
        }
    }
    best.map(|(f, _)| f)
        .ok_or_else(|| Error::input(path, "no .bin, .ply or .pcd scans here (and no velodyne/ folder)"))
}

/// Opens a file or folder of scans.
pub fn open(path: &Path, opts: &SourceOptions) -> Result<FileSequence> {
    let format = match opts.format {
        Some(f) => {
            if !path.exists() {
                return Err(Error::input(path, "no such file or folder"));
            }
            f
        }
        None => detect_format(path)?,
    };
    if path.is_file() {
        let one = SequenceEntry {
            frame: 0,
            path: path.to_path_buf(),
        };
        let (entries, _) = select_frames([one], opts.frames, path)?;
        let (gt, times) = read_ground_truth(opts.poses.as_deref(), 1)?;
        Ok(FileSequence::new(
            path.display().to_string(),
            entries,
            format.reader(),
            gt,
            times,
        ))
    } else if format == Format::Kitti && opts.poses.is_none() {
        kitti::open_sequence(path, opts.frames)
    } else {
        open_folder(path, format, opts.poses.as_deref(), opts.frames)
    }
}

/// The scans of `frames` in a folder, with the poses of those frames: the frames are chosen
/// first, so a poses file only needs lines up to the last frame read.
fn open_folder(dir: &Path, format: Format, poses: Option<&Path>, frames: FrameRange) -> Result<FileSequence> {
    let scans_dir = if format == Format::Kitti && dir.join("velodyne").is_dir() {
        dir.join("velodyne")
    } else {
        dir.to_path_buf()
    };
    let files = list_files_with_ext(&scans_dir, format.extension())?;
    if files.is_empty() {
        return Err(Error::input(
            &scans_dir,
            format!("no .{} files in this folder", format.extension()),
        ));
    }
    let default_poses = ["poses.txt", "poses.tum"]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file());
    let poses = poses.map(Path::to_path_buf).or(default_poses);
    let all = files
        .into_iter()
        .enumerate()
        .map(|(frame, path)| SequenceEntry { frame, path });
    let (entries, last) = select_frames(all, frames, dir)?;
    let (gt, times) = read_ground_truth(poses.as_deref(), last + 1)?;
    Ok(FileSequence::new(
        dir.display().to_string(),
        entries,
        format.reader(),
        gt,
        times,
    ))
}

type GroundTruth = (Option<Vec<crate::scan::Pose>>, Option<Vec<f64>>);

/// Poses (and their stamps) from `poses`, which must cover frames `0..frames`.
fn read_ground_truth(poses: Option<&Path>, frames: usize) -> Result<GroundTruth> {
    let Some(p) = poses else { return Ok((None, None)) };
    let traj = poses::read_trajectory(p)?;
    if traj.poses.len() < frames {
        return Err(Error::input(
            p,
            format!(
                "{} poses but the frames read go up to {}: too few lines",
                traj.poses.len(),
                frames - 1
            ),
        ));
    }
    Ok((Some(traj.poses), traj.stamps))
}

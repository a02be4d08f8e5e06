//! The recording itself: what each stage's output looks like in the viewer.

use super::VizTarget;
use super::blueprint::{self, Eye, Layout};
use super::encode::{depth_png, intensity_png, normal_png, rgb_png};
use crate::error::{Error, Result};
use crate::loops::search::LoopCandidate;
use crate::projection::RangeImage;
use crate::projection::png::turbo;
use crate::scan::{Pose, Scan};
use rerun::{RecordingStream, RecordingStreamBuilder};
use std::path::PathBuf;

/// Application id shown in the viewer.
const APP_ID: &str = "overlap-slam";
/// Depth images are stored in decimetres (16 bits: up to 6.5 km), a tenth of a metre being finer
/// than a colour map shows; centimetres would double the range image's size.
const DEPTH_PER_METRE: f32 = 10.0;

/// Colours of what the 3D view draws.
mod colour {
    pub const ESTIMATE: [u8; 3] = [255, 140, 0];
    pub const TRUTH: [u8; 3] = [60, 200, 90];
    pub const OPTIMISED: [u8; 3] = [40, 120, 255];
    pub const LOOP: [u8; 3] = [255, 60, 200];
    pub const REFUSED: [u8; 3] = [150, 150, 150];
    pub const GATED: [u8; 3] = [255, 150, 0];
    pub const MAP: [u8; 3] = [170, 170, 170];
    pub const CORRECTED_MAP: [u8; 3] = [120, 170, 255];
    pub const PRIOR_MAP: [u8; 3] = [110, 90, 160];
    pub const PRIOR_TRAJECTORY: [u8; 3] = [150, 80, 220];
    pub const HYPOTHESIS: [u8; 3] = [255, 220, 0];
    pub const FIX: [u8; 3] = [0, 230, 120];
}

/// A trajectory drawn as it grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The odometry's (orange).
    Estimate = 0,
    /// The ground truth (green).
    Truth = 1,
}

impl Track {
    fn style(self) -> (&'static str, [u8; 3]) {
        match self {
            Track::Estimate => ("world/trajectory/estimate", colour::ESTIMATE),
            Track::Truth => ("world/trajectory/ground_truth", colour::TRUTH),
        }
    }
}

/// Poses in a finished piece of a drawn trajectory (see [`Viz::log_track`]).
pub const TRACK_PIECE: usize = 500;

fn rgb([r, g, b]: [u8; 3]) -> rerun::Color {
    rerun::Color::from_rgb(r, g, b)
}

fn position(pose: &Pose) -> [f32; 3] {
    let t = pose.translation.vector;
    [t.x as f32, t.y as f32, t.z as f32]
}

/// A live recording, or nothing when visualisation is off.
pub struct Viz {
    rec: Option<RecordingStream>,
    /// For `Save`: (temporary file being written, final path).
    save: Option<(PathBuf, PathBuf)>,
    /// The layout sent when the recording is finished (saved recordings), with its camera set
    /// from the trajectories.
    final_layout: Option<Layout>,
    /// Finished pieces of each [`Track`] already logged.
    pieces: [usize; 2],
    map_batches: usize,
    max_points: usize,
}

fn viz_err(e: impl std::fmt::Display) -> Error {
    Error::Viz(e.to_string())
}

/// An opened stream and, for a saved one, (temporary file being written, final path).
type Opened = (Option<RecordingStream>, Option<(PathBuf, PathBuf)>);

fn open_stream(target: &VizTarget) -> Result<Opened> {
    let builder = RecordingStreamBuilder::new(APP_ID);
    Ok(match target {
        VizTarget::None => (None, None),
        VizTarget::Save(path) => {
            let name = path
                .file_name()
                .ok_or_else(|| Error::Usage(format!("{}: not a file path", path.display())))?;
            let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
            let rec = builder
                .save(&tmp)
                .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
            (Some(rec), Some((tmp, path.clone())))
        }
        VizTarget::Spawn => (Some(builder.spawn().map_err(viz_err)?), None),
        VizTarget::Connect(addr) => {
            let url = if addr.contains("://") {
                addr.clone()
            } else {
                format!("rerun+http://{addr}/proxy")
            };
            (Some(builder.connect_grpc_opts(url).map_err(viz_err)?), None)
        }
    })
}

impl Viz {
    /// Opens a recording without a layout (the viewer's own): training curves, say.
    pub fn open(target: &VizTarget) -> Result<Self> {
        let (rec, save) = open_stream(target)?;
        Ok(Self {
            rec,
            save,
            final_layout: None,
            pieces: [0; 2],
            map_batches: 0,
            max_points: usize::MAX,
        })
    }

    /// Opens a run's recording with `layout`, declaring the world right-handed, Z up. A saved
    /// recording gets its layout when finished, its camera framed on the whole run; a viewer
    /// fed live gets it now, following the sensor (the run's extent is not known yet).
    pub fn open_run(target: &VizTarget, layout: Layout, max_points: usize) -> Result<Self> {
        let mut viz = Self::open(target)?;
        viz.max_points = max_points.max(1);
        let Some(rec) = &viz.rec else { return Ok(viz) };
        rec.log_static("world", &rerun::ViewCoordinates::RIGHT_HAND_Z_UP())
            .map_err(viz_err)?;
        if viz.save.is_some() {
            viz.final_layout = Some(layout);
        } else {
            let live = Layout {
                eye: Eye::FollowSensor,
                ..layout
            };
            blueprint::send(rec, APP_ID, &live)?;
        }
        Ok(viz)
    }

    /// True when anything is being recorded.
    pub fn is_active(&self) -> bool {
        self.rec.is_some()
    }

    /// Moves both timelines to this scan.
    pub fn set_frame(&self, scan: &Scan) {
        if let Some(rec) = &self.rec {
            rec.set_time_sequence("frame", scan.index as i64);
            rec.set_duration_secs("time", scan.timestamp);
        }
    }

    /// Places the sensor (`world/sensor`) at its estimated pose: the scan below it is drawn in
    /// the sensor's frame.
    pub fn log_sensor(&self, estimate: &Pose) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let q = estimate.rotation.coords;
        rec.log(
            "world/sensor",
            &rerun::Transform3D::from_translation_rotation(
                position(estimate),
                rerun::Quaternion::from_xyzw([q.x as f32, q.y as f32, q.z as f32, q.w as f32]),
            ),
        )
        .map_err(viz_err)
    }

    /// Logs the scan in the sensor frame, thinned to the point budget, coloured by intensity.
    pub fn log_scan(&self, scan: &Scan) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let step = scan.len().div_ceil(self.max_points).max(1);
        let points: Vec<[f32; 3]> = scan.points.iter().step_by(step).copied().collect();
        let colors: Vec<rerun::Color> = scan
            .intensity
            .iter()
            .step_by(step)
            .map(|i| rgb(turbo((i / 0.6).clamp(0.0, 1.0))))
            .collect();
        rec.log(
            "world/sensor/scan",
            &rerun::Points3D::new(points).with_colors(colors).with_radii([0.04f32]),
        )
        .map_err(viz_err)
    }

    /// Draws `track` (every frame's pose so far, in order) as static lines, visible wherever the
    /// time cursor is. Finished pieces of [`TRACK_PIECE`] poses are logged once, as
    /// `PATH/NNNNN`; only the piece still growing is logged again under `PATH` itself, so a long
    /// run's recording grows with its length, not with its square.
    pub fn log_track(&mut self, track: Track, poses: &[Pose]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let (path, c) = track.style();
        let done = &mut self.pieces[track as usize];
        while (*done + 1) * TRACK_PIECE < poses.len() {
            // Each piece ends where the next begins, so the line has no gaps.
            let piece = &poses[*done * TRACK_PIECE..=(*done + 1) * TRACK_PIECE];
            rec.log_static(format!("{path}/{:05}", *done), &strip(piece, c))
                .map_err(viz_err)?;
            *done += 1;
        }
        let growing = &poses[(*done * TRACK_PIECE).min(poses.len())..];
        if growing.len() < 2 {
            return Ok(());
        }
        rec.log_static(path, &strip(growing, c)).map_err(viz_err)
    }

    /// Logs one batch of new map points (world frame) as `world/map/NNNNN`; batches add up, so
    /// a recording holds every map point once.
    pub fn log_map_batch(&mut self, points: &[[f32; 3]]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        if points.is_empty() {
            return Ok(());
        }
        let batch = self.map_batches;
        self.map_batches += 1;
        rec.log(
            format!("world/map/{batch:05}"),
            &rerun::Points3D::new(points.iter().copied())
                .with_colors([rgb(colour::MAP)])
                .with_radii([0.05f32]),
        )
        .map_err(viz_err)
    }

    /// Logs the range (decimetres, turbo), normal (216 colours) and intensity (16 greys)
    /// images, each as PNG.
    pub fn log_images(&self, img: &RangeImage) -> Result<()> {
        if self.rec.is_none() {
            return Ok(());
        }
        self.log_depth("images/range", img.rows, img.cols, &img.range)?;
        self.log_png("images/normal", normal_png(img)?)?;
        self.log_png("images/intensity", intensity_png(img)?)
    }

    fn log_png(&self, path: &str, png: Vec<u8>) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let image = rerun::EncodedImage::from_file_contents(png).with_media_type(rerun::MediaType::PNG);
        rec.log(path, &image).map_err(viz_err)
    }

    /// Logs a loop closed at frame `query` as a static line between the two (loop-corrected)
    /// positions, and its predicted overlap as a scalar at that frame.
    pub fn log_loop(&self, query: usize, at: &Pose, to: &Pose, overlap: f32) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        loop_line(rec, query, at, to)?;
        rec.set_time_sequence("frame", query as i64);
        rec.log("metrics/loop_overlap", &rerun::Scalars::single(overlap as f64))
            .map_err(viz_err)
    }

    /// A handle through which another thread (loop closure) draws loops as they close.
    pub fn loop_view(&self) -> Option<LoopView> {
        self.rec.clone().map(|rec| LoopView { rec })
    }

    /// Logs one loop candidate the search proposed and did not close, as a static line between
    /// the two keyframes (grey: ICP refused it; orange: the MIMO spread gate refused it
    /// unverified), labelled with the predicted overlap and yaw and, from a MIMO network, its
    /// subnetworks' spread.
    pub fn log_candidate(&self, candidate: &LoopCandidate, at: &Pose, to: &Pose) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let color = if candidate.gated {
            colour::GATED
        } else {
            colour::REFUSED
        };
        rec.log_static(
            format!("world/loop_candidates/{}", candidate.query),
            &rerun::LineStrips3D::new([[position(at), position(to)]])
                .with_colors([rgb(color)])
                .with_labels([candidate_label(candidate)])
                // Read on hover: dozens of labels drawn at once hide the trajectories.
                .with_show_labels(false),
        )
        .map_err(viz_err)
    }

    /// Logs the detector's best match for a keyframe, proposed or not, as series at its frame:
    /// `loops/best_overlap` and, from a MIMO network, `loops/overlap_spread` and
    /// `loops/yaw_spread_deg`, so the network's confidence can be read along the whole run.
    pub fn log_judged(&self, judged: &LoopCandidate) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.set_time_sequence("frame", judged.query as i64);
        rec.log("loops/best_overlap", &rerun::Scalars::single(judged.overlap as f64))
            .map_err(viz_err)?;
        if let Some(s) = judged.spread {
            rec.log("loops/overlap_spread", &rerun::Scalars::single(s.overlap as f64))
                .map_err(viz_err)?;
            rec.log("loops/yaw_spread_deg", &rerun::Scalars::single(s.yaw_deg as f64))
                .map_err(viz_err)?;
        }
        Ok(())
    }

    /// Logs the loop-corrected trajectory (blue) beside the odometry's (orange), whole: every
    /// correction moves all of it.
    pub fn log_optimised(&self, poses: &[Pose]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        optimised_line(rec, poses)
    }

    /// Logs the map rebuilt from the optimised poses (static).
    pub fn log_corrected_map(&self, points: &[[f32; 3]]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.log_static(
            "world/corrected_map",
            &rerun::Points3D::new(points.iter().copied())
                .with_colors([rgb(colour::CORRECTED_MAP)])
                .with_radii([0.05f32]),
        )
        .map_err(viz_err)
    }

    /// Logs a saved map the run starts in (static, `world/prior_map`): its points (map frame)
    /// and its keyframes' trajectory, beside which the new run is drawn once localised.
    pub fn log_prior_map(&self, points: &[[f32; 3]], keyframes: &[Pose]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.log_static(
            "world/prior_map/points",
            &rerun::Points3D::new(points.iter().copied())
                .with_colors([rgb(colour::PRIOR_MAP)])
                .with_radii([0.05f32]),
        )
        .map_err(viz_err)?;
        rec.log_static(
            "world/prior_map/trajectory",
            &rerun::Points3D::new(keyframes.iter().map(position))
                .with_colors([rgb(colour::PRIOR_TRAJECTORY)])
                .with_radii([0.4f32]),
        )
        .map_err(viz_err)
    }

    /// Moves the `step` timeline (training) to `step`.
    pub fn set_step(&self, step: usize) {
        if let Some(rec) = &self.rec {
            rec.set_time_sequence("step", step as i64);
        }
    }

    /// Logs one scalar under `metrics/NAME` (stage timings, errors).
    pub fn log_scalar(&self, name: &str, value: f64) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.log(format!("metrics/{name}"), &rerun::Scalars::single(value))
            .map_err(viz_err)
    }

    /// Logs a `rows x cols` image of metres (negative: empty, drawn black) under `path`, with the
    /// turbo colour map: the range image, and perception stages' renderings and error maps.
    pub fn log_depth(&self, path: &str, rows: usize, cols: usize, metres: &[f32]) -> Result<()> {
        if self.rec.is_none() {
            return Ok(());
        }
        self.log_depth_png(path, depth_png(cols, rows, metres, DEPTH_PER_METRE)?)
    }

    /// Logs a depth PNG in decimetres, drawn with the turbo colour map.
    fn log_depth_png(&self, path: &str, png: Vec<u8>) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let image = rerun::EncodedDepthImage::new(png)
            .with_media_type(rerun::MediaType::PNG)
            .with_meter(DEPTH_PER_METRE)
            .with_colormap(rerun::components::Colormap::Turbo);
        rec.log(path, &image).map_err(viz_err)
    }

    /// Logs a `rows x cols` RGB image (row-major, 3 bytes a pixel) under `path`, as PNG.
    pub fn log_rgb(&self, path: &str, rows: usize, cols: usize, rgb: Vec<u8>) -> Result<()> {
        if self.rec.is_none() {
            return Ok(());
        }
        self.log_png(path, rgb_png(cols, rows, &rgb)?)
    }

    /// Flushes everything and, for a saved recording, sends its layout with the camera at
    /// `eye` (framed on the run: [`Eye::framing`]) and moves the file to its final name.
    pub fn finish(mut self, eye: Eye) -> Result<()> {
        if let Some(rec) = self.rec.take() {
            if let Some(layout) = self.final_layout.take() {
                blueprint::send(&rec, APP_ID, &Layout { eye, ..layout })?;
            }
            rec.flush_blocking().map_err(viz_err)?;
            drop(rec);
        }
        if let Some((tmp, path)) = self.save.take() {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

/// Draws the loop-corrected trajectory as a static blue line.
fn optimised_line(rec: &RecordingStream, poses: &[Pose]) -> Result<()> {
    rec.log_static("world/trajectory/optimised", &strip(poses, colour::OPTIMISED))
        .map_err(viz_err)
}

/// `poses` as one line of colour `c`.
fn strip(poses: &[Pose], c: [u8; 3]) -> rerun::LineStrips3D {
    let line: Vec<[f32; 3]> = poses.iter().map(position).collect();
    rerun::LineStrips3D::new([line]).with_colors([rgb(c)])
}

/// Draws a closed loop as a static magenta line between its two positions.
fn loop_line(rec: &RecordingStream, query: usize, at: &Pose, to: &Pose) -> Result<()> {
    rec.log_static(
        format!("world/loops/{query}"),
        &rerun::LineStrips3D::new([[position(at), position(to)]]).with_colors([rgb(colour::LOOP)]),
    )
    .map_err(viz_err)
}

/// The part of a recording the loop-closure thread draws into while a run goes: each loop as it
/// closes and the corrected trajectory after it, so a viewer watching live sees them at once.
/// The run's end draws them again, whole.
#[derive(Clone)]
pub struct LoopView {
    rec: RecordingStream,
}

impl std::fmt::Debug for LoopView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopView")
    }
}

impl LoopView {
    /// Draws the loop closed at frame `query` between `at` and `to`.
    pub fn log_loop(&self, query: usize, at: &Pose, to: &Pose) -> Result<()> {
        loop_line(&self.rec, query, at, to)
    }

    /// Draws the loop-corrected trajectory.
    pub fn log_optimised(&self, poses: &[Pose]) -> Result<()> {
        optimised_line(&self.rec, poses)
    }

    /// Draws where the verified matches of the latest keyframe put the run in a prior map
    /// (`world/localisation/hypotheses`, yellow), while it localises.
    pub fn log_hypotheses(&self, poses: &[Pose]) -> Result<()> {
        self.rec
            .log(
                "world/localisation/hypotheses",
                &rerun::Points3D::new(poses.iter().map(position))
                    .with_colors([rgb(colour::HYPOTHESIS)])
                    .with_radii([1.0f32]),
            )
            .map_err(viz_err)
    }

    /// Draws the fix (`world/localisation/fix`, green) and clears the hypotheses.
    pub fn log_fix(&self, pose: &Pose) -> Result<()> {
        self.log_hypotheses(&[])?;
        self.rec
            .log(
                "world/localisation/fix",
                &rerun::Points3D::new([position(pose)])
                    .with_colors([rgb(colour::FIX)])
                    .with_radii([1.5f32])
                    .with_labels(["localised"]),
            )
            .map_err(viz_err)
    }
}

/// "overlap 0.42, yaw 12.0°", with the MIMO spread (and the gate's verdict) when there is one.
fn candidate_label(c: &LoopCandidate) -> String {
    let Some(s) = c.spread else {
        return format!("overlap {:.2}, yaw {:.1}°", c.overlap, c.yaw_deg);
    };
    let gated = if c.gated {
        " (refused: subnetworks disagree)"
    } else {
        ""
    };
    format!(
        "overlap {:.2} ± {:.2}, yaw {:.1}° ± {:.1}°{gated}",
        c.overlap, s.overlap, c.yaw_deg, s.yaw_deg
    )
}

impl Drop for Viz {
    fn drop(&mut self) {
        // A recording that was not finished (an error stopped the run) leaves no file behind.
        if let Some((tmp, _)) = self.save.take() {
            if let Some(rec) = self.rec.take() {
                let _ = rec.flush_blocking();
            }
            let _ = std::fs::remove_file(tmp);
        }
    }
}

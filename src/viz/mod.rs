//! The rerun recording: every stage's output on a `frame` and a `time` timeline, saved to an
//! `.rrd` file (atomically), spawned into a viewer, or streamed to one.

use crate::error::{Error, Result};
use crate::loops::search::LoopCandidate;
use crate::projection::RangeImage;
use crate::projection::png::{intensity_rgb, normal_rgb, turbo};
use crate::scan::{Pose, Scan};
use rerun::{RecordingStream, RecordingStreamBuilder};
use std::path::PathBuf;

/// Application id shown in the viewer.
const APP_ID: &str = "overlap-slam";
/// At most this many points of a scan are logged per frame (the viewer does not need all 120k).
const MAX_LOGGED_POINTS: usize = 10_000;

/// Where the recording goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum VizTarget {
    /// No recording.
    #[default]
    None,
    /// Save to an `.rrd` file.
    Save(PathBuf),
    /// Start a viewer (the `rerun` binary on PATH) and stream to it.
    Spawn,
    /// Stream to a running viewer at this address (`host:port` or a `rerun+http://` URL).
    Connect(String),
}

/// A live recording, or nothing when visualisation is off.
pub struct Viz {
    rec: Option<RecordingStream>,
    /// For `Save`: (temporary file being written, final path).
    save: Option<(PathBuf, PathBuf)>,
    estimate: Vec<[f32; 3]>,
    truth: Vec<[f32; 3]>,
    map_batches: usize,
}

fn viz_err(e: impl std::fmt::Display) -> Error {
    Error::Viz(e.to_string())
}

/// The viewer layout: the 3-D world on the left; the three images and the stage timings stacked
/// on the right.
fn layout(perception: &[String]) -> rerun::blueprint::Blueprint {
    use rerun::blueprint::{
        Blueprint, ContainerLike, Horizontal, Spatial2DView, Spatial3DView, TimeSeriesView, Vertical,
    };
    let image =
        |name: &str| -> ContainerLike { Spatial2DView::new(name).with_origin(format!("/images/{name}")).into() };
    let side = Vertical::new([
        image("range"),
        image("normal"),
        image("intensity"),
        TimeSeriesView::new("stage timings [ms]")
            .with_origin("/metrics/stage_ms")
            .into(),
    ]);
    let world: ContainerLike = Spatial3DView::new("world").with_origin("/world").into();
    if perception.is_empty() {
        return Blueprint::new(Horizontal::new([world, side.into()]).with_column_shares([0.55, 0.45]));
    }
    // Perception stages' images, one view each, in a third column.
    let stages = Vertical::new(
        perception
            .iter()
            .map(|path| -> ContainerLike { Spatial2DView::new(path.as_str()).with_origin(format!("/{path}")).into() })
            .collect::<Vec<_>>(),
    );
    Blueprint::new(Horizontal::new([world, side.into(), stages.into()]).with_column_shares([0.4, 0.3, 0.3]))
}

impl Viz {
    /// Opens the recording and declares the world right-handed, Z up.
    pub fn open(target: &VizTarget) -> Result<Self> {
        Self::open_with_views(target, &[])
    }

    /// As [`Viz::open`], with a view in the layout for each perception image path in `perception`.
    pub fn open_with_views(target: &VizTarget, perception: &[String]) -> Result<Self> {
        let builder = RecordingStreamBuilder::new(APP_ID);
        let mut save = None;
        let rec = match target {
            VizTarget::None => None,
            VizTarget::Save(path) => {
                let name = path
                    .file_name()
                    .ok_or_else(|| Error::Usage(format!("{}: not a file path", path.display())))?;
                let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
                let rec = builder
                    .save(&tmp)
                    .map_err(|e| Error::io(path, std::io::Error::other(e.to_string())))?;
                save = Some((tmp, path.clone()));
                Some(rec)
            }
            VizTarget::Spawn => Some(builder.spawn().map_err(viz_err)?),
            VizTarget::Connect(addr) => {
                let url = if addr.contains("://") {
                    addr.clone()
                } else {
                    format!("rerun+http://{addr}/proxy")
                };
                Some(builder.connect_grpc_opts(url).map_err(viz_err)?)
            }
        };
        if let Some(rec) = &rec {
            rec.log_static("world", &rerun::ViewCoordinates::RIGHT_HAND_Z_UP())
                .map_err(viz_err)?;
            layout(perception)
                .send(rec, rerun::blueprint::BlueprintActivation::default())
                .map_err(viz_err)?;
        }
        Ok(Self {
            rec,
            save,
            estimate: Vec::new(),
            truth: Vec::new(),
            map_batches: 0,
        })
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

    /// Logs the scan at its estimated pose, coloured by intensity, and both trajectories so far.
    pub fn log_scan(&mut self, scan: &Scan, estimate: &Pose, truth: Option<&Pose>) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let t = estimate.translation.vector;
        let q = estimate.rotation.coords;
        rec.log(
            "world/sensor",
            &rerun::Transform3D::from_translation_rotation(
                [t.x as f32, t.y as f32, t.z as f32],
                rerun::Quaternion::from_xyzw([q.x as f32, q.y as f32, q.z as f32, q.w as f32]),
            ),
        )
        .map_err(viz_err)?;
        let step = scan.len().div_ceil(MAX_LOGGED_POINTS).max(1);
        let points: Vec<[f32; 3]> = scan.points.iter().step_by(step).copied().collect();
        let colors: Vec<rerun::Color> = scan
            .intensity
            .iter()
            .step_by(step)
            .map(|i| {
                let [r, g, b] = turbo((i / 0.6).clamp(0.0, 1.0));
                rerun::Color::from_rgb(r, g, b)
            })
            .collect();
        rec.log(
            "world/sensor/scan",
            &rerun::Points3D::new(points).with_colors(colors).with_radii([0.04f32]),
        )
        .map_err(viz_err)?;
        self.estimate.push([t.x as f32, t.y as f32, t.z as f32]);
        rec.log(
            "world/trajectory/estimate",
            &rerun::LineStrips3D::new([self.estimate.clone()]).with_colors([rerun::Color::from_rgb(255, 140, 0)]),
        )
        .map_err(viz_err)?;
        if let Some(gt) = truth {
            let g = gt.translation.vector;
            self.truth.push([g.x as f32, g.y as f32, g.z as f32]);
            rec.log(
                "world/trajectory/ground_truth",
                &rerun::LineStrips3D::new([self.truth.clone()]).with_colors([rerun::Color::from_rgb(60, 200, 90)]),
            )
            .map_err(viz_err)?;
        }
        Ok(())
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
                .with_colors([rerun::Color::from_rgb(170, 170, 170)])
                .with_radii([0.05f32]),
        )
        .map_err(viz_err)
    }

    /// Logs the range (metres), normal (RGB) and intensity (grey) images.
    pub fn log_images(&self, img: &RangeImage) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let size = [img.cols as u32, img.rows as u32];
        let range: Vec<f32> = img.range.iter().map(|r| r.max(0.0)).collect();
        let bytes: Vec<u8> = range.iter().flat_map(|r| r.to_le_bytes()).collect();
        rec.log(
            "images/range",
            &rerun::DepthImage::from_data_type_and_bytes(bytes, size, rerun::datatypes::ChannelDatatype::F32)
                .with_meter(1.0)
                .with_colormap(rerun::components::Colormap::Turbo),
        )
        .map_err(viz_err)?;
        rec.log("images/normal", &rerun::Image::from_rgb24(normal_rgb(img).data, size))
            .map_err(viz_err)?;
        let grey: Vec<u8> = intensity_rgb(img).data.chunks(3).map(|c| c[0]).collect();
        rec.log("images/intensity", &rerun::Image::from_l8(grey, size))
            .map_err(viz_err)
    }

    /// Logs a loop found at frame `query` as a line between the two estimated positions, and its
    /// predicted overlap as a scalar.
    pub fn log_loop(&self, query: usize, at: &Pose, to: &Pose, overlap: f32) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.set_time_sequence("frame", query as i64);
        let p = |pose: &Pose| {
            let t = pose.translation.vector;
            [t.x as f32, t.y as f32, t.z as f32]
        };
        rec.log(
            format!("world/loops/{query}"),
            &rerun::LineStrips3D::new([[p(at), p(to)]]).with_colors([rerun::Color::from_rgb(255, 60, 200)]),
        )
        .map_err(viz_err)?;
        rec.log("metrics/loop_overlap", &rerun::Scalars::single(overlap as f64))
            .map_err(viz_err)
    }

    /// Logs one loop candidate the search proposed, at its query frame, whatever became of it:
    /// a line between the two keyframes (grey: ICP refused it; orange: the MIMO spread gate
    /// refused it unverified; closed loops are drawn by [`Viz::log_loop`]), labelled with the
    /// predicted overlap and yaw and, from a MIMO network, its subnetworks' spread.
    pub fn log_candidate(&self, candidate: &LoopCandidate, at: &Pose, to: &Pose) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.set_time_sequence("frame", candidate.query as i64);
        let p = |pose: &Pose| {
            let t = pose.translation.vector;
            [t.x as f32, t.y as f32, t.z as f32]
        };
        let color = if candidate.gated {
            rerun::Color::from_rgb(255, 150, 0)
        } else {
            rerun::Color::from_rgb(150, 150, 150)
        };
        let mut label = format!("overlap {:.2}, yaw {:.1}°", candidate.overlap, candidate.yaw_deg);
        if let Some(s) = candidate.spread {
            label = format!(
                "overlap {:.2} ± {:.2}, yaw {:.1}° ± {:.1}°{}",
                candidate.overlap,
                s.overlap,
                candidate.yaw_deg,
                s.yaw_deg,
                if candidate.gated {
                    " (refused: subnetworks disagree)"
                } else {
                    ""
                }
            );
        }
        rec.log(
            format!("world/loop_candidates/{}", candidate.query),
            &rerun::LineStrips3D::new([[p(at), p(to)]])
                .with_colors([color])
                .with_labels([label]),
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

    /// Logs the loop-corrected trajectory (blue) beside the odometry's (orange).
    pub fn log_optimised(&self, poses: &[Pose]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        let line: Vec<[f32; 3]> = poses
            .iter()
            .map(|p| {
                let t = p.translation.vector;
                [t.x as f32, t.y as f32, t.z as f32]
            })
            .collect();
        rec.log(
            "world/trajectory/optimised",
            &rerun::LineStrips3D::new([line]).with_colors([rerun::Color::from_rgb(40, 120, 255)]),
        )
        .map_err(viz_err)
    }

    /// Logs the map rebuilt from the optimised poses.
    pub fn log_corrected_map(&self, points: &[[f32; 3]]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.log(
            "world/corrected_map",
            &rerun::Points3D::new(points.iter().copied())
                .with_colors([rerun::Color::from_rgb(120, 170, 255)])
                .with_radii([0.05f32]),
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
    /// turbo colour map: perception stages' range renderings and error maps.
    pub fn log_depth(&self, path: &str, rows: usize, cols: usize, metres: &[f32]) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        // Millimetres in 16 bits (up to 65.5 m): half the recording of 32-bit metres.
        let bytes: Vec<u8> = metres
            .iter()
            .flat_map(|r| ((r.max(0.0) * 1000.0).round().min(65535.0) as u16).to_le_bytes())
            .collect();
        let size = [cols as u32, rows as u32];
        rec.log(
            path,
            &rerun::DepthImage::from_data_type_and_bytes(bytes, size, rerun::datatypes::ChannelDatatype::U16)
                .with_meter(1000.0)
                .with_colormap(rerun::components::Colormap::Turbo),
        )
        .map_err(viz_err)
    }

    /// Logs a `rows x cols` RGB image (row-major, 3 bytes a pixel) under `path`.
    pub fn log_rgb(&self, path: &str, rows: usize, cols: usize, rgb: Vec<u8>) -> Result<()> {
        let Some(rec) = &self.rec else { return Ok(()) };
        rec.log(path, &rerun::Image::from_rgb24(rgb, [cols as u32, rows as u32]))
            .map_err(viz_err)
    }

    /// Flushes everything and, for a saved recording, moves the file to its final name.
    pub fn finish(mut self) -> Result<()> {
        if let Some(rec) = self.rec.take() {
            rec.flush_blocking().map_err(viz_err)?;
            drop(rec);
        }
        if let Some((tmp, path)) = self.save.take() {
            std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
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

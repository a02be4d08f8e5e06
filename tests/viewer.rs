//! The rerun recording a run writes: small enough for long runs, laid out to open on the run.

mod common;

use overlap_slam::io::FrameRange;
use overlap_slam::pipeline::{PipelineConfig, RunReport, VizOptions, replay};
use overlap_slam::viz::VizTarget;
use std::path::{Path, PathBuf};

/// Replays the first `frames` frames of the embedded default into `dir/sim.rrd`, sending the scan
/// and images every `every` frames, with loop closure when `loops`.
fn simulated_recording(dir: &Path, frames: usize, every: usize, loops: bool) -> (RunReport, PathBuf) {
    let rrd = dir.join("sim.rrd");
    let defaults = PipelineConfig::default();
    let cfg = PipelineConfig {
        frames: FrameRange {
            start: 0,
            end: Some(frames),
        },
        viz: VizTarget::Save(rrd.clone()),
        viz_options: VizOptions {
            every,
            ..VizOptions::default()
        },
        loops: defaults.loops.filter(|_| loops),
        quiet: true,
        ..defaults
    };
    (replay(&cfg).unwrap(), rrd)
}

#[test]
fn a_kitti_recording_takes_under_0_15_mb_a_frame_and_carries_its_layout() {
    let Some(kitti) = common::shared_kitti() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rrd = common::cli_recording(dir.path(), &[kitti.to_str().unwrap()]);
    let mb_a_frame = std::fs::metadata(&rrd).unwrap().len() as f64 / 61.0 / 1e6;
    assert!(mb_a_frame <= 0.15, "{mb_a_frame:.3} MB a frame");
    // Images still shrink far below raw: whole frames, not a truncated file.
    assert!(mb_a_frame > 0.05, "{mb_a_frame:.3} MB a frame");
    let rows = common::rrd_rows(&rrd);
    for entity in [
        "/world/sensor",
        "/world/sensor/scan",
        "/images/range",
        "/images/normal",
        "/images/intensity",
    ] {
        assert_eq!(rows.get(entity), Some(&61), "{entity}: {rows:?}");
    }
    // The layout: a viewport, a camera set on the 3D view, the time panel following the run.
    assert_eq!(rows.get("/viewport"), Some(&1), "{rows:?}");
    assert_eq!(rows.get("/time_panel"), Some(&1), "{rows:?}");
    let cameras = rows.keys().filter(|p| p.ends_with("/EyeControls3D")).count();
    assert_eq!(cameras, 1, "{rows:?}");
}

#[test]
fn viz_every_thins_the_scan_and_images_but_not_the_pose_or_timings() {
    let dir = tempfile::tempdir().unwrap();
    let (report, rrd) = simulated_recording(dir.path(), 20, 5, false);
    assert_eq!(report.frames, 20);
    let rows = common::rrd_rows(&rrd);
    assert_eq!(rows.get("/world/sensor"), Some(&20), "{rows:?}");
    assert_eq!(rows.get("/metrics/stage_ms/odometry"), Some(&20), "{rows:?}");
    for entity in [
        "/world/sensor/scan",
        "/images/range",
        "/images/normal",
        "/images/intensity",
    ] {
        assert_eq!(rows.get(entity), Some(&4), "{entity}: {rows:?}");
    }
    // The trajectories are static, brought up to date every 10th frame and at the end.
    assert_eq!(rows.get("/world/trajectory/estimate"), Some(&3), "{rows:?}");
}

#[test]
fn viz_every_zero_is_refused_with_one_clear_error() {
    let out = common::cli(&["replay", "--frames", "3", "--no-loops", "--quiet", "--viz-every", "0"]);
    common::assert_input_error(&out, &["--viz-every", "at least 1"]);
}

#[test]
fn loops_reach_the_viewer_as_they_close_not_only_when_the_run_ends() {
    // The embedded default closes its first loops at keyframes 400 and 410. The loop thread's
    // queue holds at most 64 frames, so by frame 480 it has drawn them, while frames still come.
    let dir = tempfile::tempdir().unwrap();
    let (report, rrd) = simulated_recording(dir.path(), 480, 10, true);
    assert!(report.loops.as_ref().unwrap().loops_accepted >= 2);
    let chunks = common::rrd_chunks(&rrd);
    let first_loop = chunks.iter().position(|(e, _)| e.starts_with("/world/loops/"));
    let last_sensor = chunks.iter().rposition(|(e, _)| e == "/world/sensor");
    let (Some(first_loop), Some(last_sensor)) = (first_loop, last_sensor) else {
        panic!("no loop or no sensor pose in {chunks:?}");
    };
    assert!(
        first_loop < last_sensor,
        "the first loop came at chunk {first_loop}, after the last frame's {last_sensor}"
    );
    // Drawn twice: as it closed, and again with the whole outcome at the end.
    let rows = common::rrd_rows(&rrd);
    assert_eq!(rows.get("/world/loops/400"), Some(&2), "{rows:?}");
}

#[test]
fn a_long_track_is_logged_in_finished_pieces_once_each() {
    use overlap_slam::viz::{Eye, TRACK_PIECE, Track, Viz};
    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("track.rrd");
    let mut viz = Viz::open(&VizTarget::Save(rrd.clone())).unwrap();
    let poses: Vec<overlap_slam::Pose> = (0..2 * TRACK_PIECE + 50)
        .map(|i| overlap_slam::Pose::translation(i as f64, 0.0, 0.0))
        .collect();
    // Drawn every 10 frames as a run grows, then once more at its end.
    let draws: Vec<usize> = (10..=poses.len()).step_by(10).collect();
    for &n in &draws {
        viz.log_track(Track::Estimate, &poses[..n]).unwrap();
    }
    viz.log_track(Track::Estimate, &poses).unwrap();
    viz.finish(Eye::Auto).unwrap();
    let rows = common::rrd_rows(&rrd);
    assert_eq!(rows.get("/world/trajectory/estimate/00000"), Some(&1), "{rows:?}");
    assert_eq!(rows.get("/world/trajectory/estimate/00001"), Some(&1), "{rows:?}");
    assert_eq!(rows.get("/world/trajectory/estimate/00002"), None, "{rows:?}");
    assert_eq!(
        rows.get("/world/trajectory/estimate"),
        Some(&(draws.len() + 1)),
        "{rows:?}"
    );
}

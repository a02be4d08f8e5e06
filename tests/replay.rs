//! End-to-end replays: the embedded simulated drive and the real KITTI frames.

mod common;

use overlap_slam::io::FrameRange;
use overlap_slam::pipeline::{PipelineConfig, replay};
use overlap_slam::viz::VizTarget;
use std::fs;

#[test]
fn fifty_frames_of_the_embedded_default_track_within_half_a_metre() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rrd = tmp.path().join("run.rrd");
    let cfg = PipelineConfig {
        frames: FrameRange {
            start: 0,
            end: Some(50),
        },
        out: Some(out.clone()),
        viz: VizTarget::Save(rrd.clone()),
        quiet: true,
        ..PipelineConfig::default()
    };
    let report = replay(&cfg).unwrap();
    assert_eq!(report.frames, 50);
    let ate = report.accuracy.ate_rmse_m.unwrap();
    assert!(ate < 0.5, "ATE {ate:.3} m");
    // The drive covers real distance, so the ATE is not trivially small.
    let gt = report.ground_truth.as_ref().unwrap();
    assert!(gt[49].translation.vector.norm() > 25.0);

    let poses = fs::read_to_string(out.join("poses_kitti.txt")).unwrap();
    assert_eq!(poses.lines().count(), 50);
    assert!(poses.lines().all(|l| l.split_whitespace().count() == 12));
    let tum = fs::read_to_string(out.join("poses_tum.txt")).unwrap();
    assert!(tum.lines().all(|l| l.split_whitespace().count() == 8));
    let metrics = common::metrics(&out);
    assert_eq!(metrics["frames"], 50);
    assert!((metrics["ate_rmse_m"].as_f64().unwrap() - ate).abs() < 1e-12);
    for stage in ["source", "odometry", "projection", "viz"] {
        assert!(metrics["stage_ms"][stage].as_f64().unwrap() > 0.0, "{stage}");
    }
    assert!(metrics["fps"].as_f64().unwrap() > 0.0 && metrics["wall_s"].as_f64().unwrap() > 0.0);
    // Loop closure (on by default) described every 10th frame; 50 frames hold no revisit, so
    // the optimised trajectory is the odometry's.
    assert_eq!(metrics["loops"]["keyframes"], 5);
    assert_eq!(metrics["loops"]["candidates"].as_array().unwrap().len(), 0);
    assert_eq!(metrics["loops"]["loops_accepted"], 0);
    assert_eq!(metrics["loops"]["loops_false_positive"], 0);
    assert_eq!(metrics["loop_closure"]["search"]["skip_recent_frames"], 100);
    assert!((metrics["ate_rmse_odom_m"].as_f64().unwrap() - ate).abs() < 1e-6);
    let loops = fs::read_to_string(out.join("loops.csv")).unwrap();
    assert_eq!(
        loops.trim(),
        "query,match,overlap,yaw_deg,icp_fitness,inlier_ratio,verified,accepted,gt_distance_m,\
         overlap_spread,yaw_spread_deg,gated"
    );
    let odometry = fs::read_to_string(out.join("poses_odom_kitti.txt")).unwrap();
    assert_eq!(odometry.lines().count(), 50);
    if cfg!(target_os = "linux") {
        let rss = metrics["peak_rss_mb"].as_f64().unwrap();
        assert!(rss > 5.0 && rss < 4096.0, "{rss} MB");
    }

    // The recording decodes and holds the scan, both trajectories and the three images.
    let entities = common::rrd_entity_paths(&rrd);
    for e in [
        "/world/sensor/scan",
        "/world/trajectory/estimate",
        "/world/trajectory/ground_truth",
        "/world/map/00000",
        "/images/range",
        "/images/normal",
        "/images/intensity",
        "/metrics/stage_ms/odometry",
    ] {
        assert!(entities.iter().any(|p| p == e), "{e} missing from {entities:?}");
    }
    // No temporary file is left beside the recording.
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_mimo_replay_records_the_subnetworks_spread_at_every_keyframe() {
    use overlap_slam::loops::detector::LoopMethod;
    use overlap_slam::loops::search::LoopSearchConfig;
    use overlap_slam::pipeline::loop_worker::LoopClosureConfig;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let rrd = tmp.path().join("run.rrd");
    let cfg = PipelineConfig {
        frames: FrameRange {
            start: 0,
            end: Some(120),
        },
        out: Some(out.clone()),
        viz: VizTarget::Save(rrd.clone()),
        loops: Some(LoopClosureConfig {
            detector: LoopMethod::OverlapNetMimo,
            // Every eligible older keyframe within the odometry prior: each is scored and the
            // best recorded, whatever the network makes of it.
            search: LoopSearchConfig {
                prior_radius_m: 1e4,
                ..LoopSearchConfig::default()
            },
            ..LoopClosureConfig::default()
        }),
        quiet: true,
        ..PipelineConfig::default()
    };
    let report = replay(&cfg).unwrap();
    assert_eq!(report.frames, 120);
    let metrics = common::metrics(&out);
    assert_eq!(metrics["loop_closure"]["detector"], "overlapnet-mimo");
    assert_eq!(
        metrics["loop_closure"]["search"]["gate"]["max_overlap"].as_f64(),
        Some(0.04)
    );
    assert_eq!(metrics["loops"]["loops_false_positive"], 0);
    // Keyframe 110 has eligible older ones (100 frames back, 50 m of travel): the detector's best
    // match and its spread are recorded.
    let entities = common::rrd_entity_paths(&rrd);
    for e in ["/loops/best_overlap", "/loops/overlap_spread", "/loops/yaw_spread_deg"] {
        assert!(entities.iter().any(|p| p == e), "{e} missing from {entities:?}");
    }
}

#[test]
fn real_kitti_frames_replay_with_an_ate() {
    let Some(dir) = common::shared_kitti() else { return };
    let cfg = common::path_replay(dir);
    let report = replay(&cfg).unwrap();
    assert_eq!(report.frames, 61);
    let ate = report.accuracy.ate_rmse_m.unwrap();
    assert!(ate < 1.0, "ATE {ate:.3} m on KITTI 00 frames 0-60");
    assert_eq!(report.degenerate_frames, 0);
}

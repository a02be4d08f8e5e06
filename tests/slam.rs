//! Loop closure end to end on the simulated drive: the loop thread (search, ICP verification,
//! pose graph) fed a drifting trajectory corrects it; a wrong loop is rejected by verification and,
//! forced into the graph, held off by the robust kernel; a source failing mid-stream still leaves
//! every output of the frames before it.

mod common;

use nalgebra::{UnitQuaternion, Vector3};
use overlap_slam::graph::{Backend, BackendConfig};
use overlap_slam::loops::detector::{LoopDetector, LoopMethod};
use overlap_slam::loops::verify::{KeyframeCloud, VerifyConfig, verify};
use overlap_slam::metrics::ate_rmse;
use overlap_slam::pipeline::loop_worker::{LoopClosureConfig, LoopOutcome, LoopWorker};
use overlap_slam::sim::{SimConfig, Simulation};
use overlap_slam::{Pose, Scan};
use std::fs;

const KEYFRAME_EVERY: usize = 10;

/// Ground truth with a steady heading drift of 0.02 degrees a frame chained in (11 degrees over
/// the drive): metres off by the time it comes back.
fn drifted(truth: &[Pose]) -> Vec<Pose> {
    let turn = Pose::from_parts(
        Default::default(),
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), 0.02f64.to_radians()),
    );
    let mut out = vec![truth[0]];
    for w in truth.windows(2) {
        let last = *out.last().unwrap();
        out.push(last * turn * (w[0].inverse() * w[1]));
    }
    out
}

/// Runs the loop thread over the default drive with drifted odometry; scans are simulated only
/// for keyframes.
fn close_loops(sim: &Simulation, odometry: &[Pose]) -> LoopOutcome {
    let config = LoopClosureConfig::default();
    assert_eq!(config.search.keyframe_every, KEYFRAME_EVERY);
    let worker = LoopWorker::spawn(config, LoopDetector::new(LoopMethod::ScanContext, None).unwrap());
    for (i, pose) in odometry.iter().enumerate() {
        let scan = if i % KEYFRAME_EVERY == 0 {
            sim.scan(i)
        } else {
            Scan {
                index: i,
                timestamp: sim.frame_time(i),
                gt_pose: Some(sim.gt_pose(i)),
                ..Scan::default()
            }
        };
        // Keyframes are deskewed with the motion since the frame before, as replay does.
        let motion = i
            .checked_sub(1)
            .map_or(Pose::identity(), |p| odometry[p].inverse() * pose);
        worker.send(&scan, pose, &motion, false, false);
    }
    worker.finish().unwrap()
}

#[test]
fn loop_closure_corrects_drift_and_a_wrong_loop_does_not_spoil_it() {
    let sim = Simulation::new(&SimConfig::default());
    let truth: Vec<Pose> = (0..sim.frames()).map(|i| sim.gt_pose(i)).collect();
    let odometry = drifted(&truth);
    let outcome = close_loops(&sim, &odometry);

    let drift_ate = ate_rmse(&odometry, &truth).unwrap();
    let closed_ate = ate_rmse(&outcome.poses, &truth).unwrap();
    assert!(drift_ate > 2.0, "the test needs drift: {drift_ate}");
    assert!(outcome.loops_accepted >= 8, "{outcome:?}");
    assert_eq!(outcome.loops_false_positive, Some(0), "{outcome:?}");
    // Every revisit closes: the ones driven the other way, a lane over, score near the detector's
    // threshold, and the ones seen in a turn need their keyframes deskewed.
    assert_eq!(outcome.loops_missed, Some(0), "{:?}", outcome.missed);
    assert!(
        closed_ate < 0.3 * drift_ate,
        "ATE {closed_ate:.3} m after closure vs {drift_ate:.3} m before"
    );
    assert_eq!(outcome.poses.len(), truth.len());

    // Verification turns down a pair of keyframes 200 frames (and far) apart.
    let cloud = |i: usize| KeyframeCloud::new(&sim.scan(i).points, &VerifyConfig::default());
    let wrong = verify(&cloud(300), &cloud(100), 0.0, &VerifyConfig::default());
    assert!(!wrong.accepted, "{wrong:?}");

    // Offered to the graph anyway, before the true loops, it is refused as inconsistent with
    // the drift the odometry can have had, and the result stays within 10 % of the clean graph's.
    let accepted: Vec<(usize, usize, Pose)> = outcome
        .candidates
        .iter()
        .filter(|r| r.closed)
        .filter_map(|r| Some((r.candidate.query, r.candidate.reference, r.verification?.transform)))
        .collect();
    let solve = |extra: Option<(usize, usize, Pose)>| {
        let mut backend = Backend::new(BackendConfig::default());
        for (i, pose) in odometry.iter().enumerate() {
            backend.add_frame(i, *pose, false, i % KEYFRAME_EVERY == 0);
        }
        if let Some((q, r, t)) = extra {
            assert!(!backend.add_loop(q, r, t).unwrap(), "the wrong loop is refused");
        }
        for &(q, r, t) in &accepted {
            assert!(backend.add_loop(q, r, t).unwrap());
        }
        ate_rmse(&backend.poses(), &truth).unwrap()
    };
    let clean = solve(None);
    let spoiled = solve(Some((300, 100, Pose::identity())));
    assert!(
        (clean - closed_ate).abs() < 1e-6,
        "the thread's graph is the same graph"
    );
    assert!(
        spoiled < 1.1 * clean,
        "ATE {spoiled:.3} m with a wrong loop vs {clean:.3} m"
    );
}

#[test]
fn a_source_failing_mid_stream_leaves_every_output_of_the_frames_before() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("seq");
    fs::create_dir_all(data.join("velodyne")).unwrap();
    let sample = common::sample_kitti();
    for f in ["calib.txt", "poses.txt", "times.txt"] {
        fs::copy(sample.join(f), data.join(f)).unwrap();
    }
    for i in 0..8 {
        let name = format!("{i:06}.bin");
        fs::copy(sample.join("velodyne").join(&name), data.join("velodyne").join(&name)).unwrap();
    }
    // Frame 5 is cut mid-point: 7 bytes are not a whole number of 16-byte points.
    fs::write(data.join("velodyne/000005.bin"), [0u8; 7]).unwrap();
    let out = tmp.path().join("out");
    let run = common::cli(&[
        "replay",
        data.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.status.code(), Some(2), "{run:?}");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("000005.bin"), "{stderr}");
    let poses = fs::read_to_string(out.join("poses_kitti.txt")).unwrap();
    assert_eq!(poses.lines().count(), 5);
    assert_eq!(
        fs::read_to_string(out.join("poses_odom_kitti.txt"))
            .unwrap()
            .lines()
            .count(),
        5
    );
    let metrics = common::metrics(&out);
    assert_eq!(metrics["frames"], 5);
    assert!(out.join("loops.csv").exists());
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_replay_with_its_outputs_written() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args(["replay", "--quiet", "--out", out.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(4));
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let metrics = common::metrics(&out);
    let frames = metrics["frames"].as_u64().unwrap();
    // Stopped early: the default drive has 565 frames.
    assert!(frames > 0 && frames < 565, "{frames}");
    let poses = fs::read_to_string(out.join("poses_kitti.txt")).unwrap();
    assert_eq!(poses.lines().count() as u64, frames);
}

/// A stage that counts the frames it sees and checks their images.
struct Counter {
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl overlap_slam::perception::PerceptionStage for Counter {
    fn name(&self) -> &str {
        "counter"
    }

    fn process(
        &mut self,
        frame: &overlap_slam::perception::FrameView,
        viz: &overlap_slam::viz::Viz,
    ) -> overlap_slam::Result<()> {
        assert_eq!((frame.image.rows, frame.image.cols), (64, 900));
        assert!(!frame.scan.is_empty() && frame.pose.translation.vector.norm() < 100.0);
        self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        viz.log_scalar("counter/points", frame.scan.len() as f64)
    }
}

#[test]
fn perception_stages_see_every_projected_frame_and_are_timed() {
    use overlap_slam::pipeline::{PipelineConfig, replay_with_stages};
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stage = Counter { seen: seen.clone() };
    let cfg = PipelineConfig {
        frames: overlap_slam::io::FrameRange {
            start: 0,
            end: Some(12),
        },
        loops: None,
        quiet: true,
        ..PipelineConfig::default()
    };
    let report = replay_with_stages(&cfg, vec![Box::new(stage)]).unwrap();
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 12);
    assert!(report.stage_ms["stage/counter"] >= 0.0);
    assert_eq!(report.frames, 12);
}

//! The sensor's mounting on the robot (REP 105's base_link -> sensor): a LiDAR mounted high,
//! forward and pitched on a car that drives level gives a level base trajectory once the mounting
//! is given, matching the simulated base's ground truth.

mod common;

use overlap_slam::frames::{Mounting, PoseFrame};
use overlap_slam::io::FrameRange;
use overlap_slam::pipeline::{PipelineConfig, SourceSpec, replay};
use overlap_slam::scan::Pose;
use overlap_slam::sim::{SimConfig, Simulation};

/// The drive's first straight and its first bend.
const FRAMES: usize = 72;
/// First frame the trajectories are compared from.
const START: usize = 10;

fn mounting() -> Mounting {
    // 0.5 m forward, 0.2 m left, 1.7 m up; rolled 1°, pitched 6°, turned 6°.
    Mounting::from_xyz_rpy([0.5, 0.2, 1.7], [0.0175, 0.1047, 0.1047])
}

fn sim() -> SimConfig {
    SimConfig {
        mounting: Some(mounting()),
        ..SimConfig::default()
    }
}

fn run(frame: PoseFrame, mounting: Mounting) -> overlap_slam::pipeline::RunReport {
    replay(&PipelineConfig {
        source: SourceSpec::Simulated(sim()),
        frames: FrameRange {
            start: 0,
            end: Some(FRAMES),
        },
        loops: None,
        quiet: true,
        mounting,
        pose_frame: frame,
        ..PipelineConfig::default()
    })
    .unwrap()
}

fn pitch_deg(p: &Pose) -> f64 {
    p.rotation.euler_angles().1.to_degrees()
}

#[test]
fn the_base_follows_its_ground_truth_and_the_pitch_is_gone() {
    let truth = Simulation::new(&sim());
    let base = run(PoseFrame::Base, mounting());
    let sensor = run(PoseFrame::Sensor, mounting());
    assert_eq!(base.poses.len(), FRAMES);
    // The ground truth written beside the poses is the simulator's own base trajectory.
    let gt = base.ground_truth.as_ref().unwrap();
    for (i, g) in gt.iter().enumerate() {
        let t = truth.base_gt_pose(i);
        assert!((g.translation.vector - t.translation.vector).norm() < 1e-6, "frame {i}");
        assert!(g.rotation.angle_to(&t.rotation) < 1e-6, "frame {i}");
    }
    // The base's motion from frame START on follows its ground truth: within 2 % of the
    // distance driven, with no pitch beyond the terrain's. (Odometry starts at rest while the
    // car is already moving, so its first few frames lag; that is the odometry's, in any frame.)
    let from = |poses: &[Pose], i: usize| poses[START].inverse() * poses[i];
    let driven = from(gt, FRAMES - 1).translation.vector.norm();
    assert!(driven > 40.0, "{driven}");
    for i in START..FRAMES {
        let (p, g) = (from(&base.poses, i), from(gt, i));
        let off = (p.translation.vector - g.translation.vector).norm();
        assert!(off < 0.02 * driven, "frame {i}: {off:.2} m off the base's truth");
        let pitch = (pitch_deg(&p) - pitch_deg(&g)).abs();
        assert!(pitch < 0.5, "frame {i}: pitch {pitch:.2}° off the base's truth");
    }
    // The same run in the sensor's frame climbs or sinks along its tilted axis: 6° of pitch is
    // several metres over the drive, which the base's trajectory does not have.
    let z = |poses: &[Pose]| from(poses, FRAMES - 1).translation.vector.z;
    let (sensor_z, base_z, truth_z) = (z(&sensor.poses), z(&base.poses), z(gt));
    assert!(
        (sensor_z - truth_z).abs() > 3.0,
        "sensor z {sensor_z:.2}, truth {truth_z:.2}"
    );
    assert!((base_z - truth_z).abs() < 0.5, "base z {base_z:.2}, truth {truth_z:.2}");
    // And the two are one trajectory seen from two bodies.
    for (b, s) in base.poses.iter().zip(&sensor.poses) {
        let moved = mounting().base_pose(s);
        assert!((moved.translation.vector - b.translation.vector).norm() < 1e-3);
    }
    // Accuracy is scored on the sensor's trajectory in either frame.
    assert_eq!(base.accuracy.ate_rmse_m, sensor.accuracy.ate_rmse_m);
}

#[test]
fn a_malformed_mounting_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for bad in ["1,2,3", "0,0,1.2,0,x,0"] {
        let res = common::cli(&[
            "replay",
            "--frames",
            "3",
            "--no-loops",
            "--quiet",
            "--lidar-to-base",
            bad,
        ]);
        common::assert_input_error(&res, &["--lidar-to-base", "x,y,z,roll,pitch,yaw"]);
    }
    let missing = dir.path().join("lidar.toml");
    let res = common::cli(&[
        "replay",
        "--frames",
        "3",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
        "--lidar-to-base",
        missing.to_str().unwrap(),
    ]);
    common::assert_input_error(&res, &["lidar.toml"]);
    assert!(!out.exists(), "nothing written for a run that never started");
}

#[test]
fn a_recordings_tf_static_gives_the_mounting_and_a_missing_link_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bag = dir.path().join("drive.mcap");
    let [x, y, z, roll, pitch, yaw] = mounting().xyz_rpy();
    let spec = format!("{x},{y},{z},{roll},{pitch},{yaw}");
    let frames = FRAMES.to_string();
    let bag_path = bag.to_str().unwrap();
    common::cli_ok(&[
        "sim-ros2",
        "--bag-out",
        bag_path,
        "--sensor",
        "hdl64",
        "--sweeps",
        &frames,
        "--fast",
        "--lidar-to-base",
        &spec,
    ]);
    // No --lidar-to-base: the recording's /tf_static (base_link -> lidar) says where the sensor is.
    // The ground truth is the base's (child_frame_id base_link).
    let out = dir.path().join("out");
    common::cli_ok(&[
        "replay",
        bag_path,
        "--gt-topic",
        "/ground_truth",
        "--no-loops",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    let metrics = common::metrics(&out);
    let stated: Vec<f64> = serde_json::from_value(metrics["lidar_to_base"].clone()).unwrap();
    for (a, b) in stated.iter().zip(mounting().xyz_rpy()) {
        assert!((a - b).abs() < 1e-9, "{stated:?}");
    }
    // Every pose written is the base's: it follows the simulated base, pitch removed.
    let poses = overlap_slam::io::poses::read_kitti_poses(&out.join("poses_kitti.txt")).unwrap();
    let truth = Simulation::new(&sim());
    let gt: Vec<Pose> = (0..FRAMES).map(|i| truth.base_gt_pose(i)).collect();
    let from = |p: &[Pose], i: usize| p[START].inverse() * p[i];
    let driven = from(&gt, FRAMES - 1).translation.vector.norm();
    for i in START..FRAMES {
        let (p, g) = (from(&poses, i), from(&gt, i));
        let off = (p.translation.vector - g.translation.vector).norm();
        assert!(off < 0.02 * driven, "frame {i}: {off:.2} m off the base's truth");
        assert!((pitch_deg(&p) - pitch_deg(&g)).abs() < 0.5, "frame {i}");
    }
    // The ground truth was taken as the base's, as it states: written back as the base's, and
    // moved to the sensor to score the sensor's trajectory.
    let written = overlap_slam::io::poses::read_kitti_poses(&out.join("ground_truth_kitti.txt")).unwrap();
    for (w, g) in written.iter().zip(&gt) {
        assert!((w.translation.vector - g.translation.vector).norm() < 1e-6);
    }
    let to_sensor = Mounting::at(mounting().base_from_sensor.inverse());
    let sensor_poses = to_sensor.base_poses(&poses);
    let sensor_truth: Vec<Pose> = (0..FRAMES).map(|i| truth.gt_pose(i)).collect();
    let ate = metrics["ate_rmse_m"].as_f64().unwrap();
    let want = overlap_slam::metrics::ate_rmse(&sensor_poses, &sensor_truth).unwrap();
    let against_base = overlap_slam::metrics::ate_rmse(&sensor_poses, &gt).unwrap();
    assert!((ate - want).abs() < 1e-4, "ATE {ate:.4} m, want {want:.4}");
    assert!(
        (ate - against_base).abs() > 0.02,
        "{ate:.4} vs {against_base:.4}: the test cannot tell"
    );
    // A base frame /tf_static does not hold: one line naming the frames it does, exit 2.
    let wrong = common::cli(&["replay", bag_path, "--no-loops", "--quiet", "--base-frame", "chassis"]);
    common::assert_input_error(
        &wrong,
        &["/tf_static has no chain from chassis to lidar (frames seen: base_link, lidar)"],
    );
}

//! Every kind of bad input ends in one line naming the file and the problem, exit code 2, no
//! panic, and nothing half-written in --out.

mod common;

use common::{assert_input_error, cli, sample_kitti};
use std::fs;
use std::path::{Path, PathBuf};

/// A KITTI flat folder holding the first `n` sample scans, calib and times (no poses).
fn kitti_dir(root: &Path, n: usize) -> PathBuf {
    let dir = root.join("seq");
    fs::create_dir_all(dir.join("velodyne")).unwrap();
    for i in 0..n {
        let name = format!("{i:06}.bin");
        fs::copy(
            sample_kitti().join("velodyne").join(&name),
            dir.join("velodyne").join(&name),
        )
        .unwrap();
    }
    fs::copy(sample_kitti().join("calib.txt"), dir.join("calib.txt")).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn corrupt_bin_size() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 1);
    fs::write(dir.join("velodyne/000001.bin"), [0u8; 17]).unwrap();
    let out = tmp.path().join("out");
    let res = cli(&["replay", s(&dir), "--quiet", "--out", s(&out)]);
    assert_input_error(&res, &["000001.bin", "size 17 bytes is not a multiple of 16"]);
    // The run stopped at frame 1 with the outputs of frame 0 written (and no temporary files).
    let poses = fs::read_to_string(out.join("poses_kitti.txt")).unwrap();
    assert_eq!(poses.lines().count(), 1);
    let leftovers: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn empty_scan() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 1);
    fs::write(dir.join("velodyne/000001.bin"), []).unwrap();
    assert_input_error(&cli(&["replay", s(&dir), "--quiet"]), &["000001.bin", "scan is empty"]);
}

#[test]
fn poses_with_wrong_column_count() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 2);
    fs::write(
        dir.join("poses.txt"),
        "1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 0 0 0 1\n",
    )
    .unwrap();
    assert_input_error(
        &cli(&["replay", s(&dir), "--quiet"]),
        &["poses.txt", "line 2 has 11 columns"],
    );
}

#[test]
fn poses_with_fewer_lines_than_scans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 2);
    fs::write(dir.join("poses.txt"), "1 0 0 0 0 1 0 0 0 0 1 0\n").unwrap();
    assert_input_error(
        &cli(&["replay", s(&dir), "--quiet"]),
        &["poses.txt", "1 poses but the frames read go up to 1", "too few lines"],
    );
}

#[test]
fn frames_are_chosen_before_poses_are_matched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 3);
    let identity = "1 0 0 0 0 1 0 0 0 0 1 0\n";
    let poses = tmp.path().join("two.txt");
    fs::write(&poses, identity.repeat(2)).unwrap();
    fs::write(dir.join("poses.txt"), identity.repeat(2)).unwrap();
    // Two poses for three scans: frames 0..2 need only those two, through --poses and through
    // the folder's own poses.txt, for replay and eval-loops alike.
    for extra in [&["--poses", s(&poses)][..], &[][..]] {
        let out = tmp.path().join("out");
        let mut args = vec![
            "replay",
            s(&dir),
            "--frames",
            "0..2",
            "--no-loops",
            "--quiet",
            "--out",
            s(&out),
        ];
        args.extend_from_slice(extra);
        let res = cli(&args);
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        assert_eq!(
            fs::read_to_string(out.join("poses_kitti.txt")).unwrap().lines().count(),
            2
        );
        assert_eq!(
            fs::read_to_string(out.join("ground_truth_kitti.txt"))
                .unwrap()
                .lines()
                .count(),
            2
        );
    }
    let eval = tmp.path().join("eval");
    let res = cli(&[
        "eval-loops",
        s(&dir),
        "--frames",
        "0..2",
        "--poses",
        s(&poses),
        "--method",
        "scancontext",
        "--out",
        s(&eval),
    ]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    // Frame 2 has no pose: the error names the file and the frame.
    assert_input_error(
        &cli(&["replay", s(&dir), "--frames", "1..3", "--poses", s(&poses), "--quiet"]),
        &["two.txt", "2 poses but the frames read go up to 2", "too few lines"],
    );
}

#[test]
fn missing_folder() {
    assert_input_error(
        &cli(&["replay", "/nonexistent/kitti/seq", "--quiet"]),
        &["/nonexistent/kitti/seq", "no such file or folder"],
    );
}

#[test]
fn pcd_and_ply_without_z() {
    let tmp = tempfile::tempdir().unwrap();
    let pcd = tmp.path().join("a.pcd");
    fs::write(
        &pcd,
        "VERSION 0.7\nFIELDS x y\nSIZE 4 4\nTYPE F F\nCOUNT 1 1\nWIDTH 1\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 1\nDATA ascii\n1 2\n",
    )
    .unwrap();
    assert_input_error(&cli(&["replay", s(&pcd), "--quiet"]), &["a.pcd", "no 'z' field"]);
    let ply = tmp.path().join("b.ply");
    fs::write(
        &ply,
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n",
    )
    .unwrap();
    assert_input_error(
        &cli(&["replay", s(&ply), "--quiet"]),
        &["b.ply", "lacks the 'z' property"],
    );
}

#[test]
fn non_finite_points_are_dropped_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kitti_dir(tmp.path(), 2);
    let path = dir.join("velodyne/000001.bin");
    let mut bytes = fs::read(&path).unwrap();
    bytes[0..4].copy_from_slice(&f32::NAN.to_le_bytes());
    bytes[20..24].copy_from_slice(&f32::INFINITY.to_le_bytes());
    fs::write(&path, bytes).unwrap();
    let out = tmp.path().join("out");
    let res = cli(&["replay", s(&dir), "--quiet", "--out", s(&out)]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(
        stderr.contains("000001.bin: dropped 2 points with NaN/inf values"),
        "{stderr}"
    );
    let metrics = common::metrics(&out);
    assert_eq!(metrics["frames"], 2);
    assert!(metrics["ate_rmse_m"].is_null(), "no poses.txt, no ATE");
}

#[test]
fn bad_arguments_are_usage_errors() {
    let res = cli(&["replay", "--frames", "9..3"]);
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).contains("frame range"));
    assert_input_error(
        &cli(&["replay", "--sensor", "nope", "--quiet"]),
        &["unknown sensor 'nope'"],
    );
    assert_input_error(
        &cli(&["replay", "--map-voxel", "0", "--quiet"]),
        &["map voxel size must be positive"],
    );
    assert_input_error(
        &cli(&["replay", "--set", "voxel_size_m=-x", "--quiet"]),
        &["--set", "not TOML"],
    );
}

//! Loop-detection ground truth and descriptors on real and simulated scans.

mod common;

use overlap_slam::io::kitti::read_bin;
use overlap_slam::loops::scan_context::ScanContext;
use overlap_slam::projection::overlap::transform_points;
use overlap_slam::scan::Pose;
use std::fs;

#[test]
fn gt_pairs_labels_real_kitti_frames_and_balances_them() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pairs.csv");
    let sample = common::sample_kitti();
    let out = common::cli(&[
        "gt-pairs",
        sample.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("query,reference,overlap,yaw_deg,yaw_bin"));
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 8 * 7 / 2, "every ordered pair of 8 frames once");
    for r in &rows {
        assert!(r[0] > r[1], "the query is the later frame: {r:?}");
        assert!((0.0..=1.0).contains(&r[2]), "{r:?}");
        // The car drives straight: neighbours overlap a lot, yaw stays small.
        if r[0] - r[1] == 1.0 {
            assert!(r[2] > 0.5, "consecutive frames overlap: {r:?}");
        }
        assert!(r[3].abs() < 5.0 && (r[4] < 5.0 || r[4] > 355.0), "{r:?}");
    }
    // Overlap falls with the gap.
    let mean = |gap: f64| {
        let v: Vec<f64> = rows.iter().filter(|r| r[0] - r[1] == gap).map(|r| r[2]).collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        mean(1.0) > mean(4.0) && mean(4.0) > mean(7.0),
        "{} {} {}",
        mean(1.0),
        mean(4.0),
        mean(7.0)
    );

    let balanced = dir.path().join("balanced.csv");
    let out = common::cli(&[
        "gt-pairs",
        sample.to_str().unwrap(),
        "--out",
        balanced.to_str().unwrap(),
        "--per-bin",
        "2",
        "--min-gap",
        "2",
        "--quiet",
    ]);
    assert!(out.status.success());
    let kept = fs::read_to_string(&balanced).unwrap().lines().count() - 1;
    assert!(kept <= 2 * 10 && kept > 0, "{kept}");
}

#[test]
fn gt_pairs_refuses_a_sequence_without_poses() {
    let dir = tempfile::tempdir().unwrap();
    let bin = common::sample_kitti().join("velodyne/000000.bin");
    let out = common::cli(&[
        "gt-pairs",
        bin.to_str().unwrap(),
        "--out",
        dir.path().join("p.csv").to_str().unwrap(),
    ]);
    common::assert_input_error(&out, &["ground-truth poses"]);
    assert!(!dir.path().join("p.csv").exists());
}

#[test]
fn scan_context_recognises_a_real_scan_turned_and_moved() {
    let scan = read_bin(&common::sample_kitti().join("velodyne/000000.bin")).unwrap();
    let other = read_bin(&common::sample_kitti().join("velodyne/000007.bin")).unwrap();
    let a = ScanContext::new(&scan.points);
    let turned = Pose::new(
        nalgebra::Vector3::new(0.5, 0.2, 0.0),
        nalgebra::Vector3::new(0.0, 0.0, 1.2),
    );
    let b = ScanContext::new(&transform_points(&turned.inverse(), &scan.points));
    let m = a.compare(&b);
    let truth = 1.2f32.to_degrees();
    assert!((m.yaw_deg - truth).abs() <= 6.0, "{m:?} vs {truth}");
    // The same place turned is nearer than a place 7 frames (about 6 m) on.
    let far = a.compare(&ScanContext::new(&other.points));
    assert!(m.distance < far.distance, "{m:?} vs {far:?}");
}

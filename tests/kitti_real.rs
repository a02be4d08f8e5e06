//! The real KITTI frames in ../shared: ground truth in the LiDAR frame, projection coverage.

mod common;

use overlap_slam::io::{self, FrameRange, ScanSource, SourceOptions};
use overlap_slam::projection::{ProjectionParams, project};

#[test]
fn lidar_frame_ground_truth_matches_the_drive() {
    let Some(dir) = common::shared_kitti() else { return };
    let seq = io::open(&dir, &SourceOptions::default()).unwrap();
    assert_eq!(seq.len_hint(), Some(61));
    assert!(seq.has_ground_truth());
    let scans: Vec<_> = io::open(
        &dir,
        &SourceOptions {
            frames: "0..61".parse().unwrap(),
            ..Default::default()
        },
    )
    .unwrap()
    .step_by(60)
    .map(|s| s.unwrap())
    .collect();
    let (first, last) = (&scans[0], &scans[1]);
    assert_eq!(last.index, 60);
    let g0 = first.gt_pose.unwrap();
    let g60 = last.gt_pose.unwrap();
    assert!(g0.translation.vector.norm() < 1e-6, "frame 0 is the origin");
    let d = (g60.translation.vector - g0.translation.vector).norm();
    assert!((d - 56.5).abs() < 0.5, "frame 60 is {d:.2} m from frame 0");
    // In the LiDAR frame the car drives forward along +x and stays near z = 0.
    let t = g60.translation.vector;
    assert!(t.x > 50.0 && t.z.abs() < 3.0, "{t:?}");
    assert!((last.timestamp - 6.2).abs() < 0.1, "times.txt read: {}", last.timestamp);
    assert!(first.len() > 110_000 && first.len() < 130_000, "{} points", first.len());
}

#[test]
fn real_scans_fill_most_of_the_range_image() {
    let Some(dir) = common::shared_kitti() else { return };
    let params = ProjectionParams::overlapnet_hdl64();
    for scan in io::open(
        &dir,
        &SourceOptions {
            frames: FrameRange {
                start: 0,
                end: Some(61),
            },
            ..Default::default()
        },
    )
    .unwrap()
    .step_by(20)
    {
        let scan = scan.unwrap();
        let img = project(&scan.points, &scan.intensity, &params);
        let share = img.valid_count() as f64 / (64.0 * 900.0);
        assert!(share >= 0.6, "frame {}: {:.1} % valid", scan.index, share * 100.0);
    }
}

#[test]
fn the_shipped_sample_reads_like_the_shared_sequence() {
    let seq = io::open(&common::sample_kitti(), &SourceOptions::default()).unwrap();
    assert_eq!(seq.len_hint(), Some(8));
    let scans: Vec<_> = seq.map(|s| s.unwrap()).collect();
    assert!(scans.iter().all(|s| s.gt_pose.is_some() && s.len() > 100_000));
}

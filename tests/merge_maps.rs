//! `overlap-slam merge-maps` on real KITTI: two overlapping sessions mapped apart and merged
//! land on the single run's trajectory; sessions of different drives are refused; the merge is
//! deterministic, leaves its inputs alone, and its output is a map like any other.

mod common;

use overlap_slam::saved_map::read_map;
use std::path::Path;

/// Maps frames `frames` of `kitti` into `dir/map`, poses into `dir/out`.
fn map_session(kitti: &Path, frames: &str, dir: &Path) {
    common::cli_ok(&[
        "replay",
        kitti.to_str().unwrap(),
        "--frames",
        frames,
        "--save-map",
        dir.join("map").to_str().unwrap(),
        "--out",
        dir.join("out").to_str().unwrap(),
        "--quiet",
    ]);
}

#[test]
fn two_overlapping_kitti_sessions_merge_onto_the_single_run() {
    let Some(kitti) = common::shared_kitti() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b, whole) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("whole"));
    map_session(&kitti, "0..40", &a);
    map_session(&kitti, "20..60", &b);
    map_session(&kitti, "0..60", &whole);
    let merged = dir.path().join("merged");
    let (ma, mb, mm) = (a.join("map"), b.join("map"), merged.to_str().unwrap().to_string());
    let inputs_before = (
        std::fs::read(ma.join("map.bin")).unwrap(),
        std::fs::read(mb.join("map.bin")).unwrap(),
    );
    common::cli_ok(&[
        "merge-maps",
        ma.to_str().unwrap(),
        mb.to_str().unwrap(),
        "--out",
        &mm,
        "--quiet",
    ]);
    let map = read_map(&merged).unwrap();
    let (map_a, map_b) = (read_map(&ma).unwrap(), read_map(&mb).unwrap());
    assert_eq!(map.keyframes.len(), map_a.keyframes.len() + map_b.keyframes.len());
    assert_eq!(map.header.sessions, 2);
    // Every merged keyframe lies on the single run's trajectory of 0-60 at its frame.
    let single = overlap_slam::io::poses::read_kitti_poses(&whole.join("out/poses_kitti.txt")).unwrap();
    let mut worst: f64 = 0.0;
    for k in &map.keyframes {
        let off = (k.pose.translation.vector - single[k.frame as usize].translation.vector).norm();
        worst = worst.max(off);
    }
    eprintln!("merged keyframes against the single run: worst {worst:.3} m");
    assert!(worst < 0.3, "a merged keyframe is {worst:.2} m off the single run");
    // Session b's keyframes were moved into a's frame: before, they started at b's origin.
    let b_first = &map_b.keyframes[0];
    assert!(b_first.pose.translation.vector.norm() < 1e-6);
    assert!(
        map.keyframes
            .iter()
            .any(|k| k.session == 1 && k.pose.translation.vector.norm() > 10.0)
    );
    // The inputs are untouched, and the same merge gives the same bytes.
    assert_eq!(std::fs::read(ma.join("map.bin")).unwrap(), inputs_before.0);
    assert_eq!(std::fs::read(mb.join("map.bin")).unwrap(), inputs_before.1);
    let again = dir.path().join("again");
    common::cli_ok(&[
        "merge-maps",
        ma.to_str().unwrap(),
        mb.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(
        std::fs::read(merged.join("map.bin")).unwrap(),
        std::fs::read(again.join("map.bin")).unwrap()
    );
    // The merged map is a map: a run localises in it, and it merges again.
    let run = dir.path().join("run");
    common::cli_ok(&[
        "replay",
        kitti.to_str().unwrap(),
        "--frames",
        "10..50",
        "--map",
        &mm,
        "--out",
        run.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(common::metrics(&run)["localisation"]["localised"], true);
    let twice = dir.path().join("twice");
    common::cli_ok(&[
        "merge-maps",
        &mm,
        mb.to_str().unwrap(),
        "--out",
        twice.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(read_map(&twice).unwrap().header.sessions, 3);
}

#[test]
fn maps_of_different_drives_are_refused_and_bad_inputs_named() {
    let (Some(kitti), Some(mini)) = (common::shared_kitti(), common::shared_kitti_mini()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    map_session(&kitti, "0..40", &a);
    map_session(&mini.join("01"), "0..10", &b);
    let (ma, mb) = (a.join("map"), b.join("map"));
    let out = dir.path().join("merged");
    let (ma, mb, o) = (ma.to_str().unwrap(), mb.to_str().unwrap(), out.to_str().unwrap());
    let res = common::cli(&["merge-maps", ma, mb, "--out", o]);
    common::assert_input_error(&res, &["shares no place with the anchor", "not merged"]);
    assert!(!out.exists(), "nothing written for a refused merge");
    // --out among the inputs, a map given twice, an anchor not given, a folder without a map.
    let res = common::cli(&["merge-maps", ma, mb, "--out", ma]);
    common::assert_input_error(&res, &["is also --out"]);
    let res = common::cli(&["merge-maps", ma, ma, "--out", o]);
    common::assert_input_error(&res, &["given twice"]);
    let res = common::cli(&["merge-maps", ma, mb, "--out", o, "--anchor", "elsewhere"]);
    common::assert_input_error(&res, &["--anchor elsewhere is not one of the maps given"]);
    let res = common::cli(&["merge-maps", ma, dir.path().to_str().unwrap(), "--out", o]);
    common::assert_input_error(&res, &["map.bin"]);
}

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
        // OverlapNet's yaw class: floor(-yaw) + 180, so a small yaw sits next to class 180.
        assert!(r[3].abs() < 5.0 && (r[4] - 180.0).abs() <= 5.0, "{r:?}");
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

/// Runs `eval-loops` on the shipped sample (pairs at least 2 frames apart) with `args`, into
/// `dir/eval`; returns that folder and its `loops_eval.json`.
fn eval_loops_on_sample(dir: &std::path::Path, args: &[&str]) -> (std::path::PathBuf, serde_json::Value) {
    let out_dir = dir.join("eval");
    let sample = common::sample_kitti();
    let mut all = vec![
        "eval-loops",
        sample.to_str().unwrap(),
        "--min-gap",
        "2",
        "--quiet",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = common::cli(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_str(&fs::read_to_string(out_dir.join("loops_eval.json")).unwrap()).unwrap();
    (out_dir, report)
}

#[test]
fn eval_loops_writes_the_curve_the_plot_and_the_figures() {
    let dir = tempfile::tempdir().unwrap();
    // The sample's frames are 0-7 of a straight drive: OverlapNet's labels
    // (scripts/overlapnet_reference.py labels) put pairs 2-3 frames apart at 0.65-0.73 and the
    // rest at 0.45-0.60, so a 0.6 threshold makes 11 loops among the 21 pairs.
    let (out_dir, report) = eval_loops_on_sample(dir.path(), &["--method", "scancontext", "--loop-overlap", "0.6"]);
    assert_eq!(report["method"], "scancontext");
    assert_eq!(report["pairs"], 21, "pairs of 8 frames at least 2 apart");
    assert_eq!(report["loops"], 11);
    for key in ["auc", "f1_max", "recall_at_1"] {
        let v = report[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(report["overlap_mae"].is_null(), "Scan Context predicts no overlap");
    // Sectors are 6 degrees wide: turned copies come back within half a sector on average.
    let turned = report["yaw_rotated_err_mean_deg"].as_f64().unwrap();
    assert!(turned < 3.0, "{turned}");
    assert!(report["descriptor_scans_per_s"].as_f64().unwrap() > 0.0);
    let csv = fs::read_to_string(out_dir.join("pr_curve.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("threshold,precision,recall"));
    let last: Vec<f64> = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(last[2], 1.0, "the curve ends at full recall");
    let png = fs::read(out_dir.join("pr_curve.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // Every judged pair, with the authors' ground truth: frame 2 against 0 overlaps by 0.7264.
    let pairs = fs::read_to_string(out_dir.join("pairs.csv")).unwrap();
    let mut lines = pairs.lines();
    assert_eq!(
        lines.next(),
        Some(
            "query,reference,overlap,yaw_deg,pred_overlap,pred_yaw_deg,score,overlap_spread,yaw_spread_deg,distance_m,loop"
        )
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 21);
    let two_zero = rows.iter().find(|r| r[0] == "2" && r[1] == "0").expect("pair (2, 0)");
    assert!(
        (two_zero[2].parse::<f64>().unwrap() - 0.7264).abs() < 6e-4,
        "{two_zero:?}"
    );
    assert_eq!(two_zero[4], "", "Scan Context predicts no overlap");
    assert_eq!((two_zero[7], two_zero[8]), ("", ""), "Scan Context has no spread");
    assert!(report["uncertainty"].is_null());

    let sample = common::sample_kitti();
    let unknown = common::cli(&[
        "eval-loops",
        sample.to_str().unwrap(),
        "--method",
        "netvlad",
        "--out",
        "x",
    ]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown loop detector"));
}

#[test]
fn eval_loops_judges_by_distance_and_reports_recall_further_down_the_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let (out_dir, report) = eval_loops_on_sample(
        dir.path(),
        &["--method", "scancontext", "--loop-distance", "2.5", "--top-n", "2"],
    );
    assert_eq!(report["revisit"]["distance_m"], 2.5);
    assert_eq!(report["top_n"], 2);
    // The car moves about 0.85 m a frame: pairs 2 frames apart are loops, 3 or more are not.
    let pairs = fs::read_to_string(out_dir.join("pairs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = pairs.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 21);
    for r in &rows {
        let (gap, distance): (usize, f64) = (
            r[0].parse::<usize>().unwrap() - r[1].parse::<usize>().unwrap(),
            r[9].parse().unwrap(),
        );
        assert_eq!(r[10] == "1", distance <= 2.5, "{r:?}");
        assert_eq!(gap == 2, distance <= 2.5, "{r:?}");
    }
    assert_eq!(report["loops"], 6, "frames 2-7 each have one loop, 2 frames back");
    // Each query's only candidate-loop is the nearest in time: Scan Context ranks it first or
    // second, so recall@2 is at least recall@1, and both are shares.
    let (at_1, at_n) = (
        report["recall_at_1"].as_f64().unwrap(),
        report["recall_at_n"].as_f64().unwrap(),
    );
    assert!(at_n >= at_1 && at_n <= 1.0, "{at_1} {at_n}");
    assert!(
        report["recall_at_1_percent"].as_f64().unwrap() == at_1,
        "under 100 candidates 1 % is the best one"
    );
}

#[test]
fn eval_loops_refuses_a_distance_that_is_not_positive_and_a_top_n_of_zero() {
    let dir = tempfile::tempdir().unwrap();
    let sample = common::sample_kitti();
    let out_dir = dir.path().join("eval");
    for (flag, value, says) in [
        (
            "--loop-distance",
            "-1",
            "--loop-distance must be a positive number of metres, not -1",
        ),
        (
            "--loop-distance",
            "0",
            "--loop-distance must be a positive number of metres, not 0",
        ),
        ("--top-n", "0", "--top-n must be at least 1"),
    ] {
        let out = common::cli(&[
            "eval-loops",
            sample.to_str().unwrap(),
            "--method",
            "scancontext",
            flag,
            value,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim(), format!("error: eval-loops: {says}"));
        assert!(!out_dir.exists(), "nothing written");
    }
}

#[test]
fn eval_loops_judges_the_shipped_overlapnet_on_real_frames() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("eval");
    let sample = common::sample_kitti();
    let args = [
        "eval-loops",
        sample.to_str().unwrap(),
        "--method",
        "overlapnet",
        "--min-gap",
        "2",
        "--loop-overlap",
        "0.6",
        "--rotated-copies",
        "4",
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ];
    let out = common::cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("loops_eval.json")).unwrap()).unwrap();
    assert_eq!(report["method"], "overlapnet");
    assert_eq!(report["pairs"], 21);
    let mae = report["overlap_mae"].as_f64().expect("OverlapNet predicts overlap");
    assert!(mae < 0.5, "overlap MAE {mae}");
    let turned = report["yaw_rotated_err_mean_deg"].as_f64().unwrap();
    assert!(turned < 3.0, "yaw error on turned copies {turned}");
    assert!(report["head_pairs_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn eval_loops_with_mimo_reports_the_spread_and_the_gate() {
    let sample = common::sample_kitti();
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("mimo");
    let args = [
        "eval-loops",
        sample.to_str().unwrap(),
        "--method",
        "overlapnet-mimo",
        "--min-gap",
        "2",
        "--loop-overlap",
        "0.6",
        "--rotated-copies",
        "4",
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ];
    let out = common::cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("loops_eval.json")).unwrap()).unwrap();
    assert_eq!(report["method"], "overlapnet-mimo");
    let u = &report["uncertainty"];
    let spread = u["overlap_spread_mean"].as_f64().unwrap();
    assert!(spread > 0.0 && spread < 0.5, "{spread}");
    let corr = u["spread_error_correlation"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&corr), "{corr}");
    // The gate's four counts cover every proposed pair.
    let g = &u["gate"];
    assert_eq!(g["max_yaw_spread_deg"].as_f64().unwrap(), 25.0);
    let counted: u64 = ["kept_true", "kept_false", "refused_true", "refused_false"]
        .iter()
        .map(|k| g[k].as_u64().unwrap())
        .sum();
    let pairs = fs::read_to_string(out_dir.join("pairs.csv")).unwrap();
    let rows: Vec<Vec<&str>> = pairs.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 21);
    let proposed = rows.iter().filter(|r| r[4].parse::<f64>().unwrap() > 0.3).count();
    assert_eq!(counted as usize, proposed);
    // Every pair carries its spread.
    for r in &rows {
        let o: f64 = r[7].parse().unwrap();
        let y: f64 = r[8].parse().unwrap();
        assert!((0.0..=0.5).contains(&o) && (0.0..=180.0).contains(&y), "{r:?}");
    }
    // `match` prints the same spread in its JSON.
    let a = sample.join("velodyne/000000.bin");
    let b = sample.join("velodyne/000002.bin");
    let m = common::cli(&[
        "match",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--method",
        "overlapnet-mimo",
    ]);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let v: serde_json::Value = serde_json::from_slice(&m.stdout).unwrap();
    assert_eq!(v["method"], "overlapnet-mimo");
    assert!(
        v["spread"]["overlap"].as_f64().is_some() && v["spread"]["yaw_deg"].as_f64().is_some(),
        "{v}"
    );
}

#[test]
fn match_prints_overlap_and_yaw_of_two_scan_files() {
    let velodyne = common::sample_kitti().join("velodyne");
    let (a, b) = (velodyne.join("000000.bin"), velodyne.join("000001.bin"));
    let out = common::cli(&["match", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["method"], "overlapnet");
    let overlap = v["overlap"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&overlap), "{overlap}");
    // Consecutive frames of a straight drive: barely turned.
    assert!(v["yaw_deg"].as_f64().unwrap().abs() < 3.0, "{v}");
    let sc = common::cli(&[
        "match",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--method",
        "scancontext",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&sc.stdout).unwrap();
    assert!(v["overlap"].is_null());
    assert!(v["score"].as_f64().unwrap() > 0.5);
    // The fused detector: OverlapNet's overlap and yaw, scored by both.
    let sc_score = v["score"].as_f64().unwrap();
    let fused = common::cli(&["match", a.to_str().unwrap(), b.to_str().unwrap(), "--method", "fused"]);
    assert!(fused.status.success(), "{}", String::from_utf8_lossy(&fused.stderr));
    let f: serde_json::Value = serde_json::from_slice(&fused.stdout).unwrap();
    assert_eq!(f["method"], "fused");
    assert_eq!(f["overlap"].as_f64().unwrap(), overlap);
    assert!((f["score"].as_f64().unwrap() - sc_score * overlap).abs() < 1e-5, "{f}");
    let unknown = common::cli(&["match", a.to_str().unwrap(), b.to_str().unwrap(), "--method", "both"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr)
            .contains("unknown loop detector 'both' (overlapnet, overlapnet-mimo, scancontext, fused)")
    );
    let missing = common::cli(&["match", a.to_str().unwrap(), "/nonexistent/scan.bin"]);
    common::assert_input_error(&missing, &["/nonexistent/scan.bin"]);
}

#[test]
fn the_loop_search_finds_the_revisits_of_the_simulated_drive() {
    use overlap_slam::loops::detector::{LoopDetector, LoopMethod};
    use overlap_slam::loops::search::{LoopSearch, LoopSearchConfig};
    use overlap_slam::sim::{SimConfig, Simulation};
    // Scan Context as the judge keeps this fast; the search logic is the same for OverlapNet.
    let sim = Simulation::new(&SimConfig::default());
    let config = LoopSearchConfig {
        accept_scan_context_distance: 0.4,
        ..LoopSearchConfig::default()
    };
    let mut search = LoopSearch::new(config, LoopDetector::new(LoopMethod::ScanContext, None).unwrap());
    let mut found = Vec::new();
    for i in 0..sim.frames() {
        let pose = sim.gt_pose(i);
        let scan = search.is_keyframe(i).then(|| sim.scan(i));
        if let Some(c) = search.add(i, &pose, scan.as_ref()).unwrap().first().copied() {
            assert!(c.query >= c.reference + 100, "{c:?} is too recent");
            found.push(c);
        }
    }
    assert!(found.len() >= 5, "only {} loops: {found:?}", found.len());
    let true_loops = found.iter().filter(|c| c.gt_distance_m.unwrap() < 15.0).count();
    assert!(
        true_loops * 10 >= found.len() * 8,
        "{true_loops} of {} within 15 m: {found:?}",
        found.len()
    );
}

#[test]
fn eval_loops_also_judges_pairs_across_recordings_as_true_negatives() {
    let dir = tempfile::tempdir().unwrap();
    // A second recording (a copy of the sample: the declaration, not the geometry, makes pairs
    // across recordings negatives).
    let other = dir.path().join("other");
    fs::create_dir_all(other.join("velodyne")).unwrap();
    for f in ["calib.txt", "poses.txt", "times.txt"] {
        fs::copy(common::sample_kitti().join(f), other.join(f)).unwrap();
    }
    for k in 0..4 {
        let f = format!("velodyne/{k:06}.bin");
        fs::copy(common::sample_kitti().join(&f), other.join(&f)).unwrap();
    }
    let out_dir = dir.path().join("eval");
    let sample = common::sample_kitti();
    let args = [
        "eval-loops",
        sample.to_str().unwrap(),
        "--also",
        other.to_str().unwrap(),
        "--frames",
        "0..4",
        "--min-gap",
        "1",
        "--rotated-copies",
        "2",
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
    ];
    let out = common::cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("16 pairs across 2 recordings"));
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("loops_eval.json")).unwrap()).unwrap();
    // Six pairs within each recording of four scans, sixteen across.
    assert_eq!(report["pairs"], 28);
    assert_eq!(report["across"]["pairs"], 16);
    let mean = report["across"]["pred_overlap_mean"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&mean), "{mean}");
    let pairs = fs::read_to_string(out_dir.join("pairs.csv")).unwrap();
    let mut lines = pairs.lines();
    assert!(lines.next().unwrap().ends_with(",query_recording,reference_recording"));
    let across: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[11] != r[12])
        .collect();
    assert_eq!(across.len(), 16);
    assert!(across.iter().all(|r| r[2] == "0.0000"), "{across:?}");
    assert!(
        across.iter().all(|r| r[9].is_empty() && r[10] == "0"),
        "no distance across places: {across:?}"
    );
    // The copy of frame 0 against frame 0 is declared another place: a negative, whatever it shows.
    assert!(
        across
            .iter()
            .any(|r| r[0] == "0" && r[1] == "0" && r[11] == "1" && r[12] == "0")
    );
}

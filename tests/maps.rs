//! Maps that outlive a run: a simulated drive saves its map, another drive through the same
//! world localises in it and works in its frame, a drive through another world is refused, a
//! run extends the map, and every kind of bad map ends in one clear line and exit 2 with the map
//! on disk unchanged.

mod common;

use common::{assert_input_error, cli, shared_kitti};
use serde_json::Value;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `replay ARGS --quiet --out OUT` and returns its metrics.
fn replay(out: &Path, args: &[&str]) -> Value {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend(["--quiet", "--out", s(out)]);
    let res = cli(&all);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    common::metrics(out)
}

/// The position in row `row` of the KITTI poses file `dir/file`.
fn position(dir: &Path, file: &str, row: usize) -> [f64; 3] {
    let text = fs::read_to_string(dir.join(file)).unwrap();
    let v: Vec<f64> = text
        .lines()
        .nth(row)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    [v[3], v[7], v[11]]
}

fn dist(a: [f64; 3], b: [f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// The map of the first 200 frames of simulated world 0's default drive (about 170 m, 20
/// keyframes), made once for every test here.
fn world0_map() -> &'static Path {
    static MAP: OnceLock<tempfile::TempDir> = OnceLock::new();
    MAP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let m = replay(
            &dir.path().join("run"),
            &["--frames", "0..200", "--save-map", s(&dir.path().join("map"))],
        );
        assert_eq!(m["saved_map"]["keyframes"], 20, "{}", m["saved_map"]);
        assert_eq!(m["saved_map"]["sessions"], 1);
        dir
    })
    .path()
}

#[test]
fn another_drive_through_the_mapped_world_localises_and_works_in_the_map_frame() {
    let map = world0_map().join("map");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("loc");
    // Drive 1 goes at another speed with other sensor noise; frames 100..150 lie in the mapped
    // stretch.
    let m = replay(&out, &["--drive", "1", "--frames", "100..150", "--map", s(&map)]);
    let l = &m["localisation"];
    assert_eq!(l["localised"], true, "{l}");
    assert_eq!(l["map_keyframes"], 20);
    assert!(l["frames_to_fix"].as_u64().unwrap() <= 21, "{l}");
    assert!(l["fix_error_m"].as_f64().unwrap() < 0.5, "{l}");
    assert!(l["fix_error_deg"].as_f64().unwrap() < 1.0, "{l}");
    // Relative to the map keyframes (the map's own drift, metres after 200 frames without a
    // loop, left out) the run stays within decimetres.
    assert!(l["error_to_map_m"].as_f64().unwrap() < 0.4, "{l}");
    assert!(l["map_loops"].as_u64().unwrap() >= 1, "{l}");
    // The poses written are in the map frame: the run's first pose is where the map puts that
    // place (the map's error there, plus decimetres), far from the origin where the run started.
    let (pose, truth) = (
        position(&out, "poses_kitti.txt", 0),
        position(&out, "ground_truth_kitti.txt", 0),
    );
    assert!(dist(truth, [0.0; 3]) > 30.0 && dist(pose, [0.0; 3]) > 30.0, "{pose:?}");
    let map_run = world0_map().join("run");
    let nearest = (0..200)
        .min_by(|&a, &b| {
            let d = |i| dist(position(&map_run, "ground_truth_kitti.txt", i), truth);
            d(a).total_cmp(&d(b))
        })
        .unwrap();
    let map_error = dist(
        position(&map_run, "poses_kitti.txt", nearest),
        position(&map_run, "ground_truth_kitti.txt", nearest),
    );
    assert!(
        dist(pose, truth) < map_error + 0.5,
        "{pose:?} against {truth:?}, the map is {map_error:.2} m off there"
    );
}

#[test]
fn a_drive_through_another_world_is_never_localised_and_stays_in_its_own_frame() {
    let map = world0_map().join("map");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("elsewhere");
    let m = replay(&out, &["--seed", "5", "--frames", "100..150", "--map", s(&map)]);
    let l = &m["localisation"];
    assert_eq!(l["localised"], false, "{l}");
    assert!(l["fix_frame"].is_null() && l["ate_map_m"].is_null(), "{l}");
    assert_eq!(
        position(&out, "poses_kitti.txt", 0),
        [0.0; 3],
        "the first pose stays at the run's own origin"
    );
}

#[test]
fn a_localised_run_extends_the_map_and_an_unlocalised_one_leaves_it_as_it_was() {
    let map = world0_map().join("map");
    let tmp = tempfile::tempdir().unwrap();
    let extended = tmp.path().join("extended");
    let m = replay(
        &tmp.path().join("a"),
        &[
            "--drive",
            "2",
            "--frames",
            "60..120",
            "--map",
            s(&map),
            "--save-map",
            s(&extended),
        ],
    );
    assert_eq!(m["localisation"]["localised"], true, "{}", m["localisation"]);
    assert_eq!(m["saved_map"]["sessions"], 2);
    assert_eq!(m["saved_map"]["keyframes"], 26, "20 old and 6 new");
    // The extended map serves the next run.
    let again = replay(
        &tmp.path().join("b"),
        &["--drive", "3", "--frames", "80..130", "--map", s(&extended)],
    );
    assert_eq!(again["localisation"]["map_keyframes"], 26);
    assert_eq!(again["localisation"]["localised"], true, "{}", again["localisation"]);
    // A run outside the map adds nothing to it.
    let before = fs::read(map.join("map.bin")).unwrap();
    let copy = tmp.path().join("copy");
    let m = replay(
        &tmp.path().join("c"),
        &[
            "--seed",
            "5",
            "--frames",
            "0..30",
            "--map",
            s(&map),
            "--save-map",
            s(&copy),
        ],
    );
    assert_eq!(m["saved_map"]["keyframes"], 20);
    assert_eq!(m["saved_map"]["sessions"], 1);
    assert_eq!(fs::read(map.join("map.bin")).unwrap(), before);
}

/// A change made to a map file's bytes.
type Damage = Box<dyn FnOnce(&mut Vec<u8>)>;

/// A copy of the test map in `root/bad` with its map file changed by `damage`.
fn damaged(root: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
    let dir = root.join("bad");
    fs::create_dir_all(&dir).unwrap();
    let mut bytes = fs::read(world0_map().join("map/map.bin")).unwrap();
    damage(&mut bytes);
    fs::write(dir.join("map.bin"), &bytes).unwrap();
    dir
}

#[test]
fn bad_maps_give_one_line_and_exit_2_and_stay_as_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |map: &Path, extra: &[&str]| {
        let mut args = vec!["replay", "--frames", "0..3", "--quiet", "--map", s(map)];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let missing = tmp.path().join("nowhere");
    assert_input_error(&run(&missing, &[]), &["nowhere", "no such map folder"]);
    let file = tmp.path().join("a-file");
    fs::write(&file, b"not a map").unwrap();
    assert_input_error(&run(&file, &[]), &["a-file", "not a folder"]);
    // --save-map into a file is refused before the run, not after it.
    let res = cli(&["replay", "--frames", "0..3", "--quiet", "--save-map", s(&file)]);
    assert_input_error(&res, &["a-file", "--save-map needs a folder"]);
    assert_eq!(fs::read(&file).unwrap(), b"not a map");
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    assert_input_error(&run(&empty, &[]), &["map.bin", "No such file"]);
    let cases: [(&str, Damage); 4] = [
        ("truncated or corrupted", Box::new(|b| b.truncate(b.len() / 2))),
        ("truncated or corrupted", Box::new(|b| *b.last_mut().unwrap() ^= 0xff)),
        (
            "map format version 9; this build reads version 1",
            Box::new(|b| b[8] = 9),
        ),
        ("not an overlap-slam map", Box::new(|b| b[0] = b'X')),
    ];
    for (i, (needle, damage)) in cases.into_iter().enumerate() {
        let root = tmp.path().join(format!("case{i}"));
        let dir = damaged(&root, damage);
        let before = fs::read(dir.join("map.bin")).unwrap();
        // Saving into the same folder must not replace the bad map with anything.
        assert_input_error(&run(&dir, &["--save-map", s(&dir)]), &["map.bin", needle]);
        assert_eq!(fs::read(dir.join("map.bin")).unwrap(), before);
    }
    // A map from another sensor model.
    let res = run(&world0_map().join("map"), &["--sensor", "vlp16"]);
    assert_input_error(&res, &["map.bin", "sensor 'Velodyne HDL-64E (KITTI)'", "VLP-16"]);
    // Maps need loop closure.
    assert_input_error(
        &run(&world0_map().join("map"), &["--no-loops"]),
        &["--map and --save-map need loop closure"],
    );
}

#[test]
fn live_on_a_simulated_velodyne_starting_mid_drive_localises_in_a_map() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let map = t.join("vlp16-map");
    replay(
        &t.join("map-run"),
        &["--sensor", "vlp16", "--frames", "0..300", "--save-map", s(&map)],
    );
    let pcap = t.join("drive1.pcap");
    let sent = cli(&[
        "sim-velodyne",
        "--drive",
        "1",
        "--first-sweep",
        "150",
        "--sweeps",
        "40",
        "--fast",
        "--quiet",
        "--pcap-out",
        s(&pcap),
    ]);
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let out = t.join("live");
    let extended = t.join("extended");
    let res = cli(&[
        "live",
        "--pcap",
        s(&pcap),
        "--map",
        s(&map),
        "--out",
        s(&out),
        "--save-map",
        s(&extended),
    ]);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(stdout.contains("localised in the map at frame"), "{stdout}");
    let m: Value = common::metrics(&out);
    assert_eq!(m["localisation"]["localised"], true);
    assert!(m["localisation"]["seconds_to_fix"].as_f64().unwrap() <= 2.05);
    // The live run extended the map: a second session with its 4 keyframes.
    assert_eq!(m["saved_map"]["sessions"], 2);
    assert_eq!(m["saved_map"]["keyframes"], 34, "{}", m["saved_map"]);
    // Sweep 150 of drive 1 is far from the map's origin, and the poses are written there.
    let first = position(&out, "poses_kitti.txt", 0);
    assert!(dist(first, [0.0; 3]) > 30.0, "{first:?}");
}

#[test]
fn the_recording_shows_the_prior_map_and_the_fix() {
    let map = world0_map().join("map");
    let tmp = tempfile::tempdir().unwrap();
    let rrd = common::cli_recording(tmp.path(), &["--drive", "1", "--frames", "100..125", "--map", s(&map)]);
    let paths = common::rrd_entity_paths(&rrd);
    for want in [
        "/world/prior_map/points",
        "/world/prior_map/trajectory",
        "/world/localisation/hypotheses",
        "/world/localisation/fix",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
    }
}

#[test]
fn a_map_saved_with_overlapnet_keeps_its_features_and_serves_overlapnet_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let map = tmp.path().join("map");
    let saved = replay(
        &tmp.path().join("map-run"),
        &[
            "--frames",
            "0..200",
            "--loop-detector",
            "overlapnet",
            "--save-map",
            s(&map),
        ],
    );
    assert_eq!(saved["saved_map"]["keyframes"], 20);
    let summary: Value = serde_json::from_str(&fs::read_to_string(map.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["header"]["detector"], "overlapnet");
    let m = replay(
        &tmp.path().join("loc"),
        &[
            "--drive",
            "1",
            "--frames",
            "100..150",
            "--loop-detector",
            "overlapnet",
            "--map",
            s(&map),
        ],
    );
    assert_eq!(m["localisation"]["localised"], true, "{}", m["localisation"]);
    assert!(
        m["localisation"]["fix_error_m"].as_f64().unwrap() < 0.6,
        "{}",
        m["localisation"]
    );
    // A Scan Context map cannot serve OverlapNet, and says what to do.
    let res = cli(&[
        "replay",
        "--frames",
        "0..3",
        "--quiet",
        "--loop-detector",
        "overlapnet",
        "--map",
        s(&world0_map().join("map")),
    ]);
    assert_input_error(&res, &["no OverlapNet features", "--loop-detector scancontext"]);
}

#[test]
fn real_kitti_frames_20_to_60_localise_in_a_map_of_frames_0_to_40() {
    let Some(kitti) = shared_kitti() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let map = tmp.path().join("map");
    replay(
        &tmp.path().join("map-run"),
        &[s(&kitti), "--frames", "0..40", "--save-map", s(&map)],
    );
    let m = replay(
        &tmp.path().join("loc"),
        &[s(&kitti), "--frames", "20..60", "--map", s(&map)],
    );
    let l = &m["localisation"];
    assert_eq!(l["localised"], true, "{l}");
    assert!(l["frames_to_fix"].as_u64().unwrap() <= 21, "{l}");
    assert!(l["fix_error_m"].as_f64().unwrap() < 0.2, "{l}");
    assert!(l["fix_error_deg"].as_f64().unwrap() < 0.5, "{l}");
    // Frame 20 is about 20 m down the road from the map's origin, and written there.
    let first = position(&tmp.path().join("loc"), "poses_kitti.txt", 0);
    assert!(dist(first, [0.0; 3]) > 10.0, "{first:?}");
}

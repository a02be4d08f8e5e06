//! ROS recordings as sources, on bags that no code of ours wrote: real KITTI scans written by the
//! Python `rosbags` package (scripts/make-ros-bags.py) in the Velodyne and Ouster drivers'
//! PointCloud2 layouts, as rosbag2 MCAP, rosbag2 SQLite 3 and ROS 1 bags. Broken recordings are
//! written with our MCAP recorder.

mod common;

use common::{assert_input_error, cli};
use overlap_slam::io::ros::Container;
use overlap_slam::io::ros::cloud::decode_cloud;
use overlap_slam::io::ros::messages::{Datatype, Header, PointCloud2, PointField, encode_odometry, types};
use overlap_slam::io::ros::record::McapRecorder;
use overlap_slam::io::ros::ros1::Ros1Bag;
use overlap_slam::io::ros::rosbag2::McapFile;
use overlap_slam::io::ros::wire::Encoding;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Frames of KITTI 00 in the fixtures.
const FRAMES: usize = 10;

/// The rosbags-written recordings, made once per run; `None` (with the reason printed) without
/// the shared KITTI frames, Python or its `rosbags` package.
fn fixtures() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let kitti = common::shared_kitti()?;
        let probe = Command::new("python3").args(["-c", "import rosbags, numpy"]).output();
        if !probe.is_ok_and(|o| o.status.success()) {
            eprintln!(
                "skipping: python3 with the 'rosbags' and 'numpy' packages is absent (pip install rosbags numpy)"
            );
            return None;
        }
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ros-bags");
        let _ = std::fs::remove_dir_all(&out);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-ros-bags.py");
        let made = Command::new("python3")
            .arg(script)
            .args([kitti.as_os_str(), out.as_os_str()])
            .args(["--frames", &format!("0..{FRAMES}")])
            .output()
            .expect("python3 runs");
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        Some(out)
    })
    .as_deref()
}

fn read_poses(path: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn max_difference(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

fn ate(out: &Path) -> f64 {
    let m = common::metrics(out);
    m["ate_rmse_m"].as_f64().expect("ATE with ground truth")
}

/// Replays `args` into a fresh folder and returns it.
fn replay(name: &str, args: &[&str]) -> PathBuf {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ros-out-{name}"));
    let _ = std::fs::remove_dir_all(&out);
    let mut all = vec!["replay", "--quiet", "--no-loops", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let o = cli(&all);
    assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The KITTI folder's replay of the same frames, run once (tests run in parallel).
fn kitti_reference() -> PathBuf {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let kitti = common::shared_kitti().unwrap();
        // The bags' `time` field is the azimuth rule's, so the folder gets the same times.
        replay(
            "kitti",
            &[
                kitti.to_str().unwrap(),
                "--frames",
                &format!("0..{FRAMES}"),
                "--set",
                "azimuth_times=true",
            ],
        )
    })
    .clone()
}

#[test]
fn velodyne_bags_replay_like_the_kitti_folder() {
    let Some(dir) = fixtures() else { return };
    let reference = kitti_reference();
    let expected = read_poses(&reference.join("poses_kitti.txt"));
    assert_eq!(expected.len(), FRAMES);
    for bag in ["velodyne-mcap", "velodyne-sqlite3", "velodyne.bag"] {
        let path = dir.join(bag);
        // The bag holds KITTI scans, which need KITTI's vertical correction like the folder gets.
        let out = replay(
            bag,
            &[
                path.to_str().unwrap(),
                "--topic",
                "/velodyne_points",
                "--gt-topic",
                "/ground_truth",
                "--set",
                "kitti_correction=true",
            ],
        );
        let poses = read_poses(&out.join("poses_kitti.txt"));
        assert_eq!(poses.len(), FRAMES, "{bag}");
        let diff = max_difference(&poses, &expected);
        assert!(
            diff < 1e-3,
            "{bag}: trajectory differs from the KITTI folder's by {diff} m"
        );
        assert!(
            (ate(&out) - ate(&reference)).abs() < 1e-3,
            "{bag}: ATE {} vs {}",
            ate(&out),
            ate(&reference)
        );
    }
}

#[test]
fn ouster_bags_agree_across_containers_and_carry_ground_truth() {
    let Some(dir) = fixtures() else { return };
    let reference_ate = ate(&kitti_reference());
    let mut first: Option<Vec<Vec<f64>>> = None;
    for bag in ["ouster-mcap", "ouster-sqlite3", "ouster.bag"] {
        let path = dir.join(bag);
        // One cloud topic: taken without --topic. Ground truth from PoseStamped this time.
        let out = replay(
            bag,
            &[
                path.to_str().unwrap(),
                "--gt-topic",
                "/pose",
                "--set",
                "kitti_correction=true",
            ],
        );
        let poses = read_poses(&out.join("poses_kitti.txt"));
        assert_eq!(poses.len(), FRAMES, "{bag}");
        match &first {
            None => first = Some(poses),
            Some(f) => assert!(max_difference(f, &poses) < 1e-9, "{bag} differs from ouster-mcap"),
        }
        // Stamped at the start of each sweep, so poses are not the folder's, but as accurate.
        let a = ate(&out);
        assert!(
            (a - reference_ate).abs() < 0.02,
            "{bag}: ATE {a} vs KITTI folder {reference_ate}"
        );
    }
}

#[test]
fn topic_choice_errors_name_the_topics() {
    let Some(dir) = fixtures() else { return };
    let bag = dir.join("velodyne-mcap");
    let b = bag.to_str().unwrap();
    let o = cli(&["replay", b, "--quiet"]);
    assert_input_error(
        &o,
        &[
            b,
            "2 PointCloud2 topics: /velodyne_points, /velodyne_points_sparse; pick one with --topic",
        ],
    );
    let o = cli(&["replay", b, "--quiet", "--topic", "/ground_truth"]);
    assert_input_error(
        &o,
        &["topic '/ground_truth' is nav_msgs/msg/Odometry, not sensor_msgs/msg/PointCloud2"],
    );
    let o = cli(&["replay", b, "--quiet", "--topic", "/nope"]);
    assert_input_error(&o, &["no topic '/nope'", "/pose (geometry_msgs/msg/PoseStamped)"]);
    let o = cli(&[
        "replay",
        b,
        "--quiet",
        "--topic",
        "/velodyne_points",
        "--gt-topic",
        "/velodyne_points_sparse",
    ]);
    assert_input_error(
        &o,
        &["ground-truth topic '/velodyne_points_sparse' is sensor_msgs/msg/PointCloud2"],
    );
    let ros1 = dir.join("ouster.bag");
    let o = cli(&["replay", ros1.to_str().unwrap(), "--quiet", "--topic", "/pose"]);
    assert_input_error(
        &o,
        &[
            "ouster.bag",
            "is geometry_msgs/msg/PoseStamped, not sensor_msgs/msg/PointCloud2",
        ],
    );
}

/// Copies `src` cut to `fraction` of its length.
fn truncated_copy(src: &Path, fraction: f64, name: &str) -> PathBuf {
    let bytes = std::fs::read(src).unwrap();
    let dst = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&dst, &bytes[..(bytes.len() as f64 * fraction) as usize]).unwrap();
    dst
}

#[test]
fn truncated_bags_replay_every_complete_message_first() {
    let Some(dir) = fixtures() else { return };
    let expected = read_poses(&kitti_reference().join("poses_kitti.txt"));
    let cases = [
        (
            dir.join("velodyne-mcap/velodyne-mcap.mcap"),
            "cut.mcap",
            vec!["--topic", "/velodyne_points"],
        ),
        (dir.join("velodyne.bag"), "cut.bag", vec!["--topic", "/velodyne_points"]),
    ];
    for (src, name, extra) in cases {
        let cut = truncated_copy(&src, 0.55, name);
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("ros-out-{name}"));
        let _ = std::fs::remove_dir_all(&out);
        let mut args = vec![
            "replay",
            cut.to_str().unwrap(),
            "--quiet",
            "--no-loops",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        args.extend(["--set", "kitti_correction=true"]);
        let o = cli(&args);
        assert_input_error(&o, &[cut.to_str().unwrap(), "truncated or corrupt"]);
        let poses = read_poses(&out.join("poses_kitti.txt"));
        assert!(
            (3..FRAMES).contains(&poses.len()),
            "{name}: {} frames before the cut",
            poses.len()
        );
        assert!(max_difference(&poses, &expected[..poses.len()]) < 1e-3, "{name}");
    }
    let db = truncated_copy(&dir.join("ouster-sqlite3/ouster-sqlite3.db3"), 0.55, "cut.db3");
    let o = cli(&["replay", db.to_str().unwrap(), "--quiet", "--no-loops"]);
    // SQLite itself refuses a database cut short anywhere: the error says so and how to salvage it.
    assert_input_error(&o, &[db.to_str().unwrap(), "cut-short .db3 cannot be read"]);
}

fn ring_cloud(stamp_ns: i64) -> (Vec<PointField>, Vec<u8>, u32) {
    let fields = ["x", "y", "z", "intensity"]
        .iter()
        .enumerate()
        .map(|(i, n)| PointField::new(n, 4 * i as u32, Datatype::F32))
        .collect();
    let mut data = Vec::new();
    for i in 0..2000 {
        let a = i as f32 * 0.01 + stamp_ns as f32 * 1e-12;
        for v in [10.0 * a.cos(), 10.0 * a.sin(), (i % 16) as f32 * 0.2 - 1.0, 0.5] {
            data.extend(v.to_le_bytes());
        }
    }
    (fields, data, 2000)
}

/// A cloud's fields, data, width and row_step.
type Cloud = (Vec<PointField>, Vec<u8>, u32, u32);

fn write_bag(path: &Path, clouds: &[Cloud]) {
    let mut rec = McapRecorder::create(path).unwrap();
    for (i, (fields, data, width, row_step)) in clouds.iter().enumerate() {
        let header = Header {
            stamp_ns: 1_700_000_000_000_000_000 + i as i64 * 100_000_000,
            frame_id: "lidar".into(),
        };
        let cloud = PointCloud2 {
            header: header.clone(),
            height: 1,
            width: *width,
            fields: fields.clone(),
            is_bigendian: false,
            point_step: 16,
            row_step: *row_step,
            data,
            is_dense: true,
        };
        rec.write("/points", types::POINT_CLOUD2, header.stamp_ns, &cloud.encode_cdr())
            .unwrap();
        let odom = encode_odometry(&header, "lidar", &Default::default(), [0.0; 3], [0.0; 3]);
        rec.write("/odom", types::ODOMETRY, header.stamp_ns, &odom).unwrap();
    }
    rec.finish().unwrap();
}

#[test]
fn broken_clouds_in_a_bag_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = || -> Cloud {
        let (f, d, w) = ring_cloud(0);
        (f, d, w, w * 16)
    };
    type Break = fn(Cloud) -> Cloud;
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "no-z",
            |(mut f, d, w, r)| {
                f.retain(|f| f.name != "z");
                (f, d, w, r)
            },
            "/points message 1: cloud has no 'z' field (fields: x, y, intensity)",
        ),
        (
            "row-step",
            |(f, d, w, _)| (f, d, w, w * 16 + 4),
            "/points message 1: data holds 32000 bytes but height 1 x row_step 32004 needs 32004",
        ),
        (
            "offset",
            |(mut f, d, w, r)| {
                f[3].offset = 14;
                (f, d, w, r)
            },
            "/points message 1: field 'intensity' at offset 14 (4 bytes) runs past the 16-byte point",
        ),
        (
            "empty",
            |(f, ..)| (f, Vec::new(), 0, 0),
            "/points message 1: cloud has no points (1 x 0)",
        ),
    ];
    for (name, broken, expected) in cases {
        let path = dir.path().join(format!("{name}.mcap"));
        write_bag(&path, &[good(), broken(good())]);
        let out = dir.path().join(format!("out-{name}"));
        let o = cli(&[
            "replay",
            path.to_str().unwrap(),
            "--quiet",
            "--no-loops",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_input_error(&o, &[path.to_str().unwrap(), expected]);
        // The good cloud before the broken one was replayed and written.
        assert_eq!(read_poses(&out.join("poses_kitti.txt")).len(), 1, "{name}");
    }
    let path = dir.path().join("ok.mcap");
    write_bag(&path, &[good(), good()]);
    let o = cli(&["replay", path.to_str().unwrap(), "--quiet", "--topic", "/odom"]);
    assert_input_error(
        &o,
        &["topic '/odom' is nav_msgs/msg/Odometry, not sensor_msgs/msg/PointCloud2"],
    );
    for (name, bytes) in [
        ("garbage.mcap", &b"hello, not a bag"[..]),
        ("garbage.bag", &b"#ROSBAG V1.2\n"[..]),
        ("garbage.db3", &b"SQLite format 3\0 nope"[..]),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let o = cli(&["replay", p.to_str().unwrap(), "--quiet"]);
        assert_input_error(&o, &[p.to_str().unwrap()]);
    }
    let folder = dir.path().join("no-storage");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(
        folder.join("metadata.yaml"),
        "rosbag2_bagfile_information:\n  storage_identifier: mcap\n  relative_file_paths: [gone.mcap]\n",
    )
    .unwrap();
    let o = cli(&["replay", folder.to_str().unwrap(), "--quiet"]);
    assert_input_error(&o, &["gone.mcap", "storage file listed in metadata.yaml is missing"]);
}

#[test]
fn other_commands_read_bags() {
    let Some(dir) = fixtures() else { return };
    let bag = dir.join("ouster-mcap");
    let tmp = tempfile::tempdir().unwrap();
    let o = cli(&[
        "project",
        bag.to_str().unwrap(),
        "--frames",
        "3",
        "--out",
        tmp.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for png in ["range.png", "normal.png", "intensity.png"] {
        assert!(tmp.path().join(png).is_file(), "{png}");
    }
    let csv = tmp.path().join("pairs.csv");
    let o = cli(&[
        "gt-pairs",
        bag.to_str().unwrap(),
        "--gt-topic",
        "/ground_truth",
        "--quiet",
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    // 10 scans, pairs at least one frame apart: 45 pairs and a header.
    assert_eq!(rows, 46);
}

/// Mutations of a seed: flipped bytes, a cut, a length field set to something huge.
fn mutate(seed: &[u8], rng: &mut rand_chacha::ChaCha8Rng) -> Vec<u8> {
    use rand::Rng;
    let mut b = seed.to_vec();
    match rng.random_range(0..3) {
        0 => {
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
        }
        1 => b.truncate(rng.random_range(0..b.len())),
        _ => {
            let i = rng.random_range(0..b.len().saturating_sub(4).max(1));
            let v: u32 = if rng.random_bool(0.5) {
                u32::MAX - rng.random_range(0..16)
            } else {
                rng.random()
            };
            let end = (i + 4).min(b.len());
            b[i..end].copy_from_slice(&v.to_le_bytes()[..end - i]);
        }
    }
    b
}

/// Reads every cloud of a container: (clouds decoded, clouds refused).
fn read_all(bag: &dyn Container) -> (usize, usize) {
    let Ok(topics) = bag.topics() else { return (0, 0) };
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let (mut ok, mut bad) = (0, 0);
    let _ = bag.for_each(&names, &mut |m| {
        if m.msg_type == types::POINT_CLOUD2 {
            match PointCloud2::decode(m.data, bag.encoding()).map(|c| decode_cloud(&c).is_ok()) {
                Ok(true) => ok += 1,
                _ => bad += 1,
            }
        }
        true
    });
    (ok, bad)
}

#[test]
fn mutated_recordings_and_messages_never_panic() {
    use rand::SeedableRng;
    let Some(dir) = fixtures() else { return };
    let name = Path::new("mutated");
    let bag = std::fs::read(dir.join("tiny.bag")).unwrap();
    let mcap = std::fs::read(dir.join("tiny-mcap/tiny-mcap.mcap")).unwrap();
    let open_bag = |b: Vec<u8>| Ros1Bag::from_bytes(name, Box::new(b)).map(|c| Box::new(c) as Box<dyn Container>);
    let open_mcap =
        |b: Vec<u8>| McapFile::from_bytes(name, Box::new(b), false).map(|c| Box::new(c) as Box<dyn Container>);
    assert_eq!(read_all(open_bag(bag.clone()).unwrap().as_ref()), (2, 0));
    assert_eq!(read_all(open_mcap(mcap.clone()).unwrap().as_ref()), (2, 0));
    let mut cloud = Vec::new();
    McapFile::from_bytes(name, Box::new(mcap.clone()), false)
        .unwrap()
        .for_each(&["/points"], &mut |m| {
            cloud = m.data.to_vec();
            false
        })
        .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(17);
    let mut refused = 0;
    for _ in 0..3000 {
        if let Ok(b) = open_bag(mutate(&bag, &mut rng)) {
            refused += read_all(b.as_ref()).1;
        }
        if let Ok(m) = open_mcap(mutate(&mcap, &mut rng)) {
            refused += read_all(m.as_ref()).1;
        }
        let c = mutate(&cloud, &mut rng);
        for encoding in [Encoding::Cdr, Encoding::Ros1] {
            if let Ok(p) = PointCloud2::decode(&c, encoding) {
                let _ = decode_cloud(&p);
            }
        }
    }
    // The mutations reached the cloud decoder, not only the containers' own checks.
    assert!(refused > 0);
}

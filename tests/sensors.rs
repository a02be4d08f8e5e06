//! `--sensor auto`: every sensor the project knows is recognised from its own scans, with ring
//! numbers (as Velodyne and Ouster drivers publish them) and without (KITTI's .bin files).

mod common;

use overlap_slam::io::FrameRange;
use overlap_slam::io::kitti::open_sequence;
use overlap_slam::sensor::SensorModel;
use overlap_slam::sensor::detect::detect;
use overlap_slam::sim::{SimConfig, Simulation};

#[test]
fn every_shipped_sensor_is_recognised_from_simulated_scans() {
    for name in SensorModel::builtin_names() {
        let sim = Simulation::new(&SimConfig {
            seed: 17,
            sensor: SensorModel::builtin(name).unwrap(),
            ..SimConfig::default()
        });
        for frame in [0, 40] {
            let mut scan = sim.scan(frame);
            let with_rings = detect(&scan).unwrap();
            assert_eq!(with_rings.name, name, "{name} frame {frame}: {with_rings}");
            assert!(with_rings.from_rings);
            scan.ring = None;
            let without = detect(&scan).unwrap();
            assert_eq!(without.name, name, "{name} frame {frame} without rings: {without}");
        }
    }
}

#[test]
fn real_kitti_scans_are_an_hdl64() {
    let frames = FrameRange { start: 0, end: Some(3) };
    for scan in open_sequence(&common::sample_kitti(), frames).unwrap() {
        let d = detect(&scan.unwrap()).unwrap();
        assert_eq!(d.name, "hdl64", "{d}");
        assert!(d.top_deg > 0.0 && d.top_deg < 4.0 && d.bottom_deg < -20.0, "{d}");
    }
}

#[test]
fn too_few_points_say_nothing() {
    let sim = Simulation::new(&SimConfig::default());
    let mut scan = sim.scan(0);
    scan.points.truncate(100);
    scan.intensity.truncate(100);
    scan.ring.as_mut().unwrap().truncate(100);
    assert!(detect(&scan).is_none());
}

#[test]
fn every_kitti_sequence_in_shared_is_an_hdl64() {
    let Some(mini) = common::shared_kitti_mini() else {
        return;
    };
    for seq in 1..=10 {
        let dir = mini.join(format!("{seq:02}"));
        let frames = FrameRange { start: 0, end: Some(1) };
        let scan = open_sequence(&dir, frames).unwrap().next().unwrap().unwrap();
        let d = detect(&scan).unwrap();
        println!("KITTI {seq:02}: {d}, distance {:.1}", d.distance);
        assert_eq!(d.name, "hdl64", "KITTI {seq:02}: {d}");
    }
}

#[test]
fn an_ouster_recording_replays_with_no_sensor_named() {
    let dir = tempfile::tempdir().unwrap();
    let drive = dir.path().join("os1");
    let d = drive.to_str().unwrap();
    let out = common::cli(&["synth", "--out", d, "--sensor", "os1-64", "--frames", "30", "--quiet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metrics = |args: &[&str]| {
        let o = dir.path().join(format!("out{}", args.len()));
        let mut all = vec!["replay", d, "--no-loops", "--quiet", "--out", o.to_str().unwrap()];
        all.extend_from_slice(args);
        let res = common::cli(&all);
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        let text = std::fs::read_to_string(o.join("metrics.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let auto = metrics(&[]);
    let named = metrics(&["--sensor", "os1-64"]);
    assert_eq!(auto["sensor"], "Ouster OS1-64");
    assert!(
        auto["sensor_detection"].as_str().unwrap().starts_with("os1-64"),
        "{auto}"
    );
    assert!(named["sensor_detection"].is_null());
    // The same run as with the sensor named.
    assert_eq!(auto["ate_rmse_m"], named["ate_rmse_m"]);
    // Named wrongly, the run goes on with a warning that names both.
    let wrong = common::cli(&[
        "replay",
        d,
        "--no-loops",
        "--quiet",
        "--frames",
        "3",
        "--sensor",
        "hdl64",
    ]);
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(wrong.status.success(), "{stderr}");
    assert!(
        stderr.contains("--sensor hdl64 disagrees") && stderr.contains("os1-64"),
        "{stderr}"
    );
}

#[test]
fn velodyne_packets_name_their_sensor_with_no_sensor_named() {
    let dir = tempfile::tempdir().unwrap();
    for (velodyne, model) in [
        ("vlp16", "Velodyne VLP-16"),
        ("hdl32e", "Velodyne HDL-32E"),
        ("hdl64e", "Velodyne HDL-64E (KITTI)"),
    ] {
        let pcap = dir.path().join(format!("{velodyne}.pcap"));
        let out = dir.path().join(velodyne);
        let (p, o) = (pcap.to_str().unwrap(), out.to_str().unwrap());
        common::cli_ok(&[
            "sim-velodyne",
            "--sensor",
            velodyne,
            "--pcap-out",
            p,
            "--sweeps",
            "8",
            "--fast",
            "--quiet",
        ]);
        common::cli_ok(&["live", "--pcap", p, "--no-loops", "--quiet", "--out", o]);
        let metrics = common::metrics(&out);
        assert_eq!(metrics["sensor"], model, "{velodyne}");
        let label = metrics["sensor_detection"].as_str().unwrap().to_string();
        assert!(label.contains("from its data packets"), "{label}");
        // Every sweep but the first (partial) one was read with the sensor recognised.
        assert!(
            metrics["frames"].as_u64().unwrap() >= 6,
            "{velodyne}: {}",
            metrics["frames"]
        );
        assert_eq!(metrics["link"]["malformed"], 0, "{velodyne}");
    }
}

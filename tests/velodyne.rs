//! The Velodyne driver end to end: simulated packets -> decoder -> sweeps, checked against the
//! simulator's own echoes, and the link faults a real network brings.

mod common;

use overlap_slam::io::velodyne::decode::{Decoder, Return};
use overlap_slam::io::velodyne::packet;
use overlap_slam::io::velodyne::{Calibration, Model};
use overlap_slam::sim::velodyne::{PacketSim, PacketSimConfig};

/// Largest error a decoded point may have: half the 2 mm distance unit, plus the 0.01 degree
/// azimuth unit (half of it from rounding, the rest from the turn rate estimated on rounded
/// azimuths) at the point's range.
fn tolerance(range: f32) -> f32 {
    0.0011 + range * 0.01f32.to_radians()
}

#[test]
fn decoded_packets_reproduce_the_simulated_echoes() {
    for model in [Model::Vlp16, Model::Hdl32e, Model::Hdl64e] {
        let sim = PacketSim::new(PacketSimConfig {
            model,
            sweeps: Some(3),
            ..Default::default()
        });
        let mut decoder = Decoder::new(model, Calibration::builtin(model)).unwrap();
        let mut returns: Vec<Return> = Vec::new();
        let (mut checked, mut worst) = (0usize, 0f32);
        for p in sim.chunk(0..40) {
            let parsed = packet::parse(&p.bytes, model).unwrap();
            returns.clear();
            decoder.decode(&parsed, &mut returns);
            assert_eq!(returns.len(), p.truth.len(), "{model:?}");
            for (r, t) in returns.iter().zip(&p.truth) {
                let range = t.iter().map(|v| v * v).sum::<f32>().sqrt();
                let err = (0..3).map(|i| (r.point[i] - t[i]).powi(2)).sum::<f32>().sqrt();
                assert!(err <= tolerance(range), "{model:?}: {err} m at {range} m");
                worst = worst.max(err / tolerance(range));
                checked += 1;
            }
        }
        assert!(checked > 40 * 100, "{model:?}: only {checked} echoes");
        eprintln!("{model:?}: {checked} echoes, worst error {:.2} of the tolerance", worst);
    }
}

use overlap_slam::io::velodyne::VelodyneConfig;
use overlap_slam::jobs::sim_velodyne::{LinkFaults, SimVelodyneConfig, SimVelodyneReport, sim_velodyne};
use overlap_slam::pipeline::PipelineConfig;
use overlap_slam::pipeline::live::{LiveSource, PacketInput, live};
use std::path::{Path, PathBuf};

/// A UDP port nobody uses right now.
fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn send(
    sweeps: usize,
    faults: LinkFaults,
    udp: Option<String>,
    pcap: &Path,
    gt: &Path,
    clock_s: f64,
) -> SimVelodyneReport {
    sim_velodyne(&SimVelodyneConfig {
        sim: PacketSimConfig {
            sweeps: Some(sweeps),
            start_timestamp_us: (clock_s * 1e6) as u32,
            ..Default::default()
        },
        udp: udp.clone(),
        pcap_out: Some(pcap.to_path_buf()),
        gt_out: Some(gt.to_path_buf()),
        realtime: udp.is_some(),
        faults,
        stop: None,
        quiet: true,
    })
    .unwrap()
}

fn run_live(input: PacketInput, out: &Path) -> overlap_slam::Result<overlap_slam::pipeline::RunReport> {
    let source = LiveSource {
        input,
        velodyne: VelodyneConfig::default(),
        stats: Default::default(),
        stop: None,
        early: Default::default(),
    };
    live(
        source,
        PipelineConfig {
            out: Some(out.to_path_buf()),
            quiet: true,
            ..Default::default()
        },
        Vec::new(),
    )
}

fn pcap_input(path: &Path) -> PacketInput {
    PacketInput::Pcap {
        path: path.to_path_buf(),
        port: 2368,
        realtime: false,
    }
}

fn ate_tum(gt: &Path, est: &Path) -> f64 {
    overlap_slam::metrics::evaluate_files(gt, est, true, None)
        .unwrap()
        .accuracy
        .ate_rmse_m
        .unwrap()
}

#[test]
fn a_udp_stream_and_its_pcap_recording_give_the_same_trajectory() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, gt) = (dir.path().join("drive.pcap"), dir.path().join("gt.tum"));
    let addr = format!("127.0.0.1:{}", free_port());
    let listener = {
        let (addr, out) = (addr.clone(), dir.path().join("udp"));
        std::thread::spawn(move || {
            run_live(
                PacketInput::Udp {
                    addr,
                    idle_timeout_s: Some(1.5),
                },
                &out,
            )
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    let sent = send(30, LinkFaults::default(), Some(addr), &pcap, &gt, 0.0);
    let udp = listener.join().unwrap().unwrap();
    let link = udp.link.unwrap();
    assert_eq!(link.packets as usize, sent.packets, "loopback lost packets: {link:?}");
    assert_eq!((link.lost, link.overflow, link.malformed), (0, 0, 0));
    assert_eq!(udp.frames, 30);
    // Sweep to pose, on a loaded test machine: generous, the real figure is in the README.
    assert!(udp.latency_ms_p99.unwrap() < 1000.0);

    let replayed = run_live(pcap_input(&pcap), &dir.path().join("pcap")).unwrap();
    assert_eq!(replayed.frames, 30);
    for (a, b) in udp.poses.iter().zip(&replayed.poses) {
        assert!((a.translation.vector - b.translation.vector).norm() < 1e-9);
    }
    let ate = ate_tum(&gt, &dir.path().join("pcap/poses_tum.txt"));
    assert!(ate < 0.3, "ATE {ate} m over 30 sweeps");
}

#[test]
fn link_faults_are_counted_and_the_pipeline_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, gt) = (dir.path().join("faulty.pcap"), dir.path().join("gt.tum"));
    let faults = LinkFaults {
        loss: 0.05,
        reorder: 0.05,
        malformed: 0.01,
        foreign: 0.01,
        restart_at_s: Some(6.0),
    };
    // The sensor clock passes the top of the hour 5 s in, then the sensor restarts.
    let sent = send(120, faults, None, &pcap, &gt, 3595.0);
    assert!(sent.dropped > 200 && sent.reordered > 200 && sent.malformed > 30 && sent.foreign > 30);
    let report = run_live(pcap_input(&pcap), &dir.path().join("out")).unwrap();
    let link = report.link.unwrap();
    assert_eq!(link.malformed as usize, sent.malformed);
    assert_eq!(link.foreign as usize, sent.foreign);
    assert_eq!(link.reordered as usize, sent.reordered);
    assert_eq!(link.restarts, 1);
    // The restart cuts the sweep in progress, and the first sweep after it is partial.
    assert!(
        (1..=4).contains(&link.partial_sweeps),
        "{} partial sweeps",
        link.partial_sweeps
    );
    // A corrupted packet is missing from the sequence too.
    let missing = (sent.dropped + sent.malformed) as i64;
    assert!(
        (link.lost as i64 - missing).abs() <= 3,
        "lost {} for {missing}",
        link.lost
    );
    // The restart costs its 0.3 s outage and the sweep it cut.
    assert!(report.frames >= 112, "{} sweeps", report.frames);
    let ate = ate_tum(&gt, &dir.path().join("out/poses_tum.txt"));
    assert!(ate < 0.5, "ATE {ate} m with faults");
}

#[test]
fn bad_captures_fail_with_the_file_named_and_outputs_kept() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pcap");
    let err = run_live(pcap_input(&missing), &dir.path().join("o1")).unwrap_err();
    assert!(err.to_string().starts_with(&missing.display().to_string()), "{err}");

    let text = dir.path().join("notes.pcap");
    std::fs::write(&text, "not a capture at all").unwrap();
    let err = run_live(pcap_input(&text), &dir.path().join("o2")).unwrap_err();
    assert!(err.to_string().contains("not a pcap capture"), "{err}");

    // A capture cut in the middle of a frame: the sweeps before the cut are written.
    let (pcap, gt) = (dir.path().join("cut.pcap"), dir.path().join("gt.tum"));
    send(12, LinkFaults::default(), None, &pcap, &gt, 0.0);
    let bytes = std::fs::read(&pcap).unwrap();
    let cut: PathBuf = dir.path().join("cut-short.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3 + 7]).unwrap();
    let out = dir.path().join("o3");
    let err = run_live(pcap_input(&cut), &out).unwrap_err();
    assert!(err.to_string().contains("cut-short.pcap: capture frame"), "{err}");
    let poses = std::fs::read_to_string(out.join("poses_kitti.txt")).unwrap();
    assert!(
        (6..=8).contains(&poses.lines().count()),
        "{} poses",
        poses.lines().count()
    );
}

#[test]
fn the_cli_refuses_bad_live_arguments_with_exit_2() {
    let bin = env!("CARGO_BIN_EXE_overlap-slam");
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    let o = run(&["live", "--pcap", "/nonexistent/x.pcap", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/x.pcap"));
    let o = run(&["live", "--pcap", "x.pcap", "--sensor", "hdl128"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown Velodyne sensor 'hdl128'"));
    let o = run(&["sim-velodyne", "--fast", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs --udp ADDR and/or --pcap-out FILE"));
}

#[test]
fn sigusr1_saves_the_map_of_a_running_capture_and_a_frozen_run_leaves_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (pcap, map, out) = (
        dir.path().join("d.pcap"),
        dir.path().join("map"),
        dir.path().join("out"),
    );
    common::cli_ok(&[
        "sim-velodyne",
        "--pcap-out",
        pcap.to_str().unwrap(),
        "--sweeps",
        "60",
        "--fast",
        "--quiet",
    ]);
    // The capture at its recorded pace: six seconds, a save asked for about half-way.
    let (p, m, o) = (pcap.to_str().unwrap(), map.to_str().unwrap(), out.to_str().unwrap());
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args([
            "live",
            "--pcap",
            p,
            "--realtime",
            "--save-map",
            m,
            "--out",
            o,
            "--quiet",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !out.exists() && started.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let pid = run.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-USR1", &pid])
            .status()
            .unwrap()
            .success()
    );
    let done = run.wait_with_output().unwrap();
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let metrics = common::metrics(&out);
    let saves = metrics["loops"]["map_saves"].as_array().unwrap();
    assert_eq!(saves.len(), 1, "{saves:?}");
    let frame = saves[0]["frame"].as_u64().unwrap();
    assert!((10..55).contains(&frame), "saved at frame {frame}");
    assert!(saves[0]["error"].is_null() && saves[0]["bytes"].as_u64().unwrap() > 0);
    assert!(overlap_slam::saved_map::read_map(&map).is_ok());

    // Pure localisation in that map on the same capture changes no byte of it.
    let before = std::fs::read(map.join("map.bin")).unwrap();
    let out2 = dir.path().join("out2");
    common::cli_ok(&[
        "live",
        "--pcap",
        p,
        "--map",
        m,
        "--freeze",
        "--out",
        out2.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(std::fs::read(map.join("map.bin")).unwrap(), before);
    let metrics = common::metrics(&out2);
    assert_eq!(
        metrics["localisation"]["localised"], true,
        "{}",
        metrics["localisation"]
    );
    assert_eq!(metrics["loops"]["loops_accepted"], 0, "no loops within a frozen run");
    // --freeze without a map, and with --save-map, are refused before anything runs.
    let o = common::cli(&["live", "--pcap", p, "--freeze"]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = common::cli(&["live", "--pcap", p, "--map", m, "--freeze", "--save-map", m]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(map.join("map.bin")).unwrap(), before);
}

//! Perception stages: LIIF super-resolution and IVR-normalised attribution maps, on their own and
//! run by `replay --stage`.

mod common;

use overlap_slam::overlapnet::OverlapNet;
use overlap_slam::perception::ivr_cam::normalise::DEFAULT_IVR_PERCENTILE;
use overlap_slam::perception::ivr_cam::{CamTarget, Normalisation, normalise, pair_cam};
use overlap_slam::perception::liif::train::{DenseSet, compare};
use overlap_slam::perception::liif::{Liif, RowLayout};
use overlap_slam::projection::{ProjectionParams, compute_normals, project};
use overlap_slam::sim::{SimConfig, Simulation};

/// A simulated scan of a world never trained on (training used seeds 100-105).
fn held_out_scan(frame: usize) -> overlap_slam::Scan {
    Simulation::new(&SimConfig {
        seed: 7,
        ..SimConfig::default()
    })
    .scan(frame)
}

#[test]
fn liif_reproduces_a_64_row_image_from_its_own_64_rows() {
    let net = Liif::shipped().unwrap();
    let params = ProjectionParams::overlapnet_hdl64();
    let set = DenseSet::of_scans(&[held_out_scan(0), held_out_scan(40)], &params);
    let c = compare(&net, &set, 1).unwrap();
    // Factor 1 keeps every row, so `compare` (which scores only missing rows) has nothing to
    // score: judge the whole image instead.
    assert_eq!(c.sparse_rows, 64);
    let layout = RowLayout::every(64, 1, 0);
    for img in &set.images {
        let out = net.upsample(img, params.cols, &layout).unwrap();
        assert_eq!(out.len(), 64 * 900);
        let mut sums = overlap_slam::perception::liif::score::ScoreSums::default();
        sums.add(&out, img);
        let s = sums.score();
        assert!(s.mae_m < 0.05, "MAE {:.3} m reproducing a dense image", s.mae_m);
        assert!(s.recall > 0.99 && s.invented < 0.01, "{s:?}");
    }
}

#[test]
fn liif_renders_any_number_of_rows() {
    let net = Liif::shipped().unwrap();
    let params = ProjectionParams::overlapnet_hdl64();
    let img = project(&held_out_scan(5).points, &[], &params);
    let sparse = RowLayout::every(64, 4, 0).decimate(&img.range, params.cols);
    for dense_rows in [64, 100, 128] {
        let layout = RowLayout {
            sparse_rows: 16,
            offset: 0.0,
            spacing: (dense_rows as f32) / 16.0,
            dense_rows,
        };
        let out = net.upsample(&sparse, params.cols, &layout).unwrap();
        assert_eq!(out.len(), dense_rows * params.cols);
        assert!(out.iter().all(|r| *r == -1.0 || (0.0..=50.0).contains(r)));
    }
}

#[test]
fn liif_beats_bilinear_and_nearest_on_held_out_16_row_scans() {
    let net = Liif::shipped().unwrap();
    let set = DenseSet::simulated(&[901], 60);
    assert!(set.images.len() >= 5);
    let c = compare(&net, &set, 4).unwrap();
    assert_eq!(c.sparse_rows, 16);
    // More of the true returns within 0.5 m (a lost return counts as a miss), more of them
    // rendered at all, fewer invented. (LIIF's mean error over what it renders is higher: the
    // returns it recovers that the baselines leave empty are the hard ones; see models/liif.md.)
    assert!(c.liif.within_half_m > c.bilinear.within_half_m + 0.01, "{c:?}");
    assert!(c.liif.within_half_m > c.nearest.within_half_m + 0.05, "{c:?}");
    assert!(
        c.liif.recall > c.bilinear.recall && c.liif.invented < c.bilinear.invented,
        "{c:?}"
    );
}

/// Keeps only the points whose image column lies in `cols` (of 900).
fn keep_columns(
    scan: &overlap_slam::Scan,
    params: &ProjectionParams,
    cols: std::ops::Range<usize>,
) -> overlap_slam::Scan {
    let keep: Vec<bool> = scan
        .points
        .iter()
        .map(|p| {
            let r = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
            r > 0.0 && cols.contains(&params.pixel(*p, r).1)
        })
        .collect();
    let pick = |v: &[f32]| v.iter().zip(&keep).filter(|(_, k)| **k).map(|(x, _)| *x).collect();
    overlap_slam::Scan {
        points: scan
            .points
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(p, _)| *p)
            .collect(),
        intensity: pick(&scan.intensity),
        point_time: None,
        ring: None,
        ..scan.clone()
    }
}

#[test]
fn ivr_map_lights_the_sector_two_scans_share() {
    let net = OverlapNet::shipped().unwrap();
    let params = net.config.projection();
    let full = held_out_scan(30);
    // The query sees only image columns 450..810 (144 degrees: 0 to 144 right of straight
    // ahead), as a LiDAR whose view is blocked elsewhere: that sector is all it shares with the
    // full scan. (Trained with whole sectors blanked, the shipped model reads all five sectors of
    // models/README.md, "Occluded scans", down to 104 degrees.)
    let cut = keep_columns(&full, &params, 450..810);
    let image = |s: &overlap_slam::Scan| {
        let mut img = project(&s.points, &s.intensity, &params);
        compute_normals(&mut img);
        img
    };
    let cam = pair_cam(&net, &image(&cut), &image(&full), CamTarget::Yaw).unwrap();
    assert_eq!((cam.query.len(), cam.reference.len()), (900, 900));
    assert!(
        cam.shift.abs() <= 2 && !cam.half_turn,
        "yaw shift {} columns",
        cam.shift
    );
    if net.config.circular_legs {
        assert!(
            cam.query.iter().all(|v| v.is_finite()),
            "circular legs score every column"
        );
    } else {
        assert!(cam.query[..39].iter().all(|v| v.is_nan()) && cam.query[852..].iter().all(|v| v.is_nan()));
    }
    let ivr = normalise(
        &cam.query,
        Normalisation::Ivr {
            percentile: DEFAULT_IVR_PERCENTILE,
        },
    );
    // Mean score over the scored columns of a range.
    let mean = |r: std::ops::Range<usize>| {
        let v: Vec<f32> = ivr[r].iter().copied().filter(|v| v.is_finite()).collect();
        v.iter().sum::<f32>() / v.len() as f32
    };
    let (inside, outside) = (mean(410..840), mean(90..390));
    assert!(
        inside > 1.8 * outside,
        "mean IVR score {inside:.2} in the shared sector, {outside:.2} outside"
    );
    let peak = (0..900)
        .filter(|&c| ivr[c].is_finite())
        .max_by(|&a, &b| ivr[a].total_cmp(&ivr[b]))
        .unwrap();
    assert!((400..850).contains(&peak), "peak at column {peak}");
}

#[test]
fn grad_cam_of_the_overlap_head_covers_the_feature_columns() {
    let net = OverlapNet::shipped().unwrap();
    let params = net.config.projection();
    let image = |s: &overlap_slam::Scan| {
        let mut img = project(&s.points, &s.intensity, &params);
        compute_normals(&mut img);
        img
    };
    let cam = pair_cam(
        &net,
        &image(&held_out_scan(10)),
        &image(&held_out_scan(14)),
        CamTarget::Overlap,
    )
    .unwrap();
    assert!((0.0..=1.0).contains(&cam.overlap));
    for map in [&cam.query, &cam.reference] {
        if net.config.circular_legs {
            // Feature column c is centred on image columns 2c and 2c + 1, all the way round.
            assert!(map.iter().all(|v| v.is_finite()));
        } else {
            // Feature column c is centred on image columns 2c + 90 and 2c + 91.
            assert!(map[90..810].iter().all(|v| v.is_finite()));
            assert!(map[..90].iter().chain(&map[810..]).all(|v| v.is_nan()));
        }
        assert!(map[90..810].iter().any(|v| *v != 0.0), "a zero gradient everywhere");
    }
}

#[test]
fn replay_runs_the_stages_and_records_their_images() {
    use overlap_slam::perception::{StageKind, StageOptions, build_stages};
    use overlap_slam::pipeline::{PipelineConfig, replay_with_stages};
    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("run.rrd");
    let mut options = StageOptions::default();
    options.ivr_cam.every = 4;
    options.ivr_cam.lag = 4;
    let stages = build_stages(&[StageKind::Liif, StageKind::IvrCam], &options).unwrap();
    let cfg = PipelineConfig {
        frames: overlap_slam::io::FrameRange {
            start: 0,
            end: Some(10),
        },
        loops: None,
        quiet: true,
        viz: overlap_slam::viz::VizTarget::Save(rrd.clone()),
        ..PipelineConfig::default()
    };
    let report = replay_with_stages(&cfg, stages).unwrap();
    assert_eq!(report.frames, 10);
    assert!(report.stage_ms["stage/liif"] > 0.0 && report.stage_ms["stage/ivr-cam"] > 0.0);
    let paths = common::rrd_entity_paths(&rrd);
    for want in [
        "/perception/liif/sparse",
        "/perception/liif/rendered",
        "/perception/liif/abs_error",
        "/metrics/liif/mae_m",
        "/perception/ivr_cam/query",
        "/perception/ivr_cam/reference",
        "/metrics/ivr_cam/overlap",
    ] {
        assert!(paths.iter().any(|p| p == want), "{want} missing from {paths:?}");
    }
}

#[test]
fn the_cli_runs_every_stage_on_real_kitti_frames() {
    let Some(kitti) = common::shared_kitti() else { return };
    let dir = tempfile::tempdir().unwrap();
    let args = [
        kitti.to_str().unwrap(),
        "--frames",
        "0..12",
        "--stage",
        "liif",
        "--stage",
        "ivr-cam",
        "--no-loops",
    ];
    let rrd = common::cli_recording(dir.path(), &args);
    let paths = common::rrd_entity_paths(&rrd);
    assert!(paths.iter().any(|p| p == "/perception/liif/rendered"), "{paths:?}");
    assert!(paths.iter().any(|p| p == "/perception/ivr_cam/query"), "{paths:?}");
}

#[test]
fn stages_refuse_what_they_cannot_run_with_one_clear_error() {
    let out = common::cli(&["replay", "--stage", "mimo-x", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown perception stage 'mimo-x' (known: liif, ivr-cam)"));
    // A VLP-16 projects to 16 x 900: OverlapNet (and so IVR-CAM) reads the HDL-64E window only.
    let out = common::cli(&[
        "replay",
        "--sensor",
        "vlp16",
        "--frames",
        "3",
        "--stage",
        "ivr-cam",
        "--no-loops",
        "--quiet",
    ]);
    common::assert_input_error(&out, &["ivr-cam", "64 x 900", "16 x 900"]);
}

#[test]
fn a_vlp16_scan_is_rendered_at_64_rows() {
    let dir = tempfile::tempdir().unwrap();
    let rrd = common::cli_recording(
        dir.path(),
        &["--sensor", "vlp16", "--frames", "3", "--stage", "liif", "--no-loops"],
    );
    let paths = common::rrd_entity_paths(&rrd);
    assert!(paths.iter().any(|p| p == "/perception/liif/rendered"), "{paths:?}");
    // Only the thinned HDL-64E mode has a truth to score against.
    assert!(!paths.iter().any(|p| p == "/metrics/liif/mae_m"), "{paths:?}");
}

#[test]
fn bad_weights_and_missing_frames_get_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a safetensors file").unwrap();
    std::fs::write(
        dir.path().join("junk.json"),
        overlap_slam::perception::liif::LiifConfig::default().to_json(),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = common::cli(&[
        "eval-liif",
        "--frames",
        "2",
        "--weights",
        junk.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    common::assert_input_error(&out, &["junk.safetensors", "LIIF weights"]);
    // OverlapNet's weights are a valid file, but not LIIF's.
    let other = dir.path().join("overlapnet.safetensors");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/overlapnet.safetensors"),
        &other,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("overlapnet.json"),
        overlap_slam::perception::liif::LiifConfig::default().to_json(),
    )
    .unwrap();
    let out = common::cli(&[
        "eval-liif",
        "--frames",
        "2",
        "--weights",
        other.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    common::assert_input_error(&out, &["overlapnet.safetensors", "LIIF weights"]);
    assert!(!out_dir.join("liif_eval.json").exists());
    let out = common::cli(&[
        "cam",
        "--frames",
        "0..5",
        "--pairs",
        "0:9",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    common::assert_input_error(&out, &["no frame 9"]);
    for factors in ["0", "64", "2,70"] {
        let out = common::cli(&[
            "eval-liif",
            "--frames",
            "2",
            "--factors",
            factors,
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        common::assert_input_error(&out, &["eval-liif", "row factor"]);
    }
    let out = common::cli(&["cam", "--pairs", "0-9", "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("want Q:R"));
}

//! OverlapNet: layer shapes, the yaw head's geometry, learning on a tiny batch, the weights'
//! round trip, and the shipped model on a real KITTI scan.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use overlap_slam::ground_truth::pairs::PairLabel;
use overlap_slam::overlapnet::head::{COLUMNS, peak_shift, yaw_logits};
use overlap_slam::overlapnet::legs::{FEATURES, layer_shapes};
use overlap_slam::overlapnet::train::{Adam, Sample, train_step};
use overlap_slam::overlapnet::{ModelConfig, OverlapNet};

fn fresh() -> (VarMap, OverlapNet) {
    let varmap = VarMap::new();
    let net = OverlapNet::trainable(&varmap, ModelConfig::default(), &Device::Cpu).unwrap();
    common::reseed(&varmap, 7);
    (varmap, net)
}

#[test]
fn every_layer_has_the_papers_output_shape() {
    let table = [
        (30, 443, 16),
        (14, 429, 32),
        (6, 415, 64),
        (2, 404, 64),
        (1, 396, 128),
        (1, 388, 128),
        (1, 380, 128),
        (1, 372, 128),
        (1, 366, 128),
        (1, 362, 128),
        (1, 360, 128),
    ];
    let shapes = layer_shapes(64, 900);
    assert_eq!(shapes, table.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>());
    let (_, net) = fresh();
    let x = Tensor::randn(0f32, 1.0, (1, 64, 900, 4), &Device::Cpu).unwrap();
    let acts = net.leg_activations(&x).unwrap();
    for (a, t) in acts.iter().zip(table) {
        assert_eq!(a.dims(), &[1, t.0, t.1, t.2]);
    }
    let volume = net.legs(&x).unwrap();
    assert_eq!(volume.dims(), &[1, COLUMNS, FEATURES]);
    let (overlap, logits) = net.heads(&volume, &volume).unwrap();
    assert_eq!(overlap.dims(), &[1]);
    assert_eq!(logits.dims(), &[1, COLUMNS]);
    let o = overlap.to_vec1::<f32>().unwrap()[0];
    assert!((0.0..=1.0).contains(&o));
}

#[test]
fn yaw_head_recovers_the_shift_of_a_rolled_volume() {
    let left = Tensor::rand(0f32, 1.0, (1, COLUMNS, FEATURES), &Device::Cpu).unwrap();
    for k in [0i64, 1, 7, 45, 90, 179, -1, -33, -180] {
        // right[i] = left[i - k]
        let idx: Vec<u32> = (0..COLUMNS as i64)
            .map(|i| (i - k).rem_euclid(COLUMNS as i64) as u32)
            .collect();
        let idx = Tensor::new(idx.as_slice(), &Device::Cpu).unwrap();
        let right = left.index_select(&idx, 1).unwrap();
        let logits = yaw_logits(&left, &right)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let shift = peak_shift(&logits);
        let want = if k == -180 { 180.0 } else { k as f32 };
        assert!((shift - want).abs() < 0.5, "rolled by {k}, head says {shift}");
    }
}

/// Twenty steps on two structured pairs (a scan with itself turned, two scans that differ):
/// the loss of the last three must be under 0.7 of the first three's.
fn assert_loss_falls(varmap: &VarMap, net: &OverlapNet) {
    // Structured "scans" that differ, so overlap must be read from the images.
    let set = common::structured_pair_set();
    let pair = |q, r, overlap| PairLabel {
        query: q,
        reference: r,
        overlap,
        yaw_deg: 0.0,
    };
    let batch = [
        vec![Sample::turned(pair(0, 0, 1.0), 40)],
        vec![Sample::turned(pair(1, 2, 0.0), 0)],
    ];
    let mut opt = Adam::new(varmap, 1e-3).unwrap();
    let losses: Vec<f32> = (0..20)
        .map(|_| train_step(net, &mut opt, &set, &batch).unwrap().total)
        .collect();
    let first = losses[..3].iter().sum::<f32>() / 3.0;
    let last = losses[17..].iter().sum::<f32>() / 3.0;
    assert!(last < 0.7 * first, "loss did not fall: {losses:?}");
}

#[test]
fn loss_falls_over_twenty_steps_on_a_tiny_batch() {
    let (varmap, net) = fresh();
    assert_loss_falls(&varmap, &net);
}

#[test]
fn weights_round_trip_through_safetensors() {
    let (varmap, net) = fresh();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    overlap_slam::overlapnet::model::save(&varmap, &net.config, &path).unwrap();
    let loaded = OverlapNet::load(&path).unwrap();
    assert_eq!(loaded.config, net.config);
    let x = Tensor::randn(0f32, 1.0, (2, 64, 900, 4), &Device::Cpu).unwrap();
    let a = net.legs(&x).unwrap();
    let b = loaded.legs(&x).unwrap();
    let diff = (a - &b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    let (o1, _) = net
        .heads(&b.narrow(0, 0, 1).unwrap(), &b.narrow(0, 1, 1).unwrap())
        .unwrap();
    let (o2, _) = loaded
        .heads(&b.narrow(0, 0, 1).unwrap(), &b.narrow(0, 1, 1).unwrap())
        .unwrap();
    assert_eq!(o1.to_vec1::<f32>().unwrap(), o2.to_vec1::<f32>().unwrap());
    // A truncated file is a clear error naming it, not a panic.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = OverlapNet::load(&path)
        .err()
        .expect("truncated weights must not load")
        .to_string();
    assert!(err.contains("net.safetensors"), "{err}");
}

#[test]
fn shipped_model_sees_a_real_scan_turned_by_ninety_degrees() {
    use overlap_slam::projection::overlap::{relative_yaw_deg, transform_points};
    use overlap_slam::projection::project;
    use overlap_slam::scan::Pose;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne/000000.bin");
    let scan = overlap_slam::io::kitti::read_bin(&path).unwrap();
    let net = OverlapNet::shipped().unwrap();
    let params = net.config.projection();
    for yaw in [90.0f64, -90.0, 170.0] {
        let turned = Pose::new(nalgebra::Vector3::zeros(), nalgebra::Vector3::z() * yaw.to_radians());
        let copy = transform_points(&turned.inverse(), &scan.points);
        let a = project(&scan.points, &scan.intensity, &params);
        let b = project(&copy, &scan.intensity, &params);
        let m = net.match_pair(&a, &b).unwrap();
        let truth = relative_yaw_deg(&Pose::identity(), &turned) as f32;
        let err = overlap_slam::ground_truth::scoring::angle_diff_deg(m.yaw_deg, truth);
        assert!(err < 3.0, "turned by {yaw}: predicted {} (error {err})", m.yaw_deg);
    }
}

/// The compact network with circular legs that `train` makes by default.
fn circular_net(channels: overlap_slam::overlapnet::Channels) -> OverlapNet {
    let varmap = VarMap::new();
    let config = ModelConfig {
        channels,
        width_divisor: 4,
        circular_legs: true,
        aligned_overlap: true,
        yaw_decoding: overlap_slam::overlapnet::YawDecoding::FeatureColumns,
        ..ModelConfig::default()
    };
    let net = OverlapNet::trainable(&varmap, config, &Device::Cpu).unwrap();
    common::reseed(&varmap, 11);
    net
}

#[test]
fn circular_legs_span_one_turn_and_roll_with_the_image() {
    let net = circular_net(Default::default());
    assert_eq!((net.config.feature_columns(), net.config.features()), (450, 32));
    let x = Tensor::randn(0f32, 1.0, (1, 64, 900, 4), &Device::Cpu).unwrap();
    // Rolled by 2 image columns: column u moves to u + 2.
    let rolled = Tensor::cat(&[x.narrow(2, 898, 2).unwrap(), x.narrow(2, 0, 898).unwrap()], 2).unwrap();
    let a = net.legs(&x).unwrap().squeeze(0).unwrap();
    let b = net.legs(&rolled).unwrap().squeeze(0).unwrap();
    assert_eq!(a.dims(), &[450, 32]);
    // ... so every feature column moves on by exactly one.
    let a_rolled = Tensor::cat(&[a.narrow(0, 449, 1).unwrap(), a.narrow(0, 0, 449).unwrap()], 0).unwrap();
    let diff = (b - a_rolled)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = a.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff <= 1e-4 * scale.max(1.0), "{diff} of {scale}");
}

#[test]
fn circular_legs_read_any_yaw_in_one_pass() {
    use overlap_slam::overlapnet::input::encode;
    use overlap_slam::projection::project;
    // Range only, so that turning the scan is exactly rolling the image (normals turn too).
    let channels: overlap_slam::overlapnet::Channels = "range".parse().unwrap();
    let net = circular_net(channels);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne/000000.bin");
    let scan = overlap_slam::io::kitti::read_bin(&path).unwrap();
    let image = encode(&project(&scan.points, &[], &net.config.projection()), channels);
    for shift in [250i64, 700, 450, 2] {
        // Column u -> u + shift: the scan seen from a frame turned by shift * 0.4 degrees.
        let rolled: Vec<f32> = (0..64 * 900)
            .map(|i| image[(i / 900) * 900 + ((i % 900) as i64 - shift).rem_euclid(900) as usize])
            .collect();
        let f = net.describe_encoded(&[image.clone(), rolled]).unwrap();
        assert!(f[0].half_turn.is_none(), "one leg pass a scan");
        let m = net.compare(&[(&f[0], &f[1])], 1).unwrap()[0];
        let truth = overlap_slam::ground_truth::scoring::wrap_deg(shift as f32 * 0.4);
        let err = overlap_slam::ground_truth::scoring::angle_diff_deg(m.yaw_deg, truth);
        assert!(err < 0.5, "rolled {shift} columns: yaw {} for {truth}", m.yaw_deg);
    }
}

#[test]
fn banded_head_reads_a_band_of_blocks_and_learns() {
    let varmap = VarMap::new();
    let net = OverlapNet::trainable(&varmap, common::banded_model_config(), &Device::Cpu).unwrap();
    common::reseed(&varmap, 5);
    // The dense layer reads 30 query blocks x 3 band offsets x 64 channels.
    let dense = varmap.data().lock().unwrap()["head.overlap_output.weight"]
        .dims()
        .to_vec();
    assert_eq!(dense, vec![30 * 3 * 64, 1]);
    let left = Tensor::randn(0f32, 1.0, (2, 450, 32), &Device::Cpu)
        .unwrap()
        .relu()
        .unwrap();
    let (overlap, _) = net.heads(&left, &left).unwrap();
    assert_eq!(overlap.dims(), &[2]);
    let o = overlap.to_vec1::<f32>().unwrap();
    assert!(o.iter().all(|v| (0.0..=1.0).contains(v)), "{o:?}");
    assert_loss_falls(&varmap, &net);
}

#[test]
fn a_band_wider_than_the_turn_or_without_alignment_is_refused() {
    let config = |band, aligned| ModelConfig {
        width_divisor: 4,
        circular_legs: true,
        aligned_overlap: aligned,
        head_band: Some(band),
        ..ModelConfig::default()
    };
    let err = |c| {
        OverlapNet::trainable(&VarMap::new(), c, &Device::Cpu)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(
        err(config(15, true)).contains("half-width 15 blocks, want 1 to 14"),
        "{}",
        err(config(15, true))
    );
    assert!(err(config(0, true)).contains("half-width 0"));
    assert!(err(config(2, false)).contains("aligned"));
}

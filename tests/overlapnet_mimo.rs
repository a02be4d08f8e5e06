//! MIMO OverlapNet: M subnetworks in one pass, their shapes, training on independent pairs, and
//! the shipped MIMO model's spread on input unlike its training streets.

mod common;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use overlap_slam::ground_truth::pairs::PairLabel;
use overlap_slam::overlapnet::input::{encode, stack_members};
use overlap_slam::overlapnet::train::{Adam, Row, Sample, member_rows, train_step};
use overlap_slam::overlapnet::{ModelConfig, OverlapNet, YawDecoding};
use overlap_slam::projection::{ProjectionParams, project};
use overlap_slam::sensor::SensorModel;
use overlap_slam::sim::{Scene, SimConfig, Simulation};
use rand::SeedableRng;

/// A fresh compact MIMO network of `members` subnetworks with 12 features each.
fn mimo(members: usize) -> (VarMap, OverlapNet) {
    let varmap = VarMap::new();
    let config = ModelConfig {
        width_divisor: 4,
        circular_legs: true,
        aligned_overlap: true,
        yaw_decoding: YawDecoding::FeatureColumns,
        subnetworks: members,
        subnetwork_features: Some(12),
        ..ModelConfig::default()
    };
    let net = OverlapNet::trainable(&varmap, config, &Device::Cpu).unwrap();
    common::reseed(&varmap, 5);
    (varmap, net)
}

#[test]
fn three_subnetworks_read_twelve_channels_and_answer_three_times() {
    let (_, net) = mimo(3);
    assert_eq!(net.config.features(), 36);
    let x = Tensor::randn(0f32, 1.0, (2, 64, 900, 12), &Device::Cpu).unwrap();
    let v = net.legs(&x).unwrap();
    assert_eq!(v.dims(), &[2, 450, 36]);
    let left = v.narrow(0, 0, 1).unwrap();
    let right = v.narrow(0, 1, 1).unwrap();
    let (overlap, logits) = net.member_heads(&left, &right).unwrap();
    assert_eq!(overlap.dims(), &[1, 3]);
    assert_eq!(logits.dims(), &[1, 3, 450]);
    // The plain interface gives the subnetworks' mean.
    let (mean, mean_logits) = net.heads(&left, &right).unwrap();
    assert_eq!(mean.dims(), &[1]);
    assert_eq!(mean_logits.dims(), &[1, 450]);
    let members = overlap.to_vec2::<f32>().unwrap()[0].clone();
    let want = members.iter().sum::<f32>() / 3.0;
    assert!((mean.to_vec1::<f32>().unwrap()[0] - want).abs() < 1e-6);
    // At test time a scan fills all three inputs; the folded first kernel reads it once and
    // gives the volume of the stacked input.
    let scan = Tensor::randn(0f32, 1.0, (1, 64, 900, 4), &Device::Cpu).unwrap();
    let stacked = Tensor::cat(&[&scan, &scan, &scan], 3).unwrap();
    let folded = net.scan_volumes(&scan).unwrap();
    let direct = net.legs(&stacked).unwrap();
    assert_eq!(folded.dims(), &[1, 450, 36]);
    let gap = (folded - &direct)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    let scale = direct.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(gap <= 1e-4 * scale.max(1.0), "{gap} of {scale}");
}

#[test]
fn every_subnetworks_yaw_reads_a_turn_of_all_its_inputs() {
    // Two different scans side by side, then both turned by the same angle: rolling every input
    // channel rolls the shared features exactly, so each subnetwork's yaw head peaks at the turn
    // (even untrained; a subnetwork's own answer only separates from the others' by training).
    let (_, net) = mimo(2);
    let sim = Simulation::new(&SimConfig::default());
    let p = ProjectionParams::overlapnet_hdl64();
    let c = net.config.channels;
    let images: Vec<Vec<f32>> = [0, 40]
        .iter()
        .map(|&i| {
            let s = sim.scan(i);
            encode(&project(&s.points, &s.intensity, &p), c)
        })
        .collect();
    for k in [60i64, -200] {
        let turned: Vec<Vec<f32>> = images
            .iter()
            .map(|img| overlap_slam::overlapnet::input::roll_columns(img, 900, c, k))
            .collect();
        let query = stack_members(&[&images[0], &images[1]], 4);
        let reference = stack_members(&[&turned[0], &turned[1]], 4);
        let x = Tensor::from_vec([query, reference].concat(), (2, 64, 900, 8), &Device::Cpu).unwrap();
        let v = net.legs(&x).unwrap();
        let (_, logits) = net
            .member_heads(&v.narrow(0, 0, 1).unwrap(), &v.narrow(0, 1, 1).unwrap())
            .unwrap();
        let logits = logits.to_vec3::<f32>().unwrap();
        // The features roll by k / 2 columns: the peak sits at N/2 - k/2.
        let want = (225 - k / 2).rem_euclid(450) as usize;
        for (m, member) in logits[0].iter().enumerate() {
            let peak = overlap_slam::overlapnet::head::argmax(member);
            assert_eq!(peak, want, "subnetwork {m}, inputs turned by {k} columns");
        }
        assert_ne!(logits[0][0], logits[0][1], "the subnetworks read different features");
    }
}

#[test]
fn mimo_loss_falls_on_independent_pairs() {
    let (varmap, net) = mimo(2);
    // Structured "scans" that differ, so overlap must be read from the images.
    let set = common::structured_pair_set();
    let pair = |q, r, overlap| PairLabel {
        query: q,
        reference: r,
        overlap,
        yaw_deg: 0.0,
    };
    let unique = [Sample::turned(pair(0, 0, 1.0), 40), Sample::turned(pair(1, 2, 0.0), 0)];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let rows: Vec<Row> = member_rows(&unique, 2, 2, 0.0, &mut rng);
    assert_eq!(rows.len(), 4);
    let mut opt = Adam::new(&varmap, 1e-3).unwrap();
    let losses: Vec<f32> = (0..16)
        .map(|_| train_step(&net, &mut opt, &set, &rows).unwrap().total)
        .collect();
    let first = losses[..3].iter().sum::<f32>() / 3.0;
    let last = losses[13..].iter().sum::<f32>() / 3.0;
    assert!(last < 0.8 * first, "loss did not fall: {losses:?}");
    // A row whose sample count is not the subnetworks' is an error, not a panic.
    assert!(train_step(&net, &mut opt, &set, &[vec![unique[0]]]).is_err());
}

#[test]
fn a_plain_network_gives_no_spread_and_a_mimo_one_does() {
    let sim = Simulation::new(&SimConfig::default());
    let p = ProjectionParams::overlapnet_hdl64();
    let a = sim.scan(0);
    let b = sim.scan(5);
    let ia = project(&a.points, &a.intensity, &p);
    let ib = project(&b.points, &b.intensity, &p);
    let plain = OverlapNet::shipped().unwrap().match_pair(&ia, &ib).unwrap();
    assert!(plain.spread.is_none());
    let m = OverlapNet::shipped_mimo().unwrap();
    assert_eq!(m.config.members(), 3);
    let r = m.match_pair(&ia, &ib).unwrap();
    let s = r.spread.expect("a MIMO network reports its spread");
    assert!(
        (0.0..=0.5).contains(&s.overlap) && (0.0..=180.0).contains(&s.yaw_deg),
        "{s:?}"
    );
    // Five frames apart on a street: the same place, above the loop search's acceptance.
    assert!(r.overlap > 0.3, "{r:?}");
}

/// Mean overlap spread and mean yaw spread of the shipped MIMO model over pairs of scans 5
/// frames apart along `frames` of a simulated drive (the same place seen twice, as the loop
/// search's candidates are).
fn spread_on(scene: Scene, sensor: SensorModel, seed: u64, frames: std::ops::Range<usize>) -> (f32, f32) {
    let net = OverlapNet::shipped_mimo().unwrap();
    let sim = Simulation::new(&SimConfig {
        seed,
        scene,
        sensor,
        frames: Some(frames.end),
        ..SimConfig::default()
    });
    let p = net.config.projection();
    let images: Vec<_> = frames
        .step_by(5)
        .map(|i| {
            let s = sim.scan(i);
            project(&s.points, &s.intensity, &p)
        })
        .collect();
    let refs: Vec<_> = images.iter().collect();
    let f = net.describe(&refs, 8).unwrap();
    let pairs: Vec<_> = f.windows(2).map(|w| (&w[0], &w[1])).collect();
    let m = net.compare(&pairs, 8).unwrap();
    let n = m.len() as f32;
    let spread =
        |g: &dyn Fn(&overlap_slam::overlapnet::Spread) -> f32| m.iter().map(|r| g(&r.spread.unwrap())).sum::<f32>() / n;
    (spread(&|s| s.overlap), spread(&|s| s.yaw_deg))
}

#[test]
fn the_subnetworks_disagree_more_on_a_sparser_sensor() {
    // The familiar street of an unseen world, then a VLP-16's 16 beams in the HDL-64E window,
    // a tunnel and an open field: input unlike anything trained on.
    let hdl = SensorModel::hdl64();
    // The tunnel runs from 80 to 370 m along the road: these frames are deep inside it.
    let street = spread_on(Scene::Street, hdl.clone(), 0, 150..270);
    let vlp16 = spread_on(Scene::Street, SensorModel::builtin("vlp16").unwrap(), 0, 150..270);
    let tunnel = spread_on(Scene::Tunnel, hdl.clone(), 0, 150..270);
    let open = spread_on(Scene::OpenField, hdl, 0, 150..270);
    println!("overlap / yaw spread: street {street:?}, VLP-16 {vlp16:?}, tunnel {tunnel:?}, open field {open:?}");
    // The sparse sensor's scans split the subnetworks' yaws (measured: 11.5 degrees against 0.4).
    assert!(
        vlp16.1 > 5.0 * street.1,
        "VLP-16 yaw spread {} against the street's {}",
        vlp16.1,
        street.1
    );
    // Not asserted, a known limit (models/overlapnet-mimo.md): in the tunnel and the open field
    // the subnetworks collapse onto the same answer and their spread does not rise (measured:
    // yaw spread 0.003 and 0.04 degrees against the street's 0.4).
}

//! Perception stages' cost per frame on the CPU it runs on: LIIF rendering a 16-row scan at 64
//! rows (against bilinear upsampling of the same scan), and IVR-CAM explaining one pair through
//! the yaw head and through the overlap head (Grad-CAM).

use criterion::{Criterion, criterion_group, criterion_main};
use overlap_slam::overlapnet::OverlapNet;
use overlap_slam::perception::ivr_cam::{CamTarget, pair_cam};
use overlap_slam::perception::liif::rows::upsample_baseline;
use overlap_slam::perception::liif::{Baseline, Liif, RowLayout};
use overlap_slam::projection::{compute_normals, project};
use overlap_slam::sim::{SimConfig, Simulation};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let sim = Simulation::new(&SimConfig::default());
    let net = OverlapNet::shipped().expect("shipped weights load");
    let params = net.config.projection();
    let image = |i: usize| {
        let s = sim.scan(i);
        let mut img = project(&s.points, &s.intensity, &params);
        compute_normals(&mut img);
        img
    };
    let (a, b) = (image(0), image(5));
    let layout = RowLayout::every(64, 4, 0);
    let sparse = layout.decimate(&a.range, params.cols);
    let liif = Liif::shipped().expect("shipped weights load");
    let mut g = c.benchmark_group("perception");
    g.sample_size(10);
    g.bench_function("liif_16_to_64_rows", |bch| {
        bch.iter(|| liif.upsample(black_box(&sparse), 900, &layout).unwrap())
    });
    g.bench_function("bilinear_16_to_64_rows", |bch| {
        bch.iter(|| upsample_baseline(black_box(&sparse), 900, &layout, Baseline::Bilinear))
    });
    g.bench_function("cam_yaw_pair", |bch| {
        bch.iter(|| pair_cam(&net, &a, &b, CamTarget::Yaw).unwrap())
    });
    g.bench_function("cam_overlap_grad_pair", |bch| {
        bch.iter(|| pair_cam(&net, &a, &b, CamTarget::Overlap).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! Projection of a real 120k-point KITTI scan to 64x900 range + normal + intensity images
//! (target: under 5 ms on one core), and simulated scan generation (target: 20 scans/s).

use criterion::{Criterion, criterion_group, criterion_main};
use overlap_slam::io::kitti::read_bin;
use overlap_slam::projection::{ProjectionParams, project};
use overlap_slam::sim::{SimConfig, Simulation};
use std::hint::black_box;
use std::path::Path;

fn projection(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne/000000.bin");
    let scan = read_bin(&path).expect("shipped sample scan");
    let params = ProjectionParams::overlapnet_hdl64();
    c.bench_function(&format!("project_kitti_{}k_points_64x900", scan.len() / 1000), |b| {
        b.iter(|| project(black_box(&scan.points), black_box(&scan.intensity), &params))
    });
}

fn simulation(c: &mut Criterion) {
    let sim = Simulation::new(&SimConfig::default());
    let mut group = c.benchmark_group("simulate");
    group.sample_size(20);
    let mut frame = 0;
    group.bench_function("hdl64_sweep", |b| {
        b.iter(|| {
            frame = (frame + 1) % sim.frames();
            black_box(sim.scan(frame))
        })
    });
    group.finish();
}

criterion_group!(benches, projection, simulation);
criterion_main!(benches);

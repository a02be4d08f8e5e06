//! One KISS-style registration step on real KITTI frames: frame 7 of the shipped sample against
//! the local map built from frames 0-6, with the vertical correction, as a KITTI replay does it
//! (no deskew), and as it did before (deskewed from azimuth times).

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use overlap_slam::io::{self, SourceOptions};
use overlap_slam::odometry::{Odometry, OdometryConfig};
use std::path::Path;

fn registration(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample");
    let scans: Vec<_> = io::open(&dir, &SourceOptions::default())
        .expect("shipped sample")
        .map(|s| s.unwrap())
        .collect();
    let last = &scans[7];
    let mut group = c.benchmark_group("odometry");
    group.sample_size(30);
    // KITTI's default (no deskew), then the former default: times from azimuth, deskew and the
    // re-deskew, which registers a frame twice whenever the prediction was off.
    for (name, azimuth_times) in [("kiss_register_kitti", false), ("kiss_register_kitti_deskewed", true)] {
        let config = OdometryConfig {
            kitti_correction: Some(true),
            azimuth_times,
            ..Default::default()
        };
        let mut warm = Odometry::new(config);
        for scan in &scans[..7] {
            warm.register(scan);
        }
        group.bench_function(format!("{name}_{}k_points", last.len() / 1000), |b| {
            b.iter_batched(|| warm.clone(), |mut odo| odo.register(last), BatchSize::LargeInput)
        });
    }
    group.finish();
}

criterion_group!(benches, registration);
criterion_main!(benches);

//! The recording's image encoders on a real KITTI frame: time per image, and (printed once)
//! the bytes each image takes, the figures behind the encoders' settings and the README's
//! *Recording size*.

use criterion::{Criterion, criterion_group, criterion_main};
use overlap_slam::io::kitti::read_bin;
use overlap_slam::projection::{ProjectionParams, project};
use overlap_slam::viz::encode::{depth_png, intensity_png, normal_png};
use std::hint::black_box;
use std::path::Path;

fn encoders(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne/000000.bin");
    let scan = read_bin(&path).expect("shipped sample scan");
    let img = project(&scan.points, &scan.intensity, &ProjectionParams::overlapnet_hdl64());
    let raw = img.rows * img.cols;
    eprintln!(
        "64 x 900 KITTI frame as PNG: range {} B (raw f32 {} B), normals {} B (raw RGB {} B), intensity {} B (raw grey {} B)",
        depth_png(img.cols, img.rows, &img.range, 10.0).unwrap().len(),
        raw * 4,
        normal_png(&img).unwrap().len(),
        raw * 3,
        intensity_png(&img).unwrap().len(),
        raw
    );
    let mut group = c.benchmark_group("viz_png");
    group.bench_function("range_decimetres", |b| {
        b.iter(|| depth_png(img.cols, img.rows, black_box(&img.range), 10.0))
    });
    group.bench_function("normals_palette", |b| b.iter(|| normal_png(black_box(&img))));
    group.bench_function("intensity_16_greys", |b| b.iter(|| intensity_png(black_box(&img))));
    group.finish();
}

criterion_group!(benches, encoders);
criterion_main!(benches);

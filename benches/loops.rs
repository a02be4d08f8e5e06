//! Scan Context on real KITTI scans: describing one 124k-point scan, and comparing two
//! descriptors under all 60 rotations (the per-candidate cost of a loop search).

use criterion::{Criterion, criterion_group, criterion_main};
use overlap_slam::io::kitti::read_bin;
use overlap_slam::loops::scan_context::ScanContext;
use std::hint::black_box;
use std::path::Path;

fn scan_context(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne");
    let a = read_bin(&dir.join("000000.bin")).expect("shipped sample");
    let b = read_bin(&dir.join("000007.bin")).expect("shipped sample");
    let (da, db) = (ScanContext::new(&a.points), ScanContext::new(&b.points));
    let mut group = c.benchmark_group("scan_context");
    group.bench_function(format!("describe_kitti_{}k_points", a.points.len() / 1000), |bench| {
        bench.iter(|| ScanContext::new(black_box(&a.points)))
    });
    group.bench_function("compare_60_shifts", |bench| {
        bench.iter(|| black_box(&da).compare(black_box(&db)))
    });
    group.finish();
}

criterion_group!(benches, scan_context);
criterion_main!(benches);

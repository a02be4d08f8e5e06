//! Loop search costs on real KITTI scans: Scan Context describing one 124k-point scan and
//! comparing two descriptors under all 60 rotations (the per-candidate cost of a loop search), and
//! ICP verification of a candidate: a true one (frames 7 and 0, 6 m apart), and a wrong one (the
//! same pair seeded half a turn off, refused after its coarse passes).

use criterion::{Criterion, criterion_group, criterion_main};
use overlap_slam::io::kitti::read_bin;
use overlap_slam::loops::scan_context::ScanContext;
use overlap_slam::loops::verify::{KeyframeCloud, VerifyConfig, verify};
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

fn verification(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample/velodyne");
    let cfg = VerifyConfig::default();
    let a = KeyframeCloud::new(&read_bin(&dir.join("000000.bin")).expect("shipped sample").points, &cfg);
    let b = KeyframeCloud::new(&read_bin(&dir.join("000007.bin")).expect("shipped sample").points, &cfg);
    assert!(verify(&b, &a, 0.0, &cfg).accepted, "frames 7 and 0 are one place");
    assert!(!verify(&b, &a, 180.0, &cfg).accepted, "half a turn off is refused");
    let mut group = c.benchmark_group("verify");
    group.bench_function("true_candidate", |bench| {
        bench.iter(|| verify(black_box(&b), black_box(&a), 0.0, &cfg))
    });
    group.bench_function("refused_candidate", |bench| {
        bench.iter(|| verify(black_box(&b), black_box(&a), 180.0, &cfg))
    });
    group.finish();
}

criterion_group!(benches, scan_context, verification);
criterion_main!(benches);

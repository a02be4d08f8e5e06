//! The PointCloud2 decoder on one core, message bytes to [`Scan`], for a 128-beam sensor's sweep
//! (2048 columns, 262 144 points) in the Ouster driver's organised 48-byte layout and in the
//! Velodyne driver's packed 22-byte layout. Target: at least 20x a 10 Hz 128-beam sensor's point
//! rate (2.62 M points/s), i.e. a sweep decoded in under 5 ms.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use overlap_slam::io::ros::cloud::{decode_cloud, velodyne_fields};
use overlap_slam::io::ros::messages::{Datatype, Header, PointCloud2, PointField};
use overlap_slam::io::ros::wire::Encoding;
use std::hint::black_box;

const BEAMS: u32 = 128;
const COLUMNS: u32 = 2048;

fn field(name: &str, offset: u32, datatype: Datatype) -> PointField {
    PointField::new(name, offset, datatype)
}

/// A sweep as CDR bytes: `fields` at `step` bytes a point; `write` fills one point.
fn sweep(fields: Vec<PointField>, step: u32, height: u32, write: impl Fn(&mut [u8], u32, u32)) -> Vec<u8> {
    let width = BEAMS * COLUMNS / height;
    let mut data = vec![0u8; (step * width * height) as usize];
    for (i, p) in data.chunks_exact_mut(step as usize).enumerate() {
        write(p, i as u32 / COLUMNS, i as u32 % COLUMNS);
    }
    PointCloud2 {
        header: Header {
            stamp_ns: 1_700_000_000_000_000_000,
            frame_id: "lidar".into(),
        },
        height,
        width,
        fields,
        is_bigendian: false,
        point_step: step,
        row_step: step * width,
        data: &data,
        is_dense: height == 1,
    }
    .encode_cdr()
}

fn xyz(beam: u32, column: u32) -> [f32; 3] {
    let (az, el) = (
        column as f32 / COLUMNS as f32 * std::f32::consts::TAU,
        (beam as f32 - 64.0) * 0.0035,
    );
    let r = 5.0 + (column % 97) as f32 * 0.3;
    [r * el.cos() * az.cos(), r * el.cos() * az.sin(), r * el.sin()]
}

fn put(p: &mut [u8], offset: usize, bytes: &[u8]) {
    p[offset..offset + bytes.len()].copy_from_slice(bytes);
}

fn ouster() -> Vec<u8> {
    let fields = vec![
        field("x", 0, Datatype::F32),
        field("y", 4, Datatype::F32),
        field("z", 8, Datatype::F32),
        field("intensity", 16, Datatype::F32),
        field("t", 20, Datatype::U32),
        field("reflectivity", 24, Datatype::U16),
        field("ring", 26, Datatype::U16),
        field("ambient", 28, Datatype::U16),
        field("range", 32, Datatype::U32),
    ];
    sweep(fields, 48, BEAMS, |p, beam, column| {
        for (k, c) in xyz(beam, column).iter().enumerate() {
            put(p, 4 * k, &c.to_le_bytes());
        }
        put(p, 16, &100f32.to_le_bytes());
        put(p, 20, &(column * 48_828).to_le_bytes());
        put(p, 26, &(beam as u16).to_le_bytes());
    })
}

fn velodyne() -> Vec<u8> {
    sweep(velodyne_fields(), 22, 1, |p, beam, column| {
        for (k, c) in xyz(beam, column).iter().enumerate() {
            put(p, 4 * k, &c.to_le_bytes());
        }
        put(p, 12, &40f32.to_le_bytes());
        put(p, 16, &(beam as u16).to_le_bytes());
        put(p, 18, &(column as f32 * 4.9e-5).to_le_bytes());
    })
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("pointcloud2");
    group.throughput(Throughput::Elements((BEAMS * COLUMNS) as u64));
    for (name, bytes) in [("ouster_128x2048", ouster()), ("velodyne_128x2048", velodyne())] {
        let scan = decode_cloud(&PointCloud2::decode(&bytes, Encoding::Cdr).unwrap()).unwrap();
        assert_eq!(scan.len(), (BEAMS * COLUMNS) as usize);
        group.bench_function(name, |b| {
            b.iter(|| {
                let cloud = PointCloud2::decode(black_box(&bytes), Encoding::Cdr).unwrap();
                black_box(decode_cloud(&cloud).unwrap().len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

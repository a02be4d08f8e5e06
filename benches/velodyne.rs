//! The Velodyne driver on one core: parsing and decoding a data packet, and a whole sweep's
//! packets through parsing, decoding and assembly. Target: at least 10x a VLP-16's 754
//! packets/s (7540 packets/s), i.e. under 133 us a packet.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use overlap_slam::io::velodyne::assemble::SweepAssembler;
use overlap_slam::io::velodyne::decode::Decoder;
use overlap_slam::io::velodyne::{Calibration, Model, packet};
use overlap_slam::sim::velodyne::{PacketSim, PacketSimConfig};
use std::hint::black_box;
use std::time::Instant;

fn packets(model: Model, n: usize) -> Vec<[u8; packet::PACKET_BYTES]> {
    let sim = PacketSim::new(PacketSimConfig {
        model,
        sweeps: Some(2),
        ..Default::default()
    });
    sim.chunk(0..n).into_iter().map(|p| p.bytes).collect()
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("velodyne");
    for model in [Model::Vlp16, Model::Hdl32e, Model::Hdl64e] {
        let bytes = packets(model, 400);
        let mut decoder = Decoder::new(model, Calibration::builtin(model)).unwrap();
        let mut out = Vec::with_capacity(400);
        group.throughput(Throughput::Elements(1));
        let mut k = 0;
        group.bench_function(format!("parse_decode_packet/{}", model.label()), |b| {
            b.iter(|| {
                k = (k + 1) % bytes.len();
                let p = packet::parse(black_box(&bytes[k]), model).unwrap();
                out.clear();
                decoder.decode(&p, &mut out);
                black_box(out.len())
            })
        });
    }
    // A sweep and a bit of VLP-16 packets, parsed, decoded and assembled into a scan.
    let bytes = packets(Model::Vlp16, 80);
    let mut decoder = Decoder::new(Model::Vlp16, Calibration::builtin(Model::Vlp16)).unwrap();
    group.throughput(Throughput::Elements(bytes.len() as u64));
    group.bench_function("sweep_80_packets/VLP-16", |b| {
        b.iter(|| {
            let mut assembler = SweepAssembler::new(0.0);
            let mut out = Vec::with_capacity(400);
            let now = Instant::now();
            let mut points = 0;
            for (k, raw) in bytes.iter().enumerate() {
                let p = packet::parse(raw, Model::Vlp16).unwrap();
                out.clear();
                decoder.decode(&p, &mut out);
                if let Some(scan) = assembler.push(&out, k as f64 * 1.3271e-3, now) {
                    points += scan.len();
                }
            }
            black_box(points)
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);

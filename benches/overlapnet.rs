//! OverlapNet speed on the CPU it runs on, for the shipped compact network and for the paper-size
//! network that the authors' weights need: the legs on one 64 x 900 scan (target for the
//! shipped model: at most 25 ms on 2 cores) and the heads on a batch of pairs (target: at least
//! 50 pairs/s); and the shipped MIMO network (three subnetworks) against the single one, whole
//! pass for whole pass (two scans described, one pair judged; target: at most 1.3x).

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use overlap_slam::overlapnet::{ModelConfig, OverlapNet};
use overlap_slam::projection::project;
use overlap_slam::sim::{SimConfig, Simulation};
use std::hint::black_box;

fn bench_net(c: &mut Criterion, name: &str, net: &OverlapNet) {
    // One encoded scan, as `describe` feeds it (a MIMO network's folded first kernel reads it once).
    let channels = net.config.channels.count();
    let input = Tensor::randn(0f32, 1.0, (1, 64, 900, channels), &Device::Cpu).unwrap();
    let mut g = c.benchmark_group(format!("overlapnet_{name}"));
    g.sample_size(20);
    g.bench_function("legs_one_scan", |b| {
        b.iter(|| net.scan_volumes(black_box(&input)).unwrap())
    });
    let batch = 16;
    let volumes = net
        .scan_volumes(&Tensor::randn(0f32, 1.0, (2, 64, 900, channels), &Device::Cpu).unwrap())
        .unwrap();
    let left = volumes.narrow(0, 0, 1).unwrap().repeat((batch, 1, 1)).unwrap();
    let right = volumes.narrow(0, 1, 1).unwrap().repeat((batch, 1, 1)).unwrap();
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function("heads_16_pairs", |b| {
        b.iter(|| net.heads(black_box(&left), black_box(&right)).unwrap())
    });
    g.finish();
}

/// One whole pass as `match` makes it: two projected scans described, the pair judged.
fn bench_pass(c: &mut Criterion, single: &OverlapNet, mimo: &OverlapNet) {
    let sim = Simulation::new(&SimConfig::default());
    let p = single.config.projection();
    let images: Vec<_> = [0, 5]
        .iter()
        .map(|&i| {
            let s = sim.scan(i);
            project(&s.points, &s.intensity, &p)
        })
        .collect();
    let mut g = c.benchmark_group("overlapnet_pass");
    g.sample_size(20);
    for (name, net) in [("single", single), ("mimo", mimo)] {
        g.bench_function(name, |b| {
            b.iter(|| net.match_pair(black_box(&images[0]), black_box(&images[1])).unwrap())
        });
    }
    g.finish();
}

fn bench(c: &mut Criterion) {
    overlap_slam::allocator::tune_allocator();
    let shipped = OverlapNet::shipped().expect("shipped weights load");
    bench_net(c, "shipped", &shipped);
    let mimo = OverlapNet::shipped_mimo().expect("shipped MIMO weights load");
    bench_net(c, "mimo", &mimo);
    bench_pass(c, &shipped, &mimo);
    // The paper's network (the authors' weights), with fresh weights: the cost is the same.
    let varmap = VarMap::new();
    let paper = OverlapNet::trainable(&varmap, ModelConfig::default(), &Device::Cpu).unwrap();
    bench_net(c, "paper", &paper);
}

criterion_group!(benches, bench);
criterion_main!(benches);

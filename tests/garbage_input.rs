//! Parsers of untrusted bytes never panic: thousands of deterministic mutations of valid KITTI,
//! PLY and PCD files each end in a scan or an error. (The cargo-fuzz targets in `fuzz/` explore
//! the same entry points without bounds.)

use overlap_slam::io::kitti::{encode_bin, parse_bin};
use overlap_slam::io::pcd::{encode_pcd_binary, parse_pcd};
use overlap_slam::io::ply::parse_ply;
use overlap_slam::scan::Scan;
use std::path::Path;

/// A small deterministic generator (64-bit LCG), so failures reproduce.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Lcg) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let cut = rng.below(b.len());
                b.truncate(cut);
            }
            2 => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.next() as u8);
            }
            3 if !b.is_empty() => {
                // Replace a digit with a large number: header counts are the dangerous part.
                if let Some(i) = (0..b.len())
                    .map(|_| rng.below(b.len()))
                    .find(|&i| b[i].is_ascii_digit())
                {
                    b.splice(i..i + 1, b"4294967295".iter().copied());
                }
            }
            _ => {
                let i = rng.below(b.len() + 1);
                b.splice(i..i, std::iter::repeat_n(0xFFu8, rng.below(16)));
            }
        }
    }
    b
}

fn sample_scan() -> Scan {
    Scan {
        points: (0..20)
            .map(|i| [i as f32, -(i as f32) * 0.5, 0.25 * i as f32])
            .collect(),
        intensity: (0..20).map(|i| i as f32 / 20.0).collect(),
        point_time: Some((0..20).map(|i| i as f32 * 0.005).collect()),
        ring: Some((0..20).map(|i| (i % 16) as u16).collect()),
        ..Default::default()
    }
}

fn ply_ascii() -> Vec<u8> {
    let mut s = String::from(
        "ply\nformat ascii 1.0\nelement vertex 20\nproperty float x\nproperty float y\nproperty float z\n\
         property float intensity\nproperty list uchar int idx\nend_header\n",
    );
    for i in 0..20 {
        s.push_str(&format!("{i} {} {} 0.5 2 1 2\n", -i, i * 2));
    }
    s.into_bytes()
}

fn ply_binary() -> Vec<u8> {
    let mut b = b"ply\nformat binary_little_endian 1.0\nelement vertex 20\nproperty float x\nproperty float y\nproperty float z\nend_header\n".to_vec();
    for p in sample_scan().points {
        for v in p {
            b.extend_from_slice(&v.to_le_bytes());
        }
    }
    b
}

fn pcd_ascii() -> Vec<u8> {
    let mut s = String::from(
        "VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\nWIDTH 20\nHEIGHT 1\n\
         VIEWPOINT 0 0 0 1 0 0 0\nPOINTS 20\nDATA ascii\n",
    );
    for i in 0..20 {
        s.push_str(&format!("{i} {} 1.5 0.25\n", -i));
    }
    s.into_bytes()
}

#[test]
fn mutated_files_never_panic() {
    let path = Path::new("fuzz.input");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("bin", encode_bin(&sample_scan())),
        ("ply", ply_ascii()),
        ("ply", ply_binary()),
        ("pcd", pcd_ascii()),
        ("pcd", encode_pcd_binary(&sample_scan())),
    ];
    let mut rng = Lcg(0x5EED);
    let mut errors = 0;
    for (kind, seed) in &seeds {
        // The unmutated seed parses.
        match *kind {
            "bin" => assert_eq!(parse_bin(seed, path).unwrap().len(), 20),
            "ply" => assert_eq!(parse_ply(seed, path).unwrap().len(), 20),
            _ => assert_eq!(parse_pcd(seed, path).unwrap().len(), 20),
        }
        for _ in 0..3000 {
            let bytes = mutate(seed, &mut rng);
            let ok = match *kind {
                "bin" => parse_bin(&bytes, path).is_ok(),
                "ply" => parse_ply(&bytes, path).is_ok(),
                _ => parse_pcd(&bytes, path).is_ok(),
            };
            errors += usize::from(!ok);
        }
    }
    // Most mutations are caught as errors; none may panic (a panic fails the test above).
    assert!(errors > 3000, "only {errors} of 15000 mutations were rejected");
}

/// Datagrams replayed from memory, as a packet stream.
struct Datagrams(Vec<Vec<u8>>);

impl overlap_slam::io::velodyne::source::PacketStream for Datagrams {
    fn name(&self) -> String {
        "mutated".into()
    }
    fn next_datagram(&mut self) -> Option<overlap_slam::Result<overlap_slam::io::velodyne::source::Datagram>> {
        let payload = self.0.pop()?;
        Some(Ok(overlap_slam::io::velodyne::source::Datagram {
            payload,
            received: std::time::Instant::now(),
            host_s: self.0.len() as f64 * 1e-3,
        }))
    }
}

#[test]
fn mutated_velodyne_streams_never_panic_and_every_datagram_is_counted() {
    use overlap_slam::io::velodyne::{Model, VelodyneConfig, VelodyneSource};
    use overlap_slam::sim::velodyne::{PacketSim, PacketSimConfig};
    let mut rng = Lcg(0x7E10);
    for model in [Model::Vlp16, Model::Hdl32e, Model::Hdl64e] {
        let sim = PacketSim::new(PacketSimConfig {
            model,
            sweeps: Some(2),
            ..Default::default()
        });
        let packets: Vec<Vec<u8>> = sim.chunk(0..150).into_iter().map(|p| p.bytes.to_vec()).collect();
        for _ in 0..20 {
            let mut stream: Vec<Vec<u8>> = packets
                .iter()
                .map(|p| {
                    if rng.below(4) == 0 {
                        mutate(p, &mut rng)
                    } else {
                        p.clone()
                    }
                })
                .collect();
            stream.reverse();
            let stats = std::sync::Arc::new(Default::default());
            let cfg = VelodyneConfig {
                model,
                ..Default::default()
            };
            let source = VelodyneSource::new(Box::new(Datagrams(stream)), &cfg, std::sync::Arc::clone(&stats)).unwrap();
            for scan in source {
                let scan = scan.unwrap();
                assert_eq!(scan.points.len(), scan.intensity.len());
            }
            let s: overlap_slam::io::velodyne::source::LinkCounts = stats.snapshot();
            assert_eq!(s.datagrams, 150);
            assert_eq!(s.packets + s.foreign + s.malformed, 150, "{s:?}");
            assert!(s.foreign + s.malformed > 0, "{s:?}");
        }
    }
}

#[test]
fn mutated_velodyne_calibrations_never_panic() {
    use overlap_slam::io::velodyne::Calibration;
    let yaml = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/calib/velodyne-vlp16.yaml")).unwrap();
    let xml = b"<boost_serialization><DB><points_><item><px><id_>0</id_><rotCorrection_>-5.0</rotCorrection_>\
        <vertCorrection_>-7.5</vertCorrection_><distCorrection_>120.0</distCorrection_></px></item></points_></DB>\
        </boost_serialization>"
        .to_vec();
    let mut rng = Lcg(0xCA1B);
    for _ in 0..1500 {
        let y = mutate(&yaml, &mut rng);
        let _ = Calibration::from_yaml(&String::from_utf8_lossy(&y), Path::new("m.yaml"));
        let x = mutate(&xml, &mut rng);
        let _ = Calibration::from_db_xml(&String::from_utf8_lossy(&x), Path::new("m.xml"));
    }
}

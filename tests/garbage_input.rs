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

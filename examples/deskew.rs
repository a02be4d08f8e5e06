//! Writes one KITTI scan's per-point times (from azimuth) and the scan deskewed by a given motion,
//! for comparing our deskew number for number with another tool's (`scripts/compare-deskew.sh`).
//!
//! `cargo run --release --example deskew -- SCAN.bin PERIOD_S REFERENCE OUT.f64 M00 M01 ... M23`
//!
//! The motion is the sensor's over one frame period, a 3x4 row-major matrix (12 numbers).
//! REFERENCE is `end`, `mid` or seconds after the scan's timestamp. OUT receives little-endian
//! f64 rows of (time s, x, y, z), in the scan's point order, before any range crop.

use overlap_slam::io::poses::pose_from_3x4;
use overlap_slam::odometry::preprocess::{azimuth_times, deskew, mid_sweep_s};
use std::io::Write;

fn main() {
    if let Err(e) = run() {
        eprintln!("deskew: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 16 {
        return Err("usage: deskew SCAN.bin PERIOD_S end|mid|SECONDS OUT.f64 M00..M23 (12 numbers)".into());
    }
    let number = |s: &str| s.parse::<f64>().map_err(|e| format!("'{s}': {e}"));
    let scan = overlap_slam::io::kitti::read_bin(std::path::Path::new(&args[0])).map_err(|e| e.to_string())?;
    let period = number(&args[1])?;
    let m: Vec<f64> = args[4..].iter().map(|s| number(s)).collect::<Result<_, _>>()?;
    let motion = pose_from_3x4(&m);
    let times = azimuth_times(&scan.points, period);
    let end = times.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let reference = match args[2].as_str() {
        "end" => end,
        "mid" => mid_sweep_s(&times),
        s => number(s)?,
    };
    let points = deskew(&scan.points, &times, &motion, period, reference);
    let mut out = Vec::with_capacity(points.len() * 32);
    for (t, p) in times.iter().zip(&points) {
        for v in [*t as f64, p.x, p.y, p.z] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::File::create(&args[3])
        .and_then(|mut f| f.write_all(&out))
        .map_err(|e| format!("{}: {e}", args[3]))
}

//! Fuzzes the kitti_bin parser: any bytes must give a scan or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::kitti::parse_bin;

fuzz_target!(|data: &[u8]| {
    let _ = parse_bin(data, std::path::Path::new("fuzz.input"));
});

//! Fuzzes the pcd parser: any bytes must give a scan or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::pcd::parse_pcd;

fuzz_target!(|data: &[u8]| {
    let _ = parse_pcd(data, std::path::Path::new("fuzz.input"));
});

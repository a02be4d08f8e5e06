//! Fuzzes the ply parser: any bytes must give a scan or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::ply::parse_ply;

fuzz_target!(|data: &[u8]| {
    let _ = parse_ply(data, std::path::Path::new("fuzz.input"));
});

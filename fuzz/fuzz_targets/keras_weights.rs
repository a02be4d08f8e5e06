//! Fuzzes the Keras HDF5 weights reader: any bytes must give weights or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::keras::read_bytes;

fuzz_target!(|data: &[u8]| {
    let _ = read_bytes(data, std::path::Path::new("fuzz.weight"));
});

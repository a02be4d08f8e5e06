//! Fuzzes the saved-map reader: any bytes must give a map or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::saved_map::store::decode;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data);
});

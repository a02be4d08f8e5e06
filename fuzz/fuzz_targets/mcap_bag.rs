//! Fuzzes our MCAP reading (through the `mcap` crate): any bytes after the magic must list
//! topics and read messages or give an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::ros::{Container, rosbag2::McapFile};

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"\x89MCAP0\r\n".to_vec();
    bytes.extend_from_slice(data);
    let Ok(file) = McapFile::from_bytes(std::path::Path::new("fuzz.mcap"), Box::new(bytes), false) else { return };
    if let Ok(topics) = file.topics() {
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        let _ = file.for_each(&names, &mut |_| true);
    }
});

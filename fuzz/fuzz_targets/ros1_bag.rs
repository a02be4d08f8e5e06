//! Fuzzes the ROS 1 bag walker: any bytes after the version line must list topics and read
//! messages or give an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::ros::{Container, ros1::Ros1Bag};

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"#ROSBAG V2.0\n".to_vec();
    bytes.extend_from_slice(data);
    let Ok(bag) = Ros1Bag::from_bytes(std::path::Path::new("fuzz.bag"), Box::new(bytes)) else { return };
    if let Ok(topics) = bag.topics() {
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        let _ = bag.for_each(&names, &mut |_| true);
    }
});

//! Fuzzes the PointCloud2 decoder: any message bytes, in either wire format, must give a scan or
//! an error, never a panic or an allocation the bytes do not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::ros::{cloud::decode_cloud, messages::PointCloud2, wire::Encoding};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Cdr, Encoding::Ros1] {
        if let Ok(cloud) = PointCloud2::decode(data, encoding) {
            let _ = decode_cloud(&cloud);
        }
    }
});

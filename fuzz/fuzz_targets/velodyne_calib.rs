//! Fuzzes the Velodyne calibration readers (db.xml and ROS YAML): any text must give a
//! calibration or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::velodyne::Calibration;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = Calibration::from_yaml(text, Path::new("fuzz.yaml"));
    let _ = Calibration::from_db_xml(text, Path::new("fuzz.xml"));
});

//! Fuzzes the Velodyne driver: any datagrams (cut from the input, 1206 bytes each, the rest
//! as one foreign datagram) through parsing, decoding, the sensor clock and sweep assembly must
//! give sweeps or counted rejects, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use overlap_slam::io::velodyne::source::{Datagram, PacketStream};
use overlap_slam::io::velodyne::{Model, PACKET_BYTES, VelodyneConfig, VelodyneSource};
use std::time::Instant;

struct Replay(Vec<Vec<u8>>);

impl PacketStream for Replay {
    fn name(&self) -> String {
        "fuzz".into()
    }
    fn next_datagram(&mut self) -> Option<overlap_slam::Result<Datagram>> {
        let payload = self.0.pop()?;
        Some(Ok(Datagram {
            payload,
            received: Instant::now(),
            host_s: self.0.len() as f64 * 1e-3,
        }))
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let model = [Model::Vlp16, Model::Hdl32e, Model::Hdl64e][selector as usize % 3];
    let mut datagrams: Vec<Vec<u8>> = rest.chunks(PACKET_BYTES).map(<[u8]>::to_vec).collect();
    datagrams.reverse();
    let cfg = VelodyneConfig {
        model,
        cut_deg: selector as f64 * 1.5,
        ..Default::default()
    };
    let source = VelodyneSource::new(Box::new(Replay(datagrams)), &cfg, Default::default()).expect("built-in calibration");
    for scan in source {
        let scan = scan.expect("an in-memory stream cannot fail");
        assert_eq!(scan.points.len(), scan.intensity.len());
    }
});

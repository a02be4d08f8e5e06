//! Firings to packets, the inverse of decoding: what a sensor puts on the wire. The packet
//! simulator (`sim-velodyne`) and the tests use it.

use super::packet::{Block, CHANNELS, Packet};
use super::timing::Timing;
use super::{Model, ReturnMode};

/// One firing of every laser at one azimuth.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// Azimuth of the firing's first laser, hundredths of a degree clockwise from forward.
    pub azimuth: u16,
    /// Raw distance per laser id (2 mm units, 0 = no echo).
    pub distance: Vec<u16>,
    /// Reflectivity per laser id.
    pub reflectivity: Vec<u8>,
}

/// Packs `firings` (exactly [`Timing::firings_per_packet`] of them, single return) into a
/// packet stamped `timestamp_us`. `None` when the count is wrong.
pub fn encode(model: Model, mode: ReturnMode, firings: &[Firing], timestamp_us: u32) -> Option<Packet> {
    if mode == ReturnMode::Dual || firings.len() != Timing::firings_per_packet(model, mode) {
        return None;
    }
    let blocks = std::array::from_fn(|b| {
        let mut block = Block::EMPTY;
        for c in 0..CHANNELS {
            let (firing, laser) = slot(model, b, c);
            let f = &firings[firing];
            block.distance[c] = f.distance[laser];
            block.reflectivity[c] = f.reflectivity[laser];
        }
        let (first, _) = slot(model, b, 0);
        block.azimuth = firings[first].azimuth;
        block.lower = model == Model::Hdl64e && b % 2 == 1;
        block
    });
    Some(Packet {
        blocks,
        timestamp_us,
        return_mode: mode,
    })
}

/// The firing (within the packet) and laser id that block `b`'s channel `c` carries in
/// single-return mode.
pub fn slot(model: Model, b: usize, c: usize) -> (usize, usize) {
    match model {
        Model::Vlp16 => (2 * b + c / 16, c % 16),
        Model::Hdl32e => (b, c),
        Model::Hdl64e => (b / 2, c + 32 * (b % 2)),
    }
}

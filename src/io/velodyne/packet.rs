//! The 1206-byte Velodyne data packet (UDP payload, port 2368): 12 blocks of 100 bytes, a
//! timestamp and two factory bytes (VLP-16, HDL-32E and HDL-64E S2/S3 manuals).
//!
//! Layout, little-endian:
//! - block `b` at `100 b`: flag `FF EE` (`FF DD` for the HDL-64E's lower block), azimuth in
//!   hundredths of a degree (0..35999, clockwise from forward), then 32 returns of a distance
//!   (u16, 2 mm units, 0 = no return) and a reflectivity byte;
//! - 1200: microseconds since the top of the hour (u32);
//! - 1204: return mode (0x37 strongest, 0x38 last, 0x39 dual); 1205: product id.

use super::Model;

/// Size of a data packet's UDP payload.
pub const PACKET_BYTES: usize = 1206;
/// Blocks in a packet.
pub const BLOCKS: usize = 12;
/// Returns in a block.
pub const CHANNELS: usize = 32;
/// Bytes in a block.
pub const BLOCK_BYTES: usize = 100;
/// Flag opening a block (and the HDL-64E's upper block).
pub const UPPER_FLAG: [u8; 2] = [0xFF, 0xEE];
/// Flag opening the HDL-64E's lower block.
pub const LOWER_FLAG: [u8; 2] = [0xFF, 0xDD];
/// Microseconds in an hour: the timestamp wraps here.
pub const HOUR_US: u32 = 3_600_000_000;

/// Which echo(es) the sensor reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ReturnMode {
    /// The strongest echo of each firing.
    Strongest,
    /// The last echo of each firing.
    Last,
    /// Both: blocks come in pairs, last then strongest.
    Dual,
}

impl ReturnMode {
    /// The factory byte that announces the mode.
    pub fn byte(self) -> u8 {
        match self {
            ReturnMode::Strongest => 0x37,
            ReturnMode::Last => 0x38,
            ReturnMode::Dual => 0x39,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0x37 => Some(ReturnMode::Strongest),
            0x38 => Some(ReturnMode::Last),
            0x39 => Some(ReturnMode::Dual),
            _ => None,
        }
    }
}

/// One block: a firing's (or, for the VLP-16, two firings') returns at one azimuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// True for the HDL-64E's lower block (lasers 32..63).
    pub lower: bool,
    /// Azimuth in hundredths of a degree, clockwise from forward.
    pub azimuth: u16,
    /// Raw distances (0 = no return).
    pub distance: [u16; CHANNELS],
    /// Reflectivity, 0..255.
    pub reflectivity: [u8; CHANNELS],
}

impl Block {
    /// A block with no returns.
    pub const EMPTY: Block = Block {
        lower: false,
        azimuth: 0,
        distance: [0; CHANNELS],
        reflectivity: [0; CHANNELS],
    };
}

/// A parsed data packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The blocks in order.
    pub blocks: [Block; BLOCKS],
    /// Microseconds since the top of the hour of the first firing.
    pub timestamp_us: u32,
    /// Which echoes the packet holds.
    pub return_mode: ReturnMode,
}

/// Why bytes are not a data packet of the expected sensor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Not 1206 bytes: foreign traffic (a position packet, another protocol).
    #[error("{0} bytes, a data packet has 1206")]
    Length(usize),
    /// A block does not open with a Velodyne flag.
    #[error("block {block} starts with {flag:02x?}, not a Velodyne block flag")]
    BlockFlag { block: usize, flag: [u8; 2] },
    /// An azimuth of 360 degrees or more.
    #[error("block {block} azimuth {azimuth} is not below 36000")]
    Azimuth { block: usize, azimuth: u16 },
    /// A timestamp past the hour.
    #[error("timestamp {0} us is past the hour")]
    Timestamp(u32),
    /// An unknown return-mode byte.
    #[error("return mode byte 0x{0:02x} is not 0x37, 0x38 or 0x39")]
    ReturnMode(u8),
    /// The product byte names another sensor.
    #[error("product byte 0x{found:02x}, expected 0x{expected:02x} for a {model}")]
    Product {
        model: &'static str,
        expected: u8,
        found: u8,
    },
}

/// Parses a data packet of `model`. The HDL-64E reports status bytes where the others name
/// their mode, so its packets are read as single-return (`Strongest`).
pub fn parse(bytes: &[u8], model: Model) -> Result<Packet, PacketError> {
    if bytes.len() != PACKET_BYTES {
        return Err(PacketError::Length(bytes.len()));
    }
    let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
    let timestamp_us = u32::from_le_bytes([bytes[1200], bytes[1201], bytes[1202], bytes[1203]]);
    if timestamp_us >= HOUR_US {
        return Err(PacketError::Timestamp(timestamp_us));
    }
    let return_mode = match model.product_id() {
        Some(expected) => {
            if bytes[1205] != expected {
                return Err(PacketError::Product {
                    model: model.label(),
                    expected,
                    found: bytes[1205],
                });
            }
            ReturnMode::from_byte(bytes[1204]).ok_or(PacketError::ReturnMode(bytes[1204]))?
        }
        None => ReturnMode::Strongest,
    };
    let mut blocks = [Block::EMPTY; BLOCKS];
    for (b, block) in blocks.iter_mut().enumerate() {
        let at = b * BLOCK_BYTES;
        let flag = [bytes[at], bytes[at + 1]];
        block.lower = match flag {
            UPPER_FLAG => false,
            LOWER_FLAG if model == Model::Hdl64e => true,
            _ => return Err(PacketError::BlockFlag { block: b, flag }),
        };
        block.azimuth = u16_at(at + 2);
        if block.azimuth >= 36000 {
            return Err(PacketError::Azimuth {
                block: b,
                azimuth: block.azimuth,
            });
        }
        for c in 0..CHANNELS {
            let r = at + 4 + 3 * c;
            block.distance[c] = u16_at(r);
            block.reflectivity[c] = bytes[r + 2];
        }
    }
    Ok(Packet {
        blocks,
        timestamp_us,
        return_mode,
    })
}

/// The sensor that sent data packet `bytes`: the HDL-64E when its lower-block flag opens a
/// block, otherwise the one its product byte names (VLP-16 0x22, HDL-32E 0x21); `None` for a
/// packet no known model parses.
pub fn model_of(bytes: &[u8]) -> Option<Model> {
    let lower = (0..BLOCKS).any(|b| bytes.get(b * BLOCK_BYTES..b * BLOCK_BYTES + 2) == Some(&LOWER_FLAG[..]));
    let candidates: &[Model] = if lower {
        &[Model::Hdl64e]
    } else {
        &[Model::Vlp16, Model::Hdl32e]
    };
    candidates.iter().copied().find(|m| parse(bytes, *m).is_ok())
}

/// The bytes of `packet` as `model` sends them (the inverse of [`parse`]); the HDL-64E gets
/// zeroed status bytes.
pub fn write(packet: &Packet, model: Model) -> [u8; PACKET_BYTES] {
    let mut bytes = [0u8; PACKET_BYTES];
    for (b, block) in packet.blocks.iter().enumerate() {
        let at = b * BLOCK_BYTES;
        let flag = if block.lower { LOWER_FLAG } else { UPPER_FLAG };
        bytes[at..at + 2].copy_from_slice(&flag);
        bytes[at + 2..at + 4].copy_from_slice(&block.azimuth.to_le_bytes());
        for c in 0..CHANNELS {
            let r = at + 4 + 3 * c;
            bytes[r..r + 2].copy_from_slice(&block.distance[c].to_le_bytes());
            bytes[r + 2] = block.reflectivity[c];
        }
    }
    bytes[1200..1204].copy_from_slice(&packet.timestamp_us.to_le_bytes());
    if let Some(product) = model.product_id() {
        bytes[1204] = packet.return_mode.byte();
        bytes[1205] = product;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Packet {
        let mut blocks = [Block::EMPTY; BLOCKS];
        for (b, block) in blocks.iter_mut().enumerate() {
            block.azimuth = 35990 + b as u16 * 20 % 36000;
            block.azimuth %= 36000;
            for c in 0..CHANNELS {
                block.distance[c] = (b * 1000 + c * 7) as u16;
                block.reflectivity[c] = (b * 3 + c) as u8;
            }
        }
        Packet {
            blocks,
            timestamp_us: 3_599_999_000,
            return_mode: ReturnMode::Dual,
        }
    }

    #[test]
    fn write_then_parse_is_identity() {
        let p = sample();
        let bytes = write(&p, Model::Vlp16);
        assert_eq!(bytes[1205], 0x22);
        assert_eq!(bytes[1204], 0x39);
        assert_eq!(&bytes[0..2], &[0xFF, 0xEE]);
        assert_eq!(parse(&bytes, Model::Vlp16).unwrap(), p);
    }

    #[test]
    fn malformed_packets_get_exact_errors() {
        let good = write(&sample(), Model::Vlp16);
        assert_eq!(parse(&good[..512], Model::Vlp16), Err(PacketError::Length(512)));
        assert_eq!(
            parse(&good, Model::Hdl32e),
            Err(PacketError::Product {
                model: "HDL-32E",
                expected: 0x21,
                found: 0x22
            })
        );
        let mut bad = good;
        bad[300] = 0x00;
        assert_eq!(
            parse(&bad, Model::Vlp16),
            Err(PacketError::BlockFlag {
                block: 3,
                flag: [0x00, 0xEE]
            })
        );
        let mut bad = good;
        bad[102..104].copy_from_slice(&36000u16.to_le_bytes());
        assert_eq!(
            parse(&bad, Model::Vlp16),
            Err(PacketError::Azimuth {
                block: 1,
                azimuth: 36000
            })
        );
        let mut bad = good;
        bad[1204] = 0x40;
        assert_eq!(parse(&bad, Model::Vlp16), Err(PacketError::ReturnMode(0x40)));
        let mut bad = good;
        bad[1200..1204].copy_from_slice(&HOUR_US.to_le_bytes());
        assert_eq!(parse(&bad, Model::Vlp16), Err(PacketError::Timestamp(HOUR_US)));
        // The lower-block flag belongs to the HDL-64E only.
        let mut lower = good;
        lower[100..102].copy_from_slice(&LOWER_FLAG);
        assert!(parse(&lower, Model::Vlp16).is_err());
        assert!(parse(&lower, Model::Hdl64e).unwrap().blocks[1].lower);
    }

    #[test]
    fn the_packet_names_its_sensor() {
        for model in [Model::Vlp16, Model::Hdl32e] {
            assert_eq!(model_of(&write(&sample(), model)), Some(model));
        }
        let mut hdl64 = sample();
        hdl64.blocks[1].lower = true;
        assert_eq!(model_of(&write(&hdl64, Model::Hdl64e)), Some(Model::Hdl64e));
        // Another sensor's product byte, and a short datagram: nothing known.
        let mut other = write(&sample(), Model::Vlp16);
        other[1205] = 0x28;
        assert_eq!(model_of(&other), None);
        assert_eq!(model_of(&other[..600]), None);
    }
}

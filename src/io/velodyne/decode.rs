//! Packets to returns: each channel of each block becomes a calibrated point with its laser's
//! ring, its own firing time and its own azimuth (the sensor keeps turning while a firing's
//! lasers fire one after another).

use super::packet::{BLOCKS, CHANNELS, Packet};
use super::timing::Timing;
use super::{Calibration, Model, ReturnMode};
use crate::error::{Error, Result};

/// Turn rate assumed until a packet gives one: 10 Hz, in hundredths of a degree per
/// microsecond (every model's factory default).
const DEFAULT_RATE_CDEG_PER_US: f64 = 36000.0 * 10.0 * 1e-6;
/// Fastest plausible turn rate: 20 Hz, the fastest any of the models spins, with margin.
const MAX_RATE_CDEG_PER_US: f64 = 36000.0 * 25.0 * 1e-6;

/// One decoded echo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Return {
    /// Point in the sensor frame (x forward, y left, z up), metres.
    pub point: [f32; 3],
    /// Reflectivity scaled to [0, 1].
    pub intensity: f32,
    /// Firing time after the packet's timestamp, microseconds.
    pub offset_us: f32,
    /// Ring: the laser's rank by elevation, 0 lowest (the ROS convention).
    pub ring: u16,
    /// Azimuth of the block the echo came in, hundredths of a degree (where sweeps are cut).
    pub block_azimuth: u16,
}

/// Decodes packets of one sensor with its calibration.
#[derive(Debug, Clone)]
pub struct Decoder {
    model: Model,
    calib: Calibration,
    timing: Timing,
    ring_of_laser: Vec<u16>,
    last_rate: f64,
}

impl Decoder {
    /// A decoder for `model` with `calib` (one entry per laser).
    pub fn new(model: Model, calib: Calibration) -> Result<Self> {
        if calib.lasers.len() != model.lasers() {
            return Err(Error::Usage(format!(
                "a {} needs a calibration of {} lasers, got {}",
                model.label(),
                model.lasers(),
                calib.lasers.len()
            )));
        }
        let mut order: Vec<usize> = (0..calib.lasers.len()).collect();
        order.sort_by(|a, b| {
            calib.lasers[*a]
                .elevation_rad
                .total_cmp(&calib.lasers[*b].elevation_rad)
        });
        let mut ring_of_laser = vec![0u16; order.len()];
        for (ring, laser) in order.into_iter().enumerate() {
            ring_of_laser[laser] = ring as u16;
        }
        Ok(Self {
            model,
            timing: Timing::of(model),
            calib,
            ring_of_laser,
            last_rate: DEFAULT_RATE_CDEG_PER_US,
        })
    }

    /// The sensor this decoder reads.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Appends the echoes of `packet` to `out` in firing order. In dual-return mode an echo
    /// that repeats the block pair's last echo is kept once.
    pub fn decode(&mut self, packet: &Packet, out: &mut Vec<Return>) {
        let mode = packet.return_mode;
        let rate = self.turn_rate(packet);
        for (b, block) in packet.blocks.iter().enumerate() {
            let block_start = self.timing.point_offset_us(self.model, mode, b, 0);
            let repeats = (mode == ReturnMode::Dual && b % 2 == 1).then(|| &packet.blocks[b - 1]);
            for c in 0..CHANNELS {
                let raw = block.distance[c];
                if raw == 0 || repeats.is_some_and(|last| last.distance[c] == raw) {
                    continue;
                }
                let laser = self.laser(c, block.lower);
                let offset_us = self.timing.point_offset_us(self.model, mode, b, c);
                let azimuth_cdeg = block.azimuth as f64 + rate * (offset_us - block_start);
                let correction = &self.calib.lasers[laser];
                let distance = raw as f64 * self.calib.distance_resolution_m;
                out.push(Return {
                    point: correction.point(distance, (azimuth_cdeg * 0.01).to_radians()),
                    intensity: block.reflectivity[c] as f32 / 255.0,
                    offset_us: offset_us as f32,
                    ring: self.ring_of_laser[laser],
                    block_azimuth: block.azimuth,
                });
            }
        }
    }

    /// Laser id of channel `c` of a block.
    fn laser(&self, c: usize, lower: bool) -> usize {
        match self.model {
            Model::Vlp16 => c % 16,
            Model::Hdl32e => c,
            Model::Hdl64e => c + if lower { 32 } else { 0 },
        }
    }

    /// The turn rate over the packet, from its first and last firings; the previous packet's
    /// when this one's is implausible.
    fn turn_rate(&mut self, packet: &Packet) -> f64 {
        let mode = packet.return_mode;
        let last = if mode == ReturnMode::Dual || self.model == Model::Hdl64e {
            BLOCKS - 2
        } else {
            BLOCKS - 1
        };
        let span_us = self.timing.point_offset_us(self.model, mode, last, 0);
        let turned = (packet.blocks[last].azimuth as i32 - packet.blocks[0].azimuth as i32).rem_euclid(36000);
        let rate = turned as f64 / span_us;
        if rate > 0.0 && rate < MAX_RATE_CDEG_PER_US {
            self.last_rate = rate;
        }
        self.last_rate
    }
}

#[cfg(test)]
mod tests {
    use super::super::packet::{Block, HOUR_US};
    use super::*;

    fn packet(model: Model, mode: ReturnMode, distance: u16) -> Packet {
        let timing = Timing::of(model);
        let blocks = std::array::from_fn(|b| Block {
            lower: model == Model::Hdl64e && b % 2 == 1,
            // 10 Hz: 0.36 hundredths of a degree per microsecond.
            azimuth: (timing.point_offset_us(model, mode, b, 0) * 0.36).round() as u16,
            distance: [distance; CHANNELS],
            reflectivity: [255; CHANNELS],
        });
        Packet {
            blocks,
            timestamp_us: HOUR_US - 1,
            return_mode: mode,
        }
    }

    #[test]
    fn every_channel_becomes_one_point_at_its_range() {
        for (model, mode, expected) in [
            (Model::Vlp16, ReturnMode::Strongest, 384),
            (Model::Vlp16, ReturnMode::Dual, 192),
            (Model::Hdl32e, ReturnMode::Last, 384),
            (Model::Hdl64e, ReturnMode::Strongest, 384),
        ] {
            let mut d = Decoder::new(model, Calibration::builtin(model)).unwrap();
            let mut out = Vec::new();
            d.decode(&packet(model, mode, 5000), &mut out);
            // Dual mode with equal echoes keeps each once.
            assert_eq!(out.len(), expected, "{model:?} {mode:?}");
            for r in &out {
                // 10 m along the beam from an origin at most 11.2 mm off it, perpendicularly.
                let range = r.point.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((range - 10.0).abs() < 1e-4, "{model:?}: {range}");
                assert_eq!(r.intensity, 1.0);
            }
            let rings: std::collections::BTreeSet<u16> = out.iter().map(|r| r.ring).collect();
            assert_eq!(rings.len(), model.lasers());
        }
    }

    #[test]
    fn vlp16_lasers_map_to_rings_by_elevation_and_turn_with_time() {
        let mut d = Decoder::new(Model::Vlp16, Calibration::builtin(Model::Vlp16)).unwrap();
        let mut out = Vec::new();
        d.decode(&packet(Model::Vlp16, ReturnMode::Strongest, 5000), &mut out);
        // Laser 0 points at -15 degrees (ring 0), laser 1 at +1 degree (ring 8).
        assert_eq!((out[0].ring, out[1].ring), (0, 8));
        // Its origin sits 11.2 mm above the optical centre, perpendicular to the beam.
        let (se, ce) = (-15f32).to_radians().sin_cos();
        assert!((out[0].point[2] - (10.0 * se + 0.0112 * ce)).abs() < 1e-4);
        // Channel 16 fires 55.296 us after channel 0: 0.199 degrees further clockwise.
        let yaw = |r: &Return| -r.point[1].atan2(r.point[0]).to_degrees();
        assert!((yaw(&out[16]) - yaw(&out[0]) - 0.199).abs() < 0.01);
        assert!((out[16].offset_us - 55.296).abs() < 1e-3);
    }

    #[test]
    fn a_calibration_of_the_wrong_size_is_refused() {
        let err = Decoder::new(Model::Hdl64e, Calibration::builtin(Model::Vlp16)).unwrap_err();
        assert_eq!(err.to_string(), "a HDL-64E needs a calibration of 64 lasers, got 16");
    }
}

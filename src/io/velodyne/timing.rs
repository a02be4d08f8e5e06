//! When each laser fires, relative to the packet's timestamp (the first firing of its first
//! block), so that every point carries its own time for deskewing.

use super::{Model, ReturnMode};

/// Firing schedule of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time from one firing of all lasers to the next, microseconds.
    pub firing_period_us: f64,
    /// Time between two consecutive lasers within a firing, microseconds.
    pub laser_step_us: f64,
    /// Lasers fired one after another in a firing (the HDL-64E fires an upper and a lower laser
    /// together).
    pub lasers_in_sequence: usize,
}

impl Timing {
    /// The documented schedule of `model`.
    pub fn of(model: Model) -> Self {
        match model {
            // VLP-16 manual: a laser every 2.304 us, 16 firings plus recharge in 55.296 us.
            Model::Vlp16 => Self {
                firing_period_us: 55.296,
                laser_step_us: 2.304,
                lasers_in_sequence: 16,
            },
            // HDL-32E manual: a laser every 1.152 us, 32 firings in 46.080 us.
            Model::Hdl32e => Self {
                firing_period_us: 46.08,
                laser_step_us: 1.152,
                lasers_in_sequence: 32,
            },
            // HDL-64E S2: 0.1728 degree steps at 10 Hz (its data sheet) make one firing every
            // 48 us; its manual gives no per-laser table, so the 32 laser pairs are spread evenly
            // over that cycle.
            Model::Hdl64e => Self {
                firing_period_us: 48.0,
                laser_step_us: 1.5,
                lasers_in_sequence: 32,
            },
        }
    }

    /// Firings (of every laser) in one packet.
    pub fn firings_per_packet(model: Model, mode: ReturnMode) -> usize {
        let single = match model {
            Model::Vlp16 => 24,
            Model::Hdl32e => 12,
            Model::Hdl64e => 6,
        };
        if mode == ReturnMode::Dual { single / 2 } else { single }
    }

    /// Time covered by one packet, microseconds (its interval on the wire).
    pub fn packet_period_us(model: Model, mode: ReturnMode) -> f64 {
        Self::of(model).firing_period_us * Self::firings_per_packet(model, mode) as f64
    }

    /// Index, within the packet, of the firing that block `block`'s channel `channel` belongs
    /// to.
    pub fn firing_index(model: Model, mode: ReturnMode, block: usize, channel: usize) -> usize {
        let dual = mode == ReturnMode::Dual;
        match model {
            Model::Vlp16 => (if dual { block / 2 } else { block }) * 2 + channel / 16,
            Model::Hdl32e => {
                if dual {
                    block / 2
                } else {
                    block
                }
            }
            Model::Hdl64e => block / 2,
        }
    }

    /// Time of block `block`'s channel `channel` after the packet's timestamp, microseconds.
    pub fn point_offset_us(&self, model: Model, mode: ReturnMode, block: usize, channel: usize) -> f64 {
        let firing = Self::firing_index(model, mode, block, channel);
        let in_sequence = channel % self.lasers_in_sequence;
        firing as f64 * self.firing_period_us + in_sequence as f64 * self.laser_step_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_rates_match_the_manuals() {
        // VLP-16: 754 packets/s single return, 1508 dual; HDL-32E: about 1808 packets/s.
        let rate = |m, r| 1e6 / Timing::packet_period_us(m, r);
        assert!((rate(Model::Vlp16, ReturnMode::Strongest) - 753.6).abs() < 0.5);
        assert!((rate(Model::Vlp16, ReturnMode::Dual) - 1507.2).abs() < 1.0);
        assert!((rate(Model::Hdl32e, ReturnMode::Last) - 1808.4).abs() < 0.5);
        assert!((rate(Model::Hdl64e, ReturnMode::Strongest) - 3472.2).abs() < 0.5);
    }

    #[test]
    fn vlp16_second_sequence_fires_half_a_block_later() {
        let t = Timing::of(Model::Vlp16);
        let m = ReturnMode::Strongest;
        assert_eq!(t.point_offset_us(Model::Vlp16, m, 0, 0), 0.0);
        assert!((t.point_offset_us(Model::Vlp16, m, 0, 15) - 34.56).abs() < 1e-9);
        assert!((t.point_offset_us(Model::Vlp16, m, 0, 16) - 55.296).abs() < 1e-9);
        assert!((t.point_offset_us(Model::Vlp16, m, 11, 31) - (23.0 * 55.296 + 15.0 * 2.304)).abs() < 1e-9);
        // Dual return: blocks 2k and 2k+1 are the same firing.
        assert_eq!(
            t.point_offset_us(Model::Vlp16, ReturnMode::Dual, 3, 5),
            t.point_offset_us(Model::Vlp16, ReturnMode::Dual, 2, 5)
        );
    }
}

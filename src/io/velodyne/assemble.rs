//! Returns to sweeps: a sweep ends where the block azimuth passes the cut angle, and each point
//! keeps its ring and its time within the sweep.

use super::decode::Return;
use crate::scan::Scan;
use std::time::Instant;

/// A sweep must span this much azimuth, hundredths of a degree, to be kept: the first sweep
/// after a start or restart, and one cut short by a long outage, are partial.
const MIN_COVERAGE_CDEG: i32 = 30000;
/// A sweep whose first block lies within this of the cut started on time (hundredths of a
/// degree; several packets' worth).
const START_SLACK_CDEG: i32 = 500;
/// A sweep still open after this long is given up (seconds): the slowest spin (5 Hz) takes 0.2 s,
/// so only a stream that never passes the cut (a stopped motor, forged packets) gets here, and
/// memory stays bounded.
const MAX_SWEEP_S: f64 = 1.0;

/// Builds sweeps from a stream of decoded packets.
#[derive(Debug)]
pub struct SweepAssembler {
    cut_cdeg: i32,
    current: Option<Partial>,
    next_index: usize,
    partial_dropped: usize,
}

#[derive(Debug)]
struct Partial {
    start_s: f64,
    started_at_cut: bool,
    first_rel: i32,
    last_rel: i32,
    received: Instant,
    points: Vec<[f32; 3]>,
    intensity: Vec<f32>,
    time: Vec<f32>,
    ring: Vec<u16>,
}

impl SweepAssembler {
    /// Sweeps cut at `cut_deg` degrees (clockwise from forward; 0 is the azimuth wrap).
    pub fn new(cut_deg: f64) -> Self {
        Self {
            cut_cdeg: ((cut_deg.rem_euclid(360.0)) * 100.0).round() as i32 % 36000,
            current: None,
            next_index: 0,
            partial_dropped: 0,
        }
    }

    /// Sweeps dropped because they covered too little azimuth.
    pub fn partial_dropped(&self) -> usize {
        self.partial_dropped
    }

    /// Adds one packet's returns, stamped `packet_s` (sensor seconds) and received at
    /// `received`; returns the sweep this packet completed, if any.
    pub fn push(&mut self, returns: &[Return], packet_s: f64, received: Instant) -> Option<Scan> {
        let mut done = None;
        for r in returns {
            let rel = (r.block_azimuth as i32 - self.cut_cdeg).rem_euclid(36000);
            let time = packet_s + r.offset_us as f64 * 1e-6;
            let crossed = self.current.as_ref().is_some_and(|c| rel < c.last_rel);
            if crossed {
                done = self.finish();
            } else if self.current.as_ref().is_some_and(|c| time - c.start_s > MAX_SWEEP_S) {
                self.reset();
            }
            let current = self.current.get_or_insert_with(|| Partial {
                start_s: time,
                started_at_cut: crossed || rel < START_SLACK_CDEG,
                first_rel: rel,
                last_rel: rel,
                received,
                points: Vec::new(),
                intensity: Vec::new(),
                time: Vec::new(),
                ring: Vec::new(),
            });
            current.add(r, time);
            current.last_rel = rel;
            current.received = received;
        }
        done
    }

    /// Adds a late (reordered) packet's returns to the sweep being built when they belong to
    /// it; false when that sweep is already out.
    pub fn merge_late(&mut self, returns: &[Return], packet_s: f64) -> bool {
        match self.current.as_mut() {
            Some(c) if packet_s >= c.start_s => {
                for r in returns {
                    c.add(r, packet_s + r.offset_us as f64 * 1e-6);
                }
                true
            }
            _ => false,
        }
    }

    /// Forgets the sweep being built (the sensor restarted).
    pub fn reset(&mut self) {
        if self.current.take().is_some() {
            self.partial_dropped += 1;
        }
    }

    /// Ends the sweep being built: a scan when it is whole.
    fn finish(&mut self) -> Option<Scan> {
        let c = self.current.take()?;
        if !c.started_at_cut || c.last_rel - c.first_rel < MIN_COVERAGE_CDEG || c.points.is_empty() {
            self.partial_dropped += 1;
            return None;
        }
        let index = self.next_index;
        self.next_index += 1;
        Some(Scan {
            index,
            timestamp: c.start_s,
            point_time: Some(c.time),
            points: c.points,
            intensity: c.intensity,
            ring: Some(c.ring),
            gt_pose: None,
            received: Some(c.received),
        })
    }
}

impl Partial {
    fn add(&mut self, r: &Return, time_s: f64) {
        self.points.push(r.point);
        self.intensity.push(r.intensity);
        self.time.push((time_s - self.start_s) as f32);
        self.ring.push(r.ring);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returns(azimuths: &[u16]) -> Vec<Return> {
        azimuths
            .iter()
            .map(|a| Return {
                point: [1.0, 0.0, 0.0],
                intensity: 0.5,
                offset_us: 0.0,
                ring: 3,
                block_azimuth: *a,
            })
            .collect()
    }

    #[test]
    fn sweeps_are_cut_at_the_angle_and_partial_ones_dropped() {
        let mut a = SweepAssembler::new(90.0);
        let now = Instant::now();
        // Starts at 180 degrees: partial, dropped when 90 degrees is crossed.
        let mut t = 0.0;
        let mut out = Vec::new();
        for _ in 0..3 {
            for az in (0..36000u32).step_by(200) {
                let az = ((az + 18000) % 36000) as u16;
                if let Some(s) = a.push(&returns(&[az]), t, now) {
                    out.push(s);
                }
                t += 1e-3 / 1.8;
            }
        }
        assert_eq!(a.partial_dropped(), 1);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].index, 0);
        assert_eq!(out[0].len(), 180);
        // Sweeps start one turn apart.
        assert!((out[1].timestamp - out[0].timestamp - 0.1).abs() < 1e-9);
        let times = out[0].point_time.as_ref().unwrap();
        assert_eq!(times[0], 0.0);
        assert!((times[179] - 0.1 * 179.0 / 180.0).abs() < 1e-6);
    }

    #[test]
    fn late_packets_join_the_open_sweep_only() {
        let mut a = SweepAssembler::new(0.0);
        let now = Instant::now();
        assert!(a.push(&returns(&[0, 100]), 1.0, now).is_none());
        assert!(a.merge_late(&returns(&[50]), 1.0));
        assert!(!a.merge_late(&returns(&[50]), 0.5));
        a.reset();
        assert_eq!(a.partial_dropped(), 1);
    }

    #[test]
    fn a_sweep_that_never_ends_is_given_up() {
        let mut a = SweepAssembler::new(0.0);
        let now = Instant::now();
        for k in 0..3000 {
            assert!(a.push(&returns(&[100]), k as f64 * 1e-3, now).is_none());
        }
        // Given up after each second: two dropped, the third still open.
        assert_eq!(a.partial_dropped(), 2);
        assert!(a.current.as_ref().unwrap().points.len() <= 1001);
    }
}

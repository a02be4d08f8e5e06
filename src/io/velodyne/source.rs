//! A packet stream as a scan source: datagrams are parsed, decoded and assembled into sweeps,
//! and everything that goes wrong on the link (foreign or malformed datagrams, loss,
//! reordering, a sensor restart) is counted and logged, never fatal.

use super::assemble::SweepAssembler;
use super::decode::{Decoder, Return};
use super::packet::{self, HOUR_US, PacketError};
use super::timing::Timing;
use super::{Calibration, Model};
use crate::error::Result;
use crate::io::ScanSource;
use crate::scan::Scan;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// A packet older than the newest by at most this much is late (reordered); further back, the
/// sensor restarted (seconds).
const LATE_WINDOW_S: f64 = 0.5;
/// A forward jump longer than this is a restart, not loss (seconds).
const MAX_GAP_S: f64 = 10.0;
/// Malformed datagrams are logged one by one up to this count, then every thousandth.
const LOG_FIRST: u64 = 5;

/// One UDP payload as it arrived.
#[derive(Debug, Clone)]
pub struct Datagram {
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// When it was read.
    pub received: Instant,
    /// Host clock at arrival (capture time for a pcap), seconds: it measures how long a
    /// restarting sensor was silent, which the sensor's own reset clock cannot.
    pub host_s: f64,
}

/// Where datagrams come from: a socket or a capture file.
pub trait PacketStream: Send {
    /// What the stream reads, for logs.
    fn name(&self) -> String;
    /// The next datagram; `None` at the end (file done, stop asked, idle timeout).
    fn next_datagram(&mut self) -> Option<Result<Datagram>>;
}

/// Link counters, shared with whoever shows them while the source runs.
#[derive(Debug, Default)]
pub struct LinkStats {
    counters: [AtomicU64; COUNTERS],
}

const COUNTERS: usize = 11;

/// A snapshot of [`LinkStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkCounts {
    /// Datagrams read.
    pub datagrams: u64,
    /// Data packets decoded.
    pub packets: u64,
    /// Datagrams that are not 1206 bytes (other traffic on the port).
    pub foreign: u64,
    /// 1206-byte datagrams that failed to parse (bad flag, azimuth, mode, product, timestamp).
    pub malformed: u64,
    /// Packets missing from the timestamp sequence.
    pub lost: u64,
    /// Packets that arrived after a newer one.
    pub reordered: u64,
    /// Packets repeating the newest one's timestamp, dropped.
    pub duplicate: u64,
    /// Sensor restarts (the timestamp jumped back or far ahead).
    pub restarts: u64,
    /// Sweeps assembled.
    pub sweeps: u64,
    /// Sweeps dropped for covering too little azimuth (the first one, one cut by an outage or
    /// a restart).
    pub partial_sweeps: u64,
    /// Datagrams dropped because the pipeline fell behind the socket.
    pub overflow: u64,
}

/// Which counter to bump.
#[derive(Debug, Clone, Copy)]
pub enum Counter {
    Datagrams,
    Packets,
    Foreign,
    Malformed,
    Lost,
    Reordered,
    Duplicate,
    Restarts,
    Sweeps,
    Overflow,
    PartialSweeps,
}

impl LinkStats {
    /// Adds `n` to `counter`.
    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Takes one back from `counter` (a packet counted lost arrived late after all).
    fn take_back(&self, counter: Counter) {
        let _ =
            self.counters[counter as usize].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
    }

    /// The counters now.
    pub fn snapshot(&self) -> LinkCounts {
        let c = |k: Counter| self.counters[k as usize].load(Ordering::Relaxed);
        LinkCounts {
            datagrams: c(Counter::Datagrams),
            packets: c(Counter::Packets),
            foreign: c(Counter::Foreign),
            malformed: c(Counter::Malformed),
            lost: c(Counter::Lost),
            reordered: c(Counter::Reordered),
            duplicate: c(Counter::Duplicate),
            restarts: c(Counter::Restarts),
            sweeps: c(Counter::Sweeps),
            overflow: c(Counter::Overflow),
            partial_sweeps: c(Counter::PartialSweeps),
        }
    }
}

/// How to read a Velodyne; every default in one place.
#[derive(Debug, Clone)]
pub struct VelodyneConfig {
    /// The sensor.
    pub model: Model,
    /// Per-laser calibration file (`db.xml` or ROS YAML); `None`: the table in `calib/`.
    pub calibration: Option<PathBuf>,
    /// Azimuth where sweeps are cut, degrees clockwise from forward (0: the wrap).
    pub cut_deg: f64,
    /// Stop after this many sweeps.
    pub max_sweeps: Option<usize>,
}

impl Default for VelodyneConfig {
    fn default() -> Self {
        Self {
            model: Model::Vlp16,
            calibration: None,
            cut_deg: 0.0,
            max_sweeps: None,
        }
    }
}

/// Where a packet's timestamp puts it in the stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Arrival {
    /// Newer than every packet so far, after `lost` missing ones.
    InOrder { time_s: f64, lost: u64 },
    /// Older than the newest (reordered).
    Late { time_s: f64 },
    /// Same timestamp as the newest.
    Duplicate,
    /// The sensor's clock jumped: it restarted.
    Restart { time_s: f64 },
}

/// Unwraps the hourly timestamp into monotonic sensor seconds and classifies each packet.
#[derive(Debug)]
struct SensorClock {
    packet_period_us: f64,
    /// Newest packet: its timestamp, its sensor seconds, and the host clock at its arrival.
    newest: Option<(u32, f64, f64)>,
}

impl SensorClock {
    fn arrive(&mut self, ts: u32, host_s: f64) -> Arrival {
        let Some((last_ts, last_s, last_host_s)) = self.newest else {
            let time_s = ts as f64 * 1e-6;
            self.newest = Some((ts, time_s, host_s));
            return Arrival::InOrder { time_s, lost: 0 };
        };
        let mut dt = ts as i64 - last_ts as i64;
        // The timestamp wraps at the top of the hour.
        if dt < -(HOUR_US as i64) / 2 {
            dt += HOUR_US as i64;
        }
        let dt_s = dt as f64 * 1e-6;
        if dt == 0 {
            Arrival::Duplicate
        } else if dt > 0 && dt_s <= MAX_GAP_S {
            let time_s = last_s + dt_s;
            self.newest = Some((ts, time_s, host_s));
            let lost = (dt as f64 / self.packet_period_us).round() as u64;
            Arrival::InOrder {
                time_s,
                lost: lost.saturating_sub(1),
            }
        } else if dt < 0 && -dt_s <= LATE_WINDOW_S {
            Arrival::Late { time_s: last_s + dt_s }
        } else {
            // The outage as the host saw it, at least one packet's time.
            let time_s = last_s + (host_s - last_host_s).max(self.packet_period_us * 1e-6);
            self.newest = Some((ts, time_s, host_s));
            Arrival::Restart { time_s }
        }
    }
}

/// A Velodyne packet stream read as scans.
pub struct VelodyneSource {
    stream: Box<dyn PacketStream>,
    decoder: Decoder,
    assembler: SweepAssembler,
    clock: SensorClock,
    stats: Arc<LinkStats>,
    returns: Vec<Return>,
    sweeps_left: Option<usize>,
    model: Model,
}

impl VelodyneSource {
    /// Reads `stream` as `cfg` says, counting into `stats`.
    pub fn new(stream: Box<dyn PacketStream>, cfg: &VelodyneConfig, stats: Arc<LinkStats>) -> Result<Self> {
        let calib = Calibration::for_model(cfg.model, cfg.calibration.as_deref())?;
        Ok(Self {
            stream,
            decoder: Decoder::new(cfg.model, calib)?,
            assembler: SweepAssembler::new(cfg.cut_deg),
            clock: SensorClock {
                packet_period_us: Timing::packet_period_us(cfg.model, super::ReturnMode::Strongest),
                newest: None,
            },
            stats,
            returns: Vec::with_capacity(384),
            sweeps_left: cfg.max_sweeps,
            model: cfg.model,
        })
    }

    /// Takes in one datagram; the sweep it completed, if any.
    fn accept(&mut self, datagram: &Datagram) -> Option<Scan> {
        self.stats.add(Counter::Datagrams, 1);
        let packet = match packet::parse(&datagram.payload, self.model) {
            Ok(p) => p,
            Err(e) => {
                self.reject(e);
                return None;
            }
        };
        self.stats.add(Counter::Packets, 1);
        self.clock.packet_period_us = Timing::packet_period_us(self.model, packet.return_mode);
        self.returns.clear();
        self.decoder.decode(&packet, &mut self.returns);
        let partial_before = self.assembler.partial_dropped();
        let scan = self.place(packet.timestamp_us, datagram);
        let partial = self.assembler.partial_dropped() - partial_before;
        self.stats.add(Counter::PartialSweeps, partial as u64);
        scan
    }

    /// Puts the decoded returns where the packet's timestamp says: the open sweep, a late
    /// merge, or a new sweep after a restart.
    fn place(&mut self, timestamp_us: u32, datagram: &Datagram) -> Option<Scan> {
        match self.clock.arrive(timestamp_us, datagram.host_s) {
            Arrival::InOrder { time_s, lost } => {
                self.stats.add(Counter::Lost, lost);
                self.assembler.push(&self.returns, time_s, datagram.received)
            }
            Arrival::Late { time_s } => {
                self.stats.add(Counter::Reordered, 1);
                self.stats.take_back(Counter::Lost);
                self.assembler.merge_late(&self.returns, time_s);
                None
            }
            Arrival::Duplicate => {
                self.stats.add(Counter::Duplicate, 1);
                None
            }
            Arrival::Restart { time_s } => {
                self.stats.add(Counter::Restarts, 1);
                log::warn!(
                    "{}: the sensor's clock jumped: restart; the sweep in progress is dropped",
                    self.stream.name()
                );
                self.assembler.reset();
                self.assembler.push(&self.returns, time_s, datagram.received)
            }
        }
    }

    fn reject(&self, e: PacketError) {
        let counter = match e {
            PacketError::Length(_) => Counter::Foreign,
            _ => Counter::Malformed,
        };
        self.stats.add(counter, 1);
        let n = self.stats.snapshot();
        let seen = if matches!(counter, Counter::Foreign) {
            n.foreign
        } else {
            n.malformed
        };
        if seen <= LOG_FIRST || seen.is_multiple_of(1000) {
            log::warn!("{}: datagram skipped ({seen} so far): {e}", self.stream.name());
        }
    }
}

impl Iterator for VelodyneSource {
    type Item = Result<Scan>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.sweeps_left == Some(0) {
            return None;
        }
        loop {
            let datagram = match self.stream.next_datagram()? {
                Ok(d) => d,
                Err(e) => return Some(Err(e)),
            };
            if let Some(scan) = self.accept(&datagram) {
                self.stats.add(Counter::Sweeps, 1);
                if let Some(n) = self.sweeps_left.as_mut() {
                    *n -= 1;
                }
                return Some(Ok(scan));
            }
        }
    }
}

impl ScanSource for VelodyneSource {
    fn name(&self) -> String {
        format!("{} on {}", self.model.label(), self.stream.name())
    }
    fn len_hint(&self) -> Option<usize> {
        None
    }
    fn has_ground_truth(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_tells_loss_reordering_rollover_and_restart_apart() {
        let mut c = SensorClock {
            packet_period_us: 1000.0,
            newest: None,
        };
        let start = HOUR_US - 2000;
        assert_eq!(
            c.arrive(start, 0.0),
            Arrival::InOrder {
                time_s: start as f64 * 1e-6,
                lost: 0
            }
        );
        let t0 = start as f64 * 1e-6;
        // Across the top of the hour, one packet missing.
        match c.arrive(1000, 0.003) {
            Arrival::InOrder { time_s, lost } => {
                assert!((time_s - t0 - 0.003).abs() < 1e-9);
                assert_eq!(lost, 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.arrive(0, 0.004), Arrival::Late { .. }));
        assert_eq!(c.arrive(1000, 0.004), Arrival::Duplicate);
        // A jump of half an hour is a restart; the host clock saw 0.5 s of silence.
        match c.arrive(1_800_000_000, 0.503) {
            Arrival::Restart { time_s } => assert!((time_s - t0 - 0.503).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
    }
}

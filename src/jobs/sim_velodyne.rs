//! `overlap-slam sim-velodyne`: a simulated drive sent as Velodyne data packets over UDP at the
//! sensor's real rate and/or recorded to a pcap capture, optionally with the faults of a real
//! link (loss, reordering, corrupt and foreign datagrams, a sensor restart).

use crate::error::{Error, Result};
use crate::io::poses;
use crate::io::velodyne::packet::{HOUR_US, PACKET_BYTES};
use crate::io::velodyne::pcap::{DATA_PORT, PcapRecorder};
use crate::pipeline::status::progress_bar;
use crate::sim::velodyne::{PacketSim, PacketSimConfig, SimPacket};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Packets simulated at a time (about 0.1 s of a VLP-16), in parallel, ahead of sending.
const CHUNK_PACKETS: usize = 75;
/// A restarting sensor is silent this long before its clock starts again from zero, seconds.
const RESTART_OUTAGE_S: f64 = 0.3;
/// Length of the foreign datagrams injected: a Velodyne position (GPS) packet's 512 bytes.
const FOREIGN_BYTES: usize = 512;

/// Faults to inject, each a probability per packet (the restart a time).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LinkFaults {
    /// Packets dropped.
    pub loss: f64,
    /// Packets held back and sent after the next one.
    pub reorder: f64,
    /// Packets whose first block flag is corrupted.
    pub malformed: f64,
    /// A foreign 512-byte datagram sent before the packet.
    pub foreign: f64,
    /// The sensor restarts at this many seconds into the stream.
    pub restart_at_s: Option<f64>,
}

/// What `sim-velodyne` does; every default in one place.
#[derive(Debug, Clone)]
pub struct SimVelodyneConfig {
    /// The drive and the sensor.
    pub sim: PacketSimConfig,
    /// Send to this address (`127.0.0.1:2368`).
    pub udp: Option<String>,
    /// Record a pcap capture here.
    pub pcap_out: Option<PathBuf>,
    /// Write the ground truth of every sweep here as a TUM trajectory: stamped with the sensor
    /// clock at the sweep's start (as `live` stamps `poses_tum.txt`), posed at mid-sweep,
    /// sweep 0 at the origin.
    pub gt_out: Option<PathBuf>,
    /// Send at the sensor's real rate (else as fast as possible).
    pub realtime: bool,
    /// Faults to inject.
    pub faults: LinkFaults,
    /// Set to stop sending.
    pub stop: Option<Arc<AtomicBool>>,
    /// Hide the progress bar.
    pub quiet: bool,
}

/// What was sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SimVelodyneReport {
    /// Sweeps in the drive.
    pub sweeps: usize,
    /// Data packets simulated.
    pub packets: usize,
    /// Datagrams sent (data, corrupted and foreign).
    pub datagrams_sent: usize,
    /// Packets dropped on purpose.
    pub dropped: usize,
    /// Packets sent after a newer one.
    pub reordered: usize,
    /// Packets sent corrupted.
    pub malformed: usize,
    /// Foreign datagrams sent.
    pub foreign: usize,
    /// Packets the sensor did not send while restarting.
    pub restart_silent: usize,
    /// Sends the network refused (nobody listening, say).
    pub send_errors: usize,
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Largest delay behind the sensor's schedule, milliseconds (real-time mode).
    pub max_behind_ms: f64,
}

/// Where datagrams go.
struct Outputs {
    socket: Option<UdpSocket>,
    recorder: Option<PcapRecorder>,
    epoch: Duration,
}

impl Outputs {
    /// The UDP socket and pcap recording `cfg` asks for.
    fn open(cfg: &SimVelodyneConfig) -> Result<Self> {
        let socket = match &cfg.udp {
            Some(addr) => {
                let s =
                    UdpSocket::bind("0.0.0.0:0").map_err(|e| Error::Usage(format!("cannot open a UDP socket: {e}")))?;
                s.connect(addr)
                    .map_err(|e| Error::Usage(format!("cannot send to UDP {addr}: {e}")))?;
                Some(s)
            }
            None => None,
        };
        let recorder = cfg
            .pcap_out
            .as_deref()
            .map(|p| PcapRecorder::create(p, DATA_PORT))
            .transpose()?;
        Ok(Self {
            socket,
            recorder,
            epoch: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
        })
    }

    fn emit(&mut self, bytes: &[u8], time_s: f64, report: &mut SimVelodyneReport) -> Result<()> {
        report.datagrams_sent += 1;
        if let Some(s) = &self.socket
            && s.send(bytes).is_err()
        {
            report.send_errors += 1;
        }
        if let Some(r) = self.recorder.as_mut() {
            r.record(bytes, self.epoch + Duration::from_secs_f64(time_s))?;
        }
        Ok(())
    }
}

/// Simulates and sends the drive.
pub fn sim_velodyne(cfg: &SimVelodyneConfig) -> Result<SimVelodyneReport> {
    check_settings(cfg)?;
    let sim = PacketSim::new(cfg.sim.clone());
    if let Some(path) = &cfg.gt_out {
        write_ground_truth(cfg, &sim, path)?;
    }
    let mut out = Outputs::open(cfg)?;
    let mut report = SimVelodyneReport {
        sweeps: sim.sweeps(),
        packets: sim.packets(),
        ..Default::default()
    };
    let started = Instant::now();
    send_drive(cfg, &sim, &mut out, &mut report, started)?;
    if let Some(r) = out.recorder.take() {
        r.finish()?;
    }
    report.wall_s = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Refuses a run with nowhere to send and fault rates that are no probabilities.
fn check_settings(cfg: &SimVelodyneConfig) -> Result<()> {
    if cfg.udp.is_none() && cfg.pcap_out.is_none() {
        return Err(Error::Usage(
            "sim-velodyne needs --udp ADDR and/or --pcap-out FILE".into(),
        ));
    }
    for (name, p) in [
        ("loss", cfg.faults.loss),
        ("reorder", cfg.faults.reorder),
        ("malformed", cfg.faults.malformed),
        ("foreign", cfg.faults.foreign),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::Usage(format!(
                "--{name} must be a probability in [0, 1], got {p}"
            )));
        }
    }
    Ok(())
}

/// Each sweep's ground-truth pose as TUM, stamped with the sensor clock at the sweep's start.
fn write_ground_truth(cfg: &SimVelodyneConfig, sim: &PacketSim, path: &std::path::Path) -> Result<()> {
    let start_s = cfg.sim.start_timestamp_us as f64 * 1e-6;
    let stamps: Vec<f64> = (0..sim.sweeps())
        .map(|k| start_s + k as f64 * sim.sweep_period_s())
        .collect();
    poses::write_tum(path, &stamps, &sim.ground_truth())
}

/// Every packet of the drive through the link's faults, at the sensor's pace when `realtime`,
/// until the drive ends or `stop` is set.
fn send_drive(
    cfg: &SimVelodyneConfig,
    sim: &PacketSim,
    out: &mut Outputs,
    report: &mut SimVelodyneReport,
    started: Instant,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.sim.seed ^ 0xFA17);
    let mut sender = Sender {
        held: None,
        clock_shift_us: None,
    };
    let progress = progress_bar(Some(report.packets), cfg.quiet, "packets");
    'send: for first in (0..report.packets).step_by(CHUNK_PACKETS) {
        for p in sim.chunk(first..(first + CHUNK_PACKETS).min(report.packets)) {
            if cfg.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                break 'send;
            }
            if cfg.realtime {
                let due = started + Duration::from_secs_f64(p.time_s);
                match due.checked_duration_since(Instant::now()) {
                    Some(wait) => std::thread::sleep(wait),
                    None => report.max_behind_ms = report.max_behind_ms.max(due.elapsed().as_secs_f64() * 1e3),
                }
            }
            sender.send(p, &cfg.faults, &mut rng, out, report)?;
            progress.inc(1);
        }
    }
    if let Some((bytes, time_s)) = sender.held.take() {
        out.emit(&bytes, time_s, report)?;
    }
    progress.finish_and_clear();
    Ok(())
}

/// Applies the faults to the packet stream.
struct Sender {
    held: Option<([u8; PACKET_BYTES], f64)>,
    clock_shift_us: Option<u32>,
}

impl Sender {
    fn send(
        &mut self,
        p: SimPacket,
        faults: &LinkFaults,
        rng: &mut ChaCha8Rng,
        out: &mut Outputs,
        report: &mut SimVelodyneReport,
    ) -> Result<()> {
        let mut bytes = p.bytes;
        if let Some(at) = faults.restart_at_s.filter(|at| p.time_s >= *at) {
            if p.time_s < at + RESTART_OUTAGE_S {
                // A packet held back goes out before the sensor falls silent, in order after all.
                if let Some((held, time_s)) = self.held.take() {
                    out.emit(&held, time_s, report)?;
                    report.reordered -= 1;
                }
                report.restart_silent += 1;
                return Ok(());
            }
            // After the restart the clock counts from zero.
            let ts = u32::from_le_bytes([bytes[1200], bytes[1201], bytes[1202], bytes[1203]]);
            let shift = *self.clock_shift_us.get_or_insert(ts);
            let restarted = (ts as u64 + HOUR_US as u64 - shift as u64) % HOUR_US as u64;
            bytes[1200..1204].copy_from_slice(&(restarted as u32).to_le_bytes());
        }
        if rng.random_bool(faults.loss) {
            report.dropped += 1;
            return Ok(());
        }
        if rng.random_bool(faults.foreign) {
            let junk: Vec<u8> = (0..FOREIGN_BYTES).map(|_| rng.random()).collect();
            out.emit(&junk, p.time_s, report)?;
            report.foreign += 1;
        }
        if self.held.is_none() && rng.random_bool(faults.reorder) {
            self.held = Some((bytes, p.time_s));
            report.reordered += 1;
            return Ok(());
        }
        let corrupt = rng.random_bool(faults.malformed);
        if corrupt {
            bytes[0] = 0x00;
            report.malformed += 1;
        }
        out.emit(&bytes, p.time_s, report)?;
        if let Some((late, _)) = self.held.take() {
            out.emit(&late, p.time_s, report)?;
            // Behind a corrupt packet it still arrives after every valid older one: in order.
            report.reordered -= usize::from(corrupt);
        }
        Ok(())
    }
}

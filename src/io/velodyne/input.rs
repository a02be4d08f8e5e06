//! Where a Velodyne's packets come from (a UDP socket or a pcap capture), as a scan source the
//! pipeline can open.

use super::pcap::PcapStream;
use super::source::PacketStream;
use super::udp::UdpStream;
use super::{LinkStats, VelodyneConfig, VelodyneSource};
use crate::error::{Error, Result};
use crate::io::FrameRange;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Where packets come from.
#[derive(Debug, Clone)]
pub enum PacketInput {
    /// A UDP socket bound to `addr`; the stream ends after `idle_timeout_s` without data (never
    /// when `None`) or on a stop.
    Udp { addr: String, idle_timeout_s: Option<f64> },
    /// A pcap capture; datagrams to `port`, at the recorded pace when `realtime`.
    Pcap { path: PathBuf, port: u16, realtime: bool },
}

impl PacketInput {
    /// True when the input will not wait for the pipeline (a socket, or a capture paced in real
    /// time), so that a slow consumer must drop work rather than fall behind.
    pub fn paced(&self) -> bool {
        match self {
            PacketInput::Udp { .. } => true,
            PacketInput::Pcap { realtime, .. } => *realtime,
        }
    }
}

/// A Velodyne stream as a pipeline source; `stats` is shared with the status line.
#[derive(Debug, Clone)]
pub struct LiveSource {
    /// Where packets come from.
    pub input: PacketInput,
    /// The sensor and how to cut its sweeps.
    pub velodyne: VelodyneConfig,
    /// Link counters.
    pub stats: Arc<LinkStats>,
    /// Set to end the stream (Ctrl-C).
    pub stop: Option<Arc<AtomicBool>>,
}

impl LiveSource {
    /// Opens the stream; `frames` may cap the number of sweeps (`..N`), not skip any.
    pub fn open(&self, frames: FrameRange) -> Result<VelodyneSource> {
        if frames.start != 0 {
            return Err(Error::Usage(
                "a live stream starts at its first sweep: use --frames ..N".into(),
            ));
        }
        let stream: Box<dyn PacketStream> = match &self.input {
            PacketInput::Udp { addr, idle_timeout_s } => Box::new(UdpStream::bind(
                addr,
                self.stats.clone(),
                self.stop.clone(),
                idle_timeout_s.map(Duration::from_secs_f64),
            )?),
            PacketInput::Pcap { path, port, realtime } => {
                Box::new(PcapStream::open(path, *port, *realtime, self.stop.clone())?)
            }
        };
        let mut velodyne = self.velodyne.clone();
        velodyne.max_sweeps = match (velodyne.max_sweeps, frames.end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        VelodyneSource::new(stream, &velodyne, self.stats.clone())
    }
}

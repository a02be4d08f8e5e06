//! Where a Velodyne's packets come from (a UDP socket or a pcap capture), as a scan source the
//! pipeline can open.

use super::packet;
use super::pcap::PcapStream;
use super::source::{Datagram, PacketStream};
use super::udp::UdpStream;
use super::{LinkStats, Model, VelodyneConfig, VelodyneSource};
use crate::error::{Error, Result};
use crate::io::FrameRange;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
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
    /// A stream opened before the run (to see which sensor sends), with the datagram it took:
    /// the run reads on from it, so that nothing is lost.
    pub early: Arc<Mutex<Option<OpenedStream>>>,
}

/// A packet stream already opened, with the datagrams taken from it but not yet handed on.
pub struct OpenedStream {
    held: VecDeque<Datagram>,
    stream: Box<dyn PacketStream>,
}

impl std::fmt::Debug for OpenedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStream")
            .field("stream", &self.stream.name())
            .field("held", &self.held.len())
            .finish()
    }
}

impl PacketStream for OpenedStream {
    fn name(&self) -> String {
        self.stream.name()
    }

    fn next_datagram(&mut self) -> Option<Result<Datagram>> {
        match self.held.pop_front() {
            Some(d) => Some(Ok(d)),
            None => self.stream.next_datagram(),
        }
    }
}

/// Datagrams read, at most, for one that names its sensor (other traffic may share the port).
const RECOGNISE_DATAGRAMS: usize = 1000;

impl LiveSource {
    /// Opens the stream; `frames` may cap the number of sweeps (`..N`), not skip any.
    pub fn open(&self, frames: FrameRange) -> Result<VelodyneSource> {
        if frames.start != 0 {
            return Err(Error::Usage(
                "a live stream starts at its first sweep: use --frames ..N".into(),
            ));
        }
        let stream: Box<dyn PacketStream> = match self.early.lock().expect("stream lock").take() {
            Some(opened) => Box::new(opened),
            None => self.open_stream()?,
        };
        let mut velodyne = self.velodyne.clone();
        velodyne.max_sweeps = match (velodyne.max_sweeps, frames.end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        VelodyneSource::new(stream, &velodyne, self.stats.clone())
    }

    fn open_stream(&self) -> Result<Box<dyn PacketStream>> {
        Ok(match &self.input {
            PacketInput::Udp { addr, idle_timeout_s } => Box::new(UdpStream::bind(
                addr,
                self.stats.clone(),
                self.stop.clone(),
                idle_timeout_s.map(Duration::from_secs_f64),
            )?),
            PacketInput::Pcap { path, port, realtime } => {
                Box::new(PcapStream::open(path, *port, *realtime, self.stop.clone())?)
            }
        })
    }

    /// The sensor the first data packet names ([`packet::model_of`]); `None` when the stream
    /// ends first (a capture without one, a socket idle past `--idle-timeout`, a stop) or its
    /// first datagrams name no known sensor. The datagrams read stay for the run.
    pub fn model_on_the_wire(&self) -> Result<Option<Model>> {
        let mut early = self.early.lock().expect("stream lock");
        let opened = match early.take() {
            Some(opened) => opened,
            None => OpenedStream {
                held: VecDeque::new(),
                stream: self.open_stream()?,
            },
        };
        let opened = early.insert(opened);
        let mut model = opened.held.iter().find_map(|d| packet::model_of(&d.payload));
        while model.is_none() && opened.held.len() < RECOGNISE_DATAGRAMS {
            match opened.stream.next_datagram() {
                Some(Ok(d)) => {
                    model = packet::model_of(&d.payload);
                    opened.held.push_back(d);
                }
                Some(Err(e)) => return Err(e),
                None => break,
            }
        }
        Ok(model)
    }
}

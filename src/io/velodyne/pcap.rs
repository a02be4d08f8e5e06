//! Capture files: Velodyne traffic recorded with tcpdump or Wireshark (classic pcap; Ethernet,
//! Linux cooked or raw IP links) replayed as a packet stream, and the writer the packet
//! simulator records with.

use super::source::{Datagram, PacketStream};
use crate::error::{Error, Result};
use etherparse::{SlicedPacket, TransportSlice};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapPacket, PcapReader, PcapWriter};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Velodyne's data port.
pub const DATA_PORT: u16 = 2368;

/// A pcap file as a packet stream: UDP payloads sent to one port.
pub struct PcapStream {
    path: PathBuf,
    reader: PcapReader<BufReader<File>>,
    datalink: DataLink,
    port: u16,
    realtime: bool,
    clock: Option<(Duration, Instant)>,
    stop: Option<Arc<AtomicBool>>,
    frames_read: u64,
}

impl PcapStream {
    /// Opens `path`; datagrams to `port` are kept. With `realtime` they are released at the
    /// pace they were recorded, else as fast as the pipeline takes them.
    pub fn open(path: &Path, port: u16, realtime: bool, stop: Option<Arc<AtomicBool>>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let reader = PcapReader::new(BufReader::new(file)).map_err(|e| {
            Error::input(
                path,
                format!("not a pcap capture (pcapng is not read; convert with editcap -F pcap): {e}"),
            )
        })?;
        let datalink = reader.header().datalink;
        if !matches!(
            datalink,
            DataLink::ETHERNET | DataLink::LINUX_SLL | DataLink::RAW | DataLink::IPV4
        ) {
            return Err(Error::input(
                path,
                format!("link type {datalink:?} is not Ethernet, Linux cooked or raw IP"),
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            datalink,
            port,
            realtime,
            clock: None,
            stop,
            frames_read: 0,
        })
    }

    /// The UDP payload of a captured frame sent to `port`.
    fn udp_payload(datalink: DataLink, port: u16, frame: &[u8]) -> Option<&[u8]> {
        let sliced = match datalink {
            DataLink::ETHERNET => SlicedPacket::from_ethernet(frame),
            DataLink::LINUX_SLL => SlicedPacket::from_linux_sll(frame),
            _ => SlicedPacket::from_ip(frame),
        }
        .ok()?;
        match sliced.transport? {
            TransportSlice::Udp(udp) if udp.destination_port() == port => Some(udp.payload()),
            _ => None,
        }
    }

    /// Sleeps until the recorded time of a frame stamped `at`.
    fn pace(&mut self, at: Duration) {
        let (first, started) = *self.clock.get_or_insert((at, Instant::now()));
        let due = started + at.saturating_sub(first);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

impl PacketStream for PcapStream {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn next_datagram(&mut self) -> Option<Result<Datagram>> {
        loop {
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                return None;
            }
            let (datalink, port) = (self.datalink, self.port);
            let (timestamp, payload) = match self.reader.next_packet()? {
                Ok(p) => {
                    let payload = Self::udp_payload(datalink, port, &p.data).map(<[u8]>::to_vec);
                    (p.timestamp, payload)
                }
                Err(e) => {
                    return Some(Err(Error::input(
                        &self.path,
                        format!("capture frame {}: {e}", self.frames_read + 1),
                    )));
                }
            };
            self.frames_read += 1;
            let Some(payload) = payload else { continue };
            if self.realtime {
                self.pace(timestamp);
            }
            return Some(Ok(Datagram {
                payload,
                received: Instant::now(),
                host_s: timestamp.as_secs_f64(),
            }));
        }
    }
}

/// Records datagrams as Ethernet/IPv4/UDP frames into a pcap file, written to a temporary
/// name and moved into place by [`PcapRecorder::finish`].
pub struct PcapRecorder {
    path: PathBuf,
    tmp: PathBuf,
    writer: PcapWriter<BufWriter<File>>,
    port: u16,
}

impl PcapRecorder {
    /// Starts a capture that will land at `path`, frames addressed to `port`.
    pub fn create(path: &Path, port: u16) -> Result<Self> {
        let tmp = path.with_extension("pcap.partial");
        let file = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let writer = PcapWriter::new(BufWriter::new(file)).map_err(|e| Error::input(&tmp, e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            writer,
            port,
        })
    }

    /// Appends `payload` sent at `at` (since the Unix epoch).
    pub fn record(&mut self, payload: &[u8], at: Duration) -> Result<()> {
        // The sensor's factory address (192.168.1.201) broadcasting, as a real capture shows.
        let builder = etherparse::PacketBuilder::ethernet2([0x60, 0x76, 0x88, 0, 0, 1], [0xFF; 6])
            .ipv4([192, 168, 1, 201], [255, 255, 255, 255], 64)
            .udp(2368, self.port);
        let mut frame = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut frame, payload)
            .map_err(|e| Error::input(&self.tmp, format!("cannot frame a datagram: {e}")))?;
        let packet = PcapPacket::new(at, frame.len() as u32, &frame);
        self.writer
            .write_packet(&packet)
            .map_err(|e| Error::input(&self.tmp, e.to_string()))?;
        Ok(())
    }

    /// Flushes and moves the capture into place.
    pub fn finish(self) -> Result<()> {
        let mut inner = self.writer.into_writer();
        std::io::Write::flush(&mut inner).map_err(|e| Error::io(&self.tmp, e))?;
        drop(inner);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

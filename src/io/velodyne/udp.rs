//! The live link: a UDP socket read on its own thread, so that the kernel's buffer never
//! overflows while the pipeline registers a sweep.

use super::source::{Counter, Datagram, LinkStats, PacketStream};
use crate::error::{Error, Result};
use crossbeam_channel::{Receiver, RecvTimeoutError, TrySendError};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Datagrams held between the socket thread and the decoder: about 10 s of a VLP-16.
const QUEUE_DATAGRAMS: usize = 8192;
/// How often blocking reads wake to check for a stop.
const POLL: Duration = Duration::from_millis(100);
/// Largest datagram read; Velodyne data packets are 1206 bytes.
const MAX_DATAGRAM: usize = 2048;

/// A bound UDP socket as a packet stream.
pub struct UdpStream {
    addr: String,
    rx: Receiver<Datagram>,
    closing: Arc<AtomicBool>,
    stop: Option<Arc<AtomicBool>>,
    idle_timeout: Option<Duration>,
    last_datagram: Instant,
}

impl UdpStream {
    /// Binds `addr` (`0.0.0.0:2368`). The stream ends when `stop` is set, or after
    /// `idle_timeout` without a datagram. Datagrams the decoder cannot keep up with are
    /// dropped and counted as `overflow` in `stats`.
    pub fn bind(
        addr: &str,
        stats: Arc<LinkStats>,
        stop: Option<Arc<AtomicBool>>,
        idle_timeout: Option<Duration>,
    ) -> Result<Self> {
        let socket = UdpSocket::bind(addr).map_err(|e| Error::Usage(format!("cannot listen on UDP {addr}: {e}")))?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|e| Error::Usage(format!("UDP {addr}: {e}")))?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_DATAGRAMS);
        let closing = Arc::new(AtomicBool::new(false));
        let flag = closing.clone();
        let name = addr.to_string();
        let opened = Instant::now();
        std::thread::Builder::new()
            .name("udp-receive".into())
            .spawn(move || {
                let mut buf = [0u8; MAX_DATAGRAM];
                while !flag.load(Ordering::Relaxed) {
                    let n = match socket.recv_from(&mut buf) {
                        Ok((n, _)) => n,
                        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                            continue;
                        }
                        Err(e) => {
                            log::warn!("UDP {name}: {e}");
                            continue;
                        }
                    };
                    let received = Instant::now();
                    let datagram = Datagram {
                        payload: buf[..n].to_vec(),
                        received,
                        host_s: received.duration_since(opened).as_secs_f64(),
                    };
                    match tx.try_send(datagram) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => stats.add(Counter::Overflow, 1),
                        Err(TrySendError::Disconnected(_)) => break,
                    }
                }
            })
            .map_err(|e| Error::Usage(format!("cannot start the UDP thread: {e}")))?;
        Ok(Self {
            addr: addr.to_string(),
            rx,
            closing,
            stop,
            idle_timeout,
            last_datagram: Instant::now(),
        })
    }
}

impl PacketStream for UdpStream {
    fn name(&self) -> String {
        format!("UDP {}", self.addr)
    }

    fn next_datagram(&mut self) -> Option<Result<Datagram>> {
        loop {
            if self.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed)) {
                return None;
            }
            match self.rx.recv_timeout(POLL) {
                Ok(d) => {
                    self.last_datagram = d.received;
                    return Some(Ok(d));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.idle_timeout.is_some_and(|t| self.last_datagram.elapsed() > t) {
                        log::warn!(
                            "UDP {}: no datagram for {:?}; ending the stream",
                            self.addr,
                            self.idle_timeout.unwrap_or_default()
                        );
                        return None;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}

impl Drop for UdpStream {
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Relaxed);
    }
}

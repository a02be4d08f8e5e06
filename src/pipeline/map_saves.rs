//! Saving the map while a run goes on: requests come from SIGUSR1, a ROS 2 message or code;
//! the loop thread takes a snapshot of the map and one writer thread writes it, atomically,
//! in the `--save-map` folder. Saves never interleave: a request that comes while a save is
//! being written is served by the next save, with the newest map, once that one is done.

use crate::error::Result;
use crate::saved_map::{PriorMap, write_map};
use crossbeam_channel::Sender;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

/// SIGUSR1s received since the handler was installed.
static SIGUSR1_COUNT: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    // An atomic add is async-signal-safe.
    SIGUSR1_COUNT.fetch_add(1, Ordering::Relaxed);
}

/// Requests to save the map, counted.
#[derive(Debug, Default)]
pub struct SaveRequests {
    asked: AtomicUsize,
    /// SIGUSR1 asks too.
    sigusr1: bool,
}

impl SaveRequests {
    /// Requests that come only from [`SaveRequests::ask`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests that SIGUSR1 makes as well (`kill -USR1 PID`).
    pub fn with_sigusr1() -> Result<Self> {
        let handler = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only adds to an atomic counter, which is async-signal-safe.
        if unsafe { libc::signal(libc::SIGUSR1, handler) } == libc::SIG_ERR {
            return Err(crate::Error::Usage("cannot listen for SIGUSR1".into()));
        }
        Ok(Self {
            asked: AtomicUsize::new(0),
            sigusr1: true,
        })
    }

    /// Asks for a save.
    pub fn ask(&self) {
        self.asked.fetch_add(1, Ordering::Relaxed);
    }

    /// Saves asked for so far.
    pub fn asked(&self) -> usize {
        let signalled = if self.sigusr1 {
            SIGUSR1_COUNT.load(Ordering::Relaxed)
        } else {
            0
        };
        self.asked.load(Ordering::Relaxed) + signalled
    }
}

/// One save made while the run went on (`loops.map_saves` in `metrics.json`).
#[derive(Debug, Clone, Serialize)]
pub struct MapSave {
    /// The newest frame in the map saved.
    pub frame: usize,
    /// Requests it served (those that came while the save before it was written count here).
    pub requests: usize,
    /// Keyframes in it.
    pub keyframes: usize,
    /// Bytes of its map file.
    pub bytes: u64,
    /// Milliseconds to write it.
    pub write_ms: f64,
    /// Why it failed, if it did (the folder's previous map is then whole).
    pub error: Option<String>,
}

/// The save requests of a run and the thread that writes their maps.
pub struct MapSaver {
    requests: Arc<SaveRequests>,
    /// Requests served so far.
    served: usize,
    busy: Arc<AtomicBool>,
    jobs: Sender<(MapSave, PriorMap)>,
    thread: JoinHandle<Vec<MapSave>>,
}

impl MapSaver {
    /// Serves `requests` by writing maps into `dir`.
    pub fn new(requests: Arc<SaveRequests>, dir: PathBuf) -> Self {
        let (tx, jobs) = crossbeam_channel::unbounded::<(MapSave, PriorMap)>();
        let busy = Arc::new(AtomicBool::new(false));
        let writing = busy.clone();
        let thread = std::thread::spawn(move || {
            let mut done = Vec::new();
            for (mut save, map) in jobs {
                let start = Instant::now();
                match write_map(&dir, &map) {
                    Ok(bytes) => save.bytes = bytes,
                    Err(e) => save.error = Some(e.to_string()),
                }
                save.write_ms = start.elapsed().as_secs_f64() * 1e3;
                match &save.error {
                    None => log::info!(
                        "map saved to {} at frame {}: {} keyframes, {} bytes",
                        dir.display(),
                        save.frame,
                        save.keyframes,
                        save.bytes
                    ),
                    Some(e) => log::warn!("map save at frame {} failed: {e}", save.frame),
                }
                done.push(save);
                writing.store(false, Ordering::Release);
            }
            done
        });
        Self {
            requests,
            served: 0,
            busy,
            jobs: tx,
            thread,
        }
    }

    /// Requests waiting to be served, when none is being written (0 while one is: they wait
    /// for the next save).
    pub fn due(&self) -> usize {
        if self.busy.load(Ordering::Acquire) {
            return 0;
        }
        self.requests.asked().saturating_sub(self.served)
    }

    /// Hands `map`, the map as of `frame`, to the writer; it serves every request due.
    pub fn save(&mut self, frame: usize, map: PriorMap) {
        let requests = self.due();
        self.served += requests;
        self.busy.store(true, Ordering::Release);
        let save = MapSave {
            frame,
            requests,
            keyframes: map.keyframes.len(),
            bytes: 0,
            write_ms: 0.0,
            error: None,
        };
        // The writer ends only when this sender drops.
        let _ = self.jobs.send((save, map));
    }

    /// Marks every request due as served without saving (nothing to save).
    pub fn skip(&mut self) -> usize {
        let due = self.due();
        self.served += due;
        due
    }

    /// Waits for the writes asked for and lists them.
    pub fn finish(self) -> Vec<MapSave> {
        drop(self.jobs);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_made_while_a_save_is_written_wait_for_it() {
        let requests = Arc::new(SaveRequests::new());
        let dir = tempfile::tempdir().unwrap();
        let mut saver = MapSaver::new(requests.clone(), dir.path().join("m"));
        assert_eq!(saver.due(), 0);
        requests.ask();
        assert_eq!(saver.due(), 1);
        saver.busy.store(true, Ordering::Release);
        requests.ask();
        assert_eq!(saver.due(), 0, "a save is being written: the request waits");
        saver.busy.store(false, Ordering::Release);
        assert_eq!(saver.due(), 2);
        assert_eq!(saver.skip(), 2);
        assert_eq!(saver.due(), 0);
        assert!(saver.finish().is_empty());
    }
}

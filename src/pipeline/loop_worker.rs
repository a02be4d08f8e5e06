//! The loop search on its own thread, so that a keyframe's network passes do not hold up the
//! odometry of the frames behind it.

use crate::error::{Error, Result};
use crate::loops::detector::LoopDetector;
use crate::loops::search::{LoopCandidate, LoopSearch, LoopSearchConfig};
use crate::scan::{Pose, Scan};
use serde::Serialize;
use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// What the loop search did over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopOutcome {
    /// Loops found, in query order.
    pub candidates: Vec<LoopCandidate>,
    /// Keyframes described.
    pub keyframes: usize,
    /// Mean milliseconds spent per keyframe (descriptor and candidate judging).
    pub ms_per_keyframe: f64,
}

/// A running loop search.
pub struct LoopWorker {
    tx: Sender<(usize, Pose, Option<Scan>)>,
    handle: JoinHandle<Result<LoopOutcome>>,
    keyframe_every: usize,
}

impl LoopWorker {
    /// Starts the search thread.
    pub fn spawn(config: LoopSearchConfig, detector: LoopDetector) -> Self {
        let (tx, rx) = channel::<(usize, Pose, Option<Scan>)>();
        let handle = std::thread::spawn(move || {
            let mut search = LoopSearch::new(config, detector);
            let mut outcome = LoopOutcome::default();
            let mut busy_ms = 0.0;
            for (frame, pose, scan) in rx {
                let start = Instant::now();
                if let Some(found) = search.add(frame, &pose, scan.as_ref())? {
                    outcome.candidates.push(found);
                }
                if scan.is_some() {
                    outcome.keyframes += 1;
                    busy_ms += start.elapsed().as_secs_f64() * 1e3;
                }
            }
            outcome.ms_per_keyframe = busy_ms / outcome.keyframes.max(1) as f64;
            Ok(outcome)
        });
        Self {
            tx,
            handle,
            keyframe_every: config.keyframe_every.max(1),
        }
    }

    /// Hands over one frame's pose (and its scan, cloned, when it is a keyframe).
    pub fn send(&self, scan: &Scan, pose: &Pose) {
        let keyframe = scan.index.is_multiple_of(self.keyframe_every).then(|| scan.clone());
        // A send fails only when the worker stopped on an error, which `finish` reports.
        let _ = self.tx.send((scan.index, *pose, keyframe));
    }

    /// Waits for the search to finish the frames sent.
    pub fn finish(self) -> Result<LoopOutcome> {
        drop(self.tx);
        self.handle
            .join()
            .map_err(|_| Error::Usage("the loop search thread panicked".into()))?
    }
}

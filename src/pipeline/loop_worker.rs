//! Loop closure on its own thread: the keyframe loop search, ICP verification of each candidate,
//! and the pose-graph back-end, fed every frame's odometry through a bounded channel (the
//! odometry waits when the thread falls behind: replay never drops a frame).

use super::map_saves::{MapSave, MapSaver};
use super::saved_map_session::{LocalisationReport, SavedMapJob, SavedMapSession};
use super::sink::EstimateSink;
use crate::error::{Error, Result};
use crate::graph::{Backend, BackendConfig};
use crate::loops::detector::{LoopDetector, LoopMethod};
use crate::loops::search::{LoopCandidate, LoopSearch, LoopSearchConfig, Revisit};
use crate::loops::verify::{KeyframeCloud, Verification, VerifyConfig, verify};
use crate::scan::{Pose, Scan};
use crossbeam_channel::{Sender, bounded};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Frames the loop thread may lag behind the odometry before the odometry waits.
const QUEUE_FRAMES: usize = 64;

/// A loop accepted by verification counts as true when its keyframes lie this close in ground
/// truth, metres; a keyframe with an eligible older keyframe this close is a revisit.
pub const TRUE_LOOP_M: f64 = 8.0;

/// Loop-closure settings; every default in one place.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoopClosureConfig {
    /// Detector that scores the candidates and gives the yaw that seeds verification: Scan Context
    /// by default, since it ranks real KITTI pairs better; OverlapNet, which ranks held-out
    /// simulated worlds better (models/README.md), and its MIMO variant are selectable.
    pub detector: LoopMethod,
    /// Keyframes and candidate search.
    pub search: LoopSearchConfig,
    /// ICP verification of candidates.
    pub verify: VerifyConfig,
    /// Pose graph.
    pub backend: BackendConfig,
}

impl Default for LoopClosureConfig {
    fn default() -> Self {
        Self {
            // The detector that ranks real scans' pairs better (Scan Context: PR-AUC 0.52 against
            // OverlapNet's 0.34 on KITTI 00 frames 0-60, neither trained on them; the two tie on
            // the real validation split; README, "Loop closure in replay").
            detector: LoopMethod::ScanContext,
            search: LoopSearchConfig::default(),
            verify: VerifyConfig::default(),
            backend: BackendConfig::default(),
        }
    }
}

/// One candidate the search proposed and what verification made of it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoopRecord {
    /// The detector's proposal.
    #[serde(flatten)]
    pub candidate: LoopCandidate,
    /// ICP's verdict (`None` when the spread gate refused the candidate unverified).
    #[serde(flatten)]
    pub verification: Option<Verification>,
    /// Verification passed and the pose graph took the loop (it refuses loops farther from its
    /// estimate than the odometry can have drifted).
    pub closed: bool,
}

/// What loop closure did over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopOutcome {
    /// Candidates proposed, in query order, each with its verification.
    pub candidates: Vec<LoopRecord>,
    /// Keyframes described.
    pub keyframes: usize,
    /// Mean milliseconds per keyframe (descriptor, candidate judging and verification).
    pub ms_per_keyframe: f64,
    /// Mean milliseconds per pose-graph optimisation.
    pub ms_per_optimisation: f64,
    /// Loops closed: verified and taken by the pose graph.
    pub loops_accepted: usize,
    /// Candidates the MIMO spread gate refused: ICP verifications saved.
    pub gate_refused: usize,
    /// Of those, candidates whose keyframes lie within [`TRUE_LOOP_M`] in ground truth (true
    /// loops the gate cost; null without ground truth).
    pub gate_refused_true: Option<usize>,
    /// Accepted loops whose keyframes are within [`TRUE_LOOP_M`] in ground truth (null without).
    pub loops_true_positive: Option<usize>,
    /// Accepted loops farther apart than that (null without ground truth).
    pub loops_false_positive: Option<usize>,
    /// Revisiting keyframes (an eligible older keyframe within [`TRUE_LOOP_M`]) that closed no
    /// accepted loop (null without ground truth).
    pub loops_missed: Option<usize>,
    /// Each missed revisit and why it was missed.
    pub missed: Vec<MissedRevisit>,
    /// Maps saved on request while the run went on (SIGUSR1, the ROS 2 trigger).
    pub map_saves: Vec<MapSave>,
    /// Every new odometry chain (odometry restarted after a dropout or a loss it could not
    /// recover from) and the loop that joined it to the chains before, if one did.
    pub chain_joins: Vec<ChainJoin>,
    /// Optimised pose of every frame sent, in order; not serialised.
    #[serde(skip)]
    pub poses: Vec<Pose>,
    /// The best match the detector found for every keyframe with eligible older ones, proposed
    /// or not (the viewer plots its score and spread); not serialised.
    #[serde(skip)]
    pub judged: Vec<LoopCandidate>,
    /// How localisation in the prior map went (runs with `--map`); reported on its own.
    #[serde(skip)]
    pub localisation: Option<LocalisationReport>,
    /// The map to save (runs with `--save-map`); not serialised.
    #[serde(skip)]
    pub map: Option<crate::saved_map::PriorMap>,
}

/// A new odometry chain and the loop that joined it to the ones before.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChainJoin {
    /// The chain's first frame.
    pub chain_start: usize,
    /// Its timestamp, seconds.
    #[serde(skip)]
    pub started_s: f64,
    /// The query frame of the loop that joined it (null: none did; its poses stay guesses
    /// relative to the chains before).
    pub joined_at: Option<usize>,
    /// Sensor time from the chain's first frame to that loop's, seconds.
    pub seconds_to_join: Option<f64>,
}

/// A revisit no loop closed, and where the chain broke.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MissedRevisit {
    /// The revisit: the keyframe, its nearest older keyframe and their true distance.
    #[serde(flatten)]
    pub revisit: Revisit,
    /// `no candidate` (nothing passed the detector's threshold), `wrong places` (only keyframes
    /// farther than [`TRUE_LOOP_M`] were proposed), `gate` (the spread gate refused the true
    /// one), `verification` (ICP refused it) or `pose graph` (the graph refused the loop).
    pub reason: &'static str,
}

impl MissedRevisit {
    /// Why `revisit` closed no loop, from the candidates of the run.
    fn explain(revisit: &Revisit, candidates: &[LoopRecord]) -> Self {
        let own: Vec<&LoopRecord> = candidates
            .iter()
            .filter(|r| r.candidate.query == revisit.frame)
            .collect();
        let true_ones: Vec<&&LoopRecord> = own
            .iter()
            .filter(|r| r.candidate.gt_distance_m.is_some_and(|d| d <= TRUE_LOOP_M))
            .collect();
        let reason = if own.is_empty() {
            "no candidate"
        } else if true_ones.is_empty() {
            "wrong places"
        } else if true_ones.iter().any(|r| r.verification.is_some_and(|v| v.accepted)) {
            "pose graph"
        } else if true_ones.iter().all(|r| r.candidate.gated) {
            "gate"
        } else {
            "verification"
        };
        Self {
            revisit: *revisit,
            reason,
        }
    }
}

/// One frame as the loop thread receives it.
struct FrameMsg {
    frame: usize,
    timestamp: f64,
    pose: Pose,
    /// The sensor's motion since the previous frame, as odometry found it.
    motion: Pose,
    degenerate: bool,
    /// The frame starts a new odometry chain.
    new_chain: bool,
    /// The frame's ground-truth pose, when the source has one.
    gt: Option<Pose>,
    keyframe: Option<Scan>,
}

/// A running loop closure.
pub struct LoopWorker {
    tx: Sender<FrameMsg>,
    handle: JoinHandle<Result<LoopOutcome>>,
    keyframe_every: usize,
}

impl LoopWorker {
    /// Starts the loop-closure thread.
    pub fn spawn(config: LoopClosureConfig, detector: LoopDetector) -> Self {
        Self::spawn_with_sink(config, detector, None)
    }

    /// Starts the loop-closure thread; `sink` hears every correction of the poses.
    pub fn spawn_with_sink(
        config: LoopClosureConfig,
        detector: LoopDetector,
        sink: Option<Arc<dyn EstimateSink>>,
    ) -> Self {
        Self::spawn_in_map(config, detector, sink, None, None).expect("without a map nothing can fail")
    }

    /// Starts the loop-closure thread, localising in a prior map and keeping keyframes to save
    /// as `maps` asks, and saving the map while it runs when `saver`'s requests ask; fails
    /// when the prior map cannot serve the detector.
    pub fn spawn_in_map(
        config: LoopClosureConfig,
        detector: LoopDetector,
        sink: Option<Arc<dyn EstimateSink>>,
        maps: Option<SavedMapJob>,
        saver: Option<MapSaver>,
    ) -> Result<Self> {
        let maps = maps
            .map(|job| SavedMapSession::new(job, &detector, &config.verify))
            .transpose()?;
        let (tx, rx) = bounded::<FrameMsg>(QUEUE_FRAMES);
        let handle = std::thread::spawn(move || {
            let mut state = LoopClosureState::new(config, detector, maps);
            state.sink = sink;
            state.saver = saver;
            for msg in rx {
                state.add(msg)?;
            }
            Ok(state.finish())
        });
        Ok(Self {
            tx,
            handle,
            keyframe_every: config.search.keyframe_every.max(1),
        })
    }

    /// Hands over one frame's odometry (and its scan, cloned, when it is a keyframe); waits when
    /// the queue is full. `motion` is the sensor's since the previous frame: keyframes whose
    /// points carry times are deskewed with it before they are described and verified (a scan
    /// taken in a turn is bent, and its bent copy matches the place less well).
    /// A frame that starts a new odometry chain (`new_chain`) is always a keyframe: the sooner
    /// it is searched, the sooner a loop joins the chains.
    pub fn send(&self, scan: &Scan, pose: &Pose, motion: &Pose, degenerate: bool, new_chain: bool) {
        let keyframe = (new_chain || scan.index.is_multiple_of(self.keyframe_every)).then(|| scan.clone());
        let msg = FrameMsg {
            new_chain,
            frame: scan.index,
            timestamp: scan.timestamp,
            pose: *pose,
            motion: *motion,
            degenerate,
            gt: scan.gt_pose,
            keyframe,
        };
        // A send fails only when the thread stopped on an error, which `finish` reports.
        let _ = self.tx.send(msg);
    }

    /// Frames waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.len()
    }

    /// Waits for the thread to finish the frames sent.
    pub fn finish(self) -> Result<LoopOutcome> {
        drop(self.tx);
        self.handle
            .join()
            .map_err(|_| Error::Usage("the loop closure thread panicked".into()))?
    }
}

/// What the loop-closure thread holds between frames: the keyframe search, the pose graph, the
/// keyframes' clouds for verification and the outcome so far.
struct LoopClosureState {
    config: LoopClosureConfig,
    search: LoopSearch,
    backend: Backend,
    clouds: HashMap<usize, KeyframeCloud>,
    outcome: LoopOutcome,
    keyframe_ms: f64,
    optimise_ms: f64,
    /// Timestamp of the last frame received.
    last_timestamp: Option<f64>,
    /// Every keyframe so far had a ground-truth pose.
    ground_truth: bool,
    sink: Option<Arc<dyn EstimateSink>>,
    /// Localising in a prior map, keeping keyframes to save.
    maps: Option<SavedMapSession>,
    /// Saves the map when asked while the run goes on.
    saver: Option<MapSaver>,
}

impl LoopClosureState {
    fn new(config: LoopClosureConfig, detector: LoopDetector, maps: Option<SavedMapSession>) -> Self {
        let prior = maps.as_ref().map_or_else(Vec::new, SavedMapSession::prior_poses);
        Self {
            search: LoopSearch::new(config.search, detector),
            backend: Backend::with_prior(config.backend, &prior),
            maps,
            clouds: HashMap::new(),
            outcome: LoopOutcome::default(),
            keyframe_ms: 0.0,
            optimise_ms: 0.0,
            last_timestamp: None,
            ground_truth: true,
            sink: None,
            saver: None,
            config,
        }
    }

    fn add(&mut self, msg: FrameMsg) -> Result<()> {
        let (start, optimised_before) = (Instant::now(), self.optimise_ms);
        if msg.new_chain {
            self.backend.break_chain();
            self.outcome.chain_joins.push(ChainJoin {
                chain_start: msg.frame,
                started_s: msg.timestamp,
                joined_at: None,
                seconds_to_join: None,
            });
        }
        self.backend
            .add_frame(msg.frame, msg.pose, msg.degenerate, msg.keyframe.is_some());
        let period = self.last_timestamp.map_or(0.0, |t| msg.timestamp - t);
        self.last_timestamp = Some(msg.timestamp);
        if let Some(m) = self.maps.as_mut() {
            m.frame(msg.frame, msg.timestamp, msg.gt);
        }
        let Some(mut scan) = msg.keyframe else {
            self.search.add(msg.frame, &msg.pose, None)?;
            self.serve_saves(msg.frame);
            return Ok(());
        };
        deskew_keyframe(&mut scan, &msg.motion, period);
        self.ground_truth &= scan.gt_pose.is_some();
        self.clouds
            .insert(msg.frame, KeyframeCloud::new(&scan.points, &self.config.verify));
        let found = self.search.add(msg.frame, &msg.pose, Some(&scan))?;
        self.outcome.keyframes += 1;
        self.outcome.judged.extend(self.search.last_judged().copied());
        let frozen = self.maps.as_ref().is_some_and(SavedMapSession::frozen);
        for candidate in found.into_iter().filter(|_| !frozen) {
            if self.try_candidate(candidate)? {
                break;
            }
        }
        if let Some(m) = self.maps.as_mut() {
            let cloud = &self.clouds[&msg.frame];
            m.keyframe(&scan, cloud, &self.search, &mut self.backend, self.sink.as_ref())?;
        }
        if frozen {
            // Pure localisation closes no loops within the run: its clouds are not kept.
            self.clouds.remove(&msg.frame);
        }
        self.serve_saves(msg.frame);
        // The search's time, without the optimisations its loops set off.
        self.keyframe_ms += start.elapsed().as_secs_f64() * 1e3 - (self.optimise_ms - optimised_before);
        Ok(())
    }

    /// Verifies one candidate (unless the spread gate refuses it) and closes the loop when ICP
    /// accepts it; true when verification accepted it.
    fn try_candidate(&mut self, candidate: LoopCandidate) -> Result<bool> {
        if candidate.gated {
            self.outcome.candidates.push(LoopRecord {
                candidate,
                verification: None,
                closed: false,
            });
            return Ok(false);
        }
        let cfg = &self.config.verify;
        let query = &self.clouds[&candidate.query];
        let mut verification = verify(query, &self.clouds[&candidate.reference], candidate.yaw_deg, cfg);
        if !verification.accepted
            && verification.fitness >= cfg.submap_from_fitness
            && let Some(submap) = self.submap(candidate.reference)
        {
            verification = verify(query, &submap, candidate.yaw_deg, cfg);
        }
        let mut closed = false;
        if verification.accepted {
            let t = Instant::now();
            let joined_before = self.backend.joined_breaks();
            closed = self
                .backend
                .add_loop(candidate.query, candidate.reference, verification.transform)
                .map_err(|e| Error::Usage(format!("pose graph: {e}")))?;
            if self.backend.joined_breaks() > joined_before {
                self.record_joins(candidate.query);
            }
            self.optimise_ms += t.elapsed().as_secs_f64() * 1e3;
            self.outcome.loops_accepted += closed as usize;
            if let Some(sink) = self.sink.as_ref().filter(|_| closed) {
                let pose = |frame| self.backend.keyframe_pose(frame).unwrap_or_else(Pose::identity);
                let (at, to) = (pose(candidate.query), pose(candidate.reference));
                sink.loop_closed(candidate.query, &at, &to, candidate.overlap);
                sink.corrected(&self.backend.poses());
            }
        }
        self.outcome.candidates.push(LoopRecord {
            candidate,
            verification: Some(verification),
            closed,
        });
        Ok(verification.accepted)
    }

    /// Saves the map as of `frame` when a save is due (the writer thread writes it).
    fn serve_saves(&mut self, frame: usize) {
        let Some(saver) = self.saver.as_mut().filter(|s| s.due() > 0) else {
            return;
        };
        match self
            .maps
            .as_ref()
            .and_then(|m| m.snapshot(&self.backend, self.search.detector()))
        {
            Some(map) => saver.save(frame, map),
            None => {
                let n = saver.skip();
                log::warn!("{n} map save request(s) not served: the map is frozen");
            }
        }
    }

    /// Marks the chains a loop from keyframe `query` has just joined (loops are tried for the
    /// keyframe just received: its stamp is the last one).
    fn record_joins(&mut self, query: usize) {
        let at = self.last_timestamp;
        for (k, join) in self.outcome.chain_joins.iter_mut().enumerate() {
            if join.joined_at.is_none() && self.backend.is_joined(k) {
                join.joined_at = Some(query);
                join.seconds_to_join = at.map(|t| t - join.started_s);
            }
        }
    }

    /// The keyframe `reference` with its neighbours on either side, placed in its frame by the
    /// current estimate; `None` when it has none.
    fn submap(&self, reference: usize) -> Option<KeyframeCloud> {
        let every = self.config.search.keyframe_every.max(1);
        let at = self.backend.keyframe_pose(reference)?;
        let parts: Vec<(&KeyframeCloud, Pose)> =
            [reference.checked_sub(every), Some(reference), Some(reference + every)]
                .into_iter()
                .flatten()
                .filter_map(|f| Some((self.clouds.get(&f)?, at.inverse() * self.backend.keyframe_pose(f)?)))
                .collect();
        (parts.len() > 1).then(|| KeyframeCloud::merged(&parts, &self.config.verify))
    }

    fn finish(mut self) -> LoopOutcome {
        let o = &mut self.outcome;
        o.ms_per_keyframe = self.keyframe_ms / o.keyframes.max(1) as f64;
        o.ms_per_optimisation = self.optimise_ms / self.backend.optimisations().max(1) as f64;
        let accepted: Vec<&LoopRecord> = o.candidates.iter().filter(|r| r.closed).collect();
        let refused: Vec<&LoopRecord> = o.candidates.iter().filter(|r| r.candidate.gated).collect();
        o.gate_refused = refused.len();
        if self.ground_truth && o.keyframes > 0 {
            let revisits = self.search.revisits(TRUE_LOOP_M);
            let truth = |r: &&&LoopRecord| r.candidate.gt_distance_m.is_some_and(|d| d <= TRUE_LOOP_M);
            let tp = accepted.iter().filter(truth).count();
            o.gate_refused_true = Some(refused.iter().filter(truth).count());
            o.loops_true_positive = Some(tp);
            o.loops_false_positive = Some(accepted.len() - tp);
            let closed: Vec<usize> = accepted.iter().map(|r| r.candidate.query).collect();
            o.missed = revisits
                .iter()
                .filter(|r| !closed.contains(&r.frame))
                .map(|r| MissedRevisit::explain(r, &o.candidates))
                .collect();
            o.loops_missed = Some(o.missed.len());
        }
        o.poses = self.backend.poses();
        if let Some(saver) = self.saver.take() {
            o.map_saves = saver.finish();
        }
        if let Some(m) = self.maps.take() {
            (o.localisation, o.map) = m.finish(&self.backend, self.search.detector(), &o.poses);
        }
        self.outcome
    }
}

/// Moves a keyframe's points to where they were at its timestamp (the time of its pose), given
/// the sensor's `motion` over the `period_s` before it; scans without point times stay as they are.
fn deskew_keyframe(scan: &mut Scan, motion: &Pose, period_s: f64) {
    let Some(times) = scan.point_time.take_if(|_| period_s > 0.0) else {
        return;
    };
    let points = crate::odometry::preprocess::deskew(&scan.points, &times, motion, period_s, 0.0);
    scan.points = points.iter().map(|p| [p.x as f32, p.y as f32, p.z as f32]).collect();
}

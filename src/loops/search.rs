//! Loop search over keyframes while a sequence streams in: every few frames the scan becomes a
//! keyframe, Scan Context's ring keys pick the nearest older keyframes, and the loop detector
//! (Scan Context or OverlapNet) scores them; those that pass its threshold are loop candidates,
//! best first, for ICP to verify (a MIMO network's candidate is refused unverified when its
//! subnetworks disagree on it too much). Eligibility follows the OverlapNet demo's protocol
//! (DESIGN.md §5): skip the last 100 frames and anything under 50 m of travel.

use crate::error::Result;
use crate::graph::BackendConfig;
use crate::loops::detector::{Descriptor, LoopDetector, LoopMethod};
use crate::loops::scan_context::{RINGS, ScanContext, ring_key_distance};
use crate::overlapnet::Spread;
use crate::scan::{Pose, Scan};
use serde::Serialize;

/// Loop search settings; every default in one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoopSearchConfig {
    /// Every this many frames becomes a keyframe.
    pub keyframe_every: usize,
    /// Keyframes this recent (frames) are never candidates (OverlapNet demo: 100).
    pub skip_recent_frames: usize,
    /// Nor those reached with less travel than this since (OverlapNet demo: 50 m).
    pub min_travel_m: f64,
    /// Ring-key neighbours judged by the network per keyframe (ours: 10; Scan Context's own
    /// search also judges the ten nearest ring keys).
    pub candidates: usize,
    /// Passing candidates verified per keyframe, best first, until one is accepted (ours: 3): a
    /// place that resembles the query better than the true revisit no longer hides it.
    pub verify_at_most: usize,
    /// Predicted overlap above which OverlapNet's best candidate is a loop (OverlapNet demo: 0.3).
    pub accept_overlap: f32,
    /// Scan Context distance below which a candidate is proposed (permissive, ours: 0.6; ICP
    /// verifies). Revisits driven the other way, a lane over, score 0.50-0.53.
    pub accept_scan_context_distance: f32,
    /// MIMO OverlapNet's subnetworks may disagree this much on a candidate before it is refused
    /// unverified.
    pub gate: SpreadGate,
    /// The odometry prior: an older keyframe whose estimated position lies within this many
    /// metres of the query's, plus `prior_drift_fraction` of the travel between them, is scored
    /// whatever its ring key (ours: 10 m, a revisit's 8 m and a lane).
    pub prior_radius_m: f64,
    /// How much of the travel between two keyframes the odometry may have drifted: the pose
    /// graph's drift gate ([`BackendConfig::drift_fraction`]), so the two agree on what is reachable.
    pub prior_drift_fraction: f64,
    /// Keyframes inside the prior scored at most per query, nearest first.
    pub prior_candidates: usize,
    /// A candidate outside the prior needs a score this much above the detector's threshold:
    /// a place the odometry cannot have drifted to needs more evidence.
    pub outside_prior_margin: f32,
}

/// The most a MIMO network's subnetworks may disagree on a loop candidate: past either limit the
/// candidate is refused before ICP runs, since a false loop bends the whole map. The defaults were
/// chosen on the simulated validation worlds 900 and 901 (`scripts/choose-mimo-gate.py`: of the
/// pairs the search would propose, the limits refusing the most false loops while keeping 90 %
/// of the true ones; models/overlapnet-mimo.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpreadGate {
    /// Largest standard deviation of the subnetworks' overlaps.
    pub max_overlap: f32,
    /// Largest circular standard deviation of their yaws, degrees.
    pub max_yaw_deg: f32,
}

impl Default for SpreadGate {
    fn default() -> Self {
        Self {
            max_overlap: 0.04,
            max_yaw_deg: 25.0,
        }
    }
}

impl SpreadGate {
    /// True when the subnetworks disagree too much on a candidate (never for a detector that
    /// gives no spread).
    pub fn refuses(&self, spread: Option<Spread>) -> bool {
        spread.is_some_and(|s| s.overlap > self.max_overlap || s.yaw_deg > self.max_yaw_deg)
    }
}

impl Default for LoopSearchConfig {
    fn default() -> Self {
        Self {
            keyframe_every: 10,
            skip_recent_frames: 100,
            min_travel_m: 50.0,
            candidates: 10,
            verify_at_most: 3,
            accept_overlap: 0.3,
            accept_scan_context_distance: 0.6,
            gate: SpreadGate::default(),
            prior_radius_m: 10.0,
            prior_drift_fraction: BackendConfig::default().drift_fraction,
            prior_candidates: 10,
            outside_prior_margin: 0.15,
        }
    }
}

/// A keyframe that comes back to a place an older keyframe saw (by ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Revisit {
    /// The revisiting keyframe's frame number.
    pub frame: usize,
    /// The nearest eligible older keyframe.
    pub nearest: usize,
    /// Their distance in ground truth, metres.
    pub distance_m: f64,
}

/// A loop the search found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoopCandidate {
    /// Frame of the query keyframe.
    pub query: usize,
    /// Frame of the matched older keyframe.
    pub reference: usize,
    /// Predicted overlap.
    pub overlap: f32,
    /// Predicted yaw of the reference relative to the query, degrees.
    pub yaw_deg: f32,
    /// Distance between the two keyframes' ground-truth positions, metres, when known.
    pub gt_distance_m: Option<f64>,
    /// How far a MIMO network's subnetworks disagree on the pair.
    pub spread: Option<Spread>,
    /// The spread gate refused the candidate: it is not verified.
    pub gated: bool,
}

struct Keyframe {
    frame: usize,
    travel_m: f64,
    /// Estimated position when it was added (the odometry's).
    position: nalgebra::Vector3<f64>,
    ring_key: [f32; RINGS],
    descriptor: Descriptor,
    gt_position: Option<nalgebra::Vector3<f64>>,
}

/// The search's state: the keyframes so far.
pub struct LoopSearch {
    config: LoopSearchConfig,
    detector: LoopDetector,
    keyframes: Vec<Keyframe>,
    travel_m: f64,
    last_position: Option<nalgebra::Vector3<f64>>,
    last_judged: Option<LoopCandidate>,
    /// The latest keyframe's Scan Context (the others keep only its ring key).
    latest_scan_context: Option<ScanContext>,
}

impl LoopSearch {
    /// A search judging candidates with `detector`.
    pub fn new(config: LoopSearchConfig, detector: LoopDetector) -> Self {
        Self {
            config,
            detector,
            keyframes: Vec::new(),
            travel_m: 0.0,
            last_position: None,
            last_judged: None,
            latest_scan_context: None,
        }
    }

    /// True when `frame` becomes a keyframe (its scan must then be passed to [`LoopSearch::add`]).
    pub fn is_keyframe(&self, frame: usize) -> bool {
        frame.is_multiple_of(self.config.keyframe_every.max(1))
    }

    /// Feeds one frame's estimated pose, and its scan when it is a keyframe; returns the loops
    /// the keyframe may close, best first (at most `verify_at_most`; empty when none passes).
    pub fn add(&mut self, frame: usize, pose: &Pose, scan: Option<&Scan>) -> Result<Vec<LoopCandidate>> {
        let position = pose.translation.vector;
        if let Some(last) = self.last_position {
            self.travel_m += (position - last).norm();
        }
        self.last_position = Some(position);
        let Some(scan) = scan.filter(|_| self.is_keyframe(frame)) else {
            return Ok(Vec::new());
        };
        let descriptor = self
            .detector
            .describe(std::slice::from_ref(scan))?
            .pop()
            .expect("one descriptor per scan");
        // Scan Context's ring keys pick the candidates whatever the detector; its descriptor is
        // computed once.
        let scan_context = match &descriptor {
            Descriptor::ScanContext(sc) | Descriptor::Fused(sc, _) => sc.clone(),
            Descriptor::OverlapNet(_) => ScanContext::new(&scan.points),
        };
        let keyframe = Keyframe {
            frame,
            travel_m: self.travel_m,
            position,
            ring_key: scan_context.ring_key,
            descriptor,
            gt_position: scan.gt_pose.map(|p| p.translation.vector),
        };
        let found = self.scored_candidates(&keyframe)?;
        self.keyframes.push(keyframe);
        self.latest_scan_context = Some(scan_context);
        Ok(found)
    }

    /// The latest keyframe's frame, Scan Context and descriptor.
    pub fn latest(&self) -> Option<(usize, &ScanContext, &Descriptor)> {
        let k = self.keyframes.last()?;
        Some((k.frame, self.latest_scan_context.as_ref()?, &k.descriptor))
    }

    /// The detector judging candidates.
    pub fn detector(&self) -> &LoopDetector {
        &self.detector
    }

    /// Score above which the detector's verdict makes a candidate.
    pub fn threshold(&self) -> f32 {
        match self.detector.method() {
            LoopMethod::OverlapNet | LoopMethod::OverlapNetMimo => self.config.accept_overlap,
            LoopMethod::ScanContext => 1.0 - self.config.accept_scan_context_distance,
            LoopMethod::Fused => (1.0 - self.config.accept_scan_context_distance) * self.config.accept_overlap,
        }
    }

    /// The best-scoring older keyframe the latest keyframe was compared with, whether or not it
    /// passed the threshold (for showing the detector's confidence and spread at every keyframe);
    /// `None` when no keyframe was eligible.
    pub fn last_judged(&self) -> Option<&LoopCandidate> {
        self.last_judged.as_ref()
    }

    /// Keyframes that revisit a place: an older keyframe the search may consider lies within
    /// `within_m` of them in ground truth. Empty without ground truth.
    pub fn revisits(&self, within_m: f64) -> Vec<Revisit> {
        let c = &self.config;
        self.keyframes
            .iter()
            .filter_map(|q| {
                let qp = q.gt_position?;
                self.keyframes
                    .iter()
                    .filter(|k| k.frame + c.skip_recent_frames <= q.frame && q.travel_m - k.travel_m >= c.min_travel_m)
                    .filter_map(|k| Some((k.frame, (k.gt_position? - qp).norm())))
                    .filter(|(_, d)| *d <= within_m)
                    .min_by(|a, b| a.1.total_cmp(&b.1))
                    .map(|(nearest, distance_m)| Revisit {
                        frame: q.frame,
                        nearest,
                        distance_m,
                    })
            })
            .collect()
    }

    /// Whether the odometry can have drifted far enough for `query` to be back at `k`.
    fn within_prior(&self, query: &Keyframe, k: &Keyframe) -> bool {
        let c = &self.config;
        let radius = c.prior_radius_m + c.prior_drift_fraction * (query.travel_m - k.travel_m);
        (query.position - k.position).norm() <= radius
    }

    /// The older keyframes worth scoring for `query`: the nearest by ring key, and those the
    /// odometry prior puts within reach, nearest first; each once, with whether the prior
    /// reaches it.
    fn pool<'a>(&'a self, query: &Keyframe) -> Vec<(&'a Keyframe, bool)> {
        let c = &self.config;
        let eligible: Vec<&Keyframe> = self
            .keyframes
            .iter()
            .filter(|k| k.frame + c.skip_recent_frames <= query.frame && query.travel_m - k.travel_m >= c.min_travel_m)
            .collect();
        let mut by_ring_key: Vec<(f32, &Keyframe)> = eligible
            .iter()
            .map(|k| (ring_key_distance(&k.ring_key, &query.ring_key), *k))
            .collect();
        by_ring_key.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut by_position: Vec<(f64, &Keyframe)> = eligible
            .iter()
            .filter(|k| self.within_prior(query, k))
            .map(|k| ((query.position - k.position).norm(), *k))
            .collect();
        by_position.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut pool: Vec<(&Keyframe, bool)> = by_ring_key
            .iter()
            .take(c.candidates.max(1))
            .map(|(_, k)| (*k, self.within_prior(query, k)))
            .collect();
        for (_, k) in by_position.into_iter().take(c.prior_candidates) {
            if !pool.iter().any(|(p, _)| p.frame == k.frame) {
                pool.push((k, true));
            }
        }
        pool
    }

    /// The pool's keyframes scored by the detector; those that pass (by a margin outside the
    /// odometry prior), best first, at most `verify_at_most`.
    fn scored_candidates(&mut self, query: &Keyframe) -> Result<Vec<LoopCandidate>> {
        self.last_judged = None;
        let pool = self.pool(query);
        if pool.is_empty() {
            return Ok(Vec::new());
        }
        let c = &self.config;
        let pairs: Vec<(&Descriptor, &Descriptor)> =
            pool.iter().map(|(k, _)| (&query.descriptor, &k.descriptor)).collect();
        let verdicts = self.detector.compare(&pairs)?;
        let threshold = self.threshold();
        let mut ranked: Vec<(f32, LoopCandidate)> = verdicts
            .iter()
            .zip(&pool)
            .filter(|(v, (_, reachable))| *reachable || v.score > threshold + c.outside_prior_margin)
            .map(|(v, (k, _))| {
                let candidate = LoopCandidate {
                    query: query.frame,
                    reference: k.frame,
                    overlap: v.overlap.unwrap_or(v.score),
                    yaw_deg: v.yaw_deg,
                    gt_distance_m: query.gt_position.zip(k.gt_position).map(|(a, b)| (a - b).norm()),
                    spread: v.spread,
                    gated: c.gate.refuses(v.spread),
                };
                (v.score, candidate)
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.last_judged = ranked.first().map(|(_, c)| *c);
        Ok(ranked
            .into_iter()
            .take_while(|(score, _)| *score > threshold)
            .take(c.verify_at_most.max(1))
            .map(|(_, c)| c)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cylinder of points at `radius_m` around the sensor, from 1 m below it to 3 m above.
    fn cylinder(index: usize, radius_m: f32) -> Scan {
        let points: Vec<[f32; 3]> = (0..3600)
            .map(|i| {
                let a = (i % 360) as f32 * std::f32::consts::PI / 180.0;
                [radius_m * a.cos(), radius_m * a.sin(), (i / 360) as f32 * 0.4 - 1.0]
            })
            .collect();
        Scan {
            index,
            intensity: vec![0.5; points.len()],
            points,
            ..Default::default()
        }
    }

    fn at(x: f64, y: f64) -> Pose {
        Pose::new(nalgebra::Vector3::new(x, y, 0.0), nalgebra::Vector3::zeros())
    }

    #[test]
    fn the_odometry_prior_scores_a_keyframe_within_reach_whatever_its_ring_key() {
        let config = LoopSearchConfig {
            keyframe_every: 1,
            skip_recent_frames: 0,
            min_travel_m: 0.0,
            candidates: 1,
            ..LoopSearchConfig::default()
        };
        let mut search = LoopSearch::new(config, LoopDetector::ScanContext);
        // Frame 0 sees a far wall where the drive starts; frame 1, 100 m away, a near one.
        search.add(0, &at(0.0, 0.0), Some(&cylinder(0, 30.0))).unwrap();
        search.add(1, &at(100.0, 0.0), Some(&cylinder(1, 10.0))).unwrap();
        // Back 5 m from the start after 195 m of travel, seeing a near wall like frame 1's.
        let query_scan = cylinder(2, 10.0);
        let sc = ScanContext::new(&query_scan.points);
        let query = Keyframe {
            frame: 2,
            travel_m: 195.0,
            position: nalgebra::Vector3::new(0.0, 5.0, 0.0),
            ring_key: sc.ring_key,
            descriptor: Descriptor::ScanContext(sc),
            gt_position: None,
        };
        let (start, far) = (&search.keyframes[0], &search.keyframes[1]);
        assert!(
            search.within_prior(&query, start),
            "5 m away, 10 m + 5 % of 195 m allowed"
        );
        assert!(!search.within_prior(&query, far), "100 m away after 95 m of travel");
        let pool: Vec<(usize, bool)> = search.pool(&query).iter().map(|(k, r)| (k.frame, *r)).collect();
        assert_eq!(
            pool,
            [(1, false), (0, true)],
            "the nearest ring key, then the keyframe the prior reaches"
        );
    }
}

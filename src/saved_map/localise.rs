//! Global relocalisation in a saved map, and tracking against it once localised.
//!
//! Before the fix, each keyframe of the new run is compared with every map keyframe: the
//! nearest ring keys are judged by the loop detector and the passing ones verified by ICP, as
//! loop candidates are. Each verified match is a hypothesis of where the run's local frame lies
//! in the map. A fix needs unambiguous evidence (see [`Localiser::add_evidence`]): matches of one
//! keyframe that disagree with each other are refused, and [`LocaliserConfig::agreeing_keyframes`]
//! keyframes in a row must put the local frame at the same place. After the fix, each keyframe is
//! verified against the map keyframes nearest its estimate, and each match becomes a loop to
//! the map in the pose graph.

use super::{PriorMap, StoredFeatures};
use crate::error::{Error, Result};
use crate::loops::detector::{Descriptor, LoopDetector};
use crate::loops::scan_context::{RINGS, ring_key_distance};
use crate::loops::verify::{KeyframeCloud, VerifyConfig, verify, verify_at};
use crate::overlapnet::{Features, OverlapNet};
use crate::scan::Pose;
use candle_core::Tensor;
use serde::Serialize;

/// Relocalisation settings; every default in one place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LocaliserConfig {
    /// Map keyframes judged per query keyframe before the fix: the nearest by ring key (ours: 10,
    /// as the loop search).
    pub candidates: usize,
    /// Passing candidates verified per query keyframe, best first (ours: 3): all of them, so
    /// that two places matching one scan are seen as ambiguous.
    pub verify_at_most: usize,
    /// Two hypotheses agree when they put the query keyframe within this distance, metres.
    pub agree_m: f64,
    /// And within this yaw, degrees.
    pub agree_deg: f64,
    /// Keyframes in a row whose hypotheses must agree before a fix (ours: 2: one verified match
    /// can be a look-alike place; two independent ones at the same place rarely are).
    pub agreeing_keyframes: usize,
    /// After the fix, map keyframes this close to a keyframe's estimate are verified, metres.
    pub track_radius_m: f64,
    /// At most this many of them, nearest first.
    pub track_candidates: usize,
}

impl Default for LocaliserConfig {
    fn default() -> Self {
        Self {
            candidates: 10,
            verify_at_most: 3,
            agree_m: 2.0,
            agree_deg: 5.0,
            agreeing_keyframes: 2,
            track_radius_m: 15.0,
            track_candidates: 2,
        }
    }
}

/// One verified match of a run keyframe with a map keyframe.
#[derive(Debug, Clone, Copy)]
pub struct Hypothesis {
    /// The run's keyframe (frame number).
    pub frame: usize,
    /// The map keyframe (index in the map).
    pub map_keyframe: usize,
    /// The run keyframe's pose in the map keyframe's frame, from ICP.
    pub transform: Pose,
    /// Where this match puts the run's local frame in the map frame.
    pub map_from_local: Pose,
    /// The run keyframe's pose in the map frame by this match.
    pub pose: Pose,
}

/// The declared fix.
#[derive(Debug, Clone)]
pub struct Fix {
    /// The run's local frame in the map frame.
    pub map_from_local: Pose,
    /// The agreeing matches, oldest first.
    pub evidence: Vec<Hypothesis>,
}

/// The map's keyframes as relocalisation compares them, with the settings it compares them by.
pub struct MapIndex {
    poses: Vec<Pose>,
    ring_keys: Vec<[f32; RINGS]>,
    descriptors: Vec<Descriptor>,
    clouds: Vec<KeyframeCloud>,
    config: LocaliserConfig,
    verify: VerifyConfig,
}

impl MapIndex {
    /// Indexes `map` for `detector` (whose descriptors the map must hold), to search by `config`
    /// and verify by `verify`.
    pub fn new(map: &PriorMap, detector: &LoopDetector, config: LocaliserConfig, verify: VerifyConfig) -> Result<Self> {
        let descriptors = map
            .keyframes
            .iter()
            .enumerate()
            .map(|(i, k)| match detector {
                LoopDetector::ScanContext => Ok(Descriptor::ScanContext(k.scan_context.clone())),
                LoopDetector::OverlapNet(net) | LoopDetector::Fused(net) => match &k.overlapnet {
                    Some(f) => features(f, net).map(|f| match detector {
                        LoopDetector::Fused(_) => Descriptor::Fused(k.scan_context.clone(), f),
                        _ => Descriptor::OverlapNet(f),
                    }),
                    None => Err(Error::Usage(format!(
                        "map keyframe {i} has no OverlapNet features (its session ran Scan Context): \
                         localise in this map with --loop-detector scancontext"
                    ))),
                },
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            poses: map.keyframes.iter().map(|k| k.pose).collect(),
            ring_keys: map.keyframes.iter().map(|k| k.scan_context.ring_key).collect(),
            descriptors,
            clouds: map
                .keyframes
                .iter()
                .map(|k| KeyframeCloud::new(&k.points, &verify))
                .collect(),
            config,
            verify,
        })
    }

    /// Map keyframes.
    pub fn len(&self) -> usize {
        self.poses.len()
    }

    /// True for a map without keyframes.
    pub fn is_empty(&self) -> bool {
        self.poses.is_empty()
    }

    /// Verified matches of a run keyframe (`query`: its ring key, descriptor and cloud; at
    /// `local_pose` in the run's local frame) among the whole map: ring-key neighbours judged by
    /// `detector`, those scoring above `threshold` verified by ICP, best first.
    pub fn search(
        &self,
        frame: usize,
        query: (&[f32; RINGS], &Descriptor, &KeyframeCloud),
        local_pose: &Pose,
        detector: &LoopDetector,
        threshold: f32,
    ) -> Result<Vec<Hypothesis>> {
        let (ring_key, descriptor, cloud) = query;
        let mut nearest: Vec<(f32, usize)> = self
            .ring_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (ring_key_distance(k, ring_key), i))
            .collect();
        nearest.sort_by(|a, b| a.0.total_cmp(&b.0));
        nearest.truncate(self.config.candidates.max(1));
        let pairs: Vec<(&Descriptor, &Descriptor)> = nearest
            .iter()
            .map(|&(_, i)| (descriptor, &self.descriptors[i]))
            .collect();
        let verdicts = detector.compare(&pairs)?;
        let mut ranked: Vec<(f32, f32, usize)> = verdicts
            .iter()
            .zip(&nearest)
            .filter(|(v, _)| v.score > threshold)
            .map(|(v, &(_, i))| (v.score, v.yaw_deg, i))
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        Ok(ranked
            .into_iter()
            .take(self.config.verify_at_most.max(1))
            .filter_map(|(_, yaw_deg, i)| {
                let v = verify(cloud, &self.clouds[i], yaw_deg, &self.verify);
                v.accepted.then(|| self.hypothesis(frame, i, v.transform, local_pose))
            })
            .collect())
    }

    /// A verified match of a run keyframe whose map-frame estimate is `estimate` with a map
    /// keyframe near it, nearest first; `None` when none verifies.
    pub fn track(&self, frame: usize, cloud: &KeyframeCloud, estimate: &Pose) -> Option<Hypothesis> {
        let mut near: Vec<(f64, usize)> = self
            .poses
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.translation.vector - estimate.translation.vector).norm(), i))
            .filter(|(d, _)| *d <= self.config.track_radius_m)
            .collect();
        near.sort_by(|a, b| a.0.total_cmp(&b.0));
        near.into_iter().take(self.config.track_candidates).find_map(|(_, i)| {
            let v = verify_at(cloud, &self.clouds[i], self.poses[i].inverse() * estimate, &self.verify);
            v.accepted
                .then(|| self.hypothesis(frame, i, v.transform, &Pose::identity()))
        })
    }

    fn hypothesis(&self, frame: usize, i: usize, transform: Pose, local_pose: &Pose) -> Hypothesis {
        let pose = self.poses[i] * transform;
        Hypothesis {
            frame,
            map_keyframe: i,
            transform,
            map_from_local: pose * local_pose.inverse(),
            pose,
        }
    }
}

/// Stored features as `net`'s descriptor; refused when `net` makes volumes of another shape
/// (the map was saved with other weights).
fn features(f: &StoredFeatures, net: &OverlapNet) -> Result<Features> {
    let shape = (net.config.feature_columns(), net.config.features());
    if f.shape != shape || f.half_turn.is_some() != net.config.needs_half_turn() {
        return Err(Error::Usage(format!(
            "the map's OverlapNet features are {}x{}{}, this network's are {}x{}{}: \
             localise with the weights the map was saved with (--weights)",
            f.shape.0,
            f.shape.1,
            if f.half_turn.is_some() { " with a half turn" } else { "" },
            shape.0,
            shape.1,
            if net.config.needs_half_turn() {
                " with a half turn"
            } else {
                ""
            },
        )));
    }
    let tensor = |v: &Vec<f32>| {
        Tensor::from_slice(v, f.shape, net.device()).map_err(|e| Error::Usage(format!("OverlapNet features: {e}")))
    };
    Ok(Features {
        volume: tensor(&f.volume)?,
        half_turn: f.half_turn.as_ref().map(tensor).transpose()?,
    })
}

/// A descriptor as a map stores it: OverlapNet's features (`None` for Scan Context).
pub fn stored_features(descriptor: &Descriptor) -> Result<Option<StoredFeatures>> {
    let (Descriptor::OverlapNet(f) | Descriptor::Fused(_, f)) = descriptor else {
        return Ok(None);
    };
    let flat = |t: &Tensor| -> Result<Vec<f32>> {
        t.flatten_all()
            .and_then(|t| t.to_dtype(candle_core::DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| Error::Usage(format!("OverlapNet features: {e}")))
    };
    let (n, c) = f
        .volume
        .dims2()
        .map_err(|e| Error::Usage(format!("OverlapNet features: {e}")))?;
    Ok(Some(StoredFeatures {
        shape: (n, c),
        volume: flat(&f.volume)?,
        half_turn: f.half_turn.as_ref().map(flat).transpose()?,
    }))
}

/// The agreement rule over a run's hypotheses, and the fix it declares.
#[derive(Debug, Default)]
pub struct Localiser {
    config: LocaliserConfig,
    /// Agreeing hypotheses of the last keyframes with a match, oldest first.
    evidence: Vec<Hypothesis>,
    fix: Option<Fix>,
    /// Verified hypotheses so far.
    pub hypotheses: usize,
    /// Keyframes whose matches disagreed with each other.
    pub ambiguous: usize,
    /// Times a keyframe's match contradicted the evidence before it, which was dropped.
    pub contradicted: usize,
}

impl Localiser {
    /// A localiser with no evidence yet.
    pub fn new(config: LocaliserConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Weighs one keyframe's verified matches; returns the fix when this keyframe completes the
    /// evidence. A keyframe without a match changes nothing (a place the map does not cover, or
    /// one the detector missed). Matches of one keyframe that disagree mean the place is
    /// ambiguous: the evidence so far is dropped too. A match that disagrees with the evidence
    /// before it starts the evidence afresh.
    pub fn add_evidence(&mut self, found: &[Hypothesis]) -> Option<&Fix> {
        if self.fix.is_some() || found.is_empty() {
            return None;
        }
        self.hypotheses += found.len();
        let best = found[0];
        if found[1..].iter().any(|h| !self.agree(h, &best)) {
            self.ambiguous += 1;
            self.evidence.clear();
            return None;
        }
        if let Some(last) = self.evidence.last()
            && !self.agree(last, &best)
        {
            self.contradicted += 1;
            self.evidence.clear();
        }
        self.evidence.push(best);
        if self.evidence.len() < self.config.agreeing_keyframes.max(1) {
            return None;
        }
        self.fix = Some(Fix {
            map_from_local: best.map_from_local,
            evidence: std::mem::take(&mut self.evidence),
        });
        self.fix.as_ref()
    }

    /// True when `a` and `b` put `b`'s keyframe at the same place in the map: its pose by `a`'s
    /// local frame against by `b`'s.
    fn agree(&self, a: &Hypothesis, b: &Hypothesis) -> bool {
        let local = b.map_from_local.inverse() * b.pose;
        let d = (a.map_from_local * local).inverse() * b.pose;
        d.translation.vector.norm() <= self.config.agree_m && d.rotation.angle().to_degrees() <= self.config.agree_deg
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn hypothesis(frame: usize, x: f64, yaw_deg: f64) -> Hypothesis {
        let map_from_local = Pose::new(Vector3::new(x, 0.0, 0.0), Vector3::new(0.0, 0.0, yaw_deg.to_radians()));
        let local = Pose::new(Vector3::new(frame as f64, 0.0, 0.0), Vector3::zeros());
        Hypothesis {
            frame,
            map_keyframe: 0,
            transform: Pose::identity(),
            map_from_local,
            pose: map_from_local * local,
        }
    }

    #[test]
    fn features_of_another_network_shape_are_refused_with_the_fix_named() {
        let net = OverlapNet::shipped().unwrap();
        let shape = (net.config.feature_columns(), net.config.features());
        let len = shape.0 * shape.1;
        let half_turn = net.config.needs_half_turn().then(|| vec![0.0; len]);
        let fits = StoredFeatures {
            shape,
            volume: vec![0.0; len],
            half_turn: half_turn.clone(),
        };
        assert!(features(&fits, &net).is_ok());
        let other = StoredFeatures {
            shape: (shape.0, shape.1 * 2),
            volume: vec![0.0; 2 * len],
            half_turn: half_turn.map(|_| vec![0.0; 2 * len]),
        };
        let err = features(&other, &net).unwrap_err().to_string();
        assert!(err.contains("--weights"), "{err}");
    }

    #[test]
    fn a_fix_needs_two_keyframes_in_a_row_that_agree_and_no_ambiguity() {
        let mut l = Localiser::new(LocaliserConfig::default());
        assert!(
            l.add_evidence(&[hypothesis(10, 100.0, 0.0)]).is_none(),
            "one match is not enough"
        );
        assert!(
            l.add_evidence(&[]).is_none(),
            "a keyframe without a match changes nothing"
        );
        // A contradicting match restarts the evidence.
        assert!(l.add_evidence(&[hypothesis(20, 140.0, 0.0)]).is_none());
        assert_eq!(l.contradicted, 1);
        // Two places for one keyframe: ambiguous, and the evidence is dropped.
        assert!(
            l.add_evidence(&[hypothesis(30, 140.5, 0.5), hypothesis(30, 60.0, 0.0)])
                .is_none()
        );
        assert_eq!(l.ambiguous, 1);
        assert!(l.add_evidence(&[hypothesis(40, 140.5, 1.0)]).is_none());
        let fix = l
            .add_evidence(&[hypothesis(50, 139.8, -1.0)])
            .expect("two in a row agree");
        assert_eq!(fix.evidence.iter().map(|h| h.frame).collect::<Vec<_>>(), [40, 50]);
        assert!((fix.map_from_local.translation.x - 139.8).abs() < 1e-9);
        // A far turn disagrees even at the same place.
        let mut l = Localiser::new(LocaliserConfig::default());
        l.add_evidence(&[hypothesis(10, 100.0, 0.0)]);
        assert!(l.add_evidence(&[hypothesis(20, 100.0, 20.0)]).is_none());
        assert_eq!(l.contradicted, 1);
    }
}

//! A run's part in saved maps, on the loop thread: localising in a prior map (`--map`),
//! tracking against it once localised, and keeping the keyframes a saved map needs
//! (`--save-map`).

use super::global_map::thin;
use super::sink::EstimateSink;
use crate::error::{Error, Result};
use crate::graph::Backend;
use crate::loops::detector::LoopDetector;
use crate::loops::scan_context::ScanContext;
use crate::loops::search::LoopSearch;
use crate::loops::verify::{KeyframeCloud, VerifyConfig};
use crate::saved_map::localise::{MapIndex, stored_features};
use crate::saved_map::{
    EdgeKind, Localiser, LocaliserConfig, MapEdge, MapHeader, MapKeyframe, PriorMap, SensorSignature,
};
use crate::scan::{Pose, Scan};
use serde::Serialize;
use std::sync::Arc;

/// What a run does with saved maps.
#[derive(Debug, Clone)]
pub struct SavedMapJob {
    /// The map to start in (`--map`), already read and checked.
    pub prior: Option<PriorMap>,
    /// Keep the keyframes for `--save-map`.
    pub save: bool,
    /// Voxel size saved keyframe clouds are thinned to, metres.
    pub voxel_m: f64,
    /// Relocalisation settings.
    pub localiser: LocaliserConfig,
    /// The run's sensor, recorded in a saved map.
    pub sensor: SensorSignature,
    /// Pure localisation in the prior map (`--freeze`): the map is never changed, and the run
    /// closes no loops within itself.
    pub freeze: bool,
}

/// How localisation in a prior map went (`localisation` in `metrics.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocalisationReport {
    /// Keyframes in the prior map.
    pub map_keyframes: usize,
    /// A fix was declared.
    pub localised: bool,
    /// Frame number of the keyframe that completed the evidence.
    pub fix_frame: Option<usize>,
    /// Frames from the run's first to the fix, that one included.
    pub frames_to_fix: Option<usize>,
    /// Sensor time from the run's first frame to the fix, seconds.
    pub seconds_to_fix: Option<f64>,
    /// Distance driven before the fix (odometry), metres.
    pub metres_to_fix: Option<f64>,
    /// Error of the fix, metres: the fix keyframe's pose relative to the map keyframe it
    /// matched, against the same in ground truth, when the fix was declared (what a robot working
    /// in the map sees; null without ground truth).
    pub fix_error_m: Option<f64>,
    /// Its yaw error, degrees.
    pub fix_error_deg: Option<f64>,
    /// The fix keyframe's position error against ground truth in the map frame, metres: the
    /// map's own error there included.
    pub fix_error_world_m: Option<f64>,
    /// Verified matches with map keyframes before the fix.
    pub hypotheses: usize,
    /// Keyframes whose matches disagreed with each other (refused as ambiguous).
    pub ambiguous_keyframes: usize,
    /// Matches that contradicted the evidence before them.
    pub contradicted: usize,
    /// Loops to map keyframes closed after the fix.
    pub map_loops: usize,
    /// Position error RMSE in the map frame, without alignment, from the fix to the end, metres.
    pub ate_map_after_fix_m: Option<f64>,
    /// The same over every frame (the frames before the fix moved into the map frame with it).
    pub ate_map_m: Option<f64>,
    /// Position error relative to the nearest map keyframe, against the same in ground truth,
    /// RMSE from the fix to the end, metres (the map's own error left out).
    pub error_to_map_m: Option<f64>,
}

/// A run keyframe kept for saving.
struct KeptKeyframe {
    frame: usize,
    gt: Option<Pose>,
    cloud: Scan,
    scan_context: ScanContext,
    overlapnet: Option<crate::saved_map::StoredFeatures>,
}

/// One frame of a run in a prior map, as the localisation report needs it.
struct FrameRecord {
    frame: usize,
    timestamp: f64,
    gt: Option<Pose>,
}

/// The run's state with respect to saved maps.
pub struct SavedMapSession {
    job: SavedMapJob,
    index: Option<MapIndex>,
    localiser: Localiser,
    kept: Vec<KeptKeyframe>,
    /// Every frame, in a prior map (for timing the fix and scoring in the map frame).
    frames: Vec<FrameRecord>,
    /// The first frame's ground truth (the origin of a map this run starts).
    first_gt: Option<Option<Pose>>,
    report: LocalisationReport,
}

impl SavedMapSession {
    /// Indexes the prior map (if any) for the run's detector.
    pub fn new(mut job: SavedMapJob, detector: &LoopDetector, verify: &VerifyConfig) -> Result<Self> {
        let index = job
            .prior
            .as_ref()
            .map(|m| MapIndex::new(m, detector, job.localiser, *verify))
            .transpose()?;
        if let Some(prior) = job.prior.as_mut().filter(|_| !job.save) {
            // The index holds what localising needs; the clouds and features are kept only to
            // be written again (a 0.5 m cloud is about 0.25 MB a keyframe in memory).
            drop_clouds(prior);
        }
        let report = LocalisationReport {
            map_keyframes: index.as_ref().map_or(0, MapIndex::len),
            ..Default::default()
        };
        Ok(Self {
            localiser: Localiser::new(job.localiser),
            job,
            index,
            kept: Vec::new(),
            frames: Vec::new(),
            first_gt: None,
            report,
        })
    }

    /// The prior map's keyframe poses: the fixed nodes the pose graph starts with.
    pub fn prior_poses(&self) -> Vec<Pose> {
        self.job
            .prior
            .as_ref()
            .map_or_else(Vec::new, |m| m.keyframes.iter().map(|k| k.pose).collect())
    }

    /// Records one frame (for timing the fix and scoring in the map frame).
    pub fn frame(&mut self, frame: usize, timestamp: f64, gt: Option<Pose>) {
        self.first_gt.get_or_insert(gt);
        if self.index.is_some() {
            self.frames.push(FrameRecord { frame, timestamp, gt });
        }
    }

    /// Handles one keyframe after the loop search described it: localises or tracks in the
    /// prior map and keeps it for saving.
    pub fn keyframe(
        &mut self,
        scan: &Scan,
        cloud: &KeyframeCloud,
        search: &LoopSearch,
        backend: &mut Backend,
        sink: Option<&Arc<dyn EstimateSink>>,
    ) -> Result<()> {
        let (frame, scan_context, descriptor) = search.latest().expect("the keyframe was just described");
        if let Some(index) = &self.index {
            if backend.anchored() {
                self.track(frame, cloud, backend, sink)?;
            } else {
                let local = backend.keyframe_pose(frame).expect("keyframes are nodes");
                let query = (&scan_context.ring_key, descriptor, cloud);
                let found = index.search(frame, query, &local, search.detector(), search.threshold())?;
                if let Some(sink) = sink {
                    sink.hypotheses(&found.iter().map(|h| h.pose).collect::<Vec<_>>());
                }
                if let Some(fix) = self.localiser.add_evidence(&found) {
                    let matches: Vec<_> = fix
                        .evidence
                        .iter()
                        .map(|h| (h.frame, h.map_keyframe, h.transform))
                        .collect();
                    backend.anchor(&fix.map_from_local, &matches).map_err(graph_error)?;
                    let matched = fix.evidence.last().map(|h| h.map_keyframe);
                    self.record_fix(frame, matched, backend);
                    tell_localised(backend, frame, sink);
                }
            }
        }
        if self.job.save {
            self.kept.push(KeptKeyframe {
                frame,
                gt: scan.gt_pose,
                cloud: thin(scan, self.job.voxel_m),
                scan_context: scan_context.clone(),
                overlapnet: stored_features(descriptor)?,
            });
        }
        Ok(())
    }

    /// After the fix: verifies the keyframe against the map keyframes near its estimate and
    /// closes a loop to the map when one verifies.
    fn track(
        &mut self,
        frame: usize,
        cloud: &KeyframeCloud,
        backend: &mut Backend,
        sink: Option<&Arc<dyn EstimateSink>>,
    ) -> Result<()> {
        let Some(index) = &self.index else { return Ok(()) };
        let estimate = backend.keyframe_pose(frame).expect("keyframes are nodes");
        let Some(h) = index.track(frame, cloud, &estimate) else {
            return Ok(());
        };
        if backend
            .add_prior_loop(frame, h.map_keyframe, h.transform)
            .map_err(graph_error)?
        {
            self.report.map_loops += 1;
            tell_localised(backend, frame, sink);
        }
        Ok(())
    }

    fn record_fix(&mut self, frame: usize, matched: Option<usize>, backend: &Backend) {
        let origin = self.ground_truth_origin();
        let at = self.frames.iter().position(|f| f.frame == frame);
        let truth = at.and_then(|i| self.frames[i].gt);
        let true_pose = truth.zip(origin).map(|(gt, o)| o.inverse() * gt);
        if let (Some(pose), Some(gt), Some(k)) = (backend.keyframe_pose(frame), true_pose, matched)
            && let Some(err) = self.relative_error(k, &pose, &gt)
        {
            self.report.fix_error_m = Some(err.translation.vector.norm());
            self.report.fix_error_deg = Some(yaw_deg(&err).abs());
        }
        let r = &mut self.report;
        r.localised = true;
        r.fix_frame = Some(frame);
        r.frames_to_fix = at.map(|i| i + 1);
        r.seconds_to_fix = at.map(|i| self.frames[i].timestamp - self.frames[0].timestamp);
        r.metres_to_fix = Some(backend.travelled_m());
        if let (Some(gt), Some(pose)) = (true_pose, backend.keyframe_pose(frame)) {
            r.fix_error_world_m = Some((gt.translation.vector - pose.translation.vector).norm());
        }
    }

    /// A pose's error relative to prior-map keyframe `k`: its estimated pose relative to the
    /// keyframe's against the same in ground truth (`None` when the map has no ground truth).
    fn relative_error(&self, k: usize, pose: &Pose, truth: &Pose) -> Option<Pose> {
        let keyframe = &self.job.prior.as_ref()?.keyframes[k];
        let gt = keyframe.ground_truth?;
        Some((keyframe.pose.inverse() * pose).inverse() * (gt.inverse() * truth))
    }

    /// The prior-map keyframe nearest a map-frame position.
    fn nearest_map_keyframe(&self, pose: &Pose) -> Option<usize> {
        let map = self.job.prior.as_ref()?;
        (0..map.keyframes.len()).min_by(|&a, &b| {
            let d = |i: usize| (map.keyframes[i].pose.translation.vector - pose.translation.vector).norm();
            d(a).total_cmp(&d(b))
        })
    }

    /// The ground-truth pose of the map frame: the prior's, or this run's first frame's.
    fn ground_truth_origin(&self) -> Option<Pose> {
        match &self.job.prior {
            Some(m) => m
                .header
                .ground_truth_origin
                .map(|r| crate::io::poses::pose_from_3x4(&r)),
            None => self.first_gt.flatten(),
        }
    }

    /// The localisation report (with a prior map) and the map to save (with `--save-map`), given
    /// the run's final poses, one per frame.
    pub fn finish(
        mut self,
        backend: &Backend,
        detector: &LoopDetector,
        poses: &[Pose],
    ) -> (Option<LocalisationReport>, Option<PriorMap>) {
        self.report.hypotheses = self.localiser.hypotheses;
        self.report.ambiguous_keyframes = self.localiser.ambiguous;
        self.report.contradicted = self.localiser.contradicted;
        if let (true, Some(origin)) = (self.report.localised, self.ground_truth_origin()) {
            let fix_at = self.report.frames_to_fix.map_or(0, |n| n - 1);
            let errors: Vec<Option<f64>> = self
                .frames
                .iter()
                .zip(poses)
                .map(|(f, p)| {
                    f.gt.map(|gt| ((origin.inverse() * gt).translation.vector - p.translation.vector).norm())
                })
                .collect();
            self.report.ate_map_m = rmse(&errors);
            self.report.ate_map_after_fix_m = rmse(&errors[fix_at..]);
            let to_map: Vec<Option<f64>> = self.frames[fix_at..]
                .iter()
                .zip(&poses[fix_at..])
                .map(|(f, p)| {
                    let truth = origin.inverse() * f.gt?;
                    let k = self.nearest_map_keyframe(p)?;
                    Some(self.relative_error(k, p, &truth)?.translation.vector.norm())
                })
                .collect();
            self.report.error_to_map_m = rmse(&to_map);
        }
        if self.index.is_some() && !self.report.localised {
            log::warn!(
                "never localised in the prior map ({} hypotheses, {} ambiguous keyframes): poses stay in the run's own frame",
                self.report.hypotheses,
                self.report.ambiguous_keyframes
            );
        }
        let report = self.index.is_some().then(|| self.report.clone());
        let saved = self.job.save.then(|| self.saved_map(backend, detector));
        (report, saved)
    }

    /// Whether the run localises in its prior map without changing it.
    pub fn frozen(&self) -> bool {
        self.job.freeze
    }

    /// The map to save as it stands now (with `--save-map`; `None` otherwise, or when frozen).
    pub fn snapshot(&self, backend: &Backend, detector: &LoopDetector) -> Option<PriorMap> {
        (self.job.save && !self.job.freeze).then(|| self.saved_map(backend, detector))
    }

    /// The prior map (if any) with this run's keyframes added at their final poses: they join a
    /// prior map only once localised in it.
    fn saved_map(&self, backend: &Backend, detector: &LoopDetector) -> PriorMap {
        let mut map = match &self.job.prior {
            Some(prior) => prior.clone(),
            None => PriorMap {
                header: MapHeader {
                    sensor: self.job.sensor.clone(),
                    detector: detector.method(),
                    voxel_m: self.job.voxel_m,
                    sessions: 0,
                    travelled_m: 0.0,
                    ground_truth_origin: self.ground_truth_origin().map(|p| pose_to_3x4(&p)),
                },
                keyframes: Vec::new(),
                edges: Vec::new(),
            },
        };
        if self.job.prior.is_some() && !backend.anchored() {
            log::warn!("never localised in the prior map: the map is saved without this run's keyframes");
            return map;
        }
        let origin = self.ground_truth_origin();
        let session = map.header.sessions;
        map.header.sessions += 1;
        map.header.travelled_m += backend.travelled_m();
        let first = map.keyframes.len();
        let mut saved_index = std::collections::HashMap::new();
        for k in &self.kept {
            let Some(pose) = backend.keyframe_pose(k.frame) else {
                continue;
            };
            saved_index.insert(k.frame, map.keyframes.len() as u32);
            map.keyframes.push(MapKeyframe {
                session,
                frame: k.frame as u32,
                pose,
                points: k.cloud.points.clone(),
                intensity: k.cloud.intensity.clone(),
                scan_context: k.scan_context.clone(),
                overlapnet: k.overlapnet.clone(),
                ground_truth: k.gt.zip(origin).map(|(g, o)| o.inverse() * g),
            });
        }
        // The run's graph edges between kept keyframes, and to the prior's keyframes.
        let prior = backend.prior_nodes();
        let keyframe_of = |node: usize| -> Option<u32> {
            if node < prior {
                return Some(node as u32);
            }
            saved_index.get(&backend.node_frames()[node - prior]).copied()
        };
        for e in backend.graph().edges() {
            if let (Some(from), Some(to)) = (keyframe_of(e.from), keyframe_of(e.to)) {
                map.edges.push(MapEdge {
                    from,
                    to,
                    measurement: e.measurement,
                    kind: if e.cauchy.is_some() {
                        EdgeKind::Loop
                    } else {
                        EdgeKind::Odometry
                    },
                });
            }
        }
        log::info!("map: {} keyframes added to {first}", map.keyframes.len() - first);
        map
    }
}

/// Drops `map`'s keyframe clouds and OverlapNet features (poses, Scan Context and ground
/// truth stay).
fn drop_clouds(map: &mut PriorMap) {
    for k in &mut map.keyframes {
        k.points = Vec::new();
        k.intensity = Vec::new();
        k.overlapnet = None;
    }
}

/// Tells the sinks the new correction and every frame's pose.
fn tell_localised(backend: &Backend, frame: usize, sink: Option<&Arc<dyn EstimateSink>>) {
    let Some(sink) = sink else { return };
    if let (Some(correction), Some(pose)) = (backend.map_from_odometry(), backend.keyframe_pose(frame)) {
        sink.localised(&correction, &pose);
    }
    sink.corrected(&backend.poses());
}

fn graph_error(e: crate::graph::GraphError) -> Error {
    Error::Usage(format!("pose graph: {e}"))
}

/// Yaw of a pose, degrees.
fn yaw_deg(p: &Pose) -> f64 {
    p.rotation.euler_angles().2.to_degrees()
}

fn rmse(errors: &[Option<f64>]) -> Option<f64> {
    let known: Vec<f64> = errors.iter().flatten().copied().collect();
    (!known.is_empty() && known.len() == errors.len())
        .then(|| (known.iter().map(|e| e * e).sum::<f64>() / known.len() as f64).sqrt())
}

/// The 12 row-major numbers of a pose's 3x4 `[R|t]`.
fn pose_to_3x4(p: &Pose) -> [f64; 12] {
    let m = p.to_homogeneous();
    std::array::from_fn(|i| m[(i / 4, i % 4)])
}

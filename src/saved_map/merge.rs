//! Independently saved maps made into one: their keyframes are searched against each other as
//! loop candidates are (Scan Context's nearest ring keys, the detector's verdict, ICP), the
//! verified matches between two maps must agree on where one map lies in the other, and one pose
//! graph over every map's keyframes — each map's own odometry and loop edges, and the
//! inter-map matches as loop edges — puts them in the anchor map's frame. Matches outside the
//! links' agreeing sets join as the solved maps come to explain them.
//!
//! ```text
//!  maps A (anchor), B, C → matches B↔A, C↔A, C↔B → agreeing links → every map reached from A?
//!       → initial placement along the links → joint pose graph (A's first keyframe fixed)
//!       → the matches the solved maps explain join, solved again, until none joins
//!       → one map: sessions renumbered, edges kept, inter-map edges added as loops
//! ```
//!
//! Maps that no agreeing link reaches from the anchor are refused, never placed by guess. Every
//! step runs in a fixed order on one thread, so the same maps give the same bytes.

use super::localise::{Hypothesis, LocaliserConfig, MapIndex};
use super::{EdgeKind, MapEdge, MapKeyframe, PriorMap};
use crate::error::{Error, Result};
use crate::graph::{BackendConfig, Edge, PoseGraph, SolverConfig, diagonal_information};
use crate::io::poses::pose_from_3x4;
use crate::loops::detector::{Descriptor, LoopDetector};
use crate::loops::search::LoopSearchConfig;
use crate::loops::verify::{KeyframeCloud, VerifyConfig};
use crate::scan::Pose;
use nalgebra::Matrix6;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;

/// Merge settings; every default in one place.
#[derive(Debug, Clone, Copy)]
pub struct MergeConfig {
    /// How each keyframe is searched for in another map (as relocalisation searches).
    pub search: LocaliserConfig,
    /// How a match is verified.
    pub verify: VerifyConfig,
    /// Verified matches (of distinct keyframes) that must agree before two maps are linked
    /// (ours: 2, as relocalisation's fix: one match can be a look-alike place, two independent
    /// ones putting the map at the same place rarely are).
    pub min_agreeing: usize,
    /// A match outside a link's agreeing set joins the graph once the solved maps explain it to
    /// within this, metres (ours: 2, the agreement the links were held to): the maps bend as
    /// matches join, which brings others within reach.
    pub gate_m: f64,
    /// And within this yaw, degrees (ours: 5).
    pub gate_deg: f64,
    /// Solve-and-gate rounds at most (ours: 10).
    pub rounds: usize,
    /// Disagreement an inter-map edge is robust to, metres (its Cauchy kernel's width; ours: 2,
    /// the gate).
    pub kernel_m: f64,
    /// Each map's own edges, weighted as the run's back-end weighted them; inter-map edges are
    /// weighted as its loop edges (the same ICP verification measured both).
    pub backend: BackendConfig,
    /// Levenberg–Marquardt settings of each solve (ours: 50 iterations: the maps start where
    /// their links put them, metres from the joint optimum).
    pub solver: SolverConfig,
}

impl Default for MergeConfig {
    fn default() -> Self {
        Self {
            search: LocaliserConfig::default(),
            verify: VerifyConfig::default(),
            min_agreeing: 2,
            gate_m: 2.0,
            gate_deg: 5.0,
            rounds: 10,
            kernel_m: 2.0,
            backend: BackendConfig::default(),
            solver: SolverConfig {
                max_iterations: 50,
                ..SolverConfig::default()
            },
        }
    }
}

/// Two maps found to share places.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    /// The map searched in (index in the merge's inputs).
    pub reference: usize,
    /// The map whose keyframes were searched for.
    pub query: usize,
    /// Verified matches between them.
    pub matches: usize,
    /// Matches agreeing on where the query map lies in the reference map (the edges added).
    pub agreeing: usize,
    /// Standard deviation of the agreeing matches' placements, metres.
    pub spread_m: f64,
}

/// What a merge did (printed as JSON by `merge-maps`).
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// The input maps, in the order given.
    pub inputs: Vec<PathBuf>,
    /// The map whose frame the merged map keeps.
    pub anchor: usize,
    /// Keyframes of the merged map.
    pub keyframes: usize,
    /// Inter-map links found.
    pub links: Vec<Link>,
    /// Inter-map edges in the final graph: the links' agreeing matches, and the matches the
    /// solved maps came to explain.
    pub inter_map_edges: usize,
    /// Solve-and-gate rounds run.
    pub rounds: usize,
    /// How far the joint solve moved each map's keyframes from where the links put them, metres
    /// (largest), one per input.
    pub moved_m: Vec<f64>,
    /// ATE of each input's keyframes against their ground truth (aligned), metres, where the
    /// map has ground truth.
    pub input_keyframe_ate_m: Vec<Option<f64>>,
    /// The same for the merged map's keyframes, where every one has ground truth.
    pub keyframe_ate_m: Option<f64>,
    /// The same for each input's keyframes as the merged map places them.
    pub merged_input_ate_m: Vec<Option<f64>>,
}

/// One map to merge, with where it came from (to name in errors).
pub struct MapInput {
    /// Its folder.
    pub path: PathBuf,
    /// The map.
    pub map: PriorMap,
}

/// Merges `inputs` into one map in the frame of `inputs[anchor]`.
pub fn merge(inputs: &[MapInput], anchor: usize, cfg: &MergeConfig) -> Result<(PriorMap, MergeReport)> {
    check_compatible(inputs, anchor)?;
    let indices = inputs
        .iter()
        .map(|m| MapIndex::new(&m.map, &LoopDetector::ScanContext, cfg.search, cfg.verify))
        .collect::<Result<Vec<_>>>()?;
    let pairs: Vec<(usize, usize)> = (0..inputs.len())
        .flat_map(|r| (r + 1..inputs.len()).map(move |q| (r, q)))
        .collect();
    // The pairs on every core; rayon keeps their order, so the merge does not depend on which
    // core took which.
    let found_in_pairs: Vec<Vec<Hypothesis>> = pairs
        .par_iter()
        .map(|&(reference, query)| matches(&inputs[query].map, &indices[reference], cfg))
        .collect::<Result<_>>()?;
    let mut links = Vec::new();
    let mut link_edges = Vec::new();
    let mut all = Vec::new();
    for (&(reference, query), found) in pairs.iter().zip(found_in_pairs) {
        let (link, agreeing) = agreement(reference, query, &found, cfg);
        log::info!(
            "{} in {}: {} verified matches, {} agreeing (spread {:.2} m)",
            inputs[query].path.display(),
            inputs[reference].path.display(),
            link.matches,
            link.agreeing,
            link.spread_m
        );
        if link.agreeing >= cfg.min_agreeing {
            link_edges.push((reference, query, agreeing));
        }
        all.extend(found.into_iter().map(|h| InterMatch { reference, query, h }));
        links.push(link);
    }
    let placement = place(inputs, anchor, &link_edges)?;
    let in_a_link = |m: &InterMatch| {
        link_edges.iter().any(|(r, q, agreeing)| {
            (*r, *q) == (m.reference, m.query)
                && agreeing
                    .iter()
                    .any(|a| (a.frame, a.map_keyframe) == (m.h.frame, m.h.map_keyframe))
        })
    };
    let accepted: Vec<bool> = all.iter().map(in_a_link).collect();
    let solved = solve(inputs, anchor, &placement, &all, accepted, cfg)?;
    let report = MergeReport {
        inputs: inputs.iter().map(|m| m.path.clone()).collect(),
        anchor,
        keyframes: solved.map.keyframes.len(),
        links,
        inter_map_edges: solved.inter_map_edges,
        rounds: solved.rounds,
        moved_m: solved.moved_m,
        input_keyframe_ate_m: inputs.iter().map(|m| keyframe_ate_m(&m.map)).collect(),
        keyframe_ate_m: keyframe_ate_m(&solved.map),
        merged_input_ate_m: (0..inputs.len() as u32)
            .map(|m| {
                let of_input = |k: &&MapKeyframe| session_input(inputs, anchor, k.session) == m as usize;
                let keyframes: Vec<MapKeyframe> = solved.map.keyframes.iter().filter(of_input).cloned().collect();
                keyframes_ate_m(&keyframes)
            })
            .collect(),
    };
    Ok((solved.map, report))
}

/// A verified match of keyframe `h.frame` of map `query` with keyframe `h.map_keyframe` of map
/// `reference`.
#[derive(Debug, Clone, Copy)]
struct InterMatch {
    reference: usize,
    query: usize,
    h: Hypothesis,
}

/// ATE of `map`'s keyframes against their ground truth, when every keyframe has one.
fn keyframe_ate_m(map: &PriorMap) -> Option<f64> {
    keyframes_ate_m(&map.keyframes)
}

/// ATE of `keyframes` against their ground truth, when every one has one.
fn keyframes_ate_m(keyframes: &[MapKeyframe]) -> Option<f64> {
    let truth: Option<Vec<Pose>> = keyframes.iter().map(|k| k.ground_truth).collect();
    let poses: Vec<Pose> = keyframes.iter().map(|k| k.pose).collect();
    crate::metrics::ate_rmse(&poses, &truth?)
}

/// The input a merged map's `session` came from (sessions follow [`map_order`]).
fn session_input(inputs: &[MapInput], anchor: usize, session: u32) -> usize {
    let mut first = 0;
    for m in map_order(inputs, anchor) {
        first += inputs[m].map.header.sessions;
        if session < first {
            return m;
        }
    }
    anchor
}

/// Refuses maps made with another sensor, detector or voxel size than the anchor.
fn check_compatible(inputs: &[MapInput], anchor: usize) -> Result<()> {
    let a = &inputs[anchor];
    let ha = &a.map.header;
    for m in inputs {
        let h = &m.map.header;
        let differs = [
            (
                h.sensor != ha.sensor,
                "sensor",
                h.sensor.to_string(),
                ha.sensor.to_string(),
            ),
            (
                h.detector != ha.detector,
                "loop detector",
                format!("{:?}", h.detector),
                format!("{:?}", ha.detector),
            ),
            (
                h.voxel_m != ha.voxel_m,
                "keyframe voxel size",
                format!("{} m", h.voxel_m),
                format!("{} m", ha.voxel_m),
            ),
        ];
        let why = differs.into_iter().find(|d| d.0).map(|(_, what, mine, anchors)| {
            format!(
                "made with {what} {mine}, the anchor {} with {anchors}",
                a.path.display()
            )
        });
        let why = why.or_else(|| m.map.keyframes.is_empty().then(|| "no keyframes".to_string()));
        if let Some(why) = why {
            return Err(Error::input(&m.path, format!("cannot merge: {why}")));
        }
    }
    Ok(())
}

/// Every verified match of a keyframe of `query` in the map `reference` indexes; each
/// hypothesis's `map_from_local` is the query map's frame in the reference map's.
fn matches(query: &PriorMap, reference: &MapIndex, cfg: &MergeConfig) -> Result<Vec<Hypothesis>> {
    let threshold = 1.0 - LoopSearchConfig::default().accept_scan_context_distance;
    let mut found = Vec::new();
    for (k, keyframe) in query.keyframes.iter().enumerate() {
        let descriptor = Descriptor::ScanContext(keyframe.scan_context.clone());
        let cloud = KeyframeCloud::new(&keyframe.points, &cfg.verify);
        let q = (&keyframe.scan_context.ring_key, &descriptor, &cloud);
        found.extend(reference.search(k, q, &keyframe.pose, &LoopDetector::ScanContext, threshold)?);
    }
    Ok(found)
}

/// The largest set of `found` agreeing on the query map's placement (each within the search's
/// agreement of the first, its centre; ties to the earliest), counted once per query keyframe.
fn agreement(reference: usize, query: usize, found: &[Hypothesis], cfg: &MergeConfig) -> (Link, Vec<Hypothesis>) {
    let agrees = |a: &Hypothesis, b: &Hypothesis| {
        let d = a.map_from_local.inverse() * b.map_from_local;
        d.translation.vector.norm() <= cfg.search.agree_m && d.rotation.angle().to_degrees() <= cfg.search.agree_deg
    };
    let mut best: Vec<Hypothesis> = Vec::new();
    for centre in found {
        let mut set = vec![*centre];
        for h in found.iter().filter(|h| agrees(centre, h)) {
            if !set.iter().any(|s| s.frame == h.frame) {
                set.push(*h);
            }
        }
        if set.len() > best.len() {
            best = set;
        }
    }
    let spread_m = match best.first() {
        Some(c) => {
            let d2: f64 = best
                .iter()
                .map(|h| {
                    (c.map_from_local.inverse() * h.map_from_local)
                        .translation
                        .vector
                        .norm_squared()
                })
                .sum();
            (d2 / best.len() as f64).sqrt()
        }
        None => 0.0,
    };
    let link = Link {
        reference,
        query,
        matches: found.len(),
        agreeing: best.len(),
        spread_m,
    };
    (link, best)
}

/// Each map's frame in the anchor's, along the links from the anchor (breadth first, in input
/// order); a map no link reaches is refused.
fn place(inputs: &[MapInput], anchor: usize, links: &[(usize, usize, Vec<Hypothesis>)]) -> Result<Vec<Pose>> {
    let mut placed: Vec<Option<Pose>> = vec![None; inputs.len()];
    placed[anchor] = Some(Pose::identity());
    let mut queue = std::collections::VecDeque::from([anchor]);
    while let Some(m) = queue.pop_front() {
        let here = placed[m].expect("queued maps are placed");
        for (reference, query, agreeing) in links {
            let query_in_reference = agreeing[0].map_from_local;
            let (next, pose) = match (*reference == m, *query == m) {
                (true, _) => (*query, here * query_in_reference),
                (_, true) => (*reference, here * query_in_reference.inverse()),
                _ => continue,
            };
            if placed[next].is_none() {
                placed[next] = Some(pose);
                queue.push_back(next);
            }
        }
    }
    placed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            p.ok_or_else(|| {
                Error::input(
                    &inputs[i].path,
                    format!(
                        "shares no place with the anchor {} or the maps joined to it: no verified matches agree on where it lies, so it is not merged",
                        inputs[anchor].path.display()
                    ),
                )
            })
        })
        .collect()
}

/// Node order: the anchor's keyframes first (its first holds the graph), then the others' in
/// input order.
fn map_order(inputs: &[MapInput], anchor: usize) -> Vec<usize> {
    std::iter::once(anchor)
        .chain((0..inputs.len()).filter(|&m| m != anchor))
        .collect()
}

/// The joint solve's outcome.
struct Solved {
    map: PriorMap,
    inter_map_edges: usize,
    rounds: usize,
    moved_m: Vec<f64>,
}

/// The joint pose graph solved, and the merged map built from it. The matches `accepted` start
/// as edges; after each solve, the other matches the solved maps explain within the gate join,
/// and the graph is solved again, until none joins.
fn solve(
    inputs: &[MapInput],
    anchor: usize,
    placement: &[Pose],
    all: &[InterMatch],
    mut accepted: Vec<bool>,
    cfg: &MergeConfig,
) -> Result<Solved> {
    let order = map_order(inputs, anchor);
    let mut first_node = vec![0; inputs.len()];
    let mut start = Vec::new();
    for &m in &order {
        first_node[m] = start.len();
        start.extend(inputs[m].map.keyframes.iter().map(|k| placement[m] * k.pose));
    }
    let b = &cfg.backend;
    let mut intra = Vec::new();
    for &m in &order {
        for e in &inputs[m].map.edges {
            let (information, cauchy) = match e.kind {
                EdgeKind::Odometry => (
                    diagonal_information(b.odometry_sigma_m, b.odometry_sigma_deg.to_radians()),
                    None,
                ),
                EdgeKind::Loop => (
                    diagonal_information(b.loop_sigma_m, b.loop_sigma_deg.to_radians()),
                    Some(b.min_kernel_m / b.loop_sigma_m),
                ),
            };
            let (from, to) = (first_node[m] + e.from as usize, first_node[m] + e.to as usize);
            intra.push((edge(from, to, e.measurement, information, cauchy), e.kind));
        }
    }
    let inter_information = diagonal_information(b.loop_sigma_m, b.loop_sigma_deg.to_radians());
    let inter_edge = |m: &InterMatch| {
        let (from, to) = (
            first_node[m.reference] + m.h.map_keyframe,
            first_node[m.query] + m.h.frame,
        );
        edge(
            from,
            to,
            m.h.transform,
            inter_information,
            Some(cfg.kernel_m / b.loop_sigma_m),
        )
    };
    let mut poses = start.clone();
    let mut rounds = 0;
    loop {
        let mut graph = PoseGraph::new();
        for p in &poses {
            graph.add_node(*p);
        }
        let inter = all
            .iter()
            .zip(&accepted)
            .filter(|(_, a)| **a)
            .map(|(m, _)| inter_edge(m));
        for e in intra.iter().map(|(e, _)| *e).chain(inter) {
            graph
                .add_edge(e)
                .map_err(|e| Error::Usage(format!("merged pose graph: {e}")))?;
        }
        graph
            .optimize(&cfg.solver)
            .map_err(|e| Error::Usage(format!("merged pose graph: {e}")))?;
        poses = graph.poses().to_vec();
        rounds += 1;
        if rounds > cfg.rounds {
            break;
        }
        let mut joined = 0;
        for (m, a) in all.iter().zip(accepted.iter_mut()).filter(|(_, a)| !**a) {
            let e = inter_edge(m);
            let off = (poses[e.from].inverse() * poses[e.to]).inverse() * e.measurement;
            if off.translation.vector.norm() <= cfg.gate_m && off.rotation.angle().to_degrees() <= cfg.gate_deg {
                *a = true;
                joined += 1;
            }
        }
        if joined == 0 {
            break;
        }
    }
    let moved_m = (0..inputs.len())
        .map(|m| {
            let nodes = first_node[m]..first_node[m] + inputs[m].map.keyframes.len();
            nodes
                .map(|n| (poses[n].translation.vector - start[n].translation.vector).norm())
                .fold(0.0, f64::max)
        })
        .collect();
    let inter: Vec<(Edge, EdgeKind)> = all
        .iter()
        .zip(&accepted)
        .filter(|(_, a)| **a)
        .map(|(m, _)| (inter_edge(m), EdgeKind::Loop))
        .collect();
    let edges: Vec<(Edge, EdgeKind)> = intra.into_iter().chain(inter).collect();
    Ok(Solved {
        map: merged_map(inputs, anchor, &order, &poses, &edges),
        inter_map_edges: accepted.iter().filter(|a| **a).count(),
        rounds,
        moved_m,
    })
}

fn edge(from: usize, to: usize, measurement: Pose, information: Matrix6<f64>, cauchy: Option<f64>) -> Edge {
    Edge {
        from,
        to,
        measurement,
        information,
        cauchy,
    }
}

/// The merged map: keyframes in node order at their solved poses, sessions renumbered after
/// the anchor's, every edge kept (re-indexed), ground truth moved into the anchor's truth frame
/// where both maps have one.
fn merged_map(
    inputs: &[MapInput],
    anchor: usize,
    order: &[usize],
    poses: &[Pose],
    edges: &[(Edge, EdgeKind)],
) -> PriorMap {
    let anchor_header = &inputs[anchor].map.header;
    let truth_origin = |m: usize| inputs[m].map.header.ground_truth_origin.map(|r| pose_from_3x4(&r));
    let anchor_origin = truth_origin(anchor);
    let mut keyframes = Vec::new();
    let mut sessions = 0;
    for &m in order {
        let map = &inputs[m].map;
        let to_anchor_truth = anchor_origin.zip(truth_origin(m)).map(|(a, o)| a.inverse() * o);
        for k in &map.keyframes {
            keyframes.push(MapKeyframe {
                session: sessions + k.session,
                pose: poses[keyframes.len()],
                ground_truth: to_anchor_truth.zip(k.ground_truth).map(|(t, g)| t * g),
                ..k.clone()
            });
        }
        sessions += map.header.sessions;
    }
    let mut header = anchor_header.clone();
    header.sessions = sessions;
    header.travelled_m = inputs.iter().map(|m| m.map.header.travelled_m).sum();
    PriorMap {
        header,
        keyframes,
        edges: edges
            .iter()
            .map(|(e, kind)| MapEdge {
                from: e.from as u32,
                to: e.to as u32,
                measurement: e.measurement,
                kind: *kind,
            })
            .collect(),
    }
}

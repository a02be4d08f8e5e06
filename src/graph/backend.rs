//! The SLAM back-end: one graph node per keyframe, an odometry edge to the keyframe before, a
//! loop edge per verified loop, and a re-optimisation after each loop. Every other frame rides on
//! its keyframe by its odometry, so frames after a correction continue from the corrected pose.
//! A run inside a saved map starts with the map's keyframes as fixed nodes: once localised, its
//! nodes move into the map frame and loops to the map's keyframes tie them there.

use super::{Edge, GraphError, PoseGraph, SolverConfig, diagonal_information};
use crate::scan::Pose;
use serde::Serialize;

/// Back-end settings; every default in one place.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct BackendConfig {
    /// Standard deviation of one odometry increment's translation, metres.
    pub odometry_sigma_m: f64,
    /// Standard deviation of one odometry increment's rotation, degrees.
    pub odometry_sigma_deg: f64,
    /// Frames whose registration was not trusted (degenerate) get standard deviations this many
    /// times larger.
    pub degenerate_inflation: f64,
    /// Standard deviation of a verified loop's translation, metres.
    pub loop_sigma_m: f64,
    /// Standard deviation of a verified loop's rotation, degrees.
    pub loop_sigma_deg: f64,
    /// Standard deviation of a loop to a prior map's keyframe (the fix's evidence included),
    /// metres: ICP's, plus the keyframe's own error within the map (ours: 0.3, three times a
    /// loop's; `scripts/map-localise.py` with a loop's 0.1 m and 0.5°: 6 of 20 simulated 60-frame
    /// runs' aligned ATE above the same runs without a map, and KITTI's 0.142 against 0.126 m;
    /// with 0.3 m and 1.5°: 3 of 20, by at most 2.3 cm, and 0.131 m).
    pub prior_loop_sigma_m: f64,
    /// Its rotation, degrees (ours: 1.5, three times a loop's).
    pub prior_loop_sigma_deg: f64,
    /// Drift the odometry may accumulate, as a share of the distance travelled between the two
    /// ends of a loop: a loop farther than this from the current estimate is refused, and the
    /// Cauchy kernel of an accepted one is this wide (KISS-ICP drifts about 0.5 % on KITTI;
    /// this allows ten times that).
    pub drift_fraction: f64,
    /// The allowed drift is never less than this many metres.
    pub min_kernel_m: f64,
    /// Standard deviation of the step between two odometry chains (odometry restarted after a
    /// dropout it could not bridge: the new chain starts at the motion model's guess), metres
    /// (ours: 10, a 3 s guess in a bend is off by 3-5 m).
    pub chain_break_sigma_m: f64,
    /// Its rotation, degrees (ours: 30; the same guess turns 20-25 degrees off).
    pub chain_break_sigma_deg: f64,
    /// Width of the robust kernel of the loop that first joins two chains, metres (ours: 50;
    /// it is added however far it lies from the estimate, which knows nothing across the break).
    pub chain_break_drift_m: f64,
    /// Levenberg–Marquardt settings.
    pub solver: SolverConfig,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            odometry_sigma_m: 0.05,
            odometry_sigma_deg: 0.2,
            degenerate_inflation: 10.0,
            loop_sigma_m: 0.1,
            loop_sigma_deg: 0.5,
            prior_loop_sigma_m: 0.3,
            prior_loop_sigma_deg: 1.5,
            drift_fraction: 0.05,
            min_kernel_m: 1.0,
            chain_break_sigma_m: 10.0,
            chain_break_sigma_deg: 30.0,
            chain_break_drift_m: 50.0,
            solver: SolverConfig::default(),
        }
    }
}

/// The back-end's state.
#[derive(Debug, Clone)]
pub struct Backend {
    config: BackendConfig,
    graph: PoseGraph,
    /// Frame number of each node.
    node_frames: Vec<usize>,
    /// Odometry pose of each node.
    node_odometry: Vec<Pose>,
    /// Distance travelled (odometry) up to each node, metres.
    travel_m: Vec<f64>,
    /// Every frame: its odometry pose and the node it hangs from.
    frames: Vec<(Pose, usize)>,
    /// Frames since the last node, and whether one of them was degenerate.
    since_node: (usize, bool),
    /// Distance travelled up to the last frame, metres.
    travel_now_m: f64,
    /// Optimisations run.
    optimisations: usize,
    /// Graph nodes `0..prior_nodes` are a saved map's keyframes, held fixed; the run's follow.
    prior_nodes: usize,
    /// Distance travelled when the run was last tied to the prior map, once it is.
    travel_at_prior_m: Option<f64>,
    /// Chain breaks before each node.
    breaks: Vec<usize>,
    /// The next frame starts a new odometry chain.
    pending_break: bool,
    /// Breaks a loop has joined across (break `b` lies between chains `b` and `b + 1`).
    joined: std::collections::BTreeSet<usize>,
}

impl Backend {
    /// An empty back-end.
    pub fn new(config: BackendConfig) -> Self {
        Self {
            config,
            graph: PoseGraph::new(),
            node_frames: Vec::new(),
            node_odometry: Vec::new(),
            travel_m: Vec::new(),
            frames: Vec::new(),
            since_node: (0, false),
            travel_now_m: 0.0,
            optimisations: 0,
            prior_nodes: 0,
            travel_at_prior_m: None,
            breaks: Vec::new(),
            pending_break: false,
            joined: Default::default(),
        }
    }

    /// A back-end whose graph starts with a saved map's keyframes at `map_poses`, held fixed
    /// (the map's own poses never move). The run's nodes stay in its local frame until
    /// [`Backend::anchor`].
    pub fn with_prior(config: BackendConfig, map_poses: &[Pose]) -> Self {
        let mut backend = Self::new(config);
        for pose in map_poses {
            let node = backend.graph.add_node(*pose);
            backend.graph.set_fixed(node, true);
        }
        backend.prior_nodes = map_poses.len();
        backend
    }

    /// Tells the back-end that the next frame starts a new odometry chain: it becomes a node,
    /// joined to the one before only by the motion model's guess
    /// ([`BackendConfig::chain_break_sigma_m`]), and loops across the break may move it far.
    pub fn break_chain(&mut self) {
        self.pending_break = true;
    }

    /// Adds the next frame with its odometry pose. Keyframes (and the first frame) become graph
    /// nodes, joined to the node before by the odometry between them; `degenerate` frames weaken
    /// that edge. Other frames follow their node rigidly.
    pub fn add_frame(&mut self, frame: usize, odometry: Pose, degenerate: bool, keyframe: bool) {
        let chain_break = std::mem::take(&mut self.pending_break) && !self.node_frames.is_empty();
        let keyframe = keyframe || chain_break;
        if let Some((last, _)) = self.frames.last() {
            self.travel_now_m += (last.inverse() * odometry).translation.vector.norm();
        }
        self.since_node = (self.since_node.0 + 1, self.since_node.1 || degenerate);
        let Some(&last_odometry) = self.node_odometry.last() else {
            self.push_node(frame, odometry, odometry);
            return;
        };
        if keyframe {
            let increment = last_odometry.inverse() * odometry;
            let last = self.graph.poses().len() - 1;
            debug_assert_eq!(last, self.prior_nodes + self.node_frames.len() - 1);
            let (steps, degenerate) = self.since_node;
            // Independent steps: variances add up.
            let scale = (steps as f64).sqrt()
                * if degenerate {
                    self.config.degenerate_inflation
                } else {
                    1.0
                };
            let (sigma_m, sigma_deg) = match chain_break {
                true => (self.config.chain_break_sigma_m, self.config.chain_break_sigma_deg),
                false => (
                    self.config.odometry_sigma_m * scale,
                    self.config.odometry_sigma_deg * scale,
                ),
            };
            let edge = Edge {
                from: last,
                to: last + 1,
                measurement: increment,
                information: diagonal_information(sigma_m, sigma_deg.to_radians()),
                cauchy: None,
            };
            let breaks = self.breaks.last().copied().unwrap_or(0) + usize::from(chain_break);
            self.push_node(frame, odometry, self.graph.poses()[last] * increment);
            *self.breaks.last_mut().expect("just pushed") = breaks;
            self.graph.add_edge(edge).expect("consecutive nodes exist");
        } else {
            let node = self.node_frames.len() - 1;
            self.frames.push((odometry, node));
        }
    }

    fn push_node(&mut self, frame: usize, odometry: Pose, estimate: Pose) {
        let node = self.graph.add_node(estimate);
        if self.node_frames.is_empty() {
            // The run's first node fixes its local frame (until it is tied to a prior map).
            self.graph.set_fixed(node, true);
        }
        self.node_frames.push(frame);
        self.breaks.push(self.breaks.last().copied().unwrap_or(0));
        self.node_odometry.push(odometry);
        self.travel_m.push(self.travel_now_m);
        self.frames.push((odometry, self.node_frames.len() - 1));
        self.since_node = (0, false);
    }

    /// Run node (from 0) of a frame number.
    fn node(&self, frame: usize) -> Option<usize> {
        self.node_frames.binary_search(&frame).ok()
    }

    /// Graph node of run node `node`.
    fn graph_node(&self, node: usize) -> usize {
        self.prior_nodes + node
    }

    /// Adds a verified loop (`transform`: the query frame's pose in the reference frame's) and
    /// re-optimises. Returns `Ok(false)` without adding it when either frame is not a node, or
    /// when the loop disagrees with the current estimate by more than the odometry can have
    /// drifted between the two (see [`BackendConfig::drift_fraction`]): such a loop is wrong.
    pub fn add_loop(&mut self, query: usize, reference: usize, transform: Pose) -> Result<bool, GraphError> {
        let (Some(q), Some(r)) = (self.node(query), self.node(reference)) else {
            return Ok(false);
        };
        let (gq, gr) = (self.graph_node(q), self.graph_node(r));
        let drift_m = self.allowed_drift_m(self.travel_m[q] - self.travel_m[r]);
        let sigma = (self.config.loop_sigma_m, self.config.loop_sigma_deg);
        let (lo, hi) = (self.breaks[q].min(self.breaks[r]), self.breaks[q].max(self.breaks[r]));
        if !(lo..hi).any(|b| !self.joined.contains(&b)) {
            return self.close_loop(gr, gq, transform, sigma, drift_m);
        }
        // The first loop across a break the estimate knows nothing of: verification is the only
        // test, and it joins the chains.
        self.add_loop_edge(gr, gq, transform, sigma, self.config.chain_break_drift_m)?;
        self.optimise()?;
        self.joined.extend(lo..hi);
        log::info!("odometry chains joined by the loop from frame {query} to {reference}");
        Ok(true)
    }

    /// Chain breaks a loop has joined across.
    pub fn joined_breaks(&self) -> usize {
        self.joined.len()
    }

    /// Whether a loop has joined across break `b` (from 0, in the order they came).
    pub fn is_joined(&self, b: usize) -> bool {
        self.joined.contains(&b)
    }

    /// Adds the loop from graph node `from` to `to` and re-optimises, unless it disagrees with
    /// the estimate by more than `drift_m` (then `Ok(false)`: such a loop is wrong).
    fn close_loop(
        &mut self,
        from: usize,
        to: usize,
        transform: Pose,
        sigma: (f64, f64),
        drift_m: f64,
    ) -> Result<bool, GraphError> {
        let disagreement = self.disagreement_m(from, to, &transform);
        if disagreement > drift_m {
            log::info!(
                "loop between graph nodes {to} and {from} refused: {disagreement:.1} m from the estimate, drift allows {drift_m:.1} m"
            );
            return Ok(false);
        }
        self.add_loop_edge(from, to, transform, sigma, drift_m)?;
        self.optimise()?;
        Ok(true)
    }

    /// The drift the odometry may have gathered over `travel_m` metres (see
    /// [`BackendConfig::drift_fraction`]).
    fn allowed_drift_m(&self, travel_m: f64) -> f64 {
        (self.config.drift_fraction * travel_m.abs()).max(self.config.min_kernel_m)
    }

    /// How far graph node `to` seen from `from` by `transform` lies from the estimate, metres.
    fn disagreement_m(&self, from: usize, to: usize, transform: &Pose) -> f64 {
        let poses = self.graph.poses();
        ((poses[from].inverse() * poses[to]).inverse() * transform)
            .translation
            .vector
            .norm()
    }

    /// A loop edge from graph node `from` to `to` with standard deviations `sigma` (metres,
    /// degrees), robust to `drift_m` of disagreement.
    fn add_loop_edge(
        &mut self,
        from: usize,
        to: usize,
        transform: Pose,
        sigma: (f64, f64),
        drift_m: f64,
    ) -> Result<(), GraphError> {
        let (sigma_m, sigma_deg) = sigma;
        self.graph.add_edge(Edge {
            from,
            to,
            measurement: transform,
            information: diagonal_information(sigma_m, sigma_deg.to_radians()),
            // Squared error of a translation error of `drift_m` along one axis: a loop the
            // drift explains counts at least half.
            cauchy: Some(drift_m / sigma_m),
        })
    }

    fn optimise(&mut self) -> Result<(), GraphError> {
        self.graph.optimize(&self.config.solver)?;
        self.optimisations += 1;
        Ok(())
    }

    /// Moves the run into the prior map's frame, where `map_from_local` puts its local frame, and
    /// ties it there with `matches` (frame, map keyframe, the frame's pose in that keyframe's
    /// frame): the evidence of the fix, taken without the drift test. The run's first node is
    /// then free: the map fixes the gauge.
    pub fn anchor(&mut self, map_from_local: &Pose, matches: &[(usize, usize, Pose)]) -> Result<(), GraphError> {
        for node in 0..self.node_frames.len() {
            let g = self.graph_node(node);
            self.graph.set_pose(g, map_from_local * self.graph.poses()[g]);
        }
        self.graph.set_fixed(self.prior_nodes, false);
        for &(frame, map_keyframe, transform) in matches {
            let Some(q) = self.node(frame) else { continue };
            let min_kernel_m = self.config.min_kernel_m;
            let sigma = (self.config.prior_loop_sigma_m, self.config.prior_loop_sigma_deg);
            self.add_loop_edge(map_keyframe, self.graph_node(q), transform, sigma, min_kernel_m)?;
        }
        self.travel_at_prior_m = Some(self.travel_now_m);
        self.optimise()
    }

    /// Adds a verified loop from keyframe `query` to prior-map keyframe `map_keyframe`
    /// (`transform`: the query's pose in that keyframe's frame) and re-optimises. Refused
    /// (`Ok(false)`) before [`Backend::anchor`], for a frame that is not a node, or when it
    /// disagrees with the estimate by more than the odometry can have drifted since the run was
    /// last tied to the map.
    pub fn add_prior_loop(&mut self, query: usize, map_keyframe: usize, transform: Pose) -> Result<bool, GraphError> {
        let (Some(q), Some(since_m)) = (self.node(query), self.travel_at_prior_m) else {
            return Ok(false);
        };
        if map_keyframe >= self.prior_nodes {
            return Ok(false);
        }
        let drift_m = self.allowed_drift_m(self.travel_m[q] - since_m);
        let sigma = (self.config.prior_loop_sigma_m, self.config.prior_loop_sigma_deg);
        let closed = self.close_loop(map_keyframe, self.graph_node(q), transform, sigma, drift_m)?;
        if closed {
            self.travel_at_prior_m = Some(self.travel_m[q]);
        }
        Ok(closed)
    }

    /// True once the run is tied to a prior map.
    pub fn anchored(&self) -> bool {
        self.travel_at_prior_m.is_some()
    }

    /// The correction from the odometry's frame to the map's at the latest frame: its optimised
    /// pose times its odometry pose's inverse (ROS's `map -> odom`).
    pub fn map_from_odometry(&self) -> Option<Pose> {
        // The latest frame rides on its node by odometry, so the correction is its node's.
        let &(_, node) = self.frames.last()?;
        Some(self.graph.poses()[self.graph_node(node)] * self.node_odometry[node].inverse())
    }

    /// The graph (prior-map nodes first, then the run's keyframes).
    pub fn graph(&self) -> &PoseGraph {
        &self.graph
    }

    /// Graph nodes that are a prior map's keyframes (`0..prior_nodes()`).
    pub fn prior_nodes(&self) -> usize {
        self.prior_nodes
    }

    /// Frame number of each of the run's graph nodes, in node order (they follow the prior's).
    pub fn node_frames(&self) -> &[usize] {
        &self.node_frames
    }

    /// The current (optimised) pose of every frame, in arrival order: its node's pose and the
    /// odometry since.
    pub fn poses(&self) -> Vec<Pose> {
        self.frames
            .iter()
            .map(|(odometry, node)| {
                self.graph.poses()[self.graph_node(*node)] * (self.node_odometry[*node].inverse() * odometry)
            })
            .collect()
    }

    /// The current (optimised) pose of keyframe `frame`; `None` for a frame that is not one.
    pub fn keyframe_pose(&self, frame: usize) -> Option<Pose> {
        self.node(frame).map(|n| self.graph.poses()[self.graph_node(n)])
    }

    /// Graph nodes (keyframes).
    pub fn nodes(&self) -> usize {
        self.node_frames.len()
    }

    /// Distance travelled by the odometry so far, metres.
    pub fn travelled_m(&self) -> f64 {
        self.travel_now_m
    }

    /// Optimisations run so far.
    pub fn optimisations(&self) -> usize {
        self.optimisations
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::tests::pose;
    use nalgebra::Vector3;

    #[test]
    fn frames_after_a_correction_continue_from_the_corrected_pose() {
        let mut backend = Backend::new(BackendConfig::default());
        // Odometry drives 60 m along x and claims it ends 3 m to the side of where it started
        // a loop; the loop says frame 60 is at frame 0 shifted by 60 m exactly.
        for i in 0..=60 {
            backend.add_frame(i, pose(i as f64, 0.05 * i as f64, 0.0), false, i % 10 == 0);
        }
        assert_eq!(backend.nodes(), 7);
        assert!(backend.add_loop(60, 0, pose(60.0, 0.0, 0.0)).unwrap());
        let end = backend.poses()[60];
        assert!(end.translation.y.abs() < 0.2, "{end}");
        backend.add_frame(61, pose(61.0, 3.05, 0.0), false, false);
        let next = backend.poses()[61];
        assert!(
            (next.translation.vector - Vector3::new(61.0, end.translation.y, 0.0)).norm() < 0.2,
            "{next}"
        );
        assert!(
            !backend.add_loop(55, 0, Pose::identity()).unwrap(),
            "frames that are not nodes are ignored"
        );
        // 30 m of disagreement after 30 m of travel: more than any drift.
        assert!(
            !backend.add_loop(30, 0, Pose::identity()).unwrap(),
            "an impossible loop is refused"
        );
        assert_eq!(backend.optimisations(), 1);
    }

    #[test]
    fn a_loop_across_a_chain_break_joins_the_chains_however_far_the_guess_was() {
        let mut backend = Backend::new(BackendConfig::default());
        for i in 0..=20 {
            backend.add_frame(i, pose(i as f64, 0.0, 0.0), false, i % 10 == 0);
        }
        // Odometry restarts at frame 25 with a guess 30 m off to the side; the next chain then
        // drives back along y = 30 to x = 0.
        backend.break_chain();
        backend.add_frame(25, pose(25.0, 30.0, 0.0), false, false);
        for i in 26..=50 {
            backend.add_frame(i, pose(50.0 - i as f64, 30.0, 0.0), false, i % 10 == 0);
        }
        assert!(!backend.is_joined(0), "no loop has crossed the break yet");
        assert_eq!(
            backend.keyframe_pose(25),
            Some(pose(25.0, 30.0, 0.0)),
            "the chain's first frame is a node"
        );
        // In truth frame 50 is back at frame 0: 30 m from the estimate, beyond any drift.
        assert!(
            backend.add_loop(50, 0, Pose::identity()).unwrap(),
            "the first loop across the break joins"
        );
        assert!(backend.is_joined(0));
        let end = backend.keyframe_pose(50).unwrap();
        assert!(end.translation.vector.norm() < 0.5, "{end}");
        // Once joined, the break no longer excuses a loop: 30 m off is refused again.
        assert!(!backend.add_loop(40, 10, pose(0.0, 30.0, 0.0)).unwrap());
        // The first chain keeps its odometry.
        assert!((backend.keyframe_pose(20).unwrap().translation.vector - Vector3::new(20.0, 0.0, 0.0)).norm() < 0.5);
    }

    #[test]
    fn a_run_anchored_in_a_prior_map_moves_into_its_frame_and_the_map_stays_fixed() {
        // The map: keyframes every 10 m along x. The run starts at map x = 20, but its odometry
        // starts at its own origin and drifts 2 % sideways.
        let map: Vec<Pose> = (0..6).map(|i| pose(10.0 * i as f64, 0.0, 0.0)).collect();
        let mut backend = Backend::with_prior(BackendConfig::default(), &map);
        for i in 0..=30 {
            backend.add_frame(i, pose(i as f64, 0.02 * i as f64, 0.0), false, i % 10 == 0);
        }
        assert!(
            !backend.add_prior_loop(10, 3, pose(0.0, 0.0, 0.0)).unwrap(),
            "not before the fix"
        );
        // The fix: run frame 0 is map keyframe 2, frame 10 is keyframe 3 (seen exactly).
        let map_from_local = pose(20.0, 0.0, 0.0);
        backend
            .anchor(&map_from_local, &[(0, 2, Pose::identity()), (10, 3, Pose::identity())])
            .unwrap();
        assert!(backend.anchored());
        // Frame 30 is seen at map keyframe 5: most of the 0.6 m of drift is taken out (the map's
        // loops are weaker than the odometry over 10 frames, so a little stays).
        assert!(backend.add_prior_loop(30, 5, Pose::identity()).unwrap());
        let poses = backend.poses();
        assert!(
            (poses[0].translation.vector - Vector3::new(20.0, 0.0, 0.0)).norm() < 0.15,
            "{}",
            poses[0]
        );
        assert!(
            (poses[30].translation.vector - Vector3::new(50.0, 0.0, 0.0)).norm() < 0.15,
            "{}",
            poses[30]
        );
        for (i, p) in map.iter().enumerate() {
            assert_eq!(backend.graph().poses()[i], *p, "map keyframe {i} moved");
        }
        let correction = backend.map_from_odometry().unwrap();
        assert!((correction * pose(30.0, 0.6, 0.0)).translation.vector.y.abs() < 0.15);
        // A map loop 20 m off the estimate is refused.
        backend.add_frame(40, pose(40.0, 0.8, 0.0), false, true);
        assert!(!backend.add_prior_loop(40, 0, Pose::identity()).unwrap());
    }
}

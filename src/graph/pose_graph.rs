//! An SE(3) pose graph solved by Levenberg–Marquardt on a sparse normal matrix. Each edge says
//! "node `to` seen from node `from` is `measurement`", with an information matrix; loop edges may
//! carry a Cauchy kernel so that a wrong loop pulls far less than a right one. The first node is
//! held fixed (it fixes the gauge), and so is any node marked fixed (a prior map's keyframes).

use super::ordering::reverse_cuthill_mckee;
use super::se3::{adjoint, exp, log, right_jacobian_inverse};
use crate::scan::Pose;
use nalgebra::{DMatrix, DVector, Matrix6, Vector6};
use nalgebra_sparse::factorization::CscCholesky;
use nalgebra_sparse::{CooMatrix, CscMatrix};
use serde::Serialize;

/// A relative-pose constraint between two nodes.
#[derive(Debug, Clone, Copy)]
pub struct Edge {
    /// Node the measurement is expressed in.
    pub from: usize,
    /// Node measured.
    pub to: usize,
    /// Pose of `to` in `from`'s frame: `X_from⁻¹ · X_to`.
    pub measurement: Pose,
    /// Inverse covariance of the measurement, twist order (translation, rotation).
    pub information: Matrix6<f64>,
    /// Cauchy kernel scale on the squared Mahalanobis error, or `None` for plain least squares.
    pub cauchy: Option<f64>,
}

/// Solver settings; every default in one place.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SolverConfig {
    /// Levenberg–Marquardt iterations at most.
    pub max_iterations: usize,
    /// Damping at the start, relative to the normal matrix's diagonal.
    pub initial_lambda: f64,
    /// Stop when an accepted step lowers the cost by less than this fraction.
    pub relative_tolerance: f64,
}

impl Default for SolverConfig {
    fn default() -> Self {
        Self {
            max_iterations: 10,
            initial_lambda: 1e-5,
            relative_tolerance: 1e-6,
        }
    }
}

/// What one optimisation did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Iterations run (linearisations).
    pub iterations: usize,
    /// Robust cost before.
    pub initial_cost: f64,
    /// Robust cost after.
    pub final_cost: f64,
}

/// Why a graph could not be solved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    /// An edge names a node the graph does not have.
    #[error("edge {from} -> {to}: the graph has {nodes} nodes")]
    MissingNode { from: usize, to: usize, nodes: usize },
    /// The damped normal matrix was not positive definite even under heavy damping.
    #[error("the normal matrix is not positive definite (a node without constraints?)")]
    Singular,
}

/// The graph: node poses (the estimate) and the edges between them.
#[derive(Debug, Clone, Default)]
pub struct PoseGraph {
    poses: Vec<Pose>,
    /// Nodes the solver leaves where they are.
    fixed: Vec<bool>,
    edges: Vec<Edge>,
}

/// Above this damping the solver gives up on lowering the cost.
const MAX_LAMBDA: f64 = 1e12;

impl PoseGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node at `pose` (fixed when it is the first); returns its index.
    pub fn add_node(&mut self, pose: Pose) -> usize {
        self.fixed.push(self.poses.is_empty());
        self.poses.push(pose);
        self.poses.len() - 1
    }

    /// Holds node `node` where it is (`true`) or lets the solver move it (`false`).
    pub fn set_fixed(&mut self, node: usize, fixed: bool) {
        self.fixed[node] = fixed;
    }

    /// Moves node `node` to `pose` (a new starting point for the solver).
    pub fn set_pose(&mut self, node: usize, pose: Pose) {
        self.poses[node] = pose;
    }

    /// Adds a constraint.
    pub fn add_edge(&mut self, edge: Edge) -> Result<(), GraphError> {
        let nodes = self.poses.len();
        if edge.from >= nodes || edge.to >= nodes {
            return Err(GraphError::MissingNode {
                from: edge.from,
                to: edge.to,
                nodes,
            });
        }
        self.edges.push(edge);
        Ok(())
    }

    /// The current estimate of every node.
    pub fn poses(&self) -> &[Pose] {
        &self.poses
    }

    /// The constraints.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// Squared Mahalanobis error of `edge` at the current estimate.
    pub fn chi2(&self, edge: &Edge) -> f64 {
        let e = residual(&self.poses, edge);
        (e.transpose() * edge.information * e)[0]
    }

    /// Robust cost of the whole graph.
    pub fn cost(&self) -> f64 {
        cost_of(&self.poses, &self.edges)
    }

    /// Moves the estimate to the (local) minimum of the robust cost.
    pub fn optimize(&mut self, cfg: &SolverConfig) -> Result<Summary, GraphError> {
        let mut summary = Summary {
            initial_cost: self.cost(),
            ..Default::default()
        };
        summary.final_cost = summary.initial_cost;
        if self.fixed.iter().all(|f| *f) || self.edges.is_empty() {
            return Ok(summary);
        }
        let slot = self.ordering();
        let mut lambda = cfg.initial_lambda;
        let mut cost = summary.initial_cost;
        for _ in 0..cfg.max_iterations {
            summary.iterations += 1;
            let (h, g) = self.linearize(&slot);
            let mut improved = None;
            let mut solved = false;
            while lambda < MAX_LAMBDA {
                let Some(step) = solve_damped(&h, &g, lambda) else {
                    lambda *= 10.0;
                    continue;
                };
                solved = true;
                let candidate = retract(&self.poses, &step, &slot);
                let new_cost = cost_of(&candidate, &self.edges);
                if new_cost < cost {
                    lambda = (lambda / 3.0).max(1e-12);
                    improved = Some((candidate, new_cost));
                    break;
                }
                lambda *= 4.0;
            }
            let Some((candidate, new_cost)) = improved else {
                if !solved {
                    return Err(GraphError::Singular);
                }
                break;
            };
            let gain = (cost - new_cost) / cost.max(f64::MIN_POSITIVE);
            self.poses = candidate;
            cost = new_cost;
            if gain < cfg.relative_tolerance {
                break;
            }
        }
        summary.final_cost = cost;
        Ok(summary)
    }

    /// Block position of each node in the normal equations: fixed nodes have none; the others
    /// follow a fill-reducing order.
    fn ordering(&self) -> Vec<Option<usize>> {
        // Free nodes numbered densely, in node order.
        let mut dense = vec![None; self.poses.len()];
        let mut free = 0;
        for (d, fixed) in dense.iter_mut().zip(&self.fixed) {
            if !fixed {
                *d = Some(free);
                free += 1;
            }
        }
        let links = self.edges.iter().filter_map(|e| Some((dense[e.from]?, dense[e.to]?)));
        let slot = reverse_cuthill_mckee(free, links);
        dense.iter().map(|d| d.map(|i| slot[i])).collect()
    }

    /// Gauss–Newton normal equations at the current estimate, with the robust kernels as
    /// weights (iteratively reweighted least squares), unknowns in `slot` order.
    fn linearize(&self, slot: &[Option<usize>]) -> (CscMatrix<f64>, DVector<f64>) {
        let n = 6 * slot.iter().flatten().count();
        let mut coo = CooMatrix::new(n, n);
        let mut g = DVector::zeros(n);
        for edge in &self.edges {
            let e = residual(&self.poses, edge);
            let chi2 = (e.transpose() * edge.information * e)[0];
            let omega = edge.information * robust_weight(chi2, edge.cauchy);
            let jr_inv = right_jacobian_inverse(&e);
            let relative = self.poses[edge.to].inverse() * self.poses[edge.from];
            let jacobians = [(edge.from, -jr_inv * adjoint(&relative)), (edge.to, jr_inv)];
            for (a, ja) in &jacobians {
                let Some(ia) = slot[*a] else { continue };
                let ga = ja.transpose() * omega * e;
                let mut rows = g.fixed_rows_mut::<6>(6 * ia);
                rows += ga;
                for (b, jb) in &jacobians {
                    let Some(ib) = slot[*b] else { continue };
                    push_block(&mut coo, 6 * ia, 6 * ib, &(ja.transpose() * omega * jb));
                }
            }
        }
        (CscMatrix::from(&coo), g)
    }
}

/// `Log(Z⁻¹ · X_from⁻¹ · X_to)`: zero when the estimate agrees with the measurement.
fn residual(poses: &[Pose], edge: &Edge) -> Vector6<f64> {
    log(&(edge.measurement.inverse() * poses[edge.from].inverse() * poses[edge.to]))
}

/// Cauchy: `ρ(s) = c² ln(1 + s/c²)`; plain least squares: `ρ(s) = s`.
fn robust_cost(chi2: f64, cauchy: Option<f64>) -> f64 {
    match cauchy {
        Some(c) => c * c * (chi2 / (c * c)).ln_1p(),
        None => chi2,
    }
}

/// `ρ'(s)`: how much an edge with squared error `s` still counts.
fn robust_weight(chi2: f64, cauchy: Option<f64>) -> f64 {
    match cauchy {
        Some(c) => 1.0 / (1.0 + chi2 / (c * c)),
        None => 1.0,
    }
}

fn cost_of(poses: &[Pose], edges: &[Edge]) -> f64 {
    edges
        .iter()
        .map(|edge| {
            let e = residual(poses, edge);
            robust_cost((e.transpose() * edge.information * e)[0], edge.cauchy)
        })
        .sum()
}

fn push_block(coo: &mut CooMatrix<f64>, row: usize, col: usize, block: &Matrix6<f64>) {
    for c in 0..6 {
        for r in 0..6 {
            coo.push(row + r, col + c, block[(r, c)]);
        }
    }
}

/// Solves `(H + λ diag(H)) δ = -g`; `None` when the factorisation fails.
fn solve_damped(h: &CscMatrix<f64>, g: &DVector<f64>, lambda: f64) -> Option<DVector<f64>> {
    let mut damped = h.clone();
    for (r, c, v) in damped.triplet_iter_mut() {
        if r == c {
            *v += lambda * v.abs().max(1e-9);
        }
    }
    let factor = CscCholesky::factor(&damped).ok()?;
    let rhs = DMatrix::from_column_slice(g.len(), 1, (-g).as_slice());
    let step = factor.solve(&rhs);
    let step = DVector::from_column_slice(step.as_slice());
    step.iter().all(|v| v.is_finite()).then_some(step)
}

/// The estimate moved by `step`, whose blocks are in `slot` order (fixed nodes stay).
fn retract(poses: &[Pose], step: &DVector<f64>, slot: &[Option<usize>]) -> Vec<Pose> {
    let mut moved = poses.to_vec();
    for (pose, slot) in moved.iter_mut().zip(slot) {
        if let Some(k) = slot {
            *pose *= exp(&Vector6::from_column_slice(&step.as_slice()[6 * k..6 * k + 6]));
        }
    }
    moved
}

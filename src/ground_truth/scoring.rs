//! How well a loop detector separates revisits from other places (DESIGN.md §4): the
//! precision-recall curve over its score threshold, its area, the best F1, recall at 1, and the
//! error of the yaw it predicts.

use serde::Serialize;

/// Ground-truth overlap above which a pair counts as a loop (OverlapNet's protocol).
pub const LOOP_OVERLAP: f32 = 0.3;

/// Candidates per query that recall@N looks at by default (the place-recognition field's
/// recall@5, beside recall@1 and recall@1 %).
pub const TOP_N: usize = 5;

/// What makes two scans the same place.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisitRule {
    /// OverlapNet's protocol: ground-truth overlap above this share.
    Overlap(f32),
    /// The place-recognition field's (Scan Context, BEVPlace): ground-truth positions within this
    /// many metres.
    DistanceM(f64),
}

impl RevisitRule {
    /// Whether a pair with this ground-truth overlap, its scans `distance_m` apart, is a revisit.
    pub fn holds(&self, overlap: f32, distance_m: f64) -> bool {
        match *self {
            Self::Overlap(least) => overlap > least,
            Self::DistanceM(most) => distance_m <= most,
        }
    }
}

/// One scored candidate pair with its ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    /// The query scan's index.
    pub query: usize,
    /// Detector score: higher means more likely the same place.
    pub score: f32,
    /// Ground-truth overlap.
    pub overlap: f32,
    /// Whether the ground truth calls the pair a loop (overlap above the loop threshold).
    pub positive: bool,
    /// Detector's yaw, degrees.
    pub yaw_deg: f32,
    /// Ground-truth yaw, degrees.
    pub gt_yaw_deg: f32,
}

impl ScoredPair {
    /// True when the ground truth calls this pair a loop.
    pub fn is_loop(&self) -> bool {
        self.positive
    }
}

/// One point of the precision-recall curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PrPoint {
    /// Pairs scoring at least this are called loops.
    pub threshold: f32,
    /// Share of the called pairs that are loops.
    pub precision: f64,
    /// Share of the loops that are called.
    pub recall: f64,
}

/// Summary figures of a detector on a set of pairs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopScores {
    /// Pairs judged.
    pub pairs: usize,
    /// Of which loops.
    pub loops: usize,
    /// Area under the precision-recall curve (average precision).
    pub auc: f64,
    /// Best F1 over all thresholds.
    pub f1_max: f64,
    /// Among queries that have a loop, the share whose best-scoring candidate is one.
    pub recall_at_1: f64,
    /// Candidates per query that `recall_at_n` looks at.
    pub top_n: usize,
    /// Among queries that have a loop, the share with one among their `top_n` best candidates.
    pub recall_at_n: f64,
    /// The same among each query's best 1 % of candidates (at least one).
    pub recall_at_1_percent: f64,
    /// Mean absolute yaw error over the loop pairs, degrees (null without loops).
    pub yaw_err_mean_deg: Option<f64>,
    /// Median absolute yaw error over the loop pairs, degrees.
    pub yaw_err_median_deg: Option<f64>,
}

/// The precision-recall curve, one point per distinct score from high to low.
pub fn pr_curve(pairs: &[ScoredPair]) -> Vec<PrPoint> {
    let positives = pairs.iter().filter(|p| p.is_loop()).count();
    let mut order: Vec<&ScoredPair> = pairs.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let (mut tp, mut called) = (0usize, 0usize);
    let mut curve = Vec::new();
    for (k, p) in order.iter().enumerate() {
        called += 1;
        tp += p.is_loop() as usize;
        let last_of_score = order.get(k + 1).is_none_or(|next| next.score != p.score);
        if last_of_score {
            curve.push(PrPoint {
                threshold: p.score,
                precision: tp as f64 / called as f64,
                recall: if positives == 0 {
                    0.0
                } else {
                    tp as f64 / positives as f64
                },
            });
        }
    }
    curve
}

/// All summary figures, recall@N at [`TOP_N`].
pub fn score(pairs: &[ScoredPair]) -> LoopScores {
    score_top(pairs, TOP_N)
}

/// All summary figures, recall@N at `top_n`.
pub fn score_top(pairs: &[ScoredPair], top_n: usize) -> LoopScores {
    let curve = pr_curve(pairs);
    let mut auc = 0.0;
    let mut last_recall = 0.0;
    for p in &curve {
        auc += (p.recall - last_recall) * p.precision;
        last_recall = p.recall;
    }
    let f1_max = curve
        .iter()
        .map(|p| {
            let s = p.precision + p.recall;
            if s > 0.0 { 2.0 * p.precision * p.recall / s } else { 0.0 }
        })
        .fold(0.0, f64::max);
    let mut yaw_errors: Vec<f64> = pairs
        .iter()
        .filter(|p| p.is_loop())
        .map(|p| angle_diff_deg(p.yaw_deg, p.gt_yaw_deg) as f64)
        .collect();
    yaw_errors.sort_by(f64::total_cmp);
    LoopScores {
        pairs: pairs.len(),
        loops: pairs.iter().filter(|p| p.is_loop()).count(),
        auc,
        f1_max,
        recall_at_1: recall_at_1(pairs),
        top_n,
        recall_at_n: recall_within(pairs, |_| top_n),
        recall_at_1_percent: recall_within(pairs, |candidates| candidates.div_ceil(100)),
        yaw_err_mean_deg: (!yaw_errors.is_empty()).then(|| yaw_errors.iter().sum::<f64>() / yaw_errors.len() as f64),
        yaw_err_median_deg: (!yaw_errors.is_empty()).then(|| yaw_errors[yaw_errors.len() / 2]),
    }
}

/// Among queries with at least one loop candidate, the share that has one among its best
/// `top(candidates)` candidates (`candidates`: how many the query has), ties broken by order.
pub fn recall_within(pairs: &[ScoredPair], top: impl Fn(usize) -> usize) -> f64 {
    let mut by_query: std::collections::BTreeMap<usize, Vec<(f32, bool)>> = Default::default();
    for p in pairs {
        by_query.entry(p.query).or_default().push((p.score, p.is_loop()));
    }
    let (mut with_loop, mut found) = (0usize, 0usize);
    for candidates in by_query.values_mut().filter(|c| c.iter().any(|&(_, l)| l)) {
        with_loop += 1;
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let n = top(candidates.len()).max(1);
        found += candidates.iter().take(n).any(|&(_, l)| l) as usize;
    }
    if with_loop == 0 {
        0.0
    } else {
        found as f64 / with_loop as f64
    }
}

/// Among queries with at least one loop candidate, the share whose top-scoring candidate is a loop.
pub fn recall_at_1(pairs: &[ScoredPair]) -> f64 {
    let mut best: std::collections::BTreeMap<usize, (f32, bool, bool)> = Default::default();
    for p in pairs {
        let e = best.entry(p.query).or_insert((f32::NEG_INFINITY, false, false));
        if p.score > e.0 {
            (e.0, e.1) = (p.score, p.is_loop());
        }
        e.2 |= p.is_loop();
    }
    let with_loop: Vec<&(f32, bool, bool)> = best.values().filter(|e| e.2).collect();
    if with_loop.is_empty() {
        return 0.0;
    }
    with_loop.iter().filter(|e| e.1).count() as f64 / with_loop.len() as f64
}

/// An angle in degrees brought into (-180, 180].
pub fn wrap_deg(deg: f32) -> f32 {
    let w = deg.rem_euclid(360.0);
    if w > 180.0 { w - 360.0 } else { w }
}

/// Absolute difference of two angles in degrees, in [0, 180].
pub fn angle_diff_deg(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(query: usize, score: f32, overlap: f32) -> ScoredPair {
        ScoredPair {
            query,
            score,
            overlap,
            positive: overlap > LOOP_OVERLAP,
            yaw_deg: 0.0,
            gt_yaw_deg: 0.0,
        }
    }

    #[test]
    fn a_perfect_ranking_scores_one_and_a_known_ranking_its_known_figures() {
        let perfect = [
            pair(0, 0.9, 0.8),
            pair(0, 0.8, 0.5),
            pair(1, 0.2, 0.1),
            pair(1, 0.1, 0.0),
        ];
        let s = score(&perfect);
        assert_eq!((s.auc, s.f1_max, s.recall_at_1), (1.0, 1.0, 1.0));
        // Ranking: loop, other, loop, other. Average precision = 0.5 * 1 + 0.5 * 2/3.
        let mixed = [
            pair(0, 0.9, 0.8),
            pair(0, 0.8, 0.1),
            pair(1, 0.7, 0.6),
            pair(1, 0.6, 0.0),
        ];
        let s = score(&mixed);
        assert!((s.auc - (0.5 + 1.0 / 3.0)).abs() < 1e-12, "{s:?}");
        assert!((s.f1_max - 0.8).abs() < 1e-12, "P = 2/3, R = 1: {s:?}");
        assert_eq!(s.recall_at_1, 1.0);
        let wrong_top = [pair(0, 0.9, 0.1), pair(0, 0.5, 0.9)];
        assert_eq!(recall_at_1(&wrong_top), 0.0);
        assert_eq!(pr_curve(&mixed).len(), 4);
    }

    #[test]
    fn yaw_errors_wrap_around() {
        assert_eq!(angle_diff_deg(179.0, -179.0), 2.0);
        assert_eq!(angle_diff_deg(-90.0, 90.0), 180.0);
        let mut p = pair(0, 1.0, 0.9);
        (p.yaw_deg, p.gt_yaw_deg) = (10.0, 4.0);
        let s = score(&[p]);
        assert_eq!(s.yaw_err_mean_deg, Some(6.0));
    }

    #[test]
    fn recall_at_n_and_at_one_percent_look_further_down_each_querys_ranking() {
        // Query 0: its loop ranks third of 3. Query 1: first. Query 2: no loop, not counted.
        let pairs = [
            pair(0, 0.9, 0.1),
            pair(0, 0.8, 0.0),
            pair(0, 0.7, 0.6),
            pair(1, 0.5, 0.9),
            pair(2, 0.9, 0.0),
        ];
        assert_eq!(recall_at_1(&pairs), 0.5);
        assert_eq!(recall_within(&pairs, |_| 2), 0.5);
        assert_eq!(recall_within(&pairs, |_| 3), 1.0);
        let s = score_top(&pairs, 3);
        assert_eq!((s.top_n, s.recall_at_n), (3, 1.0));
        // Under 100 candidates, 1 % is the best one alone.
        assert_eq!(s.recall_at_1_percent, 0.5);
        // 250 candidates: 1 % is the best three.
        let many: Vec<ScoredPair> = (0..250)
            .map(|k| pair(7, 1.0 - k as f32 / 1000.0, if k == 2 { 0.9 } else { 0.0 }))
            .collect();
        assert_eq!(score(&many).recall_at_1_percent, 1.0);
        assert_eq!(score(&many).recall_at_1, 0.0);
    }

    #[test]
    fn a_revisit_is_judged_by_overlap_or_by_distance() {
        assert!(RevisitRule::Overlap(0.3).holds(0.31, 100.0));
        assert!(!RevisitRule::Overlap(0.3).holds(0.3, 0.0));
        assert!(RevisitRule::DistanceM(5.0).holds(0.0, 5.0));
        assert!(!RevisitRule::DistanceM(5.0).holds(1.0, 5.01));
    }
}

//! How well a loop detector separates revisits from other places (DESIGN.md §4): the
//! precision-recall curve over its score threshold, its area, the best F1, recall at 1, and the
//! error of the yaw it predicts.

use serde::Serialize;

/// Ground-truth overlap above which a pair counts as a loop (OverlapNet's protocol).
pub const LOOP_OVERLAP: f32 = 0.3;

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

/// All summary figures.
pub fn score(pairs: &[ScoredPair]) -> LoopScores {
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
        yaw_err_mean_deg: (!yaw_errors.is_empty()).then(|| yaw_errors.iter().sum::<f64>() / yaw_errors.len() as f64),
        yaw_err_median_deg: (!yaw_errors.is_empty()).then(|| yaw_errors[yaw_errors.len() / 2]),
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
}

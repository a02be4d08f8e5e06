//! How well a MIMO detector's spread tracks its own errors, and what the loop-search gate built on
//! it would keep and refuse: the figures `eval-loops` reports for `overlapnet-mimo`.

use crate::loops::search::SpreadGate;
use crate::overlapnet::Spread;
use serde::Serialize;

/// One judged pair as the uncertainty figures need it.
#[derive(Debug, Clone, Copy)]
pub struct UncertainPair {
    /// The detector's overlap (the subnetworks' mean).
    pub predicted: f32,
    /// Ground-truth overlap.
    pub truth: f32,
    /// Ground truth says loop.
    pub positive: bool,
    /// Yaw error, degrees.
    pub yaw_err_deg: f32,
    /// The subnetworks' disagreement.
    pub spread: Spread,
}

/// What a gate does to the pairs the detector would propose (predicted overlap above the search's
/// acceptance): how many true and false loops it keeps and refuses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GateOutcome {
    /// The gate.
    pub max_overlap_spread: f32,
    /// The gate's yaw limit, degrees.
    pub max_yaw_spread_deg: f32,
    /// Proposed true loops the gate lets through.
    pub kept_true: usize,
    /// Proposed false loops the gate lets through.
    pub kept_false: usize,
    /// Proposed true loops the gate refuses.
    pub refused_true: usize,
    /// Proposed false loops the gate refuses (verifications saved and risks removed).
    pub refused_false: usize,
}

/// The uncertainty figures of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct UncertaintyReport {
    /// Mean standard deviation of the subnetworks' overlaps.
    pub overlap_spread_mean: f64,
    /// Mean circular deviation of their yaws, degrees.
    pub yaw_spread_mean_deg: f64,
    /// Pearson correlation between the overlap spread and the absolute overlap error, over all
    /// pairs (positive: the network is less sure where it is more wrong).
    pub spread_error_correlation: f64,
    /// Spearman (rank) correlation of the same.
    pub spread_error_rank_correlation: f64,
    /// Pearson correlation between the yaw spread and the yaw error, over true loops.
    pub yaw_spread_error_correlation: f64,
    /// Predicted overlap above which a pair counts as proposed (the loop search's acceptance).
    pub proposed_above: f32,
    /// The default gate's effect on the proposed pairs.
    pub gate: GateOutcome,
    /// The effect of overlap-spread limits alone (no yaw limit), for choosing one.
    pub overlap_sweep: Vec<GateOutcome>,
    /// The effect of yaw-spread limits alone (no overlap limit).
    pub yaw_sweep: Vec<GateOutcome>,
}

/// Overlap-spread limits the sweep tries.
const OVERLAP_SWEEP: [f32; 10] = [0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.06, 0.1, 0.15, 0.2];
/// Yaw-spread limits the sweep tries, degrees.
const YAW_SWEEP: [f32; 9] = [5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0];

/// The figures for `pairs`, with pairs above `proposed_above` treated as proposed loops.
pub fn uncertainty_report(pairs: &[UncertainPair], proposed_above: f32, gate: SpreadGate) -> UncertaintyReport {
    let spread: Vec<f64> = pairs.iter().map(|p| p.spread.overlap as f64).collect();
    let error: Vec<f64> = pairs.iter().map(|p| (p.predicted - p.truth).abs() as f64).collect();
    let loops: Vec<&UncertainPair> = pairs.iter().filter(|p| p.positive).collect();
    let yaw_spread: Vec<f64> = loops.iter().map(|p| p.spread.yaw_deg as f64).collect();
    let yaw_err: Vec<f64> = loops.iter().map(|p| p.yaw_err_deg as f64).collect();
    let n = pairs.len().max(1) as f64;
    UncertaintyReport {
        overlap_spread_mean: spread.iter().sum::<f64>() / n,
        yaw_spread_mean_deg: pairs.iter().map(|p| p.spread.yaw_deg as f64).sum::<f64>() / n,
        spread_error_correlation: pearson(&spread, &error),
        spread_error_rank_correlation: pearson(&ranks(&spread), &ranks(&error)),
        yaw_spread_error_correlation: pearson(&yaw_spread, &yaw_err),
        proposed_above,
        gate: gate_outcome(pairs, proposed_above, gate),
        overlap_sweep: OVERLAP_SWEEP
            .iter()
            .map(|&max_overlap| {
                let g = SpreadGate {
                    max_overlap,
                    max_yaw_deg: f32::INFINITY,
                };
                gate_outcome(pairs, proposed_above, g)
            })
            .collect(),
        yaw_sweep: YAW_SWEEP
            .iter()
            .map(|&max_yaw_deg| {
                let g = SpreadGate {
                    max_overlap: f32::INFINITY,
                    max_yaw_deg,
                };
                gate_outcome(pairs, proposed_above, g)
            })
            .collect(),
    }
}

/// What `gate` keeps and refuses of the pairs predicted above `proposed_above`.
pub fn gate_outcome(pairs: &[UncertainPair], proposed_above: f32, gate: SpreadGate) -> GateOutcome {
    let mut out = GateOutcome {
        max_overlap_spread: gate.max_overlap,
        max_yaw_spread_deg: gate.max_yaw_deg,
        kept_true: 0,
        kept_false: 0,
        refused_true: 0,
        refused_false: 0,
    };
    for p in pairs.iter().filter(|p| p.predicted > proposed_above) {
        let slot = match (gate.refuses(Some(p.spread)), p.positive) {
            (false, true) => &mut out.kept_true,
            (false, false) => &mut out.kept_false,
            (true, true) => &mut out.refused_true,
            (true, false) => &mut out.refused_false,
        };
        *slot += 1;
    }
    out
}

/// Pearson correlation of two equally long series (0 when either is constant or empty).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (ma, mb) = (
        a[..n].iter().sum::<f64>() / n as f64,
        b[..n].iter().sum::<f64>() / n as f64,
    );
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Ranks of `v` (ties get their mean rank), for Spearman's correlation.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(predicted: f32, truth: f32, overlap_spread: f32) -> UncertainPair {
        UncertainPair {
            predicted,
            truth,
            positive: truth > 0.3,
            yaw_err_deg: 0.0,
            spread: Spread {
                overlap: overlap_spread,
                yaw_deg: 1.0,
            },
        }
    }

    #[test]
    fn correlations_of_known_series() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), vec![0.0, 3.0, 1.5, 1.5]);
    }

    #[test]
    fn the_gate_sorts_proposed_pairs_by_truth_and_spread() {
        let pairs = [
            pair(0.8, 0.7, 0.01),  // kept true loop
            pair(0.6, 0.05, 0.30), // refused false loop
            pair(0.5, 0.6, 0.20),  // refused true loop
            pair(0.4, 0.1, 0.05),  // kept false loop
            pair(0.1, 0.0, 0.50),  // not proposed
        ];
        let gate = SpreadGate {
            max_overlap: 0.15,
            max_yaw_deg: 30.0,
        };
        let o = gate_outcome(&pairs, 0.3, gate);
        assert_eq!(
            (o.kept_true, o.kept_false, o.refused_true, o.refused_false),
            (1, 1, 1, 1)
        );
        let r = uncertainty_report(&pairs, 0.3, gate);
        // Errors 0.1, 0.55, 0.1, 0.3, 0.1 against spreads 0.01, 0.3, 0.2, 0.05, 0.5.
        assert!(r.spread_error_correlation > 0.0 && r.spread_error_correlation < 0.5);
        assert_eq!(r.overlap_sweep.len(), OVERLAP_SWEEP.len());
        // Without a yaw limit, an overlap limit of 0.2 refuses only the pair of spread 0.3.
        let loosest = r.overlap_sweep.last().unwrap();
        assert_eq!((loosest.refused_true, loosest.refused_false), (0, 1));
        // Every yaw spread is 1 degree: no yaw limit refuses anything.
        assert!(r.yaw_sweep.iter().all(|g| g.refused_true + g.refused_false == 0));
    }
}

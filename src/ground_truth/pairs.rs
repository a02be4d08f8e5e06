//! Ground-truth scan pairs for training and judging loop detectors (OverlapNet, Chen et al., RSS
//! 2020, Sec. IV): the overlap of two posed scans, their relative yaw as a class of the yaw head,
//! and the sampling that balances pairs over the overlap range.

use crate::projection::overlap::{range_agreement, relative_yaw_deg};
use crate::projection::{ProjectionParams, RangeImage};
use crate::scan::Pose;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Classes of OverlapNet's yaw head: one per degree.
pub const YAW_BINS: usize = 360;

/// Width of the overlap bins that balanced sampling evens out (OverlapNet: 0.1).
pub const OVERLAP_BIN: f32 = 0.1;

/// A labelled pair: how much of the query scan the reference scan shows, and how it is turned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairLabel {
    /// Index of the query scan (the later one, when the pair is a revisit).
    pub query: usize,
    /// Index of the reference scan.
    pub reference: usize,
    /// Share of the query's valid pixels where the reference, moved into the query's frame,
    /// agrees in range (within `RANGE_AGREEMENT_M`); in [0, 1].
    pub overlap: f32,
    /// Yaw of the reference relative to the query, degrees in (-180, 180].
    pub yaw_deg: f32,
}

impl PairLabel {
    /// A scan paired with itself: full overlap, no yaw.
    pub fn itself(scan: usize) -> Self {
        Self {
            query: scan,
            reference: scan,
            overlap: 1.0,
            yaw_deg: 0.0,
        }
    }

    /// The yaw head's class as OverlapNet labels it.
    pub fn yaw_bin(&self) -> usize {
        yaw_bin(self.yaw_deg)
    }
}

/// The yaw head's class of a yaw in degrees, as OverlapNet's `com_overlap_yaw.py` computes it:
/// `floor(-yaw) + 180`, so 0 degrees is class 180, +10 is 170 and -10 is 190; the decoder reads
/// `180 - class` back. Wrapped into [0, 360): the authors' formula gives 360 for exactly -180.
pub fn yaw_bin(yaw_deg: f32) -> usize {
    ((-yaw_deg).floor() as i64 + (YAW_BINS / 2) as i64).rem_euclid(YAW_BINS as i64) as usize
}

/// One scan reduced to what labelling needs: its range image as the query, and every point of
/// the raw scan as the reference.
#[derive(Debug, Clone)]
pub struct LabelScan {
    /// Range per pixel, `rows x cols`, `EMPTY` where none.
    pub range: Vec<f32>,
    /// Valid pixels.
    pub valid: usize,
    /// Every point of the raw scan, sensor frame. OverlapNet reprojects all of them, not only the
    /// ones that won a pixel of the scan's own image: points beyond the range cut or hidden
    /// behind a nearer one can be in view from the query's position.
    pub points: Vec<[f32; 3]>,
    /// Ground-truth pose.
    pub pose: Pose,
    /// Range of the farthest point, metres: a scan farther than this plus the projection range
    /// from a query cannot show it anything.
    pub reach: f32,
}

impl LabelScan {
    /// Keeps the parts of a scan that labelling uses: its projected image and all its points
    /// (taken, not copied: a scan has about 120 000).
    pub fn new(image: &RangeImage, points: Vec<[f32; 3]>, pose: Pose) -> Self {
        let reach = points
            .iter()
            .map(|p| (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt())
            .filter(|r| r.is_finite())
            .fold(0.0, f32::max);
        Self {
            valid: image.valid_count(),
            range: image.range.clone(),
            points,
            pose,
            reach,
        }
    }
}

/// Labels `pair` = (query, reference) as OverlapNet does: every point of the reference moved into
/// the query's frame and projected there, overlap = share of the query's valid pixels where that
/// projection lands within 1 m of the query's range. A reference farther from the query than its
/// farthest point plus the projection range shares no pixel, so it gets 0 without projecting.
pub fn label(scans: &[LabelScan], pair: (usize, usize), params: &ProjectionParams) -> PairLabel {
    let (q, r) = (&scans[pair.0], &scans[pair.1]);
    let yaw_deg = relative_yaw_deg(&q.pose, &r.pose) as f32;
    let apart = (q.pose.translation.vector - r.pose.translation.vector).norm();
    let overlap = if q.valid == 0 || apart > (params.max_range + r.reach) as f64 {
        0.0
    } else {
        range_agreement(&q.range, q.valid, &(q.pose.inverse() * r.pose), &r.points, params)
    };
    PairLabel {
        query: pair.0,
        reference: pair.1,
        overlap,
        yaw_deg,
    }
}

/// Labels many pairs in parallel, in the order given.
pub fn label_all(scans: &[LabelScan], pairs: &[(usize, usize)], params: &ProjectionParams) -> Vec<PairLabel> {
    pairs.par_iter().map(|&p| label(scans, p, params)).collect()
}

/// Pairs (query, reference) of positions in `frames` (source frame numbers, ascending) whose
/// frames are at least `min_gap` apart.
pub fn pairs_apart(frames: &[usize], min_gap: usize) -> Vec<(usize, usize)> {
    all_pairs(frames.len(), 1)
        .into_iter()
        .filter(|&(q, r)| frames[q] - frames[r] >= min_gap)
        .collect()
}

/// Every (query, reference) with the reference at least `min_gap` frames before the query.
pub fn all_pairs(scans: usize, min_gap: usize) -> Vec<(usize, usize)> {
    let min_gap = min_gap.max(1);
    (0..scans)
        .flat_map(|q| (0..q.saturating_sub(min_gap - 1)).map(move |r| (q, r)))
        .collect()
}

/// How pairs are balanced over overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// OverlapNet's rule: every bin under 0.4 is cut down to the size of the 0.4-0.5 bin; bins
    /// from 0.4 up are kept whole.
    OverlapNet,
    /// At most this many pairs in every bin.
    PerBin(usize),
}

/// Bin of an overlap value: [0, 0.1) is 0, ..., [0.9, 1] is 9.
pub fn overlap_bin(overlap: f32) -> usize {
    let bins = (1.0 / OVERLAP_BIN).round() as usize;
    ((overlap / OVERLAP_BIN) as usize).min(bins - 1)
}

/// Pairs per [`OVERLAP_BIN`]-wide overlap bin.
pub fn overlap_histogram(labels: &[PairLabel]) -> Vec<usize> {
    let mut h = vec![0; (1.0 / OVERLAP_BIN).round() as usize];
    for l in labels {
        h[overlap_bin(l.overlap)] += 1;
    }
    h
}

/// Balances `labels` over the [`OVERLAP_BIN`]-wide overlap bins, drawing at random with `seed`,
/// and returns them in (query, reference) order: the many near-zero pairs would otherwise drown
/// the rare high-overlap ones in training.
pub fn balanced(labels: &[PairLabel], balance: Balance, seed: u64) -> Vec<PairLabel> {
    let bins = (1.0 / OVERLAP_BIN).round() as usize;
    let mut by_bin: Vec<Vec<PairLabel>> = vec![Vec::new(); bins];
    for l in labels {
        by_bin[overlap_bin(l.overlap)].push(*l);
    }
    let reference_bin = overlap_bin(0.45);
    let cap = |bin: usize| match balance {
        Balance::PerBin(n) => n,
        Balance::OverlapNet if bin < reference_bin => by_bin[reference_bin].len(),
        Balance::OverlapNet => usize::MAX,
    };
    let caps: Vec<usize> = (0..bins).map(cap).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut kept: Vec<PairLabel> = by_bin
        .into_iter()
        .zip(caps)
        .flat_map(|(mut bin, cap)| {
            bin.shuffle(&mut rng);
            bin.truncate(cap);
            bin
        })
        .collect();
    kept.sort_by_key(|l| (l.query, l.reference));
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::overlap::transform_points;
    use crate::projection::project;
    use nalgebra::Vector3;

    /// A closed room with a pillar, seen from `pose` (points in the sensor frame).
    fn room_from(pose: &Pose) -> Vec<[f32; 3]> {
        let mut world = Vec::new();
        for i in 0..400 {
            let t = i as f32 * 0.1 - 20.0;
            for k in 0..30 {
                let z = -1.7 + k as f32 * 0.2;
                world.extend([[t, 15.0, z], [t, -15.0, z], [20.0, t * 0.75, z], [-20.0, t * 0.75, z]]);
            }
        }
        for i in 0..200 {
            for k in 0..60 {
                let x = -20.0 + 0.2 * i as f32;
                world.push([x, -15.0 + 0.5 * k as f32, -1.7]);
            }
        }
        transform_points(&pose.inverse(), &world)
    }

    fn scans(poses: &[Pose], params: &ProjectionParams) -> Vec<LabelScan> {
        poses
            .iter()
            .map(|p| {
                let points = room_from(p);
                LabelScan::new(&project(&points, &[], params), points, *p)
            })
            .collect()
    }

    #[test]
    fn labels_overlap_yaw_and_far_pairs() {
        let params = ProjectionParams::overlapnet_hdl64();
        let poses = [
            Pose::identity(),
            Pose::new(Vector3::new(0.5, 0.0, 0.0), Vector3::new(0.0, 0.0, 30f64.to_radians())),
            Pose::new(Vector3::new(500.0, 0.0, 0.0), Vector3::zeros()),
        ];
        let s = scans(&poses, &params);
        let same = label(&s, (0, 0), &params);
        assert!((same.overlap - 1.0).abs() < 1e-6, "{same:?}");
        let turned = label(&s, (1, 0), &params);
        assert!(turned.overlap > 0.6, "{turned:?}");
        assert!((turned.yaw_deg + 30.0).abs() < 1e-3, "{turned:?}");
        // OverlapNet's class: floor(30) + 180.
        assert_eq!(turned.yaw_bin(), 210);
        assert_eq!(label(&s, (2, 0), &params).overlap, 0.0);
        assert_eq!(label_all(&s, &[(1, 0), (2, 0)], &params)[0], turned);
    }

    #[test]
    fn yaw_classes_follow_overlapnets_formula() {
        // com_overlap_yaw.py: int(-(yaw/pi)*360//2 + 360//2) = floor(-yaw_deg) + 180.
        for (yaw, class) in [
            (0.0, 180),
            (10.0, 170),
            (-10.0, 190),
            (10.5, 169),
            (-0.5, 180),
            (179.9, 0),
            (-180.0, 0),
        ] {
            assert_eq!(yaw_bin(yaw), class, "yaw {yaw}");
        }
    }

    /// The reference sees a wall 60 m ahead, beyond its own 50 m projection; the query, 20 m
    /// further on, sees it at 40 m. OverlapNet reprojects every reference point, so the pair
    /// overlaps; reprojecting only the pixels of the reference's own image finds nothing.
    #[test]
    fn every_reference_point_counts_not_only_its_image() {
        let params = ProjectionParams::overlapnet_hdl64();
        let mut wall = Vec::new();
        for i in 0..600 {
            for k in 0..120 {
                wall.push([60.0, -30.0 + 0.1 * i as f32, -1.7 + 0.05 * k as f32]);
            }
        }
        let reference = Pose::identity();
        let query = Pose::new(Vector3::new(20.0, 0.0, 0.0), Vector3::zeros());
        let from_query = transform_points(&query.inverse(), &wall);
        let scans = [
            LabelScan::new(&project(&from_query, &[], &params), from_query, query),
            LabelScan::new(&project(&wall, &[], &params), wall.clone(), reference),
        ];
        assert!(scans[0].valid > 1000 && scans[1].valid == 0);
        let full = label(&scans, (0, 1), &params);
        assert!(full.overlap > 0.95, "{full:?}");
        // Only the points that won a pixel of the reference's own image: the wall is not among them.
        let ref_image = project(&wall, &[], &params);
        let image_only = LabelScan {
            points: (0..ref_image.range.len())
                .filter(|&i| ref_image.is_valid(i))
                .map(|i| ref_image.vertex[i])
                .collect(),
            ..scans[1].clone()
        };
        let cut = label(&[scans[0].clone(), image_only], (0, 1), &params);
        assert_eq!(cut.overlap, 0.0);
        // The wall's reach (about 62 m) keeps the pair within labelling distance.
        assert!(scans[1].reach > 60.0);
    }

    #[test]
    fn pairs_respect_the_gap_and_balancing_evens_the_bins() {
        assert_eq!(all_pairs(4, 2), vec![(2, 0), (3, 0), (3, 1)]);
        assert_eq!(all_pairs(3, 0), vec![(1, 0), (2, 0), (2, 1)]);
        let overlaps = |k: usize| match k {
            0..900 => 0.01,
            900..920 => 0.45,
            920..930 => 0.2,
            _ => 0.95,
        };
        let labels: Vec<PairLabel> = (0..1000)
            .map(|k| PairLabel {
                query: k,
                reference: 0,
                overlap: overlaps(k),
                yaw_deg: 0.0,
            })
            .collect();
        let count = |kept: &[PairLabel], o: f32| kept.iter().filter(|l| l.overlap == o).count();
        let kept = balanced(&labels, Balance::PerBin(50), 7);
        assert_eq!(kept.len(), 50 + 20 + 10 + 50);
        assert_eq!(count(&kept, 0.95), 50);
        assert_eq!(kept, balanced(&labels, Balance::PerBin(50), 7), "seeded");
        // OverlapNet's rule: bins under 0.4 cut to the 0.4-0.5 bin's 20; the rest kept whole.
        let paper = balanced(&labels, Balance::OverlapNet, 7);
        assert_eq!((count(&paper, 0.01), count(&paper, 0.2)), (20, 10));
        assert_eq!((count(&paper, 0.45), count(&paper, 0.95)), (20, 70));
        assert!(kept.windows(2).all(|w| w[0].query < w[1].query));
    }
}

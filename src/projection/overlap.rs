//! Ground-truth overlap and relative yaw of two scans with known poses (OverlapNet, Chen et al.,
//! RSS 2020): the labels the network learns and the loop-closure evaluation judges against.

use super::{ProjectionParams, RangeImage, project, project_ranges};
use crate::scan::Pose;

/// Two range readings of one pixel agree when they differ by less than this, metres
/// (OverlapNet's overlap threshold).
pub const RANGE_AGREEMENT_M: f32 = 1.0;

/// Overlap of scan `j` seen from scan `i`: the share of scan `i`'s valid pixels where scan `j`,
/// moved into frame `i`, lands within [`RANGE_AGREEMENT_M`] of the same range. Asymmetric.
pub fn overlap(
    image_i: &RangeImage,
    pose_i: &Pose,
    points_j: &[[f32; 3]],
    pose_j: &Pose,
    params: &ProjectionParams,
) -> f32 {
    let valid_i = image_i.valid_count();
    if valid_i == 0 {
        return 0.0;
    }
    range_agreement(&image_i.range, valid_i, &(pose_i.inverse() * pose_j), points_j, params)
}

/// The overlap computation on its parts: `points_j` moved by `j_to_i` and projected, compared
/// with the ranges `range_i` of scan `i` (which has `valid_i` > 0 valid pixels).
pub fn range_agreement(
    range_i: &[f32],
    valid_i: usize,
    j_to_i: &Pose,
    points_j: &[[f32; 3]],
    params: &ProjectionParams,
) -> f32 {
    thread_local! {
        /// One range image per thread, reused pair after pair: labelling tens of thousands of
        /// pairs allocated (and the kernel zeroed) two megabytes of images for each.
        static RANGES: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let m = j_to_i.to_homogeneous().cast::<f32>();
    RANGES.with_borrow_mut(|range_j| {
        project_ranges(points_j.iter().map(|p| transform_point(&m, p)), params, range_j);
        let agreeing = range_i
            .iter()
            .zip(range_j.iter())
            .filter(|(ri, rj)| **ri > 0.0 && **rj > 0.0 && (**ri - **rj).abs() < RANGE_AGREEMENT_M)
            .count();
        agreeing as f32 / valid_i as f32
    })
}

/// `p` moved by the homogeneous transform `m`, in `f32` as [`transform_points`] moves it.
fn transform_point(m: &nalgebra::Matrix4<f32>, p: &[f32; 3]) -> [f32; 3] {
    [
        m[(0, 0)] * p[0] + m[(0, 1)] * p[1] + m[(0, 2)] * p[2] + m[(0, 3)],
        m[(1, 0)] * p[0] + m[(1, 1)] * p[1] + m[(1, 2)] * p[2] + m[(1, 3)],
        m[(2, 0)] * p[0] + m[(2, 1)] * p[1] + m[(2, 2)] * p[2] + m[(2, 3)],
    ]
}

/// Yaw of `pose_i⁻¹ · pose_j` in degrees, in (-180, 180]: how far scan `j` is turned from scan `i`.
pub fn relative_yaw_deg(pose_i: &Pose, pose_j: &Pose) -> f64 {
    let rel = pose_i.inverse() * pose_j;
    let m = rel.rotation.to_rotation_matrix();
    m[(1, 0)].atan2(m[(0, 0)]).to_degrees()
}

/// Applies a rigid transform to f32 points.
pub fn transform_points(t: &Pose, points: &[[f32; 3]]) -> Vec<[f32; 3]> {
    let m = t.to_homogeneous().cast::<f32>();
    points.iter().map(|p| transform_point(&m, p)).collect()
}

/// Overlap of scan `j` seen from scan `i`, column by column: for each column of `image_i`, the
/// share of its valid pixels where scan `j` agrees (as in [`overlap`]); NaN for columns without
/// a return. The region two scans share, for judging attribution maps.
pub fn column_overlap(
    image_i: &RangeImage,
    pose_i: &Pose,
    points_j: &[[f32; 3]],
    pose_j: &Pose,
    params: &ProjectionParams,
) -> Vec<f32> {
    let image_j = project(&transform_points(&(pose_i.inverse() * pose_j), points_j), &[], params);
    let (rows, cols) = (image_i.rows, image_i.cols);
    (0..cols)
        .map(|c| {
            let (mut valid, mut agree) = (0usize, 0usize);
            for r in 0..rows {
                let (ri, rj) = (image_i.range[r * cols + c], image_j.range[r * cols + c]);
                if ri > 0.0 {
                    valid += 1;
                    agree += usize::from(rj > 0.0 && (ri - rj).abs() < RANGE_AGREEMENT_M);
                }
            }
            if valid == 0 {
                f32::NAN
            } else {
                agree as f32 / valid as f32
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    fn room() -> Vec<[f32; 3]> {
        // Walls of a 40 m x 30 m box around the sensor plus a floor.
        let mut pts = Vec::new();
        for k in 0..4000 {
            let s = k as f32 / 4000.0;
            for h in 0..20 {
                let z = -1.7 + h as f32 * 0.3;
                pts.push([-20.0 + 40.0 * s, 15.0, z]);
                pts.push([-20.0 + 40.0 * s, -15.0, z]);
                pts.push([20.0, -15.0 + 30.0 * s, z]);
                pts.push([-20.0, -15.0 + 30.0 * s, z]);
            }
        }
        pts
    }

    #[test]
    fn a_scan_overlaps_itself_fully_and_nothing_far_away() {
        let params = ProjectionParams::overlapnet_hdl64();
        let pts = room();
        let img = project(&pts, &[], &params);
        let id = Pose::identity();
        assert_eq!(overlap(&img, &id, &pts, &id, &params), 1.0);
        let far = Pose::new(Vector3::new(200.0, 0.0, 0.0), Vector3::zeros());
        assert_eq!(overlap(&img, &id, &pts, &far, &params), 0.0);
        // A small move keeps most of the overlap.
        let near = Pose::new(Vector3::new(0.5, 0.0, 0.0), Vector3::zeros());
        let moved: Vec<[f32; 3]> = pts.iter().map(|p| [p[0] - 0.5, p[1], p[2]]).collect();
        assert!(overlap(&img, &id, &moved, &near, &params) > 0.95);
    }

    #[test]
    fn relative_yaw_is_signed_degrees() {
        let a = Pose::new(Vector3::zeros(), Vector3::new(0.0, 0.0, 0.3));
        let b = Pose::new(
            Vector3::new(1.0, 2.0, 0.0),
            Vector3::new(0.0, 0.0, 0.3 + 40f64.to_radians()),
        );
        assert!((relative_yaw_deg(&a, &b) - 40.0).abs() < 1e-9);
        assert!((relative_yaw_deg(&b, &a) + 40.0).abs() < 1e-9);
    }
}

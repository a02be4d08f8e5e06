//! overlap-slam against the authors' OverlapNet: their preprocessed network inputs for KITTI 00
//! frames 0 and 1 (../shared/reference), their ground-truth overlap (`com_overlap_yaw.py`, as
//! scripts/overlapnet_reference.py computes it), and a Keras HDF5 weights file in their layout
//! written by h5py, run through an independent NumPy forward pass (tests/fixtures, made by
//! `scripts/overlapnet_reference.py keras-fixture tests/fixtures`).

mod common;

use candle_core::{Device, Tensor};
use overlap_slam::ground_truth::pairs::{LabelScan, label};
use overlap_slam::io::{self, SourceOptions};
use overlap_slam::overlapnet::input::encode;
use overlap_slam::overlapnet::{Channels, OverlapNet, YawDecoding};
use overlap_slam::projection::{ProjectionParams, RangeImage, project};
use std::path::{Path, PathBuf};

fn kitti_scans(dir: &Path, frames: &[usize]) -> Vec<overlap_slam::scan::Scan> {
    let end = frames.iter().max().unwrap() + 1;
    let all: Vec<_> = io::open(
        dir,
        &SourceOptions {
            frames: format!("0..{end}").parse().unwrap(),
            ..Default::default()
        },
    )
    .unwrap()
    .map(|s| s.unwrap())
    .collect();
    frames.iter().map(|&f| all[f].clone()).collect()
}

fn projected(dir: &Path, frame: usize) -> RangeImage {
    let scan = &kitti_scans(dir, &[frame])[0];
    project(&scan.points, &scan.intensity, &ProjectionParams::overlapnet_hdl64())
}

/// The authors' network input for `frame`: depth then normals, (64, 900, 4) channels-last.
fn authors_input(pre: &Path, frame: usize) -> Vec<f32> {
    let (_, depth) = common::read_npy_f32(&pre.join(format!("depth/{frame:06}.npy")));
    let (_, normal) = common::read_npy_f32(&pre.join(format!("normal/{frame:06}.npy")));
    depth
        .iter()
        .zip(normal.chunks_exact(3))
        .flat_map(|(d, n)| [*d, n[0], n[1], n[2]])
        .collect()
}

#[test]
fn projection_reproduces_the_authors_depth_and_normals() {
    let (Some(kitti), Some(pre)) = (common::shared_kitti(), common::shared_overlapnet_preprocessed()) else {
        return;
    };
    for frame in [0, 1] {
        let img = projected(&kitti, frame);
        let (shape, depth) = common::read_npy_f32(&pre.join(format!("depth/{frame:06}.npy")));
        assert_eq!(shape, vec![64, 900]);
        let (shape, normal) = common::read_npy_f32(&pre.join(format!("normal/{frame:06}.npy")));
        assert_eq!(shape, vec![64, 900, 3]);
        let (_, intensity) = common::read_npy_f32(&pre.join(format!("intensity/{frame:06}.npy")));
        let mut valid = 0;
        for i in 0..64 * 900 {
            assert_eq!(img.range[i] > 0.0, depth[i] > 0.0, "frame {frame} pixel {i}: validity");
            assert!(
                (img.range[i] - depth[i]).abs() < 1e-4,
                "frame {frame} pixel {i}: {} vs {}",
                img.range[i],
                depth[i]
            );
            assert!(
                (img.intensity[i] - intensity[i]).abs() < 1e-4,
                "frame {frame} pixel {i}: intensity"
            );
            for c in 0..3 {
                let (ours, theirs) = (img.normal[i][c], normal[3 * i + c]);
                assert!(
                    (ours - theirs).abs() < 1e-4,
                    "frame {frame} pixel {i} normal {c}: {ours} vs {theirs}"
                );
            }
            valid += usize::from(depth[i] > 0.0);
        }
        assert!(valid > 44_000, "frame {frame}: {valid} valid pixels");
        // The last row has no normal, in theirs and ours.
        assert!(img.normal[63 * 900..].iter().all(|n| *n == [-1.0; 3]));
        // And the network input is theirs, channel for channel: depth, nx, ny, nz, -1 when empty.
        let ours = encode(&img, Channels::default());
        let theirs = authors_input(&pre, frame);
        assert_eq!(ours.len(), theirs.len());
        assert!(
            ours.iter().zip(&theirs).all(|(a, b)| (a - b).abs() < 1e-4),
            "frame {frame}: encoded input"
        );
    }
}

/// com_overlap_yaw.py's overlap and yaw class on real pairs, from scripts/overlapnet_reference.py
/// (`labels ../shared/datasets/kitti-00-0000-0060 10 0 20 0 30 10 60 0 50 45`).
#[test]
fn ground_truth_overlap_is_the_authors() {
    let Some(kitti) = common::shared_kitti() else { return };
    let params = ProjectionParams::overlapnet_hdl64();
    let frames = [0, 10, 20, 30, 45, 50, 60];
    let scans: Vec<LabelScan> = kitti_scans(&kitti, &frames)
        .into_iter()
        .map(|s| LabelScan::new(&project(&s.points, &[], &params), s.points, s.gt_pose.unwrap()))
        .collect();
    let at = |f: usize| frames.iter().position(|&x| x == f).unwrap();
    for (q, r, overlap, class) in [
        (10, 0, 0.3216, 181),
        (20, 0, 0.1432, 182),
        (30, 10, 0.2006, 181),
        (60, 0, 0.0074, 183),
        (50, 45, 0.4754, 180),
    ] {
        let l = label(&scans, (at(q), at(r)), &params);
        assert!(
            (l.overlap - overlap).abs() < 6e-4,
            "({q}, {r}): {} vs the authors' {overlap}",
            l.overlap
        );
        assert_eq!(l.yaw_bin(), class, "({q}, {r}) yaw {}", l.yaw_deg);
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn assert_close(ours: &[f32], theirs: &[f32], what: &str) {
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1.0);
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 * scale,
            "{what}[{i}]: {a} vs NumPy's {b} (scale {scale})"
        );
    }
}

#[test]
fn keras_weights_run_as_numpy_runs_them() {
    let Some(pre) = common::shared_overlapnet_preprocessed() else {
        return;
    };
    let net = OverlapNet::load(&fixture("overlapnet_keras.h5")).unwrap();
    assert_eq!(net.config.channels, Channels::default());
    assert_eq!(
        (net.config.width_divisor, net.config.yaw_decoding),
        (1, YawDecoding::ArgmaxDegrees)
    );
    let images: Vec<f32> = [authors_input(&pre, 0), authors_input(&pre, 1)].concat();
    let x = Tensor::from_vec(images, (2, 64, 900, 4), &Device::Cpu).unwrap();
    let volumes = net.legs(&x).unwrap();
    for frame in [0, 1] {
        let (shape, want) = common::read_npy_f32(&fixture(&format!("overlapnet_keras_features_{frame}.npy")));
        assert_eq!(shape, vec![360, 128]);
        let got = volumes
            .get(frame)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_close(&got, &want, &format!("features of frame {frame}"));
    }
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("overlapnet_keras_expected.json")).unwrap()).unwrap();
    let (left, right) = (volumes.narrow(0, 0, 1).unwrap(), volumes.narrow(0, 1, 1).unwrap());
    let (overlap, logits) = net.heads(&left, &right).unwrap();
    let overlap = overlap.to_vec1::<f32>().unwrap()[0];
    let want = expected["overlap"].as_f64().unwrap() as f32;
    assert!((overlap - want).abs() < 1e-4, "overlap {overlap} vs NumPy's {want}");
    let want: Vec<f32> = expected["yaw_logits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_close(
        &logits.squeeze(0).unwrap().to_vec1::<f32>().unwrap(),
        &want,
        "yaw logits",
    );
    // The whole path from images: describe, compare, the authors' decoding (180 - argmax).
    let f = net
        .describe_encoded(&[authors_input(&pre, 0), authors_input(&pre, 1)])
        .unwrap();
    let m = net.compare(&[(&f[0], &f[1])], 1).unwrap()[0];
    assert_eq!(m.yaw_deg, expected["yaw_deg"].as_f64().unwrap() as f32);
    assert!((m.overlap - overlap).abs() < 1e-5);
}

#[test]
fn a_broken_keras_file_is_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("overlapnet_keras.h5")).unwrap();
    let cut = dir.path().join("model_geo.weight");
    std::fs::write(&cut, &bytes[..4096]).unwrap();
    let err = OverlapNet::load(&cut)
        .err()
        .expect("a cut file does not load")
        .to_string();
    assert!(
        err.contains("model_geo.weight") && err.contains("Keras weights"),
        "{err}"
    );
    let out = common::cli(&["match", "a.bin", "b.bin", "--weights", cut.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

/// Corrupt headers (bytes flipped where HDF5 keeps its superblock, object headers, heaps and
/// B-trees) give weights or an error, never a panic or a runaway allocation.
#[test]
fn corrupt_keras_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let bytes = std::fs::read(fixture("overlapnet_keras.h5")).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let path = Path::new("corrupt.weight");
    for round in 0..400 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..16_384);
            b[at] = rng.random();
        }
        if round % 4 == 0 {
            b.truncate(rng.random_range(0..b.len()));
        }
        let _ = overlap_slam::io::keras::read_bytes(&b, path);
    }
}

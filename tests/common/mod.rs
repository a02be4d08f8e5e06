//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The real KITTI frames beside the checkout, or `None` (with the reason printed) in a user's
/// clone, which has no `../shared`.
pub fn shared_kitti() -> Option<PathBuf> {
    shared_folder("datasets/kitti-00-0000-0060", "velodyne")
}

/// `../shared/datasets/kitti-mini-01-10` (the first scans of KITTI sequences 01 to 10), or
/// `None` with the reason printed.
pub fn shared_kitti_mini() -> Option<PathBuf> {
    shared_folder("datasets/kitti-mini-01-10", "01")
}

/// `../shared/<rel>` when it holds the folder `inner`, or `None` with the reason printed.
fn shared_folder(rel: &str, inner: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared").join(rel);
    if p.join(inner).is_dir() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is absent (only CI and developer checkouts have ../shared)",
            p.display()
        );
        None
    }
}

/// The KITTI sample shipped in the repository.
pub fn sample_kitti() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("datasets/kitti-00-sample")
}

/// A quiet replay of the scans at `path` with the default (KISS) odometry.
pub fn path_replay(path: PathBuf) -> overlap_slam::pipeline::PipelineConfig {
    overlap_slam::pipeline::PipelineConfig {
        source: overlap_slam::pipeline::SourceSpec::Path {
            path,
            options: Default::default(),
        },
        loops: None,
        quiet: true,
        ..Default::default()
    }
}

/// The `metrics.json` a run wrote into `out`.
pub fn metrics(out: &std::path::Path) -> serde_json::Value {
    let path = out.join("metrics.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs the `overlap-slam` binary.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args(args)
        .output()
        .expect("binary runs")
}

/// Runs the `overlap-slam` binary and asserts it succeeded (its stderr shown if not).
pub fn cli_ok(args: &[&str]) -> Output {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `overlap-slam replay ARGS --quiet --rrd DIR/run.rrd`, asserts it succeeded, and returns
/// the recording's path.
pub fn cli_recording(dir: &std::path::Path, args: &[&str]) -> PathBuf {
    let rrd = dir.join("run.rrd");
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.extend(["--quiet", "--rrd", rrd.to_str().unwrap()]);
    let out = cli(&all);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    rrd
}

/// Asserts the binary failed with exit code 2 and one stderr line containing every needle.
pub fn assert_input_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "'{}' lacks '{n}'", lines[0]);
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Entity paths logged in an .rrd file.
pub fn rrd_entity_paths(path: &std::path::Path) -> Vec<String> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let decoder = re_log_encoding::DecoderApp::decode_lazy(file);
    let mut paths = std::collections::BTreeSet::new();
    for msg in decoder {
        if let re_log_types::LogMsg::ArrowMsg(_, arrow) = msg.unwrap() {
            let chunk = re_chunk::Chunk::from_arrow_msg(&arrow).unwrap();
            paths.insert(chunk.entity_path().to_string());
        }
    }
    paths.into_iter().collect()
}

/// The chunks of an .rrd file in file order: (entity path, rows).
pub fn rrd_chunks(path: &std::path::Path) -> Vec<(String, usize)> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut chunks = Vec::new();
    for msg in re_log_encoding::DecoderApp::decode_lazy(file) {
        if let re_log_types::LogMsg::ArrowMsg(_, arrow) = msg.unwrap() {
            let chunk = re_chunk::Chunk::from_arrow_msg(&arrow).unwrap();
            chunks.push((chunk.entity_path().to_string(), chunk.num_rows()));
        }
    }
    chunks
}

/// Rows logged per entity path in an .rrd file (static rows included), over every chunk.
pub fn rrd_rows(path: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let mut rows = std::collections::BTreeMap::new();
    for (entity, n) in rrd_chunks(path) {
        *rows.entry(entity).or_default() += n;
    }
    rows
}

/// A little-endian float32 `.npy` array (format 1.0/2.0, C order): its shape and values. The
/// authors' preprocessed OverlapNet inputs and the NumPy reference's outputs come this way.
pub fn read_npy_f32(path: &std::path::Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}: not an .npy file", path.display());
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize, 12),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{}: {header}", path.display());
    assert!(
        header.contains("'fortran_order': False"),
        "{}: {header}",
        path.display()
    );
    let shape_text = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let values: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(values.len(), shape.iter().product::<usize>(), "{}", path.display());
    (shape, values)
}

/// The authors' preprocessed OverlapNet inputs beside the checkout, or `None` (with the reason
/// printed) in a user's clone.
pub fn shared_overlapnet_preprocessed() -> Option<PathBuf> {
    shared_folder("reference/overlapnet-preprocessed", "depth")
}

/// Three 64 x 900 four-channel "scans" for training-step tests: structured images that differ
/// (phases 0, 1 and 2.5), so that the overlap must be read from the images; no labelled pairs.
pub fn structured_pair_set() -> overlap_slam::overlapnet::data::PairSet {
    let (rows, cols) = (64, 900);
    let image = |phase: f32| -> Vec<f32> {
        (0..rows * cols * 4)
            .map(|i| ((i / 4 % cols) as f32 * 0.05 + phase + (i % 4) as f32).sin())
            .collect()
    };
    overlap_slam::overlapnet::data::PairSet {
        images: vec![image(0.0), image(1.0), image(2.5)],
        pairs: vec![],
    }
}

/// Candle cannot seed its CPU generator, so a test that trains redraws every weight from a
/// seeded generator, uniformly within the range candle's initialisation gave it: the same
/// scale, and the same start on every run.
pub fn reseed(varmap: &candle_nn::VarMap, seed: u64) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut vars = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<Vec<_>>();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in vars {
        let bound = var.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| {
                if bound > 0.0 {
                    rng.random_range(-bound..=bound)
                } else {
                    0.0
                }
            })
            .collect();
        var.set(&candle_core::Tensor::from_vec(values, var.shape(), &candle_core::Device::Cpu).unwrap())
            .unwrap();
    }
}

/// The shipped single model's shape: compact (a quarter of the width), circular legs, the
/// overlap head aligned by the yaw head and banded (two blocks each side).
pub fn banded_model_config() -> overlap_slam::overlapnet::ModelConfig {
    overlap_slam::overlapnet::ModelConfig {
        width_divisor: 4,
        circular_legs: true,
        aligned_overlap: true,
        yaw_decoding: overlap_slam::overlapnet::YawDecoding::FeatureColumns,
        head_band: Some(2),
        ..Default::default()
    }
}

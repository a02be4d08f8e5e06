//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The real KITTI frames beside the checkout, or `None` (with the reason printed) in a user's
/// clone, which has no `../shared`.
pub fn shared_kitti() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/kitti-00-0000-0060");
    if p.join("velodyne").is_dir() {
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
pub fn path_replay(path: PathBuf) -> overlap_slam::pipeline::ReplayConfig {
    overlap_slam::pipeline::ReplayConfig {
        source: overlap_slam::pipeline::SourceSpec::Path {
            path,
            options: Default::default(),
        },
        loops: None,
        quiet: true,
        ..Default::default()
    }
}

/// Runs the `overlap-slam` binary.
pub fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_overlap-slam"))
        .args(args)
        .output()
        .expect("binary runs")
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

//! `match`: one loop detector's verdict on two scan files, the quickest way to try the model.

use crate::error::Result;
use crate::io::detect_format;
use crate::loops::detector::{LoopDetector, LoopMethod, Verdict};
use crate::overlapnet::Spread;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The answer printed as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct MatchReport {
    /// The detector.
    pub method: LoopMethod,
    /// The first scan (query).
    pub query: PathBuf,
    /// The second scan (reference).
    pub reference: PathBuf,
    /// Predicted overlap in [0, 1] (OverlapNet; null for Scan Context).
    pub overlap: Option<f32>,
    /// Similarity score, higher is more alike (OverlapNet: the overlap; Scan Context: 1 - distance).
    pub score: f32,
    /// Yaw of the reference relative to the query, degrees.
    pub yaw_deg: f32,
    /// How far a MIMO network's subnetworks disagree (absent for other detectors): standard
    /// deviation of their overlaps and circular deviation of their yaws in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// Reads both scans (any supported format) and compares them with `method`.
pub fn match_scans(query: &Path, reference: &Path, method: LoopMethod, weights: Option<&Path>) -> Result<MatchReport> {
    let read = |p: &Path| detect_format(p).and_then(|f| (f.reader())(p));
    let scans = [read(query)?, read(reference)?];
    let detector = LoopDetector::new(method, weights)?;
    let d = detector.describe(&scans)?;
    let Verdict {
        score,
        overlap,
        yaw_deg,
        spread,
    } = detector.compare(&[(&d[0], &d[1])])?[0];
    Ok(MatchReport {
        method: detector.method(),
        query: query.to_path_buf(),
        reference: reference.to_path_buf(),
        overlap,
        score,
        yaw_deg,
        spread,
    })
}

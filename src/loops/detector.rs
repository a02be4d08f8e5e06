//! The loop detectors behind one interface: describe each scan once, then compare pairs of
//! descriptors. Scan Context is the handcrafted anchor; OverlapNet the learned model; the fused
//! detector asks both.

use crate::error::{Error, Result};
use crate::loops::scan_context::ScanContext;
use crate::overlapnet::{Features, OverlapNet, Spread};
use crate::projection::{RangeImage, project};
use crate::scan::Scan;
use rayon::prelude::*;
use serde::Serialize;

/// Scans per batch through OverlapNet's legs.
const LEG_BATCH: usize = 8;
/// Pairs per batch through OverlapNet's heads.
/// Pairs per batch through OverlapNet's heads: small enough that a batch's delta layer stays in
/// memory the allocator reuses (over 32 MB glibc maps and unmaps it, and the kernel zeroes every
/// page again). Whole `eval-loops` on KITTI 00 frames 0-60 (1326 pairs, banded head), head
/// pairs/s by batch: 1: 335, 2: 450, 4: 465, 8: 312, 16: 282.
const HEAD_BATCH: usize = 4;

/// Which detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoopMethod {
    /// OverlapNet (Chen et al., RSS 2020) with the shipped or given weights.
    OverlapNet,
    /// OverlapNet with MIMO subnetworks (Havasi et al., ICLR 2021): the shipped MIMO weights (or
    /// given ones), whose subnetworks' disagreement comes with every verdict.
    #[serde(rename = "overlapnet-mimo")]
    OverlapNetMimo,
    /// Scan Context (Kim & Kim, IROS 2018).
    ScanContext,
    /// Scan Context and OverlapNet together: a pair scores the product of their scores (Scan
    /// Context's 1 - distance, OverlapNet's overlap), and OverlapNet gives the yaw.
    Fused,
}

impl std::str::FromStr for LoopMethod {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "overlapnet" => Ok(Self::OverlapNet),
            "overlapnet-mimo" => Ok(Self::OverlapNetMimo),
            "scancontext" => Ok(Self::ScanContext),
            "fused" => Ok(Self::Fused),
            _ => Err(format!(
                "unknown loop detector '{s}' (overlapnet, overlapnet-mimo, scancontext, fused)"
            )),
        }
    }
}

/// A ready detector.
pub enum LoopDetector {
    /// OverlapNet with its weights.
    OverlapNet(Box<OverlapNet>),
    /// Scan Context.
    ScanContext,
    /// Scan Context and OverlapNet with its weights.
    Fused(Box<OverlapNet>),
}

/// One scan's descriptor.
pub enum Descriptor {
    /// OverlapNet's feature volume.
    OverlapNet(Features),
    /// Scan Context's polar grid.
    ScanContext(ScanContext),
    /// Both.
    Fused(ScanContext, Features),
}

/// A detector's verdict on a (query, reference) pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Verdict {
    /// Higher means more likely the same place (OverlapNet: its overlap; Scan Context: 1 - distance).
    pub score: f32,
    /// Predicted overlap, for detectors that predict one.
    pub overlap: Option<f32>,
    /// Yaw of the reference relative to the query, degrees.
    pub yaw_deg: f32,
    /// How far a MIMO network's subnetworks disagree (`None` for other detectors).
    pub spread: Option<Spread>,
}

fn candle(e: candle_core::Error) -> Error {
    Error::Usage(format!("OverlapNet: {e}"))
}

impl LoopDetector {
    /// The detector for `method`; OverlapNet loads `weights` or, without them, the shipped model
    /// (the shipped MIMO model for `overlapnet-mimo`).
    pub fn new(method: LoopMethod, weights: Option<&std::path::Path>) -> Result<Self> {
        let net = Box::new(match (method, weights) {
            (LoopMethod::ScanContext, _) => return Ok(Self::ScanContext),
            (_, Some(path)) => OverlapNet::load(path)?,
            (LoopMethod::OverlapNetMimo, None) => OverlapNet::shipped_mimo()?,
            (LoopMethod::OverlapNet | LoopMethod::Fused, None) => OverlapNet::shipped()?,
        });
        Ok(match method {
            LoopMethod::Fused => Self::Fused(net),
            _ => Self::OverlapNet(net),
        })
    }

    /// The method: OverlapNet's follows from its weights (MIMO when they hold subnetworks).
    pub fn method(&self) -> LoopMethod {
        match self {
            Self::OverlapNet(net) if net.config.members() > 1 => LoopMethod::OverlapNetMimo,
            Self::OverlapNet(_) => LoopMethod::OverlapNet,
            Self::ScanContext => LoopMethod::ScanContext,
            Self::Fused(_) => LoopMethod::Fused,
        }
    }

    /// Descriptors of `scans`, in order.
    pub fn describe(&self, scans: &[Scan]) -> Result<Vec<Descriptor>> {
        match self {
            Self::ScanContext => Ok(scan_contexts(scans).into_iter().map(Descriptor::ScanContext).collect()),
            Self::OverlapNet(net) => Ok(legs(net, scans)?.into_iter().map(Descriptor::OverlapNet).collect()),
            Self::Fused(net) => Ok(scan_contexts(scans)
                .into_iter()
                .zip(legs(net, scans)?)
                .map(|(sc, f)| Descriptor::Fused(sc, f))
                .collect()),
        }
    }

    /// Verdicts on (query, reference) pairs of descriptors.
    pub fn compare(&self, pairs: &[(&Descriptor, &Descriptor)]) -> Result<Vec<Verdict>> {
        match self {
            Self::ScanContext => {
                let grids = pairs
                    .iter()
                    .map(|pair| match pair {
                        (Descriptor::ScanContext(a), Descriptor::ScanContext(b)) => Ok((a, b)),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(scan_context_verdicts(&grids))
            }
            Self::OverlapNet(net) => {
                let features = pairs
                    .iter()
                    .map(|pair| match pair {
                        (Descriptor::OverlapNet(a), Descriptor::OverlapNet(b)) => Ok((a, b)),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>>>()?;
                overlapnet_verdicts(net, &features)
            }
            Self::Fused(net) => {
                let (grids, features): (Vec<_>, Vec<_>) = pairs
                    .iter()
                    .map(|pair| match pair {
                        (Descriptor::Fused(sa, fa), Descriptor::Fused(sb, fb)) => Ok(((sa, sb), (fa, fb))),
                        _ => Err(mixed()),
                    })
                    .collect::<Result<Vec<_>>>()?
                    .into_iter()
                    .unzip();
                let places = scan_context_verdicts(&grids);
                let overlaps = overlapnet_verdicts(net, &features)?;
                Ok(places
                    .iter()
                    .zip(overlaps)
                    .map(|(p, o)| Verdict {
                        score: p.score * o.score,
                        ..o
                    })
                    .collect())
            }
        }
    }
}

/// Scan Context of each scan.
fn scan_contexts(scans: &[Scan]) -> Vec<ScanContext> {
    scans.par_iter().map(|s| ScanContext::new(&s.points)).collect()
}

/// OverlapNet's leg features of each scan, in batches.
fn legs(net: &OverlapNet, scans: &[Scan]) -> Result<Vec<Features>> {
    let params = net.config.projection();
    let mut out = Vec::with_capacity(scans.len());
    for chunk in scans.chunks(LEG_BATCH) {
        let images: Vec<RangeImage> = chunk
            .par_iter()
            .map(|s| project(&s.points, &s.intensity, &params))
            .collect();
        let refs: Vec<&RangeImage> = images.iter().collect();
        out.extend(net.describe(&refs, LEG_BATCH).map_err(candle)?);
    }
    Ok(out)
}

/// Scan Context's verdicts: 1 - distance, its yaw.
fn scan_context_verdicts(pairs: &[(&ScanContext, &ScanContext)]) -> Vec<Verdict> {
    pairs
        .par_iter()
        .map(|(a, b)| {
            let m = a.compare(b);
            Verdict {
                score: 1.0 - m.distance,
                overlap: None,
                yaw_deg: m.yaw_deg,
                spread: None,
            }
        })
        .collect()
}

/// OverlapNet's verdicts: its overlap and yaw (and a MIMO network's spread).
fn overlapnet_verdicts(net: &OverlapNet, pairs: &[(&Features, &Features)]) -> Result<Vec<Verdict>> {
    let matches = net.compare(pairs, HEAD_BATCH).map_err(candle)?;
    Ok(matches
        .into_iter()
        .map(|m| Verdict {
            score: m.overlap,
            overlap: Some(m.overlap),
            yaw_deg: m.yaw_deg,
            spread: m.spread,
        })
        .collect())
}

fn mixed() -> Error {
    Error::Usage("descriptors of different loop detectors cannot be compared".into())
}

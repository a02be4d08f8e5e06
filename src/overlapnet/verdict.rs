//! What OverlapNet says of a pair of scans: the plain data its users (the loop search, the
//! evaluation) read, shared by the network and its MIMO ensemble.

use serde::Serialize;

/// The network's verdict on a pair of scans.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairMatch {
    /// Predicted overlap in [0, 1].
    pub overlap: f32,
    /// Predicted yaw of the second scan relative to the first, degrees.
    pub yaw_deg: f32,
    /// How far a MIMO network's subnetworks disagree (`None` for a plain network); `overlap`
    /// and `yaw_deg` are then their mean.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
}

/// How far a MIMO network's subnetworks disagree on one pair.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Standard deviation of the subnetworks' overlaps.
    pub overlap: f32,
    /// Circular standard deviation of their yaws, degrees (`sqrt(-2 ln R)` of the mean resultant
    /// length R; 0 when all agree, growing without bound as they scatter, capped at 180).
    pub yaw_deg: f32,
}

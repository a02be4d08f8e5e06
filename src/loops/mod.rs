//! Loop detection: recognising that the sensor is back at a place it has seen, and at what yaw.
//! Scan Context, the detector interface over it and OverlapNet, the keyframe search and the ICP
//! verification of its candidates. The pipeline's loop-closure thread composes them; the ground
//! truth they are judged against is [`crate::ground_truth`].

pub mod detector;
pub mod plot;
pub mod scan_context;
pub mod search;
pub mod uncertainty;
pub mod verify;

//! Loop detection: recognising that the sensor is back at a place it has seen, and at what yaw.
//! Place descriptors and their search live here; the learned detector (OverlapNet) and the
//! loop-closure stage of the pipeline build on the same candidate types.

pub mod detector;
pub mod evaluation;
pub mod pairs;
pub mod plot;
pub mod scan_context;
pub mod search;
pub mod uncertainty;
pub mod verify;

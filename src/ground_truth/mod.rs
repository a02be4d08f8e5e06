//! Ground truth for place recognition: which scan pairs show the same place, with how much overlap
//! and at what yaw (OverlapNet's labels, [`pairs`]), and how a detector's scores rank against
//! those labels ([`scoring`]). Training ([`crate::overlapnet`]) and loop search
//! ([`crate::loops`]) both judge themselves by it, so it sits below both.

pub mod pairs;
pub mod scoring;

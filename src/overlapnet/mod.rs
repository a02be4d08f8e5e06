//! OverlapNet (Chen et al., RSS 2020; DESIGN.md §5) in candle: a siamese network that tells from
//! two range images, without poses, how much the scans overlap and how far one is turned from
//! the other. Legs run once per scan ([`legs`]); the overlap and yaw heads run per pair
//! ([`head`]); [`train`] fits the weights on simulated drives, [`model`] loads the shipped ones;
//! [`mimo`] turns a MIMO network's subnetworks into a mean and a spread.

pub mod conv;
pub mod data;
pub mod head;
pub mod input;
pub mod legs;
pub mod loss;
pub mod mimo;
pub mod model;
pub mod ops;
pub mod train;
pub mod verdict;

pub use input::Channels;
pub use model::{Features, ModelConfig, OverlapNet, YawDecoding};
pub use verdict::{PairMatch, Spread};

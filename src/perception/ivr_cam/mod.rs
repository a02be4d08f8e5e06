//! Where in the scene two scans matched: OverlapNet's decision on a pair explained per column
//! (`attribution`), normalised with IVR or the maps it is compared with (`normalise`, from Kim et
//! al., "Normalization matters in weakly supervised object localization", ICCV 2021), and drawn
//! over the range images (`render`) by the `ivr-cam` stage (`stage`).

pub mod attribution;
pub mod normalise;
pub mod render;
pub mod stage;

pub use attribution::{CamTarget, PairCam, pair_cam};
pub use normalise::{Normalisation, normalise};

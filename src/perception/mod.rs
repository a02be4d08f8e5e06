//! Perception stages: further models that run on every projected frame and log what they see to
//! rerun, hooked onto `replay` without touching the other stages. A stage receives plain data (the
//! scan, its odometry pose, its projected images) and the recording; it returns nothing to the
//! pipeline, so it cannot change the trajectory.

use crate::error::Result;
use crate::projection::RangeImage;
use crate::scan::{Pose, Scan};
use crate::viz::Viz;

pub mod ivr_cam;
pub mod liif;

/// What a stage sees of one frame.
pub struct FrameView<'a> {
    /// The scan as the source gave it (sensor frame).
    pub scan: &'a Scan,
    /// Its odometry pose.
    pub pose: &'a Pose,
    /// Its range, normal and intensity images.
    pub image: &'a RangeImage,
}

/// A model run on every projected frame.
pub trait PerceptionStage: Send {
    /// Short name: the `stage_ms/NAME` timing and the stage's rerun entities use it.
    fn name(&self) -> &str;

    /// Processes one frame, logging its output to `viz` (which may record nothing).
    fn process(&mut self, frame: &FrameView, viz: &Viz) -> Result<()>;

    /// The 2-D images the stage logs (entity path and shape), each given a panel in the
    /// viewer's layout.
    fn views(&self) -> Vec<crate::viz::ImageView> {
        Vec::new()
    }
}

/// The stages `--stage NAME` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageKind {
    /// LIIF range-image super-resolution ([`liif::stage::LiifStage`]).
    Liif,
    /// OverlapNet's decisions explained per column, IVR-normalised ([`ivr_cam::stage::IvrCamStage`]).
    IvrCam,
}

impl std::str::FromStr for StageKind {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "liif" => Ok(StageKind::Liif),
            "ivr-cam" => Ok(StageKind::IvrCam),
            _ => Err(crate::error::Error::Usage(format!(
                "unknown perception stage '{s}' (known: liif, ivr-cam)"
            ))),
        }
    }
}

/// Settings of the stages, every default in one place.
#[derive(Debug, Clone)]
pub struct StageOptions {
    /// LIIF: keep every N-th of the 64 rows before rendering them back (4: a 16-row scan).
    pub liif_factor: usize,
    /// IVR-CAM settings.
    pub ivr_cam: ivr_cam::stage::IvrCamConfig,
    /// OverlapNet weights for IVR-CAM (`None`: the shipped ones).
    pub overlapnet_weights: Option<std::path::PathBuf>,
}

impl Default for StageOptions {
    fn default() -> Self {
        Self {
            liif_factor: 4,
            ivr_cam: ivr_cam::stage::IvrCamConfig::default(),
            overlapnet_weights: None,
        }
    }
}

/// Builds the named stages with their shipped weights, in the order given.
pub fn build_stages(kinds: &[StageKind], options: &StageOptions) -> Result<Vec<Box<dyn PerceptionStage>>> {
    kinds
        .iter()
        .map(|kind| -> Result<Box<dyn PerceptionStage>> {
            Ok(match kind {
                StageKind::Liif => Box::new(liif::stage::LiifStage::new(
                    liif::Liif::shipped()?,
                    options.liif_factor,
                )?),
                StageKind::IvrCam => {
                    let net = match &options.overlapnet_weights {
                        Some(path) => crate::overlapnet::OverlapNet::load(path)?,
                        None => crate::overlapnet::OverlapNet::shipped()?,
                    };
                    Box::new(ivr_cam::stage::IvrCamStage::new(net, options.ivr_cam.clone()))
                }
            })
        })
        .collect()
}

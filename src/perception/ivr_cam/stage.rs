//! The `ivr-cam` perception stage: every few frames, the current scan is paired with an earlier
//! one (the nearest by odometry at least `min_gap` frames back when there is one within
//! `revisit_m`, a revisit; otherwise the one `lag` frames back), OverlapNet's decision on the pair
//! is explained per column, IVR-normalised, and drawn over both range images in rerun.

use super::attribution::{CamTarget, pair_cam};
use super::normalise::{Normalisation, normalise};
use super::render::heat_overlay;
use crate::error::{Error, Result};
use crate::overlapnet::OverlapNet;
use crate::perception::{FrameView, PerceptionStage};
use crate::projection::RangeImage;
use crate::viz::{ImageView, Viz};
use std::collections::VecDeque;

/// Settings, every default in one place.
#[derive(Debug, Clone)]
pub struct IvrCamConfig {
    /// Explain every `every`-th frame.
    pub every: usize,
    /// Fallback reference: this many frames back.
    pub lag: usize,
    /// A revisit reference must be at least this many frames older.
    pub min_gap: usize,
    /// ... and this close by odometry, metres.
    pub revisit_m: f64,
    /// Older frames are kept as references only this far apart, metres...
    pub keyframe_spacing_m: f64,
    /// ... and at most this many of them (oldest dropped): about 1.2 MB each.
    pub capacity: usize,
    /// The decision explained.
    pub target: CamTarget,
    /// Normalisation of the drawn maps.
    pub normalisation: Normalisation,
}

impl Default for IvrCamConfig {
    fn default() -> Self {
        Self {
            every: 5,
            lag: 10,
            min_gap: 100,
            revisit_m: 10.0,
            keyframe_spacing_m: 4.0,
            capacity: 200,
            // The yaw head is the one that works with the shipped weights (models/README.md).
            target: CamTarget::Yaw,
            normalisation: Normalisation::Ivr {
                percentile: super::normalise::DEFAULT_IVR_PERCENTILE,
            },
        }
    }
}

/// A stored reference frame.
struct Reference {
    frame: usize,
    position: [f64; 3],
    image: RangeImage,
}

/// Explains OverlapNet's decisions on pairs of frames.
pub struct IvrCamStage {
    net: OverlapNet,
    config: IvrCamConfig,
    seen: usize,
    /// The last `lag` frames.
    recent: VecDeque<Reference>,
    /// Older frames, `keyframe_spacing_m` apart.
    keyframes: VecDeque<Reference>,
}

impl IvrCamStage {
    /// A stage explaining `net`'s decisions.
    pub fn new(net: OverlapNet, config: IvrCamConfig) -> Self {
        Self {
            net,
            config,
            seen: 0,
            recent: VecDeque::new(),
            keyframes: VecDeque::new(),
        }
    }

    /// The reference for frame `frame` at `position`, and whether it is a revisit.
    fn pick(&self, frame: usize, position: [f64; 3]) -> Option<(&Reference, bool)> {
        let dist = |r: &Reference| {
            let d: f64 = (0..3).map(|k| (r.position[k] - position[k]).powi(2)).sum();
            d.sqrt()
        };
        let revisit = self
            .keyframes
            .iter()
            .filter(|r| r.frame + self.config.min_gap <= frame)
            .min_by(|a, b| dist(a).total_cmp(&dist(b)))
            .filter(|r| dist(r) <= self.config.revisit_m);
        if let Some(r) = revisit {
            return Some((r, true));
        }
        self.recent
            .iter()
            .chain(&self.keyframes)
            .filter(|r| r.frame + self.config.lag <= frame)
            .max_by_key(|r| r.frame)
            .map(|r| (r, false))
    }
}

impl PerceptionStage for IvrCamStage {
    fn name(&self) -> &str {
        "ivr-cam"
    }

    fn views(&self) -> Vec<ImageView> {
        let (rows, cols) = (self.net.config.rows, self.net.config.cols);
        vec![
            ImageView::new("perception/ivr_cam/query", rows, cols),
            ImageView::new("perception/ivr_cam/reference", rows, cols),
        ]
    }

    fn process(&mut self, frame: &FrameView, viz: &Viz) -> Result<()> {
        let index = self.seen;
        self.seen += 1;
        let t = frame.pose.translation.vector;
        let position = [t.x, t.y, t.z];
        let img = frame.image;
        let want = (self.net.config.rows, self.net.config.cols);
        if (img.rows, img.cols) != want {
            return Err(Error::Usage(format!(
                "ivr-cam: OverlapNet reads {} x {} images; this source projects to {} x {}",
                want.0, want.1, img.rows, img.cols
            )));
        }
        let explain = index.is_multiple_of(self.config.every.max(1));
        let reference = if explain { self.pick(index, position) } else { None };
        if let Some((reference, revisit)) = reference {
            let cam = pair_cam(&self.net, img, &reference.image, self.config.target)
                .map_err(|e| Error::Usage(format!("ivr-cam: {e}")))?;
            let how = self.config.normalisation;
            let q = heat_overlay(img, &normalise(&cam.query, how));
            let r = heat_overlay(&reference.image, &normalise(&cam.reference, how));
            viz.log_rgb("perception/ivr_cam/query", q.height, q.width, q.data)?;
            viz.log_rgb("perception/ivr_cam/reference", r.height, r.width, r.data)?;
            viz.log_scalar("ivr_cam/reference_frames_back", (index - reference.frame) as f64)?;
            viz.log_scalar("ivr_cam/revisit", f64::from(u8::from(revisit)))?;
            viz.log_scalar("ivr_cam/overlap", f64::from(cam.overlap))?;
        }
        self.remember(index, position, img);
        Ok(())
    }
}

impl IvrCamStage {
    /// Stores the frame (without the vertex and point-index images, which no reference needs),
    /// moving the oldest recent frame to the keyframes if it is far enough from the last one.
    fn remember(&mut self, frame: usize, position: [f64; 3], img: &RangeImage) {
        let image = RangeImage {
            vertex: Vec::new(),
            point_index: Vec::new(),
            ..img.clone()
        };
        self.recent.push_back(Reference { frame, position, image });
        if self.recent.len() <= self.config.lag {
            return;
        }
        let Some(old) = self.recent.pop_front() else { return };
        let far = self.keyframes.back().is_none_or(|k| {
            let d: f64 = (0..3).map(|i| (k.position[i] - old.position[i]).powi(2)).sum();
            d.sqrt() >= self.config.keyframe_spacing_m
        });
        if far {
            self.keyframes.push_back(old);
            if self.keyframes.len() > self.config.capacity {
                self.keyframes.pop_front();
            }
        }
    }
}

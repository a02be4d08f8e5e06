//! Range-image super-resolution with LIIF (Chen, Liu & Wang, CVPR 2021): a 16- or 32-row scan
//! rendered at 64 rows (or any other count), so that a sparse sensor's scans look like the
//! HDL-64E images the rest of the pipeline was built for. `model` is the network, `rows` the
//! geometry of sparse and dense rows and the non-learned baselines, `score` the measures,
//! `train` the training loop, `stage` the perception stage shown in rerun.

pub mod model;
pub mod rows;
pub mod score;
pub mod stage;
pub mod train;

pub use model::{Liif, LiifConfig};
pub use rows::{Baseline, RowLayout};

use crate::error::{Error, Result};
use crate::io::weights;
use crate::projection::EMPTY;
use candle_nn::VarMap;
use std::path::Path;

/// The weights shipped in `models/` (trained by this project; see `models/liif.md`).
const SHIPPED_WEIGHTS: &[u8] = include_bytes!("../../../models/liif.safetensors");
const SHIPPED_CONFIG: &str = include_str!("../../../models/liif.json");

impl Liif {
    /// The weights shipped with overlap-slam.
    pub fn shipped() -> Result<Self> {
        let path = Path::new("models/liif.safetensors");
        let (vb, config) = weights::from_bytes(SHIPPED_WEIGHTS, SHIPPED_CONFIG, path, "LIIF")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "LIIF", e))
    }

    /// Weights from a safetensors file with its `.json` sizes beside it (as `train-liif` writes).
    pub fn load(path: &Path) -> Result<Self> {
        let (vb, config) = weights::load(path, "LIIF")?;
        Self::new(vb, config).map_err(|e| weights::error(path, "LIIF", e))
    }

    /// Renders the dense image of `layout` from a sparse full-turn range image (metres, `EMPTY`
    /// where empty, `layout.sparse_rows x cols`); pixels whose return logit is negative are empty.
    pub fn upsample(&self, sparse: &[f32], cols: usize, layout: &RowLayout) -> candle_core::Result<Vec<f32>> {
        let max = self.config.max_range;
        let x = model::input_tensor(sparse, layout.sparse_rows, cols, max, self.device())?;
        let out = self.render(&x, layout, true)?;
        let range = out.range.flatten_all()?.to_vec1::<f32>()?;
        let logit = out.logit.flatten_all()?.to_vec1::<f32>()?;
        Ok(range
            .iter()
            .zip(&logit)
            .map(|(&r, &l)| if l >= 0.0 { (r * max).clamp(0.0, max) } else { EMPTY })
            .collect())
    }
}

/// Saves `varmap` to `path` (safetensors) and the sizes beside it (`.json`), each atomically.
pub fn save(varmap: &VarMap, config: &LiifConfig, path: &Path) -> Result<()> {
    weights::save(varmap, config, path)
}

/// A candle error while running LIIF, as the project's error.
pub fn candle_error(e: candle_core::Error) -> Error {
    Error::Usage(format!("LIIF: {e}"))
}

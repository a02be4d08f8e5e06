//! Network weights on disk: a safetensors file with a JSON card beside it (the network's sizes or
//! the input it expects), or the same pair embedded in the binary. Shared by every model.

use crate::error::{Error, Result};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// A load failure of `what`'s weights at `path`, as one line (candle appends a backtrace when
/// RUST_BACKTRACE is set; only the message's first line is kept).
pub fn error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    let msg = e.to_string();
    Error::input(
        path,
        format!("{what} weights: {}", msg.lines().next().unwrap_or_default()),
    )
}

/// Tensors from safetensors `bytes` and the card parsed from `card`; `path` and `what` name
/// them in errors.
pub fn from_bytes<C: DeserializeOwned>(
    bytes: &[u8],
    card: &str,
    path: &Path,
    what: &str,
) -> Result<(VarBuilder<'static>, C)> {
    let config = serde_json::from_str(card).map_err(|e| error(&path.with_extension("json"), what, e))?;
    let device = Device::Cpu;
    let tensors = candle_core::safetensors::load_buffer(bytes, &device).map_err(|e| error(path, what, e))?;
    Ok((VarBuilder::from_tensors(tensors, DType::F32, &device), config))
}

/// Tensors from a safetensors file and the card from the `.json` beside it.
pub fn load<C: DeserializeOwned>(path: &Path, what: &str) -> Result<(VarBuilder<'static>, C)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let card = path.with_extension("json");
    let text = std::fs::read_to_string(&card).map_err(|e| Error::io(&card, e))?;
    from_bytes(&bytes, &text, path, what)
}

/// Saves `varmap` to `path` (safetensors) and `config` beside it (`.json`), each through a
/// temporary file and a rename.
pub fn save(varmap: &VarMap, config: &impl Serialize, path: &Path) -> Result<()> {
    let tmp = path.with_extension("safetensors.tmp");
    varmap.save(&tmp).map_err(|e| Error::input(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    let card = serde_json::to_vec_pretty(config).expect("a config serialises");
    super::atomic::write_bytes_atomic(&path.with_extension("json"), &card)
}

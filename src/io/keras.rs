//! Weights saved by Keras 2 in HDF5 (`model.save` or `save_weights`), read the way Keras's own
//! `load_weights(by_name=True)` reads them: the layer list from the `layer_names` attribute (of
//! the root, or of the `model_weights` group that a full-model save nests it in), each layer's
//! weights in the order of its `weight_names` attribute. This is how the authors of OverlapNet
//! published their model (`model_geo.weight`). Pure Rust: no HDF5 system library.

use crate::error::{Error, Result};
use hdf5_reader::Hdf5File;
use std::path::Path;

/// The eight bytes every HDF5 file starts with.
pub const HDF5_MAGIC: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

/// True when the file at `path` starts with the HDF5 signature.
pub fn is_hdf5(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|_| &head == HDF5_MAGIC)
}

/// One weight array of a layer.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasWeight {
    /// Its name as Keras recorded it (e.g. `s_conv1/kernel:0`).
    pub name: String,
    /// Shape, in Keras's layout (convolution kernels: rows, columns, in, out).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
}

/// The layers of a Keras weights file, in model order, each with its weights in Keras's order
/// (kernel, then bias); layers without weights are listed with none.
#[derive(Debug, Clone, PartialEq)]
pub struct KerasWeights {
    /// (layer name, weights).
    pub layers: Vec<(String, Vec<KerasWeight>)>,
}

impl KerasWeights {
    /// The weights of layer `name`, if the file has it.
    pub fn layer(&self, name: &str) -> Option<&[KerasWeight]> {
        self.layers.iter().find(|(n, _)| n == name).map(|(_, w)| w.as_slice())
    }

    /// Moves the weights of layer `name` out (the layer stays listed, with none), so that a
    /// loader builds its tensors without copying them.
    pub fn take_layer(&mut self, name: &str) -> Option<Vec<KerasWeight>> {
        self.layers
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, w)| std::mem::take(w))
    }
}

/// Values in one weight array at most (2^28, 1 GiB of float32): OverlapNet's largest has 123 904.
const MAX_WEIGHT_VALUES: usize = 1 << 28;

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::input(path, format!("Keras weights: {what}"))
}

/// Reads every layer's weights from a Keras HDF5 file.
pub fn read(path: &Path) -> Result<KerasWeights> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_bytes(&bytes, path)
}

/// Reads every layer's weights from the bytes of a Keras HDF5 file; `path` names it in errors.
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<KerasWeights> {
    let file = Hdf5File::from_bytes(bytes).map_err(|e| bad(path, format!("not a readable HDF5 file ({e})")))?;
    // `save_weights` puts `layer_names` on the root; a full-model save nests it in `model_weights`.
    let root = file.root_group().map_err(|e| bad(path, e))?;
    let (prefix, names) = match strings(&root, "layer_names") {
        Ok(names) => ("", names),
        Err(_) => {
            let nested = file
                .group("model_weights")
                .map_err(|_| bad(path, "no `layer_names` attribute and no `model_weights` group"))?;
            let names = strings(&nested, "layer_names").map_err(|e| bad(path, format!("`model_weights`: {e}")))?;
            ("/model_weights", names)
        }
    };
    let mut layers = Vec::with_capacity(names.len());
    for layer in names {
        let g = file
            .group(&format!("{prefix}/{layer}"))
            .map_err(|e| bad(path, format!("layer `{layer}` is listed but has no group ({e})")))?;
        // Weightless layers carry an empty `weight_names` (stored by Keras as an empty float
        // array), or none at all.
        let weight_names = strings(&g, "weight_names").unwrap_or_default();
        let mut weights = Vec::with_capacity(weight_names.len());
        for name in weight_names {
            let ds = file
                .dataset(&format!("{prefix}/{layer}/{name}"))
                .map_err(|e| bad(path, format!("weight `{layer}/{name}` is listed but missing ({e})")))?;
            let shape: Vec<usize> = ds.shape().iter().map(|&d| d as usize).collect();
            let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            // A network weight is far below this; a larger count is a corrupt header.
            let Some(count) = count.filter(|&n| n <= MAX_WEIGHT_VALUES) else {
                return Err(bad(
                    path,
                    format!("weight `{layer}/{name}` has an implausible shape {shape:?}"),
                ));
            };
            let mut values = vec![0f32; count];
            ds.read_into(&mut values)
                .map_err(|e| bad(path, format!("weight `{layer}/{name}`: {e}")))?;
            weights.push(KerasWeight { name, shape, values });
        }
        layers.push((layer, weights));
    }
    Ok(KerasWeights { layers })
}

fn strings(group: &hdf5_reader::group::Group, attr: &str) -> std::result::Result<Vec<String>, String> {
    group
        .attribute(attr)
        .and_then(|a| a.read_strings())
        .map_err(|e| format!("attribute `{attr}`: {e}"))
}

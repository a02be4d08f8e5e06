//! `overlap-slam merge-maps`: independently saved maps read, merged into one in the anchor's
//! frame ([`crate::saved_map::merge`]) and written as a normal saved map, with the merge's
//! report beside it. The inputs are only read.

use crate::error::{Error, Result};
use crate::io::atomic::write_bytes_atomic;
use crate::saved_map::merge::{MapInput, MergeConfig, MergeReport, merge};
use crate::saved_map::{read_map, write_map};
use std::path::{Path, PathBuf};

/// Merges the maps in folders `maps` into folder `out`, in the frame of `maps[anchor]`.
pub fn merge_maps(maps: &[PathBuf], anchor: usize, out: &Path) -> Result<MergeReport> {
    if maps.len() < 2 {
        return Err(Error::Usage("merge-maps needs two maps or more".into()));
    }
    let same = |a: &Path, b: &Path| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if let Some(m) = maps.iter().find(|m| same(m, out)) {
        return Err(Error::input(m, "is also --out: a merge never changes its inputs"));
    }
    for (i, m) in maps.iter().enumerate() {
        if let Some(twin) = maps[..i].iter().find(|n| same(n, m)) {
            return Err(Error::input(m, format!("given twice (also as {})", twin.display())));
        }
    }
    let inputs = maps
        .iter()
        .map(|path| {
            Ok(MapInput {
                path: path.clone(),
                map: read_map(path)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let (merged, report) = merge(&inputs, anchor, &MergeConfig::default())?;
    write_map(out, &merged)?;
    let text = serde_json::to_string_pretty(&report).expect("plain JSON");
    write_bytes_atomic(&out.join("merge.json"), text.as_bytes())?;
    Ok(report)
}

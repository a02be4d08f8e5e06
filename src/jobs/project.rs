//! `project`: one scan's range, normal and intensity images written as PNG files, to look at a
//! scan without running SLAM.

use crate::error::{Error, Result};
use crate::io::ScanSource;
use crate::projection::png::write_projection_pngs;
use crate::projection::{ProjectionParams, RangeImage, project};
use std::path::Path;

/// Rows are repeated this many times in written PNGs so a 64-row image is comfortable to read.
pub const PNG_ROW_STRETCH: usize = 4;

/// Projects the first scan of `source` and writes `range.png`, `normal.png`, `intensity.png` to `out`.
pub fn project_to_pngs(source: &mut dyn ScanSource, params: &ProjectionParams, out: &Path) -> Result<RangeImage> {
    let scan = source
        .next()
        .ok_or_else(|| Error::Usage(format!("{}: no scan to project", source.name())))??;
    let img = project(&scan.points, &scan.intensity, params);
    write_projection_pngs(&img, params.max_range, out, PNG_ROW_STRETCH)?;
    Ok(img)
}

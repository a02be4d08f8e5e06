//! Images a person can look at: colour-mapped range, normals as RGB, intensity as grey, written
//! as PNG files (atomically) or handed to the viewer as RGB buffers.

use super::{EMPTY, RangeImage};
use crate::error::{Error, Result};
use crate::io::atomic::write_atomic;
use std::path::Path;

/// An 8-bit RGB picture, row-major.
#[derive(Debug, Clone)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `width * height * 3` bytes.
    pub data: Vec<u8>,
}

impl Rgb8 {
    fn from_fn(width: usize, height: usize, f: impl Fn(usize) -> [u8; 3]) -> Self {
        let data = (0..width * height).flat_map(&f).collect();
        Self { width, height, data }
    }

    /// Repeats every row `k` times: a 64-row image is too thin to read at native size.
    pub fn stretch_rows(&self, k: usize) -> Self {
        let row = self.width * 3;
        let data = self
            .data
            .chunks(row)
            .flat_map(|r| std::iter::repeat_n(r, k).flatten().copied())
            .collect();
        Self {
            width: self.width,
            height: self.height * k,
            data,
        }
    }

    /// Encodes the picture as PNG into `w`.
    pub fn encode_png<W: std::io::Write>(&self, w: W) -> std::io::Result<()> {
        let mut enc = png::Encoder::new(w, self.width as u32, self.height as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(&self.data).map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    }

    /// The picture as PNG bytes (compact enough to stream every frame to the viewer).
    pub fn png_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_png(&mut out).expect("encoding to memory cannot fail");
        out
    }

    /// Writes the picture as a PNG file, atomically.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        write_atomic(path, |w| self.encode_png(w))
    }
}

/// Range mapped through the turbo colour map (near = blue, far = red), black where empty.
pub fn range_rgb(img: &RangeImage, max_range: f32) -> Rgb8 {
    Rgb8::from_fn(img.cols, img.rows, |i| {
        let r = img.range[i];
        if r <= 0.0 {
            [0, 0, 0]
        } else {
            turbo((r / max_range).clamp(0.0, 1.0))
        }
    })
}

/// Normals as colours, `(n + 1) / 2` per axis, black where empty.
pub fn normal_rgb(img: &RangeImage) -> Rgb8 {
    Rgb8::from_fn(img.cols, img.rows, |i| {
        let n = img.normal[i];
        if n == [EMPTY; 3] {
            [0, 0, 0]
        } else {
            n.map(|c| ((c + 1.0) * 0.5 * 255.0).round().clamp(0.0, 255.0) as u8)
        }
    })
}

/// Reflectance in [0, 1] as grey, black where empty.
pub fn intensity_rgb(img: &RangeImage) -> Rgb8 {
    Rgb8::from_fn(img.cols, img.rows, |i| {
        let v = img.intensity[i];
        if img.range[i] <= 0.0 {
            [0, 0, 0]
        } else {
            let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
            [g, g, g]
        }
    })
}

/// Google's turbo colour map as its published polynomial fit (Mikhailov 2019), `t` in [0, 1].
pub fn turbo(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) as f64;
    let poly = |c: [f64; 6]| c[0] + t * (c[1] + t * (c[2] + t * (c[3] + t * (c[4] + t * c[5]))));
    let r = poly([
        0.13572138,
        4.61539260,
        -42.66032258,
        132.13108234,
        -152.94239396,
        59.28637943,
    ]);
    let g = poly([0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604]);
    let b = poly([
        0.10667330,
        12.64194608,
        -60.58204836,
        110.36276771,
        -89.90310912,
        27.34824973,
    ]);
    [r, g, b].map(|c| (c.clamp(0.0, 1.0) * 255.0).round() as u8)
}

/// Writes `range.png`, `normal.png` and `intensity.png` for one projected scan into `dir`.
pub fn write_projection_pngs(img: &RangeImage, max_range: f32, dir: &Path, row_stretch: usize) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    range_rgb(img, max_range)
        .stretch_rows(row_stretch)
        .write_png(&dir.join("range.png"))?;
    normal_rgb(img)
        .stretch_rows(row_stretch)
        .write_png(&dir.join("normal.png"))?;
    intensity_rgb(img)
        .stretch_rows(row_stretch)
        .write_png(&dir.join("intensity.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbo_runs_from_blue_to_red() {
        let lo = turbo(0.15);
        let hi = turbo(0.9);
        assert!(lo[2] > lo[0] && hi[0] > hi[2], "{lo:?} {hi:?}");
    }

    #[test]
    fn png_written_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let pic = Rgb8::from_fn(4, 2, |i| [i as u8 * 10, 0, 255]).stretch_rows(3);
        let path = dir.path().join("p.png");
        pic.write_png(&path).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (4, 6));
    }
}

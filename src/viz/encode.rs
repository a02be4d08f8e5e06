//! Images as PNG for the recording, at the precision a person reads off a picture: most of what
//! keeps a recording small (a KITTI frame's three images take 64 KB instead of 461 KB raw, in
//! 1.1 ms: `cargo bench --bench viz`).

use crate::error::{Error, Result};
use crate::projection::RangeImage;
use crate::projection::png::normal_rgb;

/// Levels per colour channel of the normal image's palette (6³ = 216 colours).
const NORMAL_LEVELS: u32 = 6;

/// Pixel layouts the recording uses.
enum Pixels {
    /// 4-bit grey, two pixels a byte.
    Grey4,
    /// 16-bit grey (depth), big-endian as PNG stores it.
    Grey16,
    /// 8-bit RGB.
    Rgb8,
    /// 8-bit indices into an RGB palette.
    Indexed(Vec<u8>),
}

/// How hard the compressor works on a picture (`cargo bench --bench viz` times each encoder on a
/// KITTI frame and prints the bytes it writes).
#[derive(Clone, Copy)]
enum Effort {
    /// fdeflate on rows stored as differences from the left neighbour: smooth 16-bit depth
    /// compresses well this way, in a fraction of zlib's time.
    Quick,
    /// zlib's fastest level on unfiltered rows: few colours or greys repeat in long runs, which
    /// zlib finds and fdeflate misses.
    Thorough,
}

/// `data` (row-major, `width x height`, laid out as `pixels` says) as PNG bytes; an image PNG
/// cannot hold (no pixels, a buffer of the wrong size) is an error, not a panic.
fn png(width: usize, height: usize, pixels: Pixels, data: &[u8], effort: Effort) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
    let (color, depth) = match pixels {
        Pixels::Grey4 => (png::ColorType::Grayscale, png::BitDepth::Four),
        Pixels::Grey16 => (png::ColorType::Grayscale, png::BitDepth::Sixteen),
        Pixels::Rgb8 => (png::ColorType::Rgb, png::BitDepth::Eight),
        Pixels::Indexed(palette) => {
            enc.set_palette(palette);
            (png::ColorType::Indexed, png::BitDepth::Eight)
        }
    };
    enc.set_color(color);
    enc.set_depth(depth);
    let (compression, filter) = match effort {
        Effort::Quick => (png::DeflateCompression::FdeflateUltraFast, png::Filter::Sub),
        Effort::Thorough => (png::DeflateCompression::Level(1), png::Filter::NoFilter),
    };
    enc.set_deflate_compression(compression);
    enc.set_filter(filter);
    let bad = |e: png::EncodingError| Error::Viz(format!("a {width} x {height} image as PNG: {e}"));
    let mut writer = enc.write_header().map_err(bad)?;
    writer.write_image_data(data).map_err(bad)?;
    writer.finish().map_err(bad)?;
    Ok(out)
}

/// Depths in metres (zero or negative: empty) as a 16-bit PNG in steps of `1 / per_metre`
/// metres, clamped to what 16 bits hold.
pub fn depth_png(width: usize, height: usize, metres: &[f32], per_metre: f32) -> Result<Vec<u8>> {
    let data: Vec<u8> = metres
        .iter()
        .flat_map(|m| ((m.max(0.0) * per_metre).round().min(65535.0) as u16).to_be_bytes())
        .collect();
    png(width, height, Pixels::Grey16, &data, Effort::Quick)
}

/// An RGB picture (row-major, 3 bytes a pixel) as PNG.
pub fn rgb_png(width: usize, height: usize, rgb: &[u8]) -> Result<Vec<u8>> {
    png(width, height, Pixels::Rgb8, rgb, Effort::Quick)
}

/// Normals as colours, `(n + 1) / 2` per axis on 6 levels a channel, black where empty.
pub fn normal_png(img: &RangeImage) -> Result<Vec<u8>> {
    let top = NORMAL_LEVELS - 1;
    let level = |v: u8| (u32::from(v) * top + 127) / 255;
    let index: Vec<u8> = normal_rgb(img)
        .data
        .chunks(3)
        .map(|c| ((level(c[0]) * NORMAL_LEVELS + level(c[1])) * NORMAL_LEVELS + level(c[2])) as u8)
        .collect();
    let palette = (0..NORMAL_LEVELS.pow(3))
        .flat_map(|i| {
            let l = [
                i / (NORMAL_LEVELS * NORMAL_LEVELS),
                i / NORMAL_LEVELS % NORMAL_LEVELS,
                i % NORMAL_LEVELS,
            ];
            l.map(|v| (v * 255 / top) as u8)
        })
        .collect();
    png(img.cols, img.rows, Pixels::Indexed(palette), &index, Effort::Thorough)
}

/// Reflectance in [0, 1] on 16 grey levels, black where empty.
pub fn intensity_png(img: &RangeImage) -> Result<Vec<u8>> {
    let grey: Vec<u8> = img
        .intensity
        .iter()
        .zip(&img.range)
        .map(|(i, r)| {
            if *r <= 0.0 {
                0
            } else {
                (i.clamp(0.0, 1.0) * 15.0).round() as u8
            }
        })
        .collect();
    let packed: Vec<u8> = grey
        .chunks(img.cols)
        .flat_map(|row| row.chunks(2).map(|p| (p[0] << 4) | p.get(1).copied().unwrap_or(0)))
        .collect();
    png(img.cols, img.rows, Pixels::Grey4, &packed, Effort::Thorough)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    fn image() -> RangeImage {
        RangeImage {
            rows: 2,
            cols: 3,
            range: vec![1.04, -1.0, 70.0, 0.5, 3.0, 655.4],
            intensity: vec![0.0, 0.9, 1.0, 0.5, 0.2, 0.75],
            vertex: vec![[0.0; 3]; 6],
            normal: vec![
                [0.0, 0.0, 1.0],
                [-1.0; 3],
                [1.0, 0.0, 0.0],
                [0.0, -1.0, 0.0],
                [0.6, 0.8, 0.0],
                [0.0; 3],
            ],
            point_index: vec![-1; 6],
        }
    }

    #[test]
    fn an_image_png_cannot_hold_is_an_error() {
        let err = rgb_png(0, 2, &[]).unwrap_err().to_string();
        assert!(err.contains("0 x 2 image as PNG"), "{err}");
        let err = rgb_png(2, 2, &[0; 5]).unwrap_err().to_string();
        assert!(err.contains("2 x 2 image as PNG"), "{err}");
    }

    #[test]
    fn depth_keeps_decimetres_and_blanks_empty_pixels() {
        let img = image();
        let (info, px) = decode(&depth_png(3, 2, &img.range, 10.0).unwrap());
        assert_eq!(
            (info.width, info.height, info.bit_depth),
            (3, 2, png::BitDepth::Sixteen)
        );
        let dm: Vec<u16> = px.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
        assert_eq!(dm, vec![10, 0, 700, 5, 30, 6554]);
    }

    #[test]
    fn intensity_has_sixteen_levels_and_black_where_empty() {
        let (info, px) = decode(&intensity_png(&image()).unwrap());
        assert_eq!((info.width, info.height), (3, 2));
        // Expanded from 4 bits: level k reads as 17 k.
        assert_eq!(px, vec![0, 0, 255, 8 * 17, 3 * 17, 11 * 17]);
    }

    #[test]
    fn normals_land_on_the_nearest_of_six_levels() {
        let (info, px) = decode(&normal_png(&image()).unwrap());
        assert_eq!((info.width, info.height), (3, 2));
        let rgb: Vec<[u8; 3]> = px.chunks(3).map(|c| [c[0], c[1], c[2]]).collect();
        assert_eq!(rgb[0], [153, 153, 255], "+z");
        assert_eq!(rgb[2], [255, 153, 153], "+x");
        assert_eq!(rgb[3], [153, 0, 153], "-y");
    }
}

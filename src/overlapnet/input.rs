//! The network's input: a projected scan as a channels-last image (rows, cols, C) of range,
//! normals and, optionally, intensity; empty pixels hold -1 in every channel (OverlapNet's
//! convention, DESIGN.md §5).

use crate::projection::{EMPTY, RangeImage};
use serde::{Deserialize, Serialize};

/// Which images feed the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channels {
    /// Range in metres, unscaled as the authors feed it (1 channel).
    pub range: bool,
    /// Unit surface normal (3 channels).
    pub normals: bool,
    /// Reflectance as the scan gives it (1 channel).
    pub intensity: bool,
}

impl Default for Channels {
    /// OverlapNet's released "geo" model: range and normals, 4 channels.
    fn default() -> Self {
        Self {
            range: true,
            normals: true,
            intensity: false,
        }
    }
}

impl Channels {
    /// Number of input channels.
    pub fn count(&self) -> usize {
        self.range as usize + 3 * self.normals as usize + self.intensity as usize
    }
}

impl std::str::FromStr for Channels {
    type Err = String;
    /// A comma-separated list of `range`, `normals`, `intensity`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut c = Self {
            range: false,
            normals: false,
            intensity: false,
        };
        for name in s.split(',').map(str::trim) {
            match name {
                "range" => c.range = true,
                "normals" => c.normals = true,
                "intensity" => c.intensity = true,
                _ => return Err(format!("unknown input channel '{name}' (range, normals, intensity)")),
            }
        }
        if c.count() == 0 {
            return Err("no input channel chosen".into());
        }
        Ok(c)
    }
}

impl std::fmt::Display for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.range, "range"),
            (self.normals, "normals"),
            (self.intensity, "intensity"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect();
        f.write_str(&names.join(","))
    }
}

/// `img` as a channels-last image, `rows * cols * channels.count()` values, exactly as the
/// authors' network reads it (`ImagePairOverlapOrientationSequence.py`): range in metres, then
/// the normal's x, y, z, then reflectance; no scaling; -1 in every channel of an empty pixel.
pub fn encode(img: &RangeImage, channels: Channels) -> Vec<f32> {
    let mut out = Vec::with_capacity(img.range.len() * channels.count());
    for i in 0..img.range.len() {
        let valid = img.is_valid(i);
        if channels.range {
            out.push(if valid { img.range[i] } else { EMPTY });
        }
        if channels.normals {
            out.extend_from_slice(&img.normal[i]);
        }
        if channels.intensity {
            out.push(if valid { img.intensity[i] } else { EMPTY });
        }
    }
    out
}

/// An encoded image turned about the sensor's vertical axis by `shift` columns: column `u`
/// moves to `u + shift` (mod cols), as if the scan had been taken `shift * 360 / cols` degrees
/// further counter-clockwise. Normals are sensor-frame vectors, so they turn with it.
pub fn roll_columns(data: &[f32], cols: usize, channels: Channels, shift: i64) -> Vec<f32> {
    let ch = channels.count();
    let row_len = cols * ch;
    let angle = shift as f32 * std::f32::consts::TAU / cols as f32;
    let (sin, cos) = angle.sin_cos();
    let normal_at = channels.range as usize;
    let mut out = vec![0.0; data.len()];
    for (src, dst) in data.chunks_exact(row_len).zip(out.chunks_exact_mut(row_len)) {
        for u in 0..cols {
            let v = (u as i64 + shift).rem_euclid(cols as i64) as usize;
            let pixel = &mut dst[v * ch..(v + 1) * ch];
            pixel.copy_from_slice(&src[u * ch..(u + 1) * ch]);
            let n = &mut pixel[normal_at..normal_at + 3 * channels.normals as usize];
            if n.len() == 3 && n.iter().any(|&x| x != EMPTY) {
                // The same vector seen from a frame turned by +angle: rotated by -angle.
                let (x, y) = (n[0], n[1]);
                n[0] = cos * x + sin * y;
                n[1] = -sin * x + cos * y;
            }
        }
    }
    out
}

/// The input of a MIMO network (Havasi et al., ICLR 2021): its M members' encoded images side by
/// side in the channels, pixel by pixel, so that member `m` reads channels `m * C .. (m + 1) * C`
/// of a `(rows, cols, M * C)` image. All images must have the same size.
pub fn stack_members(images: &[&[f32]], channels: usize) -> Vec<f32> {
    let Some(first) = images.first() else {
        return Vec::new();
    };
    let pixels = first.len() / channels.max(1);
    let mut out = Vec::with_capacity(first.len() * images.len());
    for p in 0..pixels {
        for img in images {
            out.extend_from_slice(&img[p * channels..(p + 1) * channels]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::{ProjectionParams, project};

    #[test]
    fn rolling_an_image_matches_projecting_the_turned_scan() {
        // A box room with a pillar, turned by exactly 100 columns (40 degrees).
        let mut points = Vec::new();
        for i in 0..400 {
            let t = i as f32 * 0.1 - 20.0;
            for k in 0..30 {
                let z = -1.7 + k as f32 * 0.2;
                points.extend([
                    [t, 15.0, z],
                    [t, -15.0, z],
                    [20.0, t * 0.75, z],
                    [-20.0, t * 0.75, z],
                    [5.0 + t * 0.02, 3.0, z],
                ]);
            }
        }
        let params = ProjectionParams::overlapnet_hdl64();
        let channels = Channels::default();
        let angle = 40f32.to_radians();
        let (s, c) = angle.sin_cos();
        let turned: Vec<[f32; 3]> = points
            .iter()
            .map(|p| [c * p[0] + s * p[1], -s * p[0] + c * p[1], p[2]])
            .collect();
        let a = encode(&project(&points, &[], &params), channels);
        let b = encode(&project(&turned, &[], &params), channels);
        let rolled = roll_columns(&a, params.cols, channels, 100);
        // Pixel boundaries shift slightly under rotation; most pixels agree closely.
        let agree = rolled
            .chunks(4)
            .zip(b.chunks(4))
            .filter(|(x, y)| x.iter().zip(*y).all(|(p, q)| (p - q).abs() < 0.05 * p.abs().max(1.0)))
            .count();
        assert!(
            agree as f32 > 0.9 * (rolled.len() / 4) as f32,
            "{agree} of {} pixels agree",
            rolled.len() / 4
        );
    }

    #[test]
    fn members_sit_side_by_side_in_the_channels() {
        // Two pixels of two channels for each of three members.
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let c = [9.0, 10.0, 11.0, 12.0];
        let stacked = stack_members(&[&a, &b, &c], 2);
        assert_eq!(
            stacked,
            vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0, 3.0, 4.0, 7.0, 8.0, 11.0, 12.0]
        );
        assert_eq!(stack_members(&[&a], 2), a.to_vec());
    }
}

//! Sensor models: the geometry of a spinning LiDAR, read from the TOML files in `calib/`.
//!
//! One model serves both the projection (rows, columns, vertical window, range cut) and the
//! simulator (beam table, azimuth step, spin rate, noise, dropouts).

pub mod detect;

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// Geometry and noise of one spinning LiDAR.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SensorModel {
    /// Human-readable name.
    pub name: String,
    /// Rows of the projected image (one per beam for the Velodynes).
    pub rows: usize,
    /// Columns of the projected image (azimuth bins over 360 degrees).
    pub columns: usize,
    /// Upper edge of the vertical projection window, degrees (positive up).
    pub fov_up_deg: f64,
    /// Lower edge of the vertical projection window, degrees (negative down).
    pub fov_down_deg: f64,
    /// Points farther than this are left out of projected images, metres.
    pub projection_max_range_m: f64,
    /// Farthest return the sensor reports, metres.
    pub max_range_m: f64,
    /// Nearest return the sensor reports, metres.
    pub min_range_m: f64,
    /// Height of the optical centre above the ground, metres (simulator).
    pub mount_height_m: f64,
    /// Spin rate, sweeps per second.
    pub rotation_hz: f64,
    /// Azimuth step between two firings, degrees (simulator).
    pub azimuth_resolution_deg: f64,
    /// Standard deviation of range noise, metres (simulator).
    pub range_noise_m: f64,
    /// Base probability that a return is lost (simulator).
    pub dropout: f64,
    /// Elevations of the top and bottom beam, degrees, when beams are evenly spread over a span
    /// other than the projection window; ignored when `beam_elevations_deg` is given.
    #[serde(default)]
    pub beam_fov_deg: Option<[f64; 2]>,
    /// Elevation of each beam, degrees, top first; absent means evenly spread over the window.
    #[serde(default)]
    pub beam_elevations_deg: Option<Vec<f64>>,
}

/// The sensor models shipped in `calib/`, by short name.
const BUILTIN: &[(&str, &str)] = &[
    ("hdl64", include_str!("../../calib/hdl64.toml")),
    ("hdl32", include_str!("../../calib/hdl32.toml")),
    ("vlp16", include_str!("../../calib/vlp16.toml")),
    ("os1-64", include_str!("../../calib/os1-64.toml")),
];

impl SensorModel {
    /// Names accepted by [`SensorModel::builtin`].
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN.iter().map(|(n, _)| *n).collect()
    }

    /// A model shipped with the crate (`hdl64`, `hdl32`, `vlp16`, `os1-64`).
    pub fn builtin(name: &str) -> Result<Self> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            Error::Usage(format!(
                "unknown sensor '{name}': expected one of {} or a path to a .toml file",
                Self::builtin_names().join(", ")
            ))
        })?;
        Self::parse(text, Path::new(&format!("calib/{name}.toml")))
    }

    /// The KITTI sensor, the default everywhere.
    pub fn hdl64() -> Self {
        Self::builtin("hdl64").expect("shipped calib/hdl64.toml is valid")
    }

    /// A built-in name, or else a path to a TOML model file.
    pub fn from_name_or_path(spec: &str) -> Result<Self> {
        if BUILTIN.iter().any(|(n, _)| *n == spec) {
            return Self::builtin(spec);
        }
        let path = Path::new(spec);
        if !path.exists() {
            return Self::builtin(spec);
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parses and checks a model; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let model: SensorModel =
            toml::from_str(text).map_err(|e| Error::input(path, format!("invalid sensor model: {e}")))?;
        model.validate().map_err(|msg| Error::input(path, msg))?;
        Ok(model)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.rows == 0 || self.columns == 0 {
            return Err("rows and columns must be positive".into());
        }
        if self.fov_up_deg <= self.fov_down_deg {
            return Err("fov_up_deg must be above fov_down_deg".into());
        }
        if !(self.max_range_m > self.min_range_m && self.min_range_m >= 0.0) {
            return Err("need 0 <= min_range_m < max_range_m".into());
        }
        if self.projection_max_range_m <= 0.0 || self.rotation_hz <= 0.0 {
            return Err("projection_max_range_m and rotation_hz must be positive".into());
        }
        if self.azimuth_resolution_deg <= 0.0 || self.azimuth_resolution_deg > 10.0 {
            return Err("azimuth_resolution_deg must be in (0, 10]".into());
        }
        if !(0.0..1.0).contains(&self.dropout) || self.range_noise_m < 0.0 {
            return Err("dropout must be in [0, 1) and range_noise_m non-negative".into());
        }
        if let Some(b) = &self.beam_elevations_deg
            && b.is_empty()
        {
            return Err("beam_elevations_deg is empty".into());
        }
        Ok(())
    }

    /// Elevation of every beam in radians, top first.
    pub fn beam_elevations_rad(&self) -> Vec<f64> {
        match &self.beam_elevations_deg {
            Some(b) => b.iter().map(|d| d.to_radians()).collect(),
            None => {
                let n = self.rows.max(1);
                let [top, bottom] = self.beam_fov_deg.unwrap_or([self.fov_up_deg, self.fov_down_deg]);
                (0..n)
                    .map(|i| {
                        let frac = if n == 1 { 0.5 } else { i as f64 / (n - 1) as f64 };
                        (top - frac * (top - bottom)).to_radians()
                    })
                    .collect()
            }
        }
    }

    /// Firings per revolution.
    pub fn azimuth_steps(&self) -> usize {
        (360.0 / self.azimuth_resolution_deg).round() as usize
    }

    /// Duration of one sweep, seconds.
    pub fn sweep_period_s(&self) -> f64 {
        1.0 / self.rotation_hz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_model_parses_with_its_row_count() {
        for name in SensorModel::builtin_names() {
            let m = SensorModel::builtin(name).unwrap();
            assert_eq!(m.beam_elevations_rad().len(), m.rows, "{name}");
        }
        assert_eq!(SensorModel::builtin("vlp16").unwrap().rows, 16);
    }

    #[test]
    fn unknown_names_and_bad_models_are_rejected() {
        assert!(SensorModel::builtin("nope").is_err());
        let bad = "name='x'\nrows=0\ncolumns=1\nfov_up_deg=1\nfov_down_deg=-1\n\
                   projection_max_range_m=1\nmax_range_m=2\nmin_range_m=0\nmount_height_m=1\n\
                   rotation_hz=10\nazimuth_resolution_deg=0.2\nrange_noise_m=0\ndropout=0";
        let err = SensorModel::parse(bad, Path::new("x.toml")).unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("rows"), "{err}");
    }
}

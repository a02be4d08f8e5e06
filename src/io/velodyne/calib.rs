//! Per-laser calibration: where each laser points and how its ranges are corrected.
//!
//! Read from the two standard forms: Velodyne's `db.xml` (angles in degrees, distances in
//! centimetres) and the ROS `velodyne_pointcloud` YAML (radians, metres). The VLP-16 and HDL-32E
//! tables ship in `calib/` in the YAML form.

use super::Model;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// The HDL-64E's two-point near-range correction is a linear blend between a calibration at
/// these x and y distances and the far correction at 25.04 m (Velodyne HDL-64E S2 manual,
/// "distance correction"), metres.
const NEAR_X_M: f64 = 2.4;
const NEAR_Y_M: f64 = 1.93;
const FAR_M: f64 = 25.04;

/// How one laser's returns become points.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LaserCorrection {
    /// Elevation of the beam above the horizontal plane, radians.
    pub elevation_rad: f64,
    /// Azimuth of the beam relative to the reported block azimuth, radians (clockwise).
    pub azimuth_rad: f64,
    /// Added to every range, metres.
    pub distance_m: f64,
    /// Near-range correction along x (HDL-64E), metres; 0 when the file has none.
    pub distance_x_m: f64,
    /// Near-range correction along y (HDL-64E), metres; 0 when the file has none.
    pub distance_y_m: f64,
    /// Height of the laser's origin above the optical centre, metres.
    pub vertical_offset_m: f64,
    /// Sideways offset of the laser's origin, metres.
    pub horizontal_offset_m: f64,
}

/// The calibration of one sensor: one entry per laser id.
#[derive(Debug, Clone, PartialEq)]
pub struct Calibration {
    /// Corrections indexed by laser id.
    pub lasers: Vec<LaserCorrection>,
    /// Metres per unit of a packet's raw distance.
    pub distance_resolution_m: f64,
}

/// The ROS YAML form.
#[derive(Deserialize)]
struct YamlFile {
    lasers: Vec<YamlLaser>,
    #[serde(default)]
    num_lasers: Option<usize>,
    #[serde(default)]
    distance_resolution: Option<f64>,
}

#[derive(Deserialize)]
struct YamlLaser {
    laser_id: usize,
    #[serde(default)]
    rot_correction: f64,
    vert_correction: f64,
    #[serde(default)]
    dist_correction: f64,
    #[serde(default)]
    dist_correction_x: f64,
    #[serde(default)]
    dist_correction_y: f64,
    #[serde(default)]
    vert_offset_correction: f64,
    #[serde(default)]
    horiz_offset_correction: f64,
}

/// Velodyne's documented distance unit: 2 mm per count (VLP-16, HDL-32E and HDL-64E S2 manuals).
pub const DISTANCE_RESOLUTION_M: f64 = 0.002;

impl Calibration {
    /// The table shipped in `calib/` for `model` (nominal for the HDL-64E, whose units each have
    /// their own).
    pub fn builtin(model: Model) -> Self {
        let (name, text) = match model {
            Model::Vlp16 => (
                "calib/velodyne-vlp16.yaml",
                include_str!("../../../calib/velodyne-vlp16.yaml"),
            ),
            Model::Hdl32e => (
                "calib/velodyne-hdl32e.yaml",
                include_str!("../../../calib/velodyne-hdl32e.yaml"),
            ),
            Model::Hdl64e => (
                "calib/velodyne-hdl64e-nominal.yaml",
                include_str!("../../../calib/velodyne-hdl64e-nominal.yaml"),
            ),
        };
        Self::from_yaml(text, Path::new(name)).expect("shipped calibration tables are valid")
    }

    /// `path` when given, else the built-in table; checked to have `model`'s laser count.
    pub fn for_model(model: Model, path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(Self::builtin(model));
        };
        let calib = Self::read(path)?;
        if calib.lasers.len() != model.lasers() {
            return Err(Error::input(
                path,
                format!(
                    "calibration has {} lasers but a {} has {}",
                    calib.lasers.len(),
                    model.label(),
                    model.lasers()
                ),
            ));
        }
        Ok(calib)
    }

    /// Reads a `db.xml` or ROS YAML calibration file (told apart by content).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        if text.trim_start().starts_with('<') {
            Self::from_db_xml(&text, path)
        } else {
            Self::from_yaml(&text, path)
        }
    }

    /// Parses the ROS YAML form; `path` names the source in errors.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self> {
        let file: YamlFile = serde_yaml_ng::from_str(text)
            .map_err(|e| Error::input(path, format!("not a Velodyne YAML calibration: {e}")))?;
        let mut lasers = vec![None; file.lasers.len()];
        for l in &file.lasers {
            let slot = lasers.get_mut(l.laser_id).ok_or_else(|| {
                Error::input(
                    path,
                    format!("laser_id {} out of range for {} lasers", l.laser_id, file.lasers.len()),
                )
            })?;
            *slot = Some(LaserCorrection {
                elevation_rad: l.vert_correction,
                azimuth_rad: l.rot_correction,
                distance_m: l.dist_correction,
                distance_x_m: l.dist_correction_x,
                distance_y_m: l.dist_correction_y,
                vertical_offset_m: l.vert_offset_correction,
                horizontal_offset_m: l.horiz_offset_correction,
            });
        }
        if let Some(n) = file.num_lasers.filter(|n| *n != lasers.len()) {
            return Err(Error::input(
                path,
                format!("num_lasers is {n} but {} lasers are listed", lasers.len()),
            ));
        }
        Self::complete(lasers, file.distance_resolution.unwrap_or(DISTANCE_RESOLUTION_M), path)
    }

    /// Parses Velodyne's `db.xml` (boost serialisation: `DB/points_/item/px`), converting
    /// degrees to radians and centimetres to metres.
    pub fn from_db_xml(text: &str, path: &Path) -> Result<Self> {
        let doc = roxmltree::Document::parse(text).map_err(|e| Error::input(path, format!("not XML: {e}")))?;
        let points = doc
            .descendants()
            .find(|n| n.has_tag_name("points_"))
            .ok_or_else(|| Error::input(path, "no <points_> element: not a Velodyne db.xml"))?;
        let mut lasers: Vec<Option<LaserCorrection>> = Vec::new();
        for px in points.descendants().filter(|n| n.has_tag_name("px")) {
            let field = |name: &str| -> Result<f64> {
                let text = px
                    .children()
                    .find(|c| c.has_tag_name(name))
                    .and_then(|c| c.text())
                    .ok_or_else(|| Error::input(path, format!("laser entry without <{name}>")))?;
                text.trim()
                    .parse()
                    .map_err(|_| Error::input(path, format!("<{name}> is not a number: '{}'", text.trim())))
            };
            let optional = |name: &str| field(name).unwrap_or(0.0);
            let id = field("id_")?;
            if id < 0.0 || id.fract() != 0.0 || id > 255.0 {
                return Err(Error::input(path, format!("bad laser id {id}")));
            }
            let id = id as usize;
            if lasers.len() <= id {
                lasers.resize(id + 1, None);
            }
            lasers[id] = Some(LaserCorrection {
                elevation_rad: field("vertCorrection_")?.to_radians(),
                azimuth_rad: field("rotCorrection_")?.to_radians(),
                distance_m: field("distCorrection_")? / 100.0,
                distance_x_m: optional("distCorrectionX_") / 100.0,
                distance_y_m: optional("distCorrectionY_") / 100.0,
                vertical_offset_m: optional("vertOffsetCorrection_") / 100.0,
                horizontal_offset_m: optional("horizOffsetCorrection_") / 100.0,
            });
        }
        Self::complete(lasers, DISTANCE_RESOLUTION_M, path)
    }

    fn complete(lasers: Vec<Option<LaserCorrection>>, resolution: f64, path: &Path) -> Result<Self> {
        if lasers.is_empty() {
            return Err(Error::input(path, "no lasers in the calibration"));
        }
        if !(resolution > 0.0 && resolution < 1.0) {
            return Err(Error::input(
                path,
                format!("distance resolution {resolution} m is not plausible"),
            ));
        }
        let lasers = lasers
            .into_iter()
            .enumerate()
            .map(|(i, l)| l.ok_or_else(|| Error::input(path, format!("laser {i} is missing"))))
            .collect::<Result<Vec<_>>>()?;
        if let Some((i, _)) = lasers
            .iter()
            .enumerate()
            .find(|(_, l)| !(l.elevation_rad.abs() < 1.6 && l.azimuth_rad.abs() < 6.3 && l.distance_m.abs() < 10.0))
        {
            return Err(Error::input(
                path,
                format!("laser {i}: correction out of range (angles in the wrong unit?)"),
            ));
        }
        Ok(Self {
            lasers,
            distance_resolution_m: resolution,
        })
    }
}

impl LaserCorrection {
    /// The point (sensor frame: x forward, y left, z up) of a return at raw `distance_m` seen at
    /// the block's clockwise azimuth `azimuth_rad` (0 facing forward).
    pub fn point(&self, distance_m: f64, azimuth_rad: f64) -> [f32; 3] {
        let (se, ce) = self.elevation_rad.sin_cos();
        let (sa, ca) = (azimuth_rad - self.azimuth_rad).sin_cos();
        let (vo, ho) = (self.vertical_offset_m, self.horizontal_offset_m);
        let d = distance_m + self.distance_m;
        // Velodyne's frame: y forward, x right; the laser's origin is offset by (ho, vo).
        let planar = |d: f64| d * ce - vo * se;
        let mut x_right = planar(d) * sa - ho * ca;
        let mut y_forward = planar(d) * ca + ho * sa;
        let mut d_z = d;
        if self.distance_x_m != 0.0 || self.distance_y_m != 0.0 {
            // Near-range correction: blend the near calibration into the far one by distance
            // along each axis.
            let blend = |near: f64, at: f64, along: f64| {
                let t = ((along.abs().min(FAR_M) - at) / (FAR_M - at)).clamp(0.0, 1.0);
                near + (self.distance_m - near) * t - self.distance_m
            };
            let dx = d + blend(self.distance_x_m, NEAR_X_M, x_right);
            let dy = d + blend(self.distance_y_m, NEAR_Y_M, y_forward);
            x_right = planar(dx) * sa - ho * ca;
            y_forward = planar(dy) * ca + ho * sa;
            d_z = dy;
        }
        let z = d_z * se + vo * ce;
        [y_forward as f32, -x_right as f32, z as f32]
    }

    /// Inverse of [`LaserCorrection::point`] for a laser without offsets or near-range
    /// correction: the raw distance and block azimuth (radians, clockwise) that report `p`.
    pub fn distance_and_azimuth(&self, p: [f64; 3]) -> (f64, f64) {
        let d = (p[0] * p[0] + p[1] * p[1] + p[2] * p[2]).sqrt();
        let azimuth = (-p[1]).atan2(p[0]) + self.azimuth_rad;
        (d - self.distance_m, azimuth.rem_euclid(std::f64::consts::TAU))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_tables_have_the_manuals_elevations() {
        let vlp = Calibration::builtin(Model::Vlp16);
        let deg: Vec<f64> = vlp.lasers.iter().map(|l| l.elevation_rad.to_degrees()).collect();
        assert_eq!(deg.len(), 16);
        assert!((deg[0] + 15.0).abs() < 1e-6 && (deg[1] - 1.0).abs() < 1e-6 && (deg[15] - 15.0).abs() < 1e-6);
        let hdl = Calibration::builtin(Model::Hdl32e);
        assert_eq!(hdl.lasers.len(), 32);
        assert!((hdl.lasers[31].elevation_rad.to_degrees() - 10.67).abs() < 1e-6);
        assert_eq!(Calibration::builtin(Model::Hdl64e).lasers.len(), 64);
    }

    #[test]
    fn db_xml_units_are_converted() {
        let xml = "<boost_serialization><DB><points_><count>1</count><item><px><id_>0</id_>\
            <rotCorrection_>-5.0</rotCorrection_><vertCorrection_>-7.5</vertCorrection_>\
            <distCorrection_>120.0</distCorrection_><distCorrectionX_>125.0</distCorrectionX_>\
            <distCorrectionY_>118.0</distCorrectionY_><vertOffsetCorrection_>20.0</vertOffsetCorrection_>\
            <horizOffsetCorrection_>2.6</horizOffsetCorrection_><focalDistance_>0</focalDistance_>\
            <focalSlope_>0</focalSlope_></px></item></points_></DB></boost_serialization>";
        let c = Calibration::from_db_xml(xml, Path::new("db.xml")).unwrap();
        let l = c.lasers[0];
        assert!((l.azimuth_rad.to_degrees() + 5.0).abs() < 1e-9);
        assert!((l.elevation_rad.to_degrees() + 7.5).abs() < 1e-9);
        assert!((l.distance_m - 1.2).abs() < 1e-12 && (l.distance_x_m - 1.25).abs() < 1e-12);
        assert!((l.vertical_offset_m - 0.2).abs() < 1e-12 && (l.horizontal_offset_m - 0.026).abs() < 1e-12);
    }

    #[test]
    fn bad_files_name_the_problem() {
        let p = Path::new("cal.yaml");
        let err = Calibration::from_yaml("lasers:\n  - {laser_id: 3, vert_correction: 0.1}\n", p).unwrap_err();
        assert_eq!(err.to_string(), "cal.yaml: laser_id 3 out of range for 1 lasers");
        let err = Calibration::from_yaml("lasers:\n  - {laser_id: 0, vert_correction: -15.0}\n", p).unwrap_err();
        assert!(err.to_string().contains("wrong unit"), "{err}");
        let err = Calibration::from_db_xml("<DB><nothing/></DB>", Path::new("db.xml")).unwrap_err();
        assert_eq!(err.to_string(), "db.xml: no <points_> element: not a Velodyne db.xml");
        let err = Calibration::for_model(Model::Hdl64e, Some(Path::new("calib/velodyne-vlp16.yaml"))).unwrap_err();
        assert!(err.to_string().contains("16 lasers but a HDL-64E has 64"), "{err}");
    }

    #[test]
    fn offsets_move_points_as_the_manual_draws_them() {
        let plain = LaserCorrection::default();
        let p = plain.point(10.0, 0.0);
        assert!((p[0] - 10.0).abs() < 1e-6 && p[1].abs() < 1e-6 && p[2].abs() < 1e-6);
        // Clockwise azimuth: 90 degrees looks to the right (negative y).
        let p = plain.point(10.0, std::f64::consts::FRAC_PI_2);
        assert!(p[0].abs() < 1e-5 && (p[1] + 10.0).abs() < 1e-5);
        let raised = LaserCorrection {
            vertical_offset_m: 0.2,
            ..plain
        };
        assert!((raised.point(10.0, 0.0)[2] - 0.2).abs() < 1e-6);
        let (d, a) = plain.distance_and_azimuth([0.0, -10.0, 0.0]);
        assert!((d - 10.0).abs() < 1e-9 && (a - std::f64::consts::FRAC_PI_2).abs() < 1e-9);
    }
}

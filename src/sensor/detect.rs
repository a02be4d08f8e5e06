//! Which spinning LiDAR recorded a scan, read from the scan itself: how many beams it has (its
//! ring numbers, or else the distinct elevations its points cluster at) and the elevations of its
//! top and bottom beams. Each shipped model has its own beam count and vertical window (HDL-64E
//! +2° to −24.9°, HDL-32E +10.7° to −30.7°, VLP-16 ±15°, OS1-64 ±22.5°), so the nearest one is
//! the sensor.

use super::SensorModel;
use crate::error::Result;
use crate::scan::Scan;

/// Points nearer than this (horizontally) are left out: returns off the vehicle itself, metres.
/// (The bottom beam of an HDL-32E 1.8 m up meets the ground 3 m out.)
const MIN_RANGE_M: f32 = 1.0;
/// Fewer usable points than this say nothing about the sensor.
const MIN_POINTS: usize = 2000;
/// Width of the elevation histogram's bins, degrees: finer than the closest beams' spacing
/// (HDL-64E's upper block: 0.33°).
const BIN_DEG: f64 = 0.1;
/// Elevations the histogram covers, degrees.
const ELEVATIONS_DEG: (f64, f64) = (-45.0, 45.0);
/// A ring whose share of the points is below this (against an even share) is left out of the
/// top and bottom: a beam that saw almost nothing (the sky) says little about its elevation.
const MIN_BEAM_SHARE: f64 = 0.1;
/// Share of the points above the top, and below the bottom, read from elevations alone: stray
/// returns (multipath, the sensor's motion during the sweep) rather than a beam.
const STRAY_SHARE: f64 = 0.002;
/// Fewer clusters of elevations than this do not count as beams: the sensor's motion (or a
/// motion-compensated recording such as KITTI's) smears close beams into one band.
const MIN_CLUSTERS: usize = 8;
/// Weight of a beam-count mismatch (natural log of the ratio) against degrees of window: a count
/// read from ring numbers is exact, one read from clusters of elevations only roughly so.
const BEAM_WEIGHT_RINGS: f64 = 20.0;
const BEAM_WEIGHT_CLUSTERS: f64 = 4.0;

/// What a scan says about its sensor, and the shipped model nearest to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Short name of the model picked (`hdl64`, `hdl32`, `vlp16`, `os1-64`).
    pub name: &'static str,
    /// The model picked.
    pub model: SensorModel,
    /// Beams seen: ring numbers, or clusters of elevations (0: the elevations do not tell).
    pub beams: usize,
    /// Elevation of the top beam seen, degrees.
    pub top_deg: f64,
    /// Elevation of the bottom beam seen, degrees.
    pub bottom_deg: f64,
    /// True when the beams were counted from the scan's ring numbers.
    pub from_rings: bool,
    /// How far the scan is from the model picked (degrees of window plus weighted beam count).
    pub distance: f64,
}

impl std::fmt::Display for Detection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let beams = match (self.beams, self.from_rings) {
            (n, true) => format!("{n} rings"),
            (0, false) => "beams not told apart".into(),
            (n, false) => format!("{n} beams in the elevations"),
        };
        write!(
            f,
            "{} ({beams}, {:+.1}° to {:+.1}°)",
            self.name, self.top_deg, self.bottom_deg
        )
    }
}

/// The shipped model nearest to what `scan` shows; `None` when it holds too few points to tell.
pub fn detect(scan: &Scan) -> Option<Detection> {
    let (beams, top_deg, bottom_deg, from_rings) = match &scan.ring {
        Some(rings) => beams_from_rings(scan, rings)?,
        None => beams_from_elevations(scan)?,
    };
    let weight = if from_rings {
        BEAM_WEIGHT_RINGS
    } else {
        BEAM_WEIGHT_CLUSTERS
    };
    SensorModel::builtin_names()
        .into_iter()
        .map(|name| {
            let model = SensorModel::builtin(name).expect("shipped models parse");
            let elevations = model.beam_elevations_rad();
            let top = elevations.iter().copied().fold(f64::MIN, f64::max).to_degrees();
            let bottom = elevations.iter().copied().fold(f64::MAX, f64::min).to_degrees();
            let count = match beams {
                0 => 0.0,
                n => weight * (n as f64 / elevations.len() as f64).ln().abs(),
            };
            let distance = (top_deg - top).abs() + (bottom_deg - bottom).abs() + count;
            Detection {
                name,
                model,
                beams,
                top_deg,
                bottom_deg,
                from_rings,
                distance,
            }
        })
        .min_by(|a, b| a.distance.total_cmp(&b.distance))
}

/// The `--sensor` value that recognises the sensor from its data.
pub const AUTO: &str = "auto";

/// The sensor model for a run named `named`: a shipped model's name or a TOML file, or [`AUTO`]
/// for the shipped model nearest to the first scan (`first` reads it; hdl64 when there is none
/// to tell by). A shipped name the scan disagrees with is kept, with a warning naming both. The
/// detection comes back for `auto`, to report.
pub fn choose(named: &str, first: impl FnOnce() -> Option<Scan>) -> Result<(SensorModel, Option<Detection>)> {
    if named == AUTO {
        let scan = first();
        return Ok(match scan.as_ref().and_then(detect) {
            Some(d) => {
                log::info!("sensor recognised from the data: {d}");
                (d.model.clone(), Some(d))
            }
            None => {
                if scan.is_some() {
                    log::warn!("the first scan does not tell the sensor: hdl64 assumed (give --sensor)");
                }
                (SensorModel::hdl64(), None)
            }
        });
    }
    let model = SensorModel::from_name_or_path(named)?;
    if SensorModel::builtin_names().contains(&named)
        && let Some(d) = first().as_ref().and_then(detect)
        && d.name != named
    {
        log::warn!("--sensor {named} disagrees with the data, which looks like {d}");
    }
    Ok((model, None))
}

/// Elevation of each usable point, degrees, with its index.
fn elevations(scan: &Scan) -> Vec<(usize, f64)> {
    scan.points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let horizontal = (p[0] * p[0] + p[1] * p[1]).sqrt();
            (horizontal >= MIN_RANGE_M && p[2].is_finite())
                .then(|| (i, (p[2] as f64).atan2(horizontal as f64).to_degrees()))
        })
        .collect()
}

/// Beams = the highest ring number plus one; top and bottom = the median elevations of the
/// highest- and lowest-pointing rings with a fair share of the points.
fn beams_from_rings(scan: &Scan, rings: &[u16]) -> Option<(usize, f64, f64, bool)> {
    let usable = elevations(scan);
    if usable.len() < MIN_POINTS || rings.len() != scan.points.len() {
        return None;
    }
    let beams = *rings.iter().max()? as usize + 1;
    let mut per_ring: Vec<Vec<f64>> = vec![Vec::new(); beams];
    for &(i, e) in &usable {
        per_ring[rings[i] as usize].push(e);
    }
    let fair = (usable.len() as f64 / beams as f64 * MIN_BEAM_SHARE) as usize;
    let medians: Vec<f64> = per_ring
        .iter_mut()
        .filter(|r| r.len() > fair.max(1))
        .map(|r| {
            r.sort_by(f64::total_cmp);
            r[r.len() / 2]
        })
        .collect();
    let top = medians.iter().copied().fold(f64::MIN, f64::max);
    let bottom = medians.iter().copied().fold(f64::MAX, f64::min);
    (!medians.is_empty()).then_some((beams, top, bottom, true))
}

/// Beams = clusters of the elevation histogram (runs of bins holding points, split by empty
/// bins), when there are enough to be beams; top and bottom = the elevations with a stray share
/// of the points above and below.
fn beams_from_elevations(scan: &Scan) -> Option<(usize, f64, f64, bool)> {
    let mut usable: Vec<f64> = elevations(scan).into_iter().map(|(_, e)| e).collect();
    if usable.len() < MIN_POINTS {
        return None;
    }
    usable.sort_by(f64::total_cmp);
    let stray = (usable.len() as f64 * STRAY_SHARE) as usize;
    let (bottom, top) = (usable[stray], usable[usable.len() - 1 - stray]);
    let clusters = elevation_clusters(&usable);
    let beams = if clusters >= MIN_CLUSTERS { clusters } else { 0 };
    Some((beams, top, bottom, false))
}

/// Runs of histogram bins holding more than a stray return's share, split by bins that do not.
fn elevation_clusters(elevations: &[f64]) -> usize {
    let bins = ((ELEVATIONS_DEG.1 - ELEVATIONS_DEG.0) / BIN_DEG) as usize;
    let mut histogram = vec![0usize; bins];
    for &e in elevations {
        let b = ((e - ELEVATIONS_DEG.0) / BIN_DEG) as isize;
        if (0..bins as isize).contains(&b) {
            histogram[b as usize] += 1;
        }
    }
    let floor = (elevations.len() / 5000).max(2);
    let occupied: Vec<bool> = histogram.iter().map(|&n| n >= floor).collect();
    occupied.windows(2).filter(|w| w[1] && !w[0]).count() + usize::from(occupied[0])
}

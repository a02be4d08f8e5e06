//! Finding the way back into the local map after a sensor fell silent or a registration failed
//! (ours; KISS-ICP has no such step). Over a gap of seconds the constant-velocity guess is
//! metres and tens of degrees off in a bend, outside ICP's reach of about a voxel. A correlative
//! search in the plane (Olson, "Real-time correlative scan matching", ICRA 2009) tries every
//! position and heading around the way from the last pose to the guess on a grid of the map's
//! upright structure (walls, trunks, poles: the ground fits anywhere on a road); the best few
//! are refined by ICP in 3D and accepted when the structure fits.

use super::FIT_DISTANCE_M;
use super::align::{Source, align_to_map};
use super::local_map::VoxelHashMap;
use crate::scan::Pose;
use nalgebra::{Point3, Translation3, UnitQuaternion, Vector2};
use rayon::prelude::*;
use std::collections::HashMap;

/// Cell size of the structure grid and step of the positions tried, metres.
const CELL_M: f64 = 1.0;
/// A cell holds structure when its points rise this much above its lowest, metres.
const UPRIGHT_M: f64 = 0.5;
/// Headings tried: every 2.5 degrees up to a quarter turn either way from the guess's (a car in
/// a junction turns about 90 degrees in 3 s).
const HEADING_STEP_DEG: f64 = 2.5;
const MAX_TURN_DEG: f64 = 90.0;
/// Positions tried lie within this many metres of the way from the last pose to the guess
/// (and half again as far as the guess).
const SEARCH_MARGIN_M: f64 = 6.0;
/// Points of the scan scored per hypothesis: a spread-out sample of its structure within
/// [`SAMPLE_RANGE_M`] (farther points move too much with a heading step).
const SAMPLE_POINTS: usize = 300;
const SAMPLE_RANGE_M: f64 = 50.0;
/// A hypothesis this many metres (or ten times as many degrees) from the motion model's guess
/// must score as much more as the best score: the guess is off by metres after a dropout, not
/// by tens of metres, and along a straight street only the guess tells poses apart.
const GRID_PRIOR_M: f64 = 40.0;
/// The same for the refined poses' structure fits (5 m cost 0.025).
const FIT_PRIOR_M: f64 = 200.0;
/// Hypotheses refined by ICP, best scored first.
const REFINED: usize = 6;
/// ICP's correspondence threshold when refining a hypothesis, metres: the grid's step and a
/// little more.
const REFINE_DISTANCE_M: f64 = 2.0;
/// A relocalisation needs this share of the scan's upright structure within
/// [`FIT_DISTANCE_M`] of the map (ours: after the simulated drive's 3 s dropouts the right pose
/// puts 0.62-0.73 there, after its 6 s dropout in a bend the best wrong one 0.51, while right
/// and wrong fit about half of all points; `RUST_LOG=overlap_slam::odometry=debug replay
/// --no-loops --drop A..B` logs it).
pub const MIN_STRUCTURE_FIT: f64 = 0.6;

/// Where the scan fits the map, and how well.
#[derive(Debug, Clone, Copy)]
pub struct Relocalisation {
    /// The scan's pose in the map frame.
    pub pose: Pose,
    /// Share of its points within [`FIT_DISTANCE_M`] of the map there.
    pub fit: f64,
    /// The same share among the points of its upright structure.
    pub structure_fit: f64,
}

/// Searches for `source`'s pose in `map` around the way from `last` to `guess` (the motion
/// model's pose), `unknown_m` farther where the motion model knows no motion; ICP ends with `threshold` and `kernel` as odometry's. `None` when no pose
/// puts [`MIN_STRUCTURE_FIT`] of the scan's structure on the map.
pub fn relocalise(
    source: &[Point3<f64>],
    map: &VoxelHashMap,
    last: &Pose,
    guess: &Pose,
    unknown_m: f64,
    (threshold, kernel): (f64, f64),
) -> Option<Relocalisation> {
    let near: Vec<Point3<f64>> = source
        .iter()
        .filter(|p| p.coords.norm() < SAMPLE_RANGE_M)
        .copied()
        .collect();
    let sample = spread_sample(&upright(&near), SAMPLE_POINTS);
    if map.is_empty() || sample.is_empty() {
        return None;
    }
    let grid = StructureGrid::of(&map.points());
    // The sample turned to each heading once: a hypothesis then only shifts it.
    let headings = headings(guess);
    let turned: Vec<Vec<Vector2<f64>>> = headings
        .iter()
        .map(|r| sample.iter().map(|p| (r * p).coords.xy()).collect())
        .collect();
    let scored: Vec<(usize, Pose)> = hypotheses(last, guess, unknown_m)
        .into_par_iter()
        .map(|(xy, k)| (grid.hits(&turned[k], &xy), pose_at(xy, &headings[k], guess)))
        .collect();
    // Along a straight street many poses score alike, and poses near the middle of the map
    // score best: the score is traded against the distance from the motion model's guess.
    let best = scored.iter().map(|s| s.0).max().unwrap_or(0).max(1) as f64;
    let mut ranked: Vec<(f64, Pose)> = scored
        .into_par_iter()
        .map(|(score, h)| (score as f64 / best - away(&h, guess) / GRID_PRIOR_M, h))
        .collect();
    let top = REFINED.min(ranked.len());
    if top < ranked.len() {
        ranked.select_nth_unstable_by(top, |a, b| b.0.total_cmp(&a.0));
    }
    let refined: Vec<Relocalisation> = ranked[..top]
        .iter()
        .map(|(_, h)| {
            let wide = align_to_map(
                Source::points(source),
                map,
                *h,
                REFINE_DISTANCE_M,
                REFINE_DISTANCE_M / 3.0,
                100,
                1e-4,
            );
            let tight = align_to_map(Source::points(source), map, wide.pose, threshold, kernel, 100, 1e-4);
            Relocalisation {
                pose: tight.pose,
                fit: tight.fitting as f64 / source.len() as f64,
                structure_fit: fitting(&sample, map, &tight.pose) as f64 / sample.len() as f64,
            }
        })
        .collect();
    let chosen = |r: &Relocalisation| r.structure_fit - away(&r.pose, guess) / FIT_PRIOR_M;
    refined
        .into_iter()
        .filter(|r| r.structure_fit >= MIN_STRUCTURE_FIT)
        .max_by(|a, b| chosen(a).total_cmp(&chosen(b)))
}

/// How far `pose` lies from `guess`: metres, plus a metre for every 10 degrees of heading.
fn away(pose: &Pose, guess: &Pose) -> f64 {
    let d = guess.inverse() * pose;
    d.translation.vector.xy().norm() + d.rotation.angle().to_degrees() / 10.0
}

/// Every grid position near the way from `last` to `guess`, with every heading (an index
/// into [`headings`]).
fn hypotheses(last: &Pose, guess: &Pose, unknown_m: f64) -> Vec<(Vector2<f64>, usize)> {
    let from = last.translation.vector.xy();
    let to = guess.translation.vector.xy();
    let beyond = to + 0.5 * (to - from);
    let radius = 0.5 * (beyond - from).norm() + SEARCH_MARGIN_M + unknown_m;
    let centre = 0.5 * (from + beyond);
    let cells = (radius / CELL_M).ceil() as i64;
    let turns = headings(guess).len();
    let mut out = Vec::new();
    for i in -cells..=cells {
        for j in -cells..=cells {
            let offset = Vector2::new(i as f64, j as f64) * CELL_M;
            if offset.norm() <= radius {
                out.extend((0..turns).map(|k| (centre + offset, k)));
            }
        }
    }
    out
}

/// The orientations tried: the guess's turned about the vertical by every heading step.
fn headings(guess: &Pose) -> Vec<UnitQuaternion<f64>> {
    let turns = (MAX_TURN_DEG / HEADING_STEP_DEG) as i64;
    (-turns..=turns)
        .map(|k| {
            UnitQuaternion::from_euler_angles(0.0, 0.0, (k as f64 * HEADING_STEP_DEG).to_radians()) * guess.rotation
        })
        .collect()
}

/// The pose at position `xy` with orientation `rotation`, at the guess's height.
fn pose_at(xy: Vector2<f64>, rotation: &UnitQuaternion<f64>, guess: &Pose) -> Pose {
    Pose::from_parts(Translation3::new(xy.x, xy.y, guess.translation.vector.z), *rotation)
}

/// The map's upright structure, seen from above: the cells whose points rise more than
/// [`UPRIGHT_M`], and their neighbours (a point within about a cell of structure scores).
struct StructureGrid {
    /// The first cell of the grid's box.
    origin: (i64, i64),
    width: usize,
    height: usize,
    /// 2 on a structure cell, 1 beside one, 0 elsewhere.
    weight: Vec<u8>,
}

impl StructureGrid {
    fn of(points: &[Point3<f64>]) -> Self {
        let cells = upright_cells(points);
        let (lo_i, hi_i) = cells
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), c| (lo.min(c.0), hi.max(c.0)));
        let (lo_j, hi_j) = cells
            .iter()
            .fold((i64::MAX, i64::MIN), |(lo, hi), c| (lo.min(c.1), hi.max(c.1)));
        if cells.is_empty() {
            return Self {
                origin: (0, 0),
                width: 0,
                height: 0,
                weight: Vec::new(),
            };
        }
        let origin = (lo_i - 1, lo_j - 1);
        let (width, height) = ((hi_i - lo_i + 3) as usize, (hi_j - lo_j + 3) as usize);
        let mut weight = vec![0u8; width * height];
        for (i, j) in cells {
            for di in -1..=1 {
                for dj in -1..=1 {
                    let (x, y) = ((i + di - origin.0) as usize, (j + dj - origin.1) as usize);
                    let w = if di == 0 && dj == 0 { 2 } else { 1 };
                    weight[y * width + x] = weight[y * width + x].max(w);
                }
            }
        }
        Self {
            origin,
            width,
            height,
            weight,
        }
    }

    fn weight(&self, (i, j): (i64, i64)) -> usize {
        let (x, y) = (i - self.origin.0, j - self.origin.1);
        if (0..self.width as i64).contains(&x) && (0..self.height as i64).contains(&y) {
            self.weight[y as usize * self.width + x as usize] as usize
        } else {
            0
        }
    }

    /// How well `turned` (points turned to the map's orientation) lands on structure shifted
    /// to `at`: 2 for each point on a structure cell, 1 beside one.
    fn hits(&self, turned: &[Vector2<f64>], at: &Vector2<f64>) -> usize {
        turned.iter().map(|p| self.weight(cell_of_xy(&(p + at)))).sum()
    }
}

fn cell_of(p: &Point3<f64>) -> (i64, i64) {
    cell_of_xy(&p.coords.xy())
}

fn cell_of_xy(p: &Vector2<f64>) -> (i64, i64) {
    ((p.x / CELL_M).floor() as i64, (p.y / CELL_M).floor() as i64)
}

/// The cells (seen from above) whose points span more than [`UPRIGHT_M`] in height.
fn upright_cells(points: &[Point3<f64>]) -> Vec<(i64, i64)> {
    let mut span: HashMap<(i64, i64), (f64, f64)> = HashMap::new();
    for p in points {
        let e = span.entry(cell_of(p)).or_insert((p.z, p.z));
        *e = (e.0.min(p.z), e.1.max(p.z));
    }
    span.into_iter()
        .filter(|(_, (lo, hi))| hi - lo > UPRIGHT_M)
        .map(|(cell, _)| cell)
        .collect()
}

/// The points of `points` in cells that hold upright structure.
fn upright(points: &[Point3<f64>]) -> Vec<Point3<f64>> {
    let cells: std::collections::HashSet<_> = upright_cells(points).into_iter().collect();
    points.iter().filter(|p| cells.contains(&cell_of(p))).copied().collect()
}

/// Every n-th point, about `count` of them.
fn spread_sample(points: &[Point3<f64>], count: usize) -> Vec<Point3<f64>> {
    let step = (points.len() / count.max(1)).max(1);
    points.iter().step_by(step).copied().collect()
}

/// Points of `sample` that land within [`FIT_DISTANCE_M`] of the map at `pose`.
fn fitting(sample: &[Point3<f64>], map: &VoxelHashMap, pose: &Pose) -> usize {
    let fit_sq = FIT_DISTANCE_M * FIT_DISTANCE_M;
    sample
        .iter()
        .filter(|p| map.closest(&(pose * *p)).is_some_and(|(_, d2)| d2 < fit_sq))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hypotheses_cover_the_way_and_every_heading() {
        let last = Pose::identity();
        let guess = Pose::from_parts(Translation3::new(20.0, 0.0, 0.0), UnitQuaternion::identity());
        let turns = headings(&guess);
        let h: Vec<Pose> = hypotheses(&last, &guess, 0.0)
            .into_iter()
            .map(|(xy, k)| pose_at(xy, &turns[k], &guess))
            .collect();
        let has = |x: f64, y: f64, yaw: f64| {
            h.iter().any(|p| {
                (p.translation.vector.xy() - Vector2::new(x, y)).norm() < 0.5
                    && (p.rotation.euler_angles().2.to_degrees() - yaw).abs() < 1.3
            })
        };
        assert!(has(0.0, 0.0, 0.0) && has(20.0, 0.0, 0.0) && has(30.0, 0.0, 0.0));
        assert!(has(16.0, 4.0, 25.0) && has(20.0, -3.0, -90.0));
        assert!(!has(40.0, 0.0, 0.0) && !has(20.0, 0.0, 95.0));
    }

    #[test]
    fn only_cells_with_height_hold_structure() {
        let wall: Vec<Point3<f64>> = (0..20).map(|k| Point3::new(5.2, 0.3, k as f64 * 0.1)).collect();
        let ground: Vec<Point3<f64>> = (0..20).map(|k| Point3::new(k as f64 * 0.1, 3.5, -1.7)).collect();
        let all: Vec<_> = wall.iter().chain(&ground).copied().collect();
        assert_eq!(upright_cells(&all), vec![(5, 0)]);
        assert_eq!(upright(&all).len(), wall.len());
    }
}

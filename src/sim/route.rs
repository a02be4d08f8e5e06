//! Where the simulated car drives: a closed loop road (a rounded rectangle), one lap and a bit in
//! the right-hand lane, a U-turn, then back the way it came in the other lane. The lap closes a
//! loop in the same direction; the return leg revisits the same stretch in the opposite direction.

use std::f64::consts::{FRAC_PI_2, PI, TAU};

/// Lateral offset of a lane centre from the road centreline, metres (3.5 m lanes).
pub const LANE_OFFSET_M: f64 = 1.75;

/// One piece of the loop's centreline.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// Straight from `start` along `heading`.
    Line { start: [f64; 2], heading: f64, len: f64 },
    /// Counter-clockwise arc around `center`, starting at angle `a0`.
    Arc {
        center: [f64; 2],
        radius: f64,
        a0: f64,
        len: f64,
    },
}

impl Piece {
    fn len(&self) -> f64 {
        match *self {
            Piece::Line { len, .. } | Piece::Arc { len, .. } => len,
        }
    }

    /// Position, heading and curvature `s` metres into the piece.
    fn at(&self, s: f64) -> ([f64; 2], f64, f64) {
        match *self {
            Piece::Line { start, heading, .. } => (
                [start[0] + s * heading.cos(), start[1] + s * heading.sin()],
                heading,
                0.0,
            ),
            Piece::Arc { center, radius, a0, .. } => {
                let a = a0 + s / radius;
                (
                    [center[0] + radius * a.cos(), center[1] + radius * a.sin()],
                    a + FRAC_PI_2,
                    1.0 / radius,
                )
            }
        }
    }
}

/// The closed centreline of the loop road, driven counter-clockwise.
#[derive(Debug, Clone)]
pub struct LoopRoad {
    pieces: Vec<Piece>,
    perimeter: f64,
    /// Width and height of the rectangle the loop is inscribed in, metres.
    pub size: [f64; 2],
    radius: f64,
}

impl LoopRoad {
    /// A rectangle `lx` by `ly` with corners rounded to radius `r`, starting mid bottom edge.
    pub fn rounded_rectangle(lx: f64, ly: f64, r: f64) -> Self {
        let arc = |cx: f64, cy: f64, a0: f64| Piece::Arc {
            center: [cx, cy],
            radius: r,
            a0,
            len: r * FRAC_PI_2,
        };
        let line = |x: f64, y: f64, h: f64, len: f64| Piece::Line {
            start: [x, y],
            heading: h,
            len,
        };
        let pieces = vec![
            line(lx / 2.0, 0.0, 0.0, lx / 2.0 - r),
            arc(lx - r, r, -FRAC_PI_2),
            line(lx, r, FRAC_PI_2, ly - 2.0 * r),
            arc(lx - r, ly - r, 0.0),
            line(lx - r, ly, PI, lx - 2.0 * r),
            arc(r, ly - r, FRAC_PI_2),
            line(0.0, ly - r, 3.0 * FRAC_PI_2, ly - 2.0 * r),
            arc(r, r, PI),
            line(r, 0.0, 0.0, lx / 2.0 - r),
        ];
        let perimeter = pieces.iter().map(Piece::len).sum();
        Self {
            pieces,
            perimeter,
            size: [lx, ly],
            radius: r,
        }
    }

    /// Radius of the rounded corners, metres.
    pub fn corner_radius(&self) -> f64 {
        self.radius
    }

    /// Length of one lap, metres.
    pub fn perimeter(&self) -> f64 {
        self.perimeter
    }

    /// Position, heading and curvature at arc length `s` (wraps around the loop).
    pub fn at(&self, s: f64) -> ([f64; 2], f64, f64) {
        let mut s = s.rem_euclid(self.perimeter);
        for p in &self.pieces {
            if s <= p.len() {
                return p.at(s);
            }
            s -= p.len();
        }
        let last = self.pieces.last().expect("loop has pieces");
        last.at(last.len())
    }

    /// Points along the centreline every `step` metres.
    pub fn samples(&self, step: f64) -> Vec<[f64; 2]> {
        let n = (self.perimeter / step).ceil() as usize;
        (0..n).map(|i| self.at(i as f64 * step).0).collect()
    }
}

/// A planar vehicle pose: position and heading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose2 {
    /// Position, metres.
    pub xy: [f64; 2],
    /// Heading, radians counter-clockwise from +x.
    pub yaw: f64,
}

/// The drive: lap and extra stretch forward, U-turn, then backwards around the loop.
#[derive(Debug, Clone)]
pub struct Route {
    road: LoopRoad,
    forward_len: f64,
    turn_radius: f64,
    /// Time at each `STEP` metres of route distance, seconds.
    times: Vec<f64>,
}

/// Route distance resolution of the speed profile, metres.
const STEP: f64 = 0.25;

/// How the car moves along the route.
#[derive(Debug, Clone, Copy)]
pub struct DriveParams {
    /// Cruise speed on straights, m/s.
    pub cruise_mps: f64,
    /// Lateral acceleration allowed in bends, m/s².
    pub lateral_accel: f64,
    /// Longitudinal acceleration and braking, m/s².
    pub accel: f64,
    /// Speed through the U-turn, m/s.
    pub turn_mps: f64,
    /// Share of a lap driven past the start before turning round.
    pub extra_laps: f64,
}

impl Default for DriveParams {
    fn default() -> Self {
        Self {
            cruise_mps: 9.0,
            lateral_accel: 2.5,
            accel: 1.5,
            turn_mps: 2.0,
            extra_laps: 0.15,
        }
    }
}

impl Route {
    /// Plans the drive on `road` long enough to last `duration_s` seconds.
    pub fn new(road: LoopRoad, drive: DriveParams, duration_s: f64) -> Self {
        let forward_len = road.perimeter() * (1.0 + drive.extra_laps);
        let turn_radius = LANE_OFFSET_M;
        let mut route = Self {
            road,
            forward_len,
            turn_radius,
            times: Vec::new(),
        };
        // Long enough for the duration even at the slowest speed, plus the turn.
        let total = forward_len + PI * turn_radius + drive.cruise_mps * duration_s + 50.0;
        let n = (total / STEP).ceil() as usize + 1;
        let mut vmax: Vec<f64> = (0..n).map(|i| route.speed_limit(i as f64 * STEP, &drive)).collect();
        // Forward and backward passes bound acceleration: v² changes by at most 2·a·ds.
        for i in 1..n {
            vmax[i] = vmax[i].min((vmax[i - 1].powi(2) + 2.0 * drive.accel * STEP).sqrt());
        }
        for i in (0..n - 1).rev() {
            vmax[i] = vmax[i].min((vmax[i + 1].powi(2) + 2.0 * drive.accel * STEP).sqrt());
        }
        let mut times = vec![0.0; n];
        for i in 1..n {
            times[i] = times[i - 1] + 2.0 * STEP / (vmax[i - 1] + vmax[i]);
        }
        route.times = times;
        route
    }

    /// The loop road the route follows.
    pub fn road(&self) -> &LoopRoad {
        &self.road
    }

    fn speed_limit(&self, rho: f64, drive: &DriveParams) -> f64 {
        let turn_end = self.forward_len + PI * self.turn_radius;
        if rho >= self.forward_len && rho <= turn_end {
            return drive.turn_mps;
        }
        let curvature = self.road.at(self.road_s(rho)).2;
        let bend = if curvature > 0.0 {
            (drive.lateral_accel / curvature).sqrt()
        } else {
            f64::INFINITY
        };
        drive.cruise_mps.min(bend).max(drive.turn_mps)
    }

    fn road_s(&self, rho: f64) -> f64 {
        let turn_end = self.forward_len + PI * self.turn_radius;
        if rho <= self.forward_len {
            rho
        } else {
            self.forward_len - (rho - turn_end).max(0.0)
        }
    }

    /// Route distance reached at time `t` (seconds from the start).
    pub fn distance_at(&self, t: f64) -> f64 {
        let k = self.times.partition_point(|&x| x <= t).clamp(1, self.times.len() - 1);
        let (t0, t1) = (self.times[k - 1], self.times[k]);
        let frac = if t1 > t0 {
            ((t - t0) / (t1 - t0)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        ((k - 1) as f64 + frac) * STEP
    }

    /// Planar pose at route distance `rho`.
    pub fn pose_at_distance(&self, rho: f64) -> Pose2 {
        let turn_end = self.forward_len + PI * self.turn_radius;
        let offset = |xy: [f64; 2], heading: f64, lateral: f64| {
            [xy[0] - lateral * heading.sin(), xy[1] + lateral * heading.cos()]
        };
        if rho <= self.forward_len {
            let (xy, h, _) = self.road.at(rho);
            Pose2 {
                xy: offset(xy, h, -LANE_OFFSET_M),
                yaw: h,
            }
        } else if rho <= turn_end {
            // Half circle around the centreline point, turning left into the other lane.
            let (c, h, _) = self.road.at(self.forward_len);
            let phi = (rho - self.forward_len) / self.turn_radius;
            let start = -FRAC_PI_2 + h;
            let a = start + phi;
            Pose2 {
                xy: [c[0] + self.turn_radius * a.cos(), c[1] + self.turn_radius * a.sin()],
                yaw: (h + phi).rem_euclid(TAU),
            }
        } else {
            let (xy, h, _) = self.road.at(self.road_s(rho));
            Pose2 {
                xy: offset(xy, h, LANE_OFFSET_M),
                yaw: (h + PI).rem_euclid(TAU),
            }
        }
    }

    /// Planar pose at time `t`.
    pub fn pose_at_time(&self, t: f64) -> Pose2 {
        self.pose_at_distance(self.distance_at(t))
    }

    /// Route distance where the U-turn begins.
    pub fn turn_start(&self) -> f64 {
        self.forward_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_closes_on_itself() {
        let road = LoopRoad::rounded_rectangle(100.0, 60.0, 12.0);
        let p = road.perimeter();
        assert!((p - (2.0 * (100.0 + 60.0) - (8.0 - TAU) * 12.0)).abs() < 1e-9);
        let (a, ha, _) = road.at(0.0);
        let (b, hb, _) = road.at(p - 1e-9);
        assert!(
            (a[0] - b[0]).hypot(a[1] - b[1]) < 1e-6
                && ((ha - hb).rem_euclid(TAU)).min(TAU - (ha - hb).rem_euclid(TAU)) < 1e-6
        );
    }

    #[test]
    fn route_is_continuous_and_returns_in_the_other_lane() {
        let road = LoopRoad::rounded_rectangle(100.0, 60.0, 12.0);
        let route = Route::new(road, DriveParams::default(), 80.0);
        let mut prev = route.pose_at_distance(0.0);
        let mut rho = 0.0;
        while rho < route.turn_start() + 100.0 {
            rho += 0.25;
            let p = route.pose_at_distance(rho);
            assert!(
                (p.xy[0] - prev.xy[0]).hypot(p.xy[1] - prev.xy[1]) < 0.3,
                "jump at {rho}"
            );
            prev = p;
        }
        // After one lap the car is back at the start, same lane, same heading.
        let lap = route.pose_at_distance(route.road().perimeter());
        let start = route.pose_at_distance(0.0);
        assert!((lap.xy[0] - start.xy[0]).hypot(lap.xy[1] - start.xy[1]) < 1e-6);
        // On the way back it passes the turn point 3.5 m to the side, heading the other way.
        let s_back = route.turn_start() + PI * LANE_OFFSET_M + 20.0;
        let fwd = route.pose_at_distance(route.turn_start() - 20.0);
        let back = route.pose_at_distance(s_back);
        assert!(((fwd.xy[0] - back.xy[0]).hypot(fwd.xy[1] - back.xy[1]) - 3.5).abs() < 1e-6);
        let dyaw = (fwd.yaw - back.yaw).rem_euclid(TAU);
        assert!((dyaw - PI).abs() < 1e-6);
        // Time is monotonic and speeds stay within the plan.
        assert!(route.distance_at(10.0) > route.distance_at(5.0));
        assert!(route.distance_at(1.0) <= 9.0 + 1e-9);
    }
}

//! The procedural world: rolling ground around a loop road, lined with buildings, walls, parked
//! cars, poles, signs and trees, each a simple solid with its own reflectivity. One seed, one world.

use super::geometry::{Cylinder, Foliage, Hit, UprightBox};
use super::route::LoopRoad;
use crate::scan::Pose;
use nalgebra::{Matrix3, Rotation3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Half width of the carriageway (two 3.5 m lanes), metres.
pub const ROAD_HALF_WIDTH_M: f64 = 3.5;
/// Outer edge of the parking strip beside the carriageway, metres from the centreline.
pub const PARKING_EDGE_M: f64 = 6.2;
/// Outer edge of the sidewalk, metres from the centreline.
pub const SIDEWALK_EDGE_M: f64 = 9.0;

/// The shape of one object.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// Buildings, walls, car bodies, sign plates.
    Box(UprightBox),
    /// Poles and trunks.
    Cylinder(Cylinder),
    /// Tree crowns and bushes.
    Foliage(Foliage),
}

/// A solid in the world with its reflectivity and a bounding circle for culling.
#[derive(Debug, Clone, Copy)]
pub struct Object {
    /// Geometry.
    pub shape: Shape,
    /// Diffuse reflectivity in [0, 1].
    pub reflectivity: f32,
    /// Centre of the footprint's bounding circle.
    pub center: [f64; 2],
    /// Radius of the footprint's bounding circle.
    pub radius: f64,
}

impl Object {
    fn new(shape: Shape, reflectivity: f32) -> Self {
        let (center, radius) = match shape {
            Shape::Box(b) => (b.center, b.radius()),
            Shape::Cylinder(c) => (c.center, c.radius),
            Shape::Foliage(f) => ([f.center[0], f.center[1]], f.radius),
        };
        Self {
            shape,
            reflectivity,
            center,
            radius,
        }
    }

    /// Where a ray meets the object; `u` draws the depth into foliage.
    #[inline]
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3], u: f64) -> Option<Hit> {
        let hit = match &self.shape {
            Shape::Box(b) => b.intersect(o, d),
            Shape::Cylinder(c) => c.intersect(o, d),
            Shape::Foliage(f) => f.intersect(o, d, u),
        };
        hit.map(|(t, normal)| Hit {
            t,
            normal,
            reflectivity: self.reflectivity,
        })
    }
}

/// Rolling terrain: a tilted plane with one long swell, gentle enough to drive.
#[derive(Debug, Clone, Copy)]
pub struct Ground {
    slope: [f64; 2],
    amplitude: f64,
    wave: [f64; 2],
    phase: [f64; 2],
}

impl Ground {
    /// Height and its x/y derivatives at (x, y).
    #[inline]
    pub fn height(&self, x: f64, y: f64) -> (f64, f64, f64) {
        let (sx, cx) = (self.wave[0] * x + self.phase[0]).sin_cos();
        let (sy, cy) = (self.wave[1] * y + self.phase[1]).sin_cos();
        let h = self.slope[0] * x + self.slope[1] * y + self.amplitude * sx * cy;
        let hx = self.slope[0] + self.amplitude * self.wave[0] * cx * cy;
        let hy = self.slope[1] - self.amplitude * self.wave[1] * sx * sy;
        (h, hx, hy)
    }

    /// Where a ray meets the ground within `t_max`, by Newton steps from the tangent plane.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3], t_max: f64) -> Option<(f64, [f64; 3])> {
        let (h0, hx0, hy0) = self.height(o[0], o[1]);
        let denom = d[2] - hx0 * d[0] - hy0 * d[1];
        if denom >= -1e-6 {
            return None;
        }
        let mut t = (h0 - o[2]) / denom;
        for _ in 0..6 {
            let (x, y) = (o[0] + t * d[0], o[1] + t * d[1]);
            let (h, hx, hy) = self.height(x, y);
            let f = o[2] + t * d[2] - h;
            let df = d[2] - hx * d[0] - hy * d[1];
            if df.abs() < 1e-9 {
                return None;
            }
            let step = f / df;
            t -= step;
            if step.abs() < 1e-4 {
                break;
            }
        }
        if !(t > 1e-6 && t <= t_max) {
            return None;
        }
        let (_, hx, hy) = self.height(o[0] + t * d[0], o[1] + t * d[1]);
        let n = Vector3::new(-hx, -hy, 1.0).normalize();
        Some((t, [n.x, n.y, n.z]))
    }
}

/// Everything the simulated LiDAR can see.
#[derive(Debug, Clone)]
pub struct World {
    /// The loop road the car drives.
    pub road: LoopRoad,
    /// Terrain.
    pub ground: Ground,
    /// Solids standing on the terrain.
    pub objects: Vec<Object>,
    seed: u64,
}

/// Arc lengths where the tunnel scene's tunnel begins and ends, metres: 80 m of street first, so
/// the odometry knows its speed, then 290 m, so that the middle lies beyond a 100 m LiDAR's reach
/// of both portals.
pub const TUNNEL_S: [f64; 2] = [80.0, 370.0];

/// What surrounds the road: the default street scene, or one of the places where LiDAR odometry
/// is known to struggle, to test its degeneracy handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scene {
    /// Buildings, walls, parked cars, poles, signs and trees along the road, background beyond.
    #[default]
    Street,
    /// The street scene with a long straight tunnel (smooth walls and roof) a little after the
    /// start: inside, far from both portals, nothing marks progress along the road.
    Tunnel,
    /// Flat, empty ground: nothing marks position or heading.
    OpenField,
}

impl Scene {
    /// Every scene's name, as `--scene` takes it.
    pub const NAMES: [&'static str; 3] = ["street", "tunnel", "open-field"];
}

impl std::str::FromStr for Scene {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "street" => Ok(Self::Street),
            "tunnel" => Ok(Self::Tunnel),
            "open-field" => Ok(Self::OpenField),
            _ => Err(format!("unknown scene '{s}' (street, tunnel, open-field)")),
        }
    }
}

/// Kind of roadside a stretch of road runs through.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    Urban,
    Residential,
    Park,
}

impl World {
    /// Builds the `scene` for `seed` around `road`.
    pub fn generate(seed: u64, road: LoopRoad, scene: Scene) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5157_0001);
        let mut ground = Ground {
            slope: [rng.random_range(-0.012..0.012), rng.random_range(-0.012..0.012)],
            amplitude: rng.random_range(0.4..1.5),
            wave: [
                std::f64::consts::TAU / rng.random_range(90.0..220.0),
                std::f64::consts::TAU / rng.random_range(90.0..220.0),
            ],
            phase: [rng.random_range(0.0..6.3), rng.random_range(0.0..6.3)],
        };
        if scene != Scene::Street {
            (ground.slope, ground.amplitude) = ([0.0; 2], 0.0);
        }
        let tunnel = (scene == Scene::Tunnel).then_some(TUNNEL_S);
        let mut world = Self {
            road,
            ground,
            objects: Vec::new(),
            seed,
        };
        let mut builder = Builder {
            world: &mut world,
            rng,
            footprints: Vec::new(),
            keep_clear: [f64::NAN; 2],
        };
        match tunnel {
            _ if scene == Scene::OpenField => {}
            Some([s0, s1]) => {
                builder.tunnel(s0, s1);
                builder.dress_roadsides([s0 - 5.0, s1 + 5.0]);
                builder.scatter_background();
            }
            None => {
                builder.dress_roadsides([f64::NAN; 2]);
                builder.scatter_background();
            }
        }
        world
    }

    /// Distance from (x, y) to the road centreline, metres.
    pub fn road_distance(&self, x: f64, y: f64) -> f64 {
        let [lx, ly] = self.road.size;
        let r = self.road.corner_radius();
        // Signed distance to a rounded rectangle; its zero set is the centreline.
        let qx = (x - lx / 2.0).abs() - (lx / 2.0 - r);
        let qy = (y - ly / 2.0).abs() - (ly / 2.0 - r);
        let outside = qx.max(0.0).hypot(qy.max(0.0));
        (outside + qx.max(qy).min(0.0) - r).abs()
    }

    /// Reflectivity of the ground at (x, y): asphalt, lane lines, parking, sidewalk or grass.
    pub fn ground_reflectivity(&self, x: f64, y: f64) -> f32 {
        let d = self.road_distance(x, y);
        let texture = value_noise(x * 0.5, y * 0.5, self.seed) as f32;
        if d < 0.08 || (d - (ROAD_HALF_WIDTH_M - 0.15)).abs() < 0.08 {
            0.65 + 0.1 * texture
        } else if d < PARKING_EDGE_M {
            0.28 + 0.14 * texture
        } else if d < SIDEWALK_EDGE_M {
            0.3 + 0.12 * texture
        } else {
            let patch = value_noise(x * 0.05, y * 0.05, self.seed ^ 7) as f32;
            0.15 + 0.3 * patch + 0.15 * texture
        }
    }

    /// The closest hit of a ray among the ground and `candidates`, up to `t_max`.
    /// `candidates` hold object indices with their nearest possible distance, nearest first.
    pub fn cast(&self, o: [f64; 3], d: [f64; 3], t_max: f64, candidates: &[(u32, f32)], u: f64) -> Option<Hit> {
        let mut best = self.ground.intersect(o, d, t_max).map(|(t, normal)| Hit {
            t,
            normal,
            reflectivity: self.ground_reflectivity(o[0] + t * d[0], o[1] + t * d[1]),
        });
        let mut limit = best.map_or(t_max, |h| h.t);
        for &(k, near) in candidates {
            if near as f64 > limit {
                break;
            }
            let obj = &self.objects[k as usize];
            if let Some(h) = obj.intersect(o, d, u)
                && h.t < limit
            {
                limit = h.t;
                best = Some(h);
            }
        }
        best
    }

    /// 3-D pose of a sensor `mount_height` above the ground at planar pose (x, y, yaw), tilted
    /// with the terrain.
    pub fn vehicle_pose(&self, xy: [f64; 2], yaw: f64, mount_height: f64) -> Pose {
        let (h, hx, hy) = self.ground.height(xy[0], xy[1]);
        let up = Vector3::new(-hx, -hy, 1.0).normalize();
        let heading = Vector3::new(yaw.cos(), yaw.sin(), 0.0);
        let forward = (heading - up * up.dot(&heading)).normalize();
        let left = up.cross(&forward);
        let rot = Rotation3::from_matrix_unchecked(Matrix3::from_columns(&[forward, left, up]));
        let position = Vector3::new(xy[0], xy[1], h) + up * mount_height;
        Pose::from_parts(Translation3::from(position), UnitQuaternion::from_rotation_matrix(&rot))
    }
}

/// Smooth pseudo-random field in [0, 1): bilinear interpolation of hashed lattice values.
fn value_noise(x: f64, y: f64, seed: u64) -> f64 {
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (sx, sy) = (fx * fx * (3.0 - 2.0 * fx), fy * fy * (3.0 - 2.0 * fy));
    let v = |i: f64, j: f64| lattice_hash(x0 as i64 + i as i64, y0 as i64 + j as i64, seed);
    let a = v(0.0, 0.0) + (v(1.0, 0.0) - v(0.0, 0.0)) * sx;
    let b = v(0.0, 1.0) + (v(1.0, 1.0) - v(0.0, 1.0)) * sx;
    a + (b - a) * sy
}

fn lattice_hash(i: i64, j: i64, seed: u64) -> f64 {
    let mut h = seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// Places objects while keeping them off the road and out of each other.
struct Builder<'a> {
    world: &'a mut World,
    rng: ChaCha8Rng,
    /// Bounding circles of placed buildings and walls.
    footprints: Vec<([f64; 2], f64)>,
    /// Arc lengths of road that get no roadside objects (NaN: none).
    keep_clear: [f64; 2],
}

impl Builder<'_> {
    fn ground_z(&self, xy: [f64; 2]) -> f64 {
        self.world.ground.height(xy[0], xy[1]).0
    }

    /// Point `lateral` metres left (negative: right) of the centreline at arc length `s`.
    fn beside(&self, s: f64, lateral: f64) -> ([f64; 2], f64) {
        let (c, h, _) = self.world.road.at(s);
        ([c[0] - lateral * h.sin(), c[1] + lateral * h.cos()], h)
    }

    /// True when the whole footprint stays `clearance` from the road and off other footprints.
    fn is_free(&self, b: &UprightBox, clearance: f64, check_overlap: bool) -> bool {
        let (s, c) = b.yaw.sin_cos();
        for i in 0..=6 {
            for j in 0..=6 {
                let (u, v) = ((i as f64 / 3.0 - 1.0) * b.half[0], (j as f64 / 3.0 - 1.0) * b.half[1]);
                let p = [b.center[0] + c * u - s * v, b.center[1] + s * u + c * v];
                if self.world.road_distance(p[0], p[1]) < clearance {
                    return false;
                }
            }
        }
        !check_overlap
            || self
                .footprints
                .iter()
                .all(|(c2, r2)| (c2[0] - b.center[0]).hypot(c2[1] - b.center[1]) > r2 + b.radius())
    }

    fn add_box(&mut self, b: UprightBox, refl: f32) {
        self.world.objects.push(Object::new(Shape::Box(b), refl));
    }

    /// Roadside objects along the whole loop, except between the arc lengths of `keep_clear`.
    fn dress_roadsides(&mut self, keep_clear: [f64; 2]) {
        self.keep_clear = keep_clear;
        let perimeter = self.world.road.perimeter();
        for side in [-1.0, 1.0] {
            let mut s = 0.0;
            while s < perimeter {
                let zone = match self.rng.random_range(0.0..1.0) {
                    x if x < 0.5 => Zone::Urban,
                    x if x < 0.8 => Zone::Residential,
                    _ => Zone::Park,
                };
                let len = self.rng.random_range(40.0..110.0_f64).min(perimeter - s);
                self.dress_stretch(side, s, s + len, zone);
                s += len;
            }
        }
    }

    /// Walls on both sides and a roof over the road between arc lengths `s0` and `s1`, in short
    /// overlapping pieces (no seams).
    fn tunnel(&mut self, s0: f64, s1: f64) {
        const PIECE_M: f64 = 2.0;
        const HALF_WIDTH_M: f64 = ROAD_HALF_WIDTH_M + 1.5;
        const HEIGHT_M: f64 = 5.5;
        for k in 0..((s1 - s0) / PIECE_M).ceil() as usize {
            let s = s0 + (k as f64 + 0.5) * PIECE_M;
            for side in [-1.0, 1.0] {
                let (center, yaw) = self.beside(s, side * (HALF_WIDTH_M + 0.15));
                let half = [PIECE_M / 2.0 + 0.02, 0.15];
                self.add_box(
                    UprightBox {
                        center,
                        half,
                        yaw,
                        z: [-2.0, HEIGHT_M + 0.3],
                    },
                    0.3,
                );
            }
            let (center, yaw) = self.beside(s, 0.0);
            let half = [PIECE_M / 2.0 + 0.02, HALF_WIDTH_M + 0.3];
            self.add_box(
                UprightBox {
                    center,
                    half,
                    yaw,
                    z: [HEIGHT_M, HEIGHT_M + 0.3],
                },
                0.3,
            );
        }
    }

    fn dress_stretch(&mut self, side: f64, s0: f64, s1: f64, zone: Zone) {
        // Facades or walls set back from the road.
        let mut s = s0;
        while s < s1 {
            let gap = match zone {
                Zone::Urban => self.rng.random_range(1.0..8.0),
                Zone::Residential => self.rng.random_range(4.0..14.0),
                Zone::Park => self.rng.random_range(20.0..40.0),
            };
            let length: f64 = self.rng.random_range(8.0..30.0_f64).min((s1 - s).max(4.0));
            let mid = s + length / 2.0;
            match zone {
                Zone::Urban | Zone::Residential => {
                    let setback = if zone == Zone::Urban {
                        self.rng.random_range(9.5..14.0)
                    } else {
                        self.rng.random_range(12.0..20.0)
                    };
                    let depth = self.rng.random_range(8.0..18.0);
                    let height = if zone == Zone::Urban {
                        self.rng.random_range(7.0..22.0)
                    } else {
                        self.rng.random_range(4.0..9.0)
                    };
                    self.building(side, mid, setback + depth / 2.0, [length / 2.0, depth / 2.0], height);
                    if zone == Zone::Residential && self.rng.random_bool(0.7) {
                        let h = self.rng.random_range(0.8..2.2);
                        self.wall(side, mid, SIDEWALK_EDGE_M + 0.6, length / 2.0, h);
                    }
                }
                Zone::Park => {}
            }
            s += length + gap;
        }
        // Parked cars, poles, signs and trees along the kerb.
        let car_rate = match zone {
            Zone::Urban => 0.55,
            Zone::Residential => 0.45,
            Zone::Park => 0.1,
        };
        let mut s = s0 + self.rng.random_range(0.0..6.0);
        while s < s1 {
            if self.rng.random_bool(car_rate) {
                self.parked_car(side, s);
            }
            s += self.rng.random_range(5.5..8.0);
        }
        let mut s = s0 + self.rng.random_range(0.0..15.0);
        while s < s1 {
            self.pole(side, s);
            s += self.rng.random_range(18.0..40.0);
        }
        let tree_spacing = match zone {
            Zone::Urban => 25.0,
            Zone::Residential => 12.0,
            Zone::Park => 7.0,
        };
        let mut s = s0 + self.rng.random_range(0.0..tree_spacing);
        while s < s1 {
            let lateral = if zone == Zone::Park {
                self.rng.random_range(7.0..25.0)
            } else {
                self.rng.random_range(6.5..8.0)
            };
            self.tree(side, s, lateral);
            s += tree_spacing * self.rng.random_range(0.6..1.4);
        }
    }

    fn building(&mut self, side: f64, s: f64, lateral: f64, half: [f64; 2], height: f64) {
        if (self.keep_clear[0]..=self.keep_clear[1]).contains(&s) {
            return;
        }
        let (center, yaw) = self.beside(s, side * lateral);
        let g = self.ground_z(center);
        let b = UprightBox {
            center,
            half,
            yaw,
            z: [g - 3.0, g + height],
        };
        if self.is_free(&b, SIDEWALK_EDGE_M + 0.5, true) {
            let refl = self.rng.random_range(0.12..0.5);
            self.footprints.push((b.center, b.radius()));
            self.add_box(b, refl);
        }
    }

    fn wall(&mut self, side: f64, s: f64, lateral: f64, half_len: f64, height: f64) {
        if (self.keep_clear[0]..=self.keep_clear[1]).contains(&s) {
            return;
        }
        let (center, yaw) = self.beside(s, side * lateral);
        let g = self.ground_z(center);
        let b = UprightBox {
            center,
            half: [half_len, 0.15],
            yaw,
            z: [g - 2.0, g + height],
        };
        if self.is_free(&b, SIDEWALK_EDGE_M, true) {
            let refl = self.rng.random_range(0.15..0.45);
            self.footprints.push((b.center, b.radius()));
            self.add_box(b, refl);
        }
    }

    fn parked_car(&mut self, side: f64, s: f64) {
        if (self.keep_clear[0]..=self.keep_clear[1]).contains(&s) {
            return;
        }
        let lateral = side * self.rng.random_range(5.0..5.4);
        let (center, yaw) = self.beside(s, lateral);
        let yaw = yaw + self.rng.random_range(-0.05..0.05);
        let g = self.ground_z(center);
        let body = UprightBox {
            center,
            half: [2.2, 0.9],
            yaw,
            z: [g + 0.3, g + 1.0],
        };
        if !self.is_free(&body, ROAD_HALF_WIDTH_M + 0.1, false) {
            return;
        }
        // Car paint ranges from black to white; glass returns weakly.
        let paint = self.rng.random_range(0.05..0.8);
        let back = -0.3;
        let cabin_center = [center[0] + back * yaw.cos(), center[1] + back * yaw.sin()];
        let cabin = UprightBox {
            center: cabin_center,
            half: [1.2, 0.8],
            yaw,
            z: [g + 1.0, g + 1.5],
        };
        self.add_box(body, paint);
        self.add_box(cabin, 0.06);
    }

    fn pole(&mut self, side: f64, s: f64) {
        if (self.keep_clear[0]..=self.keep_clear[1]).contains(&s) {
            return;
        }
        let lateral = side * self.rng.random_range(6.4..7.0);
        let (center, yaw) = self.beside(s, lateral);
        let g = self.ground_z(center);
        let height = self.rng.random_range(3.0..9.0);
        let pole = Cylinder {
            center,
            radius: self.rng.random_range(0.06..0.18),
            z: [g - 1.0, g + height],
        };
        let refl = self.rng.random_range(0.25..0.6);
        self.world.objects.push(Object::new(Shape::Cylinder(pole), refl));
        if height < 4.5 && self.rng.random_bool(0.6) {
            // A retro-reflective traffic sign plate facing the road.
            let plate = UprightBox {
                center,
                half: [0.02, 0.35],
                yaw,
                z: [g + height - 0.7, g + height],
            };
            self.add_box(plate, 0.98);
        }
    }

    fn tree(&mut self, side: f64, s: f64, lateral: f64) {
        if (self.keep_clear[0]..=self.keep_clear[1]).contains(&s) {
            return;
        }
        let (center, _) = self.beside(s, side * lateral);
        if self.world.road_distance(center[0], center[1]) < PARKING_EDGE_M + 0.5
            || self
                .footprints
                .iter()
                .any(|(c, r)| (c[0] - center[0]).hypot(c[1] - center[1]) < r + 2.0)
        {
            return;
        }
        let g = self.ground_z(center);
        let trunk_h = self.rng.random_range(1.8..3.5);
        let crown_r: f64 = self.rng.random_range(1.5..3.8);
        let trunk = Cylinder {
            center,
            radius: self.rng.random_range(0.12..0.3),
            z: [g - 1.0, g + trunk_h + crown_r * 0.5],
        };
        let crown = Foliage {
            center: [center[0], center[1], g + trunk_h + crown_r * 0.8],
            radius: crown_r,
            mean_free_path: 0.4,
        };
        let bark = self.rng.random_range(0.2..0.4);
        let leaves = self.rng.random_range(0.25..0.5);
        self.world.objects.push(Object::new(Shape::Cylinder(trunk), bark));
        self.world.objects.push(Object::new(Shape::Foliage(crown), leaves));
        if self.rng.random_bool(0.6) {
            let r: f64 = self.rng.random_range(0.5..1.2);
            let bush = Foliage {
                center: [center[0] + 1.5, center[1], g + r * 0.6],
                radius: r,
                mean_free_path: 0.3,
            };
            self.world.objects.push(Object::new(Shape::Foliage(bush), leaves));
        }
    }

    /// Buildings and trees away from the road, so that long rays find something to hit.
    fn scatter_background(&mut self) {
        let [lx, ly] = self.world.road.size;
        let margin = 80.0;
        for _ in 0..((lx + 2.0 * margin) * (ly + 2.0 * margin) / 900.0) as usize {
            let center = [
                self.rng.random_range(-margin..lx + margin),
                self.rng.random_range(-margin..ly + margin),
            ];
            if self.rng.random_bool(0.6) {
                let half = [self.rng.random_range(5.0..18.0), self.rng.random_range(5.0..14.0)];
                let g = self.ground_z(center);
                let height = self.rng.random_range(5.0..25.0);
                let b = UprightBox {
                    center,
                    half,
                    yaw: self.rng.random_range(0.0..std::f64::consts::PI),
                    z: [g - 3.0, g + height],
                };
                if self.is_free(&b, 14.0, true) {
                    let refl = self.rng.random_range(0.12..0.5);
                    self.footprints.push((b.center, b.radius()));
                    self.add_box(b, refl);
                }
            } else if self.world.road_distance(center[0], center[1]) > 12.0 {
                let g = self.ground_z(center);
                let r: f64 = self.rng.random_range(2.0..4.5);
                let crown = Foliage {
                    center: [center[0], center[1], g + 2.5 + r],
                    radius: r,
                    mean_free_path: 0.4,
                };
                let trunk = Cylinder {
                    center,
                    radius: 0.25,
                    z: [g - 1.0, g + 2.5 + r],
                };
                let leaves = self.rng.random_range(0.25..0.5);
                self.world.objects.push(Object::new(Shape::Cylinder(trunk), 0.3));
                self.world.objects.push(Object::new(Shape::Foliage(crown), leaves));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::{FRAC_PI_2, PI};

    fn world() -> World {
        World::generate(7, LoopRoad::rounded_rectangle(120.0, 70.0, 14.0), Scene::Street)
    }

    #[test]
    fn objects_keep_off_the_carriageway_and_the_world_is_deterministic() {
        let w = world();
        assert!(w.objects.len() > 200, "{} objects", w.objects.len());
        for o in &w.objects {
            if let Shape::Box(b) = o.shape {
                assert!(w.road_distance(b.center[0], b.center[1]) > ROAD_HALF_WIDTH_M, "{b:?}");
            }
        }
        let again = world();
        assert_eq!(again.objects.len(), w.objects.len());
        assert_eq!(format!("{:?}", again.objects[10]), format!("{:?}", w.objects[10]));
    }

    #[test]
    fn road_distance_is_zero_on_the_centreline() {
        let w = world();
        for s in [0.0, 30.0, 75.0, 200.0] {
            let (p, _, _) = w.road.at(s);
            assert!(w.road_distance(p[0], p[1]) < 1e-9);
        }
    }

    #[test]
    fn a_downward_ray_meets_the_ground_below_the_sensor() {
        let w = world();
        let pose = w.vehicle_pose([60.0, -1.75], 0.0, 1.73);
        let o = pose.translation.vector;
        let (t, n) = w.ground.intersect([o.x, o.y, o.z], [0.0, 0.0, -1.0], 100.0).unwrap();
        assert!((t - 1.73).abs() < 0.05, "{t}");
        assert!(n[2] > 0.99);
    }

    #[test]
    fn the_tunnel_encloses_the_road_and_hides_progress_along_it() {
        let road = LoopRoad::rounded_rectangle(800.0, 60.0, 14.0);
        let w = World::generate(3, road.clone(), Scene::Tunnel);
        let all: Vec<(u32, f32)> = (0..w.objects.len() as u32).map(|k| (k, 0.0)).collect();
        let middle = (TUNNEL_S[0] + TUNNEL_S[1]) / 2.0;
        let (c, heading, _) = road.at(middle);
        let o = [c[0], c[1], 1.7];
        let ray = |yaw: f64, pitch: f64| {
            let d = [
                pitch.cos() * (heading + yaw).cos(),
                pitch.cos() * (heading + yaw).sin(),
                pitch.sin(),
            ];
            w.cast(o, d, 100.0, &all, 0.5).map(|h| h.t)
        };
        let up = ray(0.0, FRAC_PI_2).expect("roof");
        assert!((up - 3.8).abs() < 0.01, "roof {up}");
        for side in [FRAC_PI_2, -FRAC_PI_2] {
            let t = ray(side, 0.0).expect("wall");
            assert!((t - (ROAD_HALF_WIDTH_M + 1.5)).abs() < 0.01, "wall {t}");
        }
        assert_eq!(ray(0.0, 0.0), None, "nothing ahead within 100 m");
        assert_eq!(ray(PI, 0.0), None, "nothing behind within 100 m");
        let open = World::generate(3, road, Scene::OpenField);
        assert!(open.objects.is_empty() && open.ground.amplitude == 0.0);
    }
}

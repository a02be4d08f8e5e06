//! Ray intersection with the simple solids the simulated world is built from.

/// A ray hit: distance along the (unit) ray, surface normal, and surface reflectivity.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Distance from the ray origin, metres.
    pub t: f64,
    /// Unit surface normal (world frame).
    pub normal: [f64; 3],
    /// Diffuse reflectivity of the surface in [0, 1].
    pub reflectivity: f32,
}

/// A box standing upright, turned by `yaw` about the vertical.
#[derive(Debug, Clone, Copy)]
pub struct UprightBox {
    /// Centre of the footprint.
    pub center: [f64; 2],
    /// Half length along the box's own x and y axes.
    pub half: [f64; 2],
    /// Heading of the box's x axis, radians.
    pub yaw: f64,
    /// Bottom and top heights.
    pub z: [f64; 2],
}

impl UprightBox {
    /// Entry distance and normal of a ray, if it hits.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let (s, c) = self.yaw.sin_cos();
        let (px, py) = (o[0] - self.center[0], o[1] - self.center[1]);
        let lo = [c * px + s * py, -s * px + c * py, o[2]];
        let ld = [c * d[0] + s * d[1], -s * d[0] + c * d[1], d[2]];
        let bounds = [[-self.half[0], self.half[0]], [-self.half[1], self.half[1]], self.z];
        let (mut t_in, mut t_out, mut axis, mut sign) = (f64::NEG_INFINITY, f64::INFINITY, 0, 1.0);
        for k in 0..3 {
            if ld[k].abs() < 1e-12 {
                if lo[k] < bounds[k][0] || lo[k] > bounds[k][1] {
                    return None;
                }
                continue;
            }
            let inv = 1.0 / ld[k];
            let (t0, t1) = ((bounds[k][0] - lo[k]) * inv, (bounds[k][1] - lo[k]) * inv);
            let (near, far, s_near) = if t0 < t1 { (t0, t1, -1.0) } else { (t1, t0, 1.0) };
            if near > t_in {
                t_in = near;
                axis = k;
                sign = s_near;
            }
            t_out = t_out.min(far);
        }
        if t_in > t_out || t_in <= 1e-6 {
            return None;
        }
        let n = match axis {
            0 => [sign * c, sign * s, 0.0],
            1 => [-sign * s, sign * c, 0.0],
            _ => [0.0, 0.0, sign],
        };
        Some((t_in, n))
    }

    /// Radius of the footprint's bounding circle.
    pub fn radius(&self) -> f64 {
        self.half[0].hypot(self.half[1])
    }
}

/// A vertical cylinder (poles, trunks).
#[derive(Debug, Clone, Copy)]
pub struct Cylinder {
    /// Axis position.
    pub center: [f64; 2],
    /// Radius, metres.
    pub radius: f64,
    /// Bottom and top heights.
    pub z: [f64; 2],
}

impl Cylinder {
    /// Distance and normal where a ray meets the mantle, if it does.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3]) -> Option<(f64, [f64; 3])> {
        let (px, py) = (o[0] - self.center[0], o[1] - self.center[1]);
        let a = d[0] * d[0] + d[1] * d[1];
        if a < 1e-12 {
            return None;
        }
        let b = px * d[0] + py * d[1];
        let c = px * px + py * py - self.radius * self.radius;
        let disc = b * b - a * c;
        if disc < 0.0 {
            return None;
        }
        let t = (-b - disc.sqrt()) / a;
        let z = o[2] + t * d[2];
        if t <= 1e-6 || z < self.z[0] || z > self.z[1] {
            return None;
        }
        let (hx, hy) = (px + t * d[0], py + t * d[1]);
        Some((t, [hx / self.radius, hy / self.radius, 0.0]))
    }
}

/// A porous sphere (tree crowns, bushes): a ray goes `depth` metres into it before it returns,
/// or passes through when the chord is shorter than that.
#[derive(Debug, Clone, Copy)]
pub struct Foliage {
    /// Centre.
    pub center: [f64; 3],
    /// Radius, metres.
    pub radius: f64,
    /// Mean free path of a laser in the leaves, metres.
    pub mean_free_path: f64,
}

impl Foliage {
    /// `u` is a uniform random number in (0, 1] that sets how deep this ray gets.
    pub fn intersect(&self, o: [f64; 3], d: [f64; 3], u: f64) -> Option<(f64, [f64; 3])> {
        let p = [o[0] - self.center[0], o[1] - self.center[1], o[2] - self.center[2]];
        let b = p[0] * d[0] + p[1] * d[1] + p[2] * d[2];
        let c = p[0] * p[0] + p[1] * p[1] + p[2] * p[2] - self.radius * self.radius;
        let disc = b * b - c;
        if disc < 0.0 {
            return None;
        }
        let (t0, t1) = (-b - disc.sqrt(), -b + disc.sqrt());
        if t0 <= 1e-6 {
            return None;
        }
        let depth = -self.mean_free_path * u.max(1e-12).ln();
        if depth > t1 - t0 {
            return None;
        }
        let t = t0 + depth;
        let h = [p[0] + t * d[0], p[1] + t * d[1], p[2] + t * d[2]];
        let n = (h[0] * h[0] + h[1] * h[1] + h[2] * h[2]).sqrt().max(1e-9);
        Some((t, [h[0] / n, h[1] / n, h[2] / n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_cylinder_and_foliage_hits() {
        let b = UprightBox {
            center: [10.0, 0.0],
            half: [1.0, 2.0],
            yaw: 0.0,
            z: [-1.0, 1.0],
        };
        let (t, n) = b.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]).unwrap();
        assert!((t - 9.0).abs() < 1e-9 && (n[0] + 1.0).abs() < 1e-9);
        let turned = UprightBox {
            yaw: std::f64::consts::FRAC_PI_2,
            ..b
        };
        assert!((turned.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]).unwrap().0 - 8.0).abs() < 1e-9);
        assert!(b.intersect([0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]).is_none());
        let c = Cylinder {
            center: [5.0, 0.0],
            radius: 0.5,
            z: [0.0, 3.0],
        };
        assert!(
            c.intersect([0.0, 0.0, 1.0], [1.0, 0.0, 0.0])
                .is_some_and(|(t, _)| (t - 4.5).abs() < 1e-9)
        );
        assert!(c.intersect([0.0, 0.0, 4.0], [1.0, 0.0, 0.0]).is_none());
        let f = Foliage {
            center: [10.0, 0.0, 0.0],
            radius: 2.0,
            mean_free_path: 0.5,
        };
        assert!(
            f.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 1.0)
                .is_some_and(|(t, _)| (t - 8.0).abs() < 1e-9)
        );
        assert!(
            f.intersect([0.0, 0.0, 0.0], [1.0, 0.0, 0.0], 1e-6).is_none(),
            "deep draw passes through"
        );
    }
}

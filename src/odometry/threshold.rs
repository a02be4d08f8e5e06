//! KISS-ICP's adaptive correspondence threshold (Vizzo et al., RA-L 2023, Sec. III-C): the
//! standard deviation of how far the constant-velocity prediction has been off so far.

use crate::scan::Pose;

/// Running estimate of the motion-prediction error.
#[derive(Debug, Clone)]
pub struct AdaptiveThreshold {
    min_motion_m: f64,
    max_range_m: f64,
    sse: f64,
    samples: usize,
}

impl AdaptiveThreshold {
    /// Seeded with `initial_sigma` (KISS-ICP: 2 m) as one sample; deviations under
    /// `min_motion_m` (KISS-ICP: 0.1 m) are ignored as noise.
    pub fn new(initial_sigma: f64, min_motion_m: f64, max_range_m: f64) -> Self {
        Self {
            min_motion_m,
            max_range_m,
            sse: initial_sigma * initial_sigma,
            samples: 1,
        }
    }

    /// Current sigma: correspondences are searched within 3 sigma, the robust kernel scale is sigma.
    pub fn sigma(&self) -> f64 {
        (self.sse / self.samples as f64).sqrt()
    }

    /// Adds the deviation between the prediction and the registered pose: the largest
    /// displacement it causes within `max_range` (translation plus the chord of the rotation).
    pub fn update(&mut self, deviation: &Pose) {
        let delta = model_error(deviation, self.max_range_m);
        if delta > self.min_motion_m {
            self.sse += delta * delta;
            self.samples += 1;
        }
    }
}

/// The largest displacement `deviation` causes within `max_range`: its translation plus the chord
/// its rotation sweeps at that range.
pub fn model_error(deviation: &Pose, max_range: f64) -> f64 {
    deviation.translation.vector.norm() + 2.0 * max_range * (deviation.rotation.angle() / 2.0).sin()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn starts_at_the_seed_and_averages_significant_deviations() {
        let mut t = AdaptiveThreshold::new(2.0, 0.1, 100.0);
        assert_eq!(t.sigma(), 2.0);
        t.update(&Pose::new(Vector3::new(0.05, 0.0, 0.0), Vector3::zeros()));
        assert_eq!(t.sigma(), 2.0, "below min motion: ignored");
        t.update(&Pose::new(Vector3::new(1.0, 0.0, 0.0), Vector3::zeros()));
        assert!((t.sigma() - (5.0f64 / 2.0).sqrt()).abs() < 1e-12);
        // A pure 0.01 rad rotation displaces a point at 100 m by 2 * 100 * sin(0.005).
        let mut r = AdaptiveThreshold::new(0.0, 0.1, 100.0);
        r.update(&Pose::new(Vector3::zeros(), Vector3::new(0.0, 0.0, 0.01)));
        assert!((r.sigma() - (200.0 * 0.005f64.sin()) / 2f64.sqrt()).abs() < 1e-9);
    }
}

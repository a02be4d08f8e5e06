//! MIMO OverlapNet's ensemble (Havasi et al., "Training independent subnetworks for robust
//! prediction", ICLR 2021): at test time every subnetwork judges the same pair, their mean is the
//! answer and their disagreement how sure the network is.

use super::verdict::{PairMatch, Spread};

/// The subnetworks' verdicts combined: mean overlap, circular mean yaw, and their spread; a
/// plain network's single verdict as it is, without a spread.
pub fn ensemble(members: &[PairMatch]) -> PairMatch {
    if let [only] = members {
        return *only;
    }
    let n = members.len().max(1) as f32;
    let overlap = members.iter().map(|m| m.overlap).sum::<f32>() / n;
    let variance = members.iter().map(|m| (m.overlap - overlap).powi(2)).sum::<f32>() / n;
    let (sin, cos) = members.iter().fold((0.0f32, 0.0f32), |(s, c), m| {
        let (ms, mc) = m.yaw_deg.to_radians().sin_cos();
        (s + ms, c + mc)
    });
    let resultant = (sin.hypot(cos) / n).clamp(0.0, 1.0);
    let yaw_spread = if resultant > 0.0 {
        (-2.0 * resultant.ln()).max(0.0).sqrt().to_degrees().min(180.0)
    } else {
        180.0
    };
    PairMatch {
        overlap,
        yaw_deg: sin.atan2(cos).to_degrees(),
        spread: Some(Spread {
            overlap: variance.sqrt(),
            yaw_deg: yaw_spread,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(overlap: f32, yaw_deg: f32) -> PairMatch {
        PairMatch {
            overlap,
            yaw_deg,
            spread: None,
        }
    }

    #[test]
    fn one_verdict_stays_as_it_is() {
        assert_eq!(ensemble(&[answer(0.4, -12.0)]), answer(0.4, -12.0));
    }

    #[test]
    fn agreeing_subnetworks_have_no_spread() {
        let e = ensemble(&[answer(0.6, 30.0), answer(0.6, 30.0), answer(0.6, 30.0)]);
        assert!((e.overlap - 0.6).abs() < 1e-6);
        assert!((e.yaw_deg - 30.0).abs() < 1e-3);
        let s = e.spread.unwrap();
        assert!(s.overlap < 1e-6 && s.yaw_deg < 0.1, "{s:?}");
    }

    #[test]
    fn spread_is_the_standard_deviation_and_the_yaw_mean_wraps() {
        let e = ensemble(&[answer(0.2, 170.0), answer(0.5, -170.0), answer(0.8, 180.0)]);
        assert!((e.overlap - 0.5).abs() < 1e-6);
        // Population standard deviation of 0.2, 0.5, 0.8.
        assert!((e.spread.unwrap().overlap - 0.244_949).abs() < 1e-5);
        // The mean of 170, -170 and 180 is 180, not 60.
        assert!((e.yaw_deg.abs() - 180.0).abs() < 1e-3, "{}", e.yaw_deg);
        // Three yaws within 10 degrees: a circular deviation of about 8 degrees.
        let y = e.spread.unwrap().yaw_deg;
        assert!((7.0..9.5).contains(&y), "{y}");
    }

    #[test]
    fn a_subnetwork_half_a_turn_off_shows_as_a_large_yaw_spread() {
        let e = ensemble(&[answer(0.7, 0.0), answer(0.7, 0.0), answer(0.7, 180.0)]);
        // R = 1/3: sqrt(-2 ln(1/3)) = 1.482 rad = 84.9 degrees.
        assert!((e.spread.unwrap().yaw_deg - 84.9).abs() < 0.2, "{:?}", e.spread);
        assert!(e.yaw_deg.abs() < 1e-3);
    }
}

//! The simulated drive: deterministic, realistic enough in size, and it really revisits places.

use overlap_slam::projection::overlap::{overlap, relative_yaw_deg};
use overlap_slam::projection::{ProjectionParams, project};
use overlap_slam::sensor::SensorModel;
use overlap_slam::sim::{SimConfig, Simulation};

#[test]
fn the_same_seed_gives_the_same_scan() {
    let sim = Simulation::new(&SimConfig {
        frames: Some(5),
        ..SimConfig::default()
    });
    let (a, b) = (sim.scan(3), sim.scan(3));
    assert_eq!(a.points, b.points);
    assert_eq!(a.intensity, b.intensity);
    let other = Simulation::new(&SimConfig {
        seed: 1,
        frames: Some(5),
        ..SimConfig::default()
    });
    assert_ne!(other.scan(3).points.len(), a.points.len());
}

#[test]
fn an_hdl64_sweep_looks_like_kitti() {
    let sim = Simulation::new(&SimConfig::default());
    let scan = sim.scan(10);
    assert!((90_000..135_000).contains(&scan.len()), "{} points", scan.len());
    let times = scan.point_time.as_ref().unwrap();
    // The sweep is centred on the timestamp, facing forward then (KITTI's convention).
    assert!(times.iter().all(|t| (-0.05..0.05).contains(t)));
    assert!(
        times[0] < -0.049 && times.last().unwrap() > &0.049,
        "the sweep spans the whole rotation period"
    );
    let forward: Vec<usize> = (0..scan.len()).filter(|&i| times[i].abs() < 0.0005).collect();
    assert!(
        forward
            .iter()
            .all(|&i| scan.points[i][0] > 0.0 && scan.points[i][1].abs() < 0.05 * scan.points[i][0])
    );
    let rings = scan.ring.as_ref().unwrap();
    assert_eq!(*rings.iter().max().unwrap(), 63);
    assert!(scan.intensity.iter().all(|i| (0.0..=1.0).contains(i)));
    let img = project(&scan.points, &scan.intensity, &ProjectionParams::overlapnet_hdl64());
    let share = img.valid_count() as f64 / (64.0 * 900.0);
    assert!(share > 0.6, "{:.1} % valid", 100.0 * share);
}

#[test]
fn other_sensors_simulate_their_own_beam_count() {
    let vlp = SensorModel::builtin("vlp16").unwrap();
    let sim = Simulation::new(&SimConfig {
        sensor: vlp,
        frames: Some(2),
        ..SimConfig::default()
    });
    let scan = sim.scan(1);
    assert_eq!(*scan.ring.as_ref().unwrap().iter().max().unwrap(), 15);
    assert!((15_000..30_000).contains(&scan.len()), "{} points", scan.len());
}

#[test]
fn the_drive_revisits_the_start_and_returns_the_other_way() {
    let sim = Simulation::new(&SimConfig::default());
    let n = sim.frames();
    let poses: Vec<_> = (0..n).map(|i| sim.gt_pose(i)).collect();
    let start = poses[0].translation.vector;
    // Same-direction revisit: a frame well after the start comes back within 1 m, same heading.
    let (lap, dist) = (100..n)
        .map(|i| (i, (poses[i].translation.vector - start).norm()))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(dist < 1.0, "closest return to the start: {dist:.2} m at frame {lap}");
    assert!(relative_yaw_deg(&poses[0], &poses[lap]).abs() < 10.0);
    // Opposite-direction revisit: late frames pass early places heading the other way.
    let opposite = (lap + 10..n).any(|j| {
        (0..lap).any(|i| {
            (poses[i].translation.vector - poses[j].translation.vector).norm() < 5.0
                && relative_yaw_deg(&poses[i], &poses[j]).abs() > 150.0
        })
    });
    assert!(opposite, "no opposite-direction revisit in {n} frames");

    // Ground-truth overlap sees the revisit and not an unrelated place.
    let params = ProjectionParams::overlapnet_hdl64();
    let a = sim.scan(0);
    let img_a = project(&a.points, &a.intensity, &params);
    let revisit = sim.scan(lap);
    let elsewhere = sim.scan(lap / 2);
    let o_revisit = overlap(&img_a, &poses[0], &revisit.points, &poses[lap], &params);
    let o_far = overlap(&img_a, &poses[0], &elsewhere.points, &poses[lap / 2], &params);
    assert!(o_revisit > 0.5, "revisit overlap {o_revisit:.2}");
    assert!(o_far < 0.1, "unrelated overlap {o_far:.2}");
}

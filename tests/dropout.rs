//! Lost and found: a sensor that falls silent for seconds. Odometry either finds its place
//! again in its local map or starts a new chain that a loop later joins; it never chains a
//! guess silently.

use overlap_slam::io::FrameRange;
use overlap_slam::pipeline::report::RecoveryKind;
use overlap_slam::pipeline::{PipelineConfig, RunReport, replay};
use overlap_slam::sim::SimConfig;

/// The default simulated drive (`frames` long, or whole), without the frames in `dropped`.
fn drive(frames: Option<usize>, dropped: Option<FrameRange>, loops: bool) -> RunReport {
    let defaults = PipelineConfig::default();
    replay(&PipelineConfig {
        source: overlap_slam::pipeline::SourceSpec::Simulated(SimConfig {
            frames,
            ..SimConfig::default()
        }),
        dropped,
        loops: defaults.loops.filter(|_| loops),
        quiet: true,
        ..defaults
    })
    .unwrap()
}

fn range(start: usize, end: usize) -> Option<FrameRange> {
    Some(FrameRange { start, end: Some(end) })
}

#[test]
fn a_three_second_dropout_in_a_bend_is_relocalised_on_the_sensors_return() {
    // Frames 100..130 are missing: the car drives 22 m and turns 25 degrees meanwhile, which
    // puts the motion model's guess 4 m and 25 degrees off.
    let whole = drive(Some(200), None, false);
    let gap = drive(Some(200), range(100, 130), false);
    let (ate, ate_whole) = (gap.accuracy.ate_rmse_m.unwrap(), whole.accuracy.ate_rmse_m.unwrap());
    eprintln!(
        "ATE {ate:.3} m against {ate_whole:.3} m without the dropout; {:?}",
        gap.recoveries
    );
    assert_eq!(gap.frames, 170);
    assert_eq!(gap.lost_frames, 0);
    assert_eq!(gap.odometry_chains, 1);
    let [r] = gap.recoveries[..] else {
        panic!("one recovery expected: {:?}", gap.recoveries)
    };
    assert_eq!((r.frame, r.how, r.lost_frames), (130, RecoveryKind::Relocalised, 0));
    assert!((r.silent_s - 3.1).abs() < 1e-6, "{}", r.silent_s);
    assert!(r.seconds_to_recover <= 3.0, "{}", r.seconds_to_recover);
    assert!(ate <= 1.5 * ate_whole.max(0.2), "ATE {ate} against {ate_whole}");
}

#[test]
fn a_dropout_too_long_to_bridge_starts_a_chain_that_a_loop_joins() {
    // Six seconds missing in a bend: the car is 40 m on and turned past what the local map
    // can place. A new chain starts at the guess; the revisit of the start joins it.
    let report = drive(None, range(280, 340), true);
    let loops = report.loops.as_ref().unwrap();
    eprintln!(
        "ATE {:?} (odometry {:?}); {:?}; {:?}",
        report.accuracy.ate_rmse_m, report.ate_rmse_odom_m, report.recoveries, loops.chain_joins
    );
    assert_eq!(report.odometry_chains, 2);
    assert_eq!(report.lost_frames, 1, "the frame that starts the chain is a guess");
    assert_eq!(report.recoveries[0].how, RecoveryKind::NewChain);
    let [join] = loops.chain_joins[..] else {
        panic!("{:?}", loops.chain_joins)
    };
    assert_eq!(join.chain_start, 340);
    assert!(join.joined_at.is_some(), "no loop joined the chains");
    assert_eq!(loops.loops_false_positive, Some(0));
    assert!(
        report.ate_rmse_odom_m.unwrap() > 10.0,
        "the chains' guess is far off before joining"
    );
    assert!(
        report.accuracy.ate_rmse_m.unwrap() < 2.0,
        "{:?}",
        report.accuracy.ate_rmse_m
    );
}

//! The controllers' rules on hand-made observations, their ranges on arbitrary ones, and
//! their snapshots.

use proptest::prelude::*;

use super::*;
use crate::agent::Fallback;

/// An observation with miss fractions `own` and `avg`, `share` of the node held and `used`
/// of it allocated.
fn obs(own: f32, avg: f32, share: f32, used: f32) -> Observation {
    Observation {
        msr: 2.0 * own - 1.0,
        mem_share: share,
        avg_msr: 2.0 * avg - 1.0,
        msr_tgt: 0.0,
        total_mem_use: used,
    }
}

fn bid<R: ControlRule>(rule: R, o: &Observation) -> f32 {
    let decision = Controller::new(rule).act(o).unwrap();
    assert_eq!(decision.fallback, None);
    decision.bid
}

#[test]
fn feedback_bids_in_proportion_to_the_gap() {
    let rule = FeedbackParams {
        gain: 0.5,
        avg_floor: 0.01,
        missing: 0.001,
        fill_to: 0.0,
    };
    // Own 0.3 against an average of 0.2: 0.5 · 0.1 / 0.21.
    let more = bid(rule, &obs(0.3, 0.2, 0.5, 1.0));
    assert!((more - 0.5 * 0.1 / 0.21).abs() < 1e-5, "{more}");
    let less = bid(rule, &obs(0.1, 0.2, 0.5, 1.0));
    assert!((less + 0.5 * 0.1 / 0.21).abs() < 1e-5, "{less}");
    assert_eq!(bid(rule, &obs(0.2, 0.2, 0.5, 1.0)), 0.0);
    // A large gap is clamped.
    assert_eq!(bid(rule, &obs(0.9, 0.01, 0.5, 1.0)), 1.0);
    assert_eq!(bid(rule, &obs(0.0, 0.5, 0.5, 1.0)), -0.5 * 0.5 / 0.51);
}

#[test]
fn feedback_takes_free_memory_only_while_missing() {
    let rule = FeedbackParams {
        gain: 0.5,
        ..FeedbackParams::default()
    };
    // A quarter of the node is free; this VM holds a quarter and misses as much as the
    // average: it asks for all the free memory (bid 1 = double).
    assert_eq!(bid(rule, &obs(0.2, 0.2, 0.25, 0.75)), 1.0);
    // An eighth free: it asks for half its allocation more.
    assert_eq!(bid(rule, &obs(0.2, 0.2, 0.25, 0.875)), 0.5);
    // Not missing: the free memory stays free.
    assert_eq!(bid(rule, &obs(0.0, 0.0, 0.25, 0.75)), 0.0);
}

#[test]
fn feedback_fills_idle_memory_to_fill_to_while_no_vm_misses() {
    let rule = FeedbackParams {
        fill_to: 0.875,
        ..FeedbackParams::default()
    };
    // Nobody misses, three quarters used: this VM (a quarter) asks for the eighth above
    // the reserve, half its allocation more.
    assert_eq!(bid(rule, &obs(0.0, 0.0, 0.25, 0.75)), 0.5);
    // At fill_to, or past it, it asks for nothing.
    assert_eq!(bid(rule, &obs(0.0, 0.0, 0.25, 0.875)), 0.0);
    assert_eq!(bid(rule, &obs(0.0, 0.0, 0.25, 0.9)), 0.0);
    // Another VM misses (the node's average above `missing`): the free memory is left to
    // it, and this VM's bid is the gap's (it gives some back).
    let gap = bid(FeedbackParams::default(), &obs(0.0, 0.01, 0.25, 0.75));
    assert!(gap < 0.0);
    assert_eq!(bid(rule, &obs(0.0, 0.01, 0.25, 0.75)), gap);
    // A VM that misses still takes all of the free memory, reserve or not.
    assert_eq!(bid(rule, &obs(0.2, 0.2, 0.25, 0.875)), 0.5);
}

#[test]
fn mom_moves_fixed_steps_of_the_node() {
    let rule = MomParams {
        step: 1.0 / 32.0,
        deadband: 0.1,
        missing: 0.001,
    };
    // Holding half the node, a step of 1/32 of it is 1/16 of the VM.
    assert_eq!(bid(rule, &obs(0.3, 0.2, 0.5, 1.0)), 1.0 / 16.0);
    assert_eq!(bid(rule, &obs(0.1, 0.2, 0.5, 1.0)), -1.0 / 16.0);
    // Missing nothing, with a step of the node free: no pressure, it keeps its memory;
    // without the free step it gives one up.
    assert_eq!(bid(rule, &obs(0.0, 0.2, 0.5, 1.0 - 1.0 / 32.0)), 0.0);
    assert_eq!(bid(rule, &obs(0.0, 0.2, 0.5, 1.0)), -1.0 / 16.0);
    // Within the band, or nobody missing: hold.
    assert_eq!(bid(rule, &obs(0.21, 0.2, 0.5, 1.0)), 0.0);
    assert_eq!(bid(rule, &obs(0.0, 0.0, 0.5, 1.0)), 0.0);
    // Missing like the others with 1/64 of the node free: it takes that.
    assert_eq!(bid(rule, &obs(0.2, 0.2, 0.5, 1.0 - 1.0 / 64.0)), 1.0 / 32.0);
    // Missing most with a quarter of the node free: it asks for all of it, not one step.
    assert_eq!(bid(rule, &obs(0.3, 0.2, 0.5, 0.75)), 0.5);
    // A small VM's step is clamped to doubling.
    assert_eq!(bid(rule, &obs(0.3, 0.2, 0.01, 1.0)), 1.0);
}

#[test]
fn controllers_refuse_invalid_observations() {
    let bad = Observation {
        msr: f32::NAN,
        ..Observation::default()
    };
    let mut feedback = Feedback::new(FeedbackParams::default());
    let mut mom = Mom::new(MomParams::default());
    for p in [&mut feedback as &mut dyn Policy, &mut mom] {
        assert!(matches!(p.act(&bad), Err(PolicyError::InvalidObservation(_))));
        assert_eq!(p.stats().acts, 0);
    }
}

#[test]
fn controller_with_invalid_parameters_holds_and_says_so() {
    // Only reachable by building a rule by hand: zero gain and floor make 0/0.
    let mut p = Controller::new(FeedbackParams::ZERO);
    let d = p.act(&obs(0.0, 0.0, 0.5, 1.0)).unwrap();
    assert_eq!(d, Decision::hold(Fallback::NonFiniteOutput));
    assert_eq!(p.stats().fallbacks, 1);
}

fn round_trip<R: ControlRule + PartialEq + core::fmt::Debug>(rule: R, other: R) {
    let mut buf = [0u8; SNAPSHOT_BYTES];
    let n = Controller::new(rule).save_snapshot(&mut buf).unwrap();
    let mut loaded = Controller::new(other);
    loaded.load_snapshot(&buf[..n]).unwrap();
    assert_eq!(*loaded.rule(), rule);
}

#[test]
fn controller_snapshots_round_trip_and_refuse_bad_parameters() {
    let feedback = FeedbackParams {
        gain: 2.0,
        avg_floor: 0.05,
        missing: 0.01,
        fill_to: 0.0,
    };
    round_trip(feedback, FeedbackParams::default());
    let filling = FeedbackParams {
        fill_to: 0.9,
        ..feedback
    };
    round_trip(filling, feedback);
    round_trip(feedback, filling);
    round_trip(
        MomParams {
            step: 0.125,
            deadband: 0.0,
            missing: 0.5,
        },
        MomParams::default(),
    );
    // A snapshot of another kind is refused.
    let mut buf = [0u8; SNAPSHOT_BYTES];
    let n = Feedback::new(feedback).save_snapshot(&mut buf).unwrap();
    let mut mom = Mom::new(MomParams::default());
    assert_eq!(
        mom.load_snapshot(&buf[..n]),
        Err(SnapshotError::WrongKind { found: 4 })
    );
    // Parameters out of range are refused and leave the controller as it was.
    let mut bad = [0u8; SNAPSHOT_BYTES];
    let n = Controller::new(FeedbackParams {
        gain: -1.0,
        ..feedback
    })
    .save_snapshot(&mut bad)
    .unwrap();
    let mut p = Feedback::new(FeedbackParams::default());
    assert_eq!(p.load_snapshot(&bad[..n]), Err(SnapshotError::ShapeMismatch));
    assert_eq!(*p.rule(), FeedbackParams::default());
    let over = Controller::new(FeedbackParams {
        fill_to: 1.5,
        ..feedback
    });
    let n = over.save_snapshot(&mut bad).unwrap();
    assert_eq!(p.load_snapshot(&bad[..n]), Err(SnapshotError::ShapeMismatch));
    assert_eq!(*p.rule(), FeedbackParams::default());
}

/// `bytes` with its CRC recomputed.
fn with_crc(mut bytes: std::vec::Vec<u8>) -> std::vec::Vec<u8> {
    let n = bytes.len();
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&bytes[..n - 4]);
    bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

#[test]
fn feedback_snapshot_carries_fill_to_only_when_set() {
    // The defaults' snapshot is the 36-byte parameterless one docs/snapshot.md lays out,
    // as before `fill_to` existed.
    let mut expected = std::vec![0u8; 36];
    expected[..4].copy_from_slice(b"CAVM");
    expected[4] = 1; // version
    expected[6] = 4; // feedback
    expected[8] = 5; // state width
    expected[12] = 1; // outputs
    for (k, v) in [0.125f32, 0.01, 0.001].iter().enumerate() {
        expected[20 + 4 * k..24 + 4 * k].copy_from_slice(&v.to_le_bytes());
    }
    let expected = with_crc(expected);
    let mut buf = [0u8; SNAPSHOT_BYTES];
    let n = Feedback::new(FeedbackParams::default())
        .save_snapshot(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &expected[..]);
    // With fill_to: one parameter, the value, after the header.
    let filling = FeedbackParams {
        fill_to: 0.9,
        ..FeedbackParams::default()
    };
    let m = Feedback::new(filling).save_snapshot(&mut buf).unwrap();
    assert_eq!(m, 40);
    assert_eq!(buf[16], 1);
    assert_eq!(&buf[32..36], &0.9f32.to_le_bytes());
    // MOM has no fourth parameter: the extended snapshot relabelled as MOM is refused.
    let mut relabelled = buf[..m].to_vec();
    relabelled[6] = 5;
    let mut mom = Mom::new(MomParams::default());
    assert_eq!(
        mom.load_snapshot(&with_crc(relabelled)),
        Err(SnapshotError::ShapeMismatch)
    );
}

proptest! {
    #[test]
    fn controllers_bid_finite_and_in_range(
        values in proptest::array::uniform5(0.0f32..=1.0),
        signs in proptest::array::uniform3(proptest::bool::ANY),
    ) {
        let flip = |v: f32, s: bool| if s { 2.0 * v - 1.0 } else { v };
        let o = Observation {
            msr: flip(values[0], true),
            mem_share: values[1],
            avg_msr: flip(values[2], true),
            msr_tgt: flip(values[3], signs[0]),
            total_mem_use: values[4],
        };
        for b in [bid(FeedbackParams::default(), &o), bid(MomParams::default(), &o)] {
            prop_assert!(b.is_finite() && (-1.0..=1.0).contains(&b), "{b} for {o:?}");
        }
    }
}

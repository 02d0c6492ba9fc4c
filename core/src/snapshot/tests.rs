//! Snapshot round trips and every kind of bad snapshot.

#![cfg(feature = "learn")]

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::agent::frozen::{ACTOR_SNAPSHOT_BYTES, ActorNet};
use crate::agent::{
    Ddpg, DdpgParams, Dqn, DqnParams, FrozenActor, FrozenQNetwork, FrozenQTable, Policy, QLearning, QlParams,
};
use crate::mdp::Observation;
use crate::rng::Rng;

fn observations(n: usize) -> Vec<Observation> {
    let mut rng = Rng::seed_from_u64(77);
    (0..n)
        .map(|_| Observation {
            msr: rng.uniform_range(-1.0, 1.0),
            mem_share: rng.uniform_f32(),
            avg_msr: rng.uniform_range(-1.0, 1.0),
            msr_tgt: rng.uniform_range(-1.0, 1.0),
            total_mem_use: rng.uniform_f32(),
        })
        .collect()
}

fn actor_snapshot() -> (Box<Ddpg<64>>, Vec<u8>) {
    let agent = Box::new(Ddpg::<64>::new(DdpgParams::default(), 5));
    let mut bytes = vec![0u8; ACTOR_SNAPSHOT_BYTES];
    let n = agent.save_snapshot(&mut bytes).unwrap();
    assert_eq!(n, ACTOR_SNAPSHOT_BYTES);
    (agent, bytes)
}

/// Rewrites the CRC after a deliberate change, so a later check is the one that fails.
fn reseal(bytes: &mut [u8]) {
    let n = bytes.len() - CRC_BYTES;
    let sum = CRC32.checksum(&bytes[..n]);
    bytes[n..].copy_from_slice(&sum.to_le_bytes());
}

#[test]
fn snapshot_actor_round_trip_gives_identical_bids() {
    let (agent, bytes) = actor_snapshot();
    let mut frozen = FrozenActor::zeroed();
    frozen.load_snapshot(&bytes).unwrap();
    let mut other = Box::new(Ddpg::<64>::new(DdpgParams::default(), 6));
    other.load_snapshot(&bytes).unwrap();
    for obs in observations(200) {
        let want = agent.policy_bid(&obs).to_bits();
        assert_eq!(frozen.act(&obs).unwrap().bid.to_bits(), want);
        assert_eq!(other.policy_bid(&obs).to_bits(), want);
    }
    assert_eq!(&bytes[..4], b"CAVM");
}

#[test]
fn snapshot_dqn_and_table_round_trip() {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(|| {
            let mut dqn = Box::new(Dqn::<64>::new(DqnParams::default(), 9));
            let mut bytes = vec![0u8; 20_000];
            let n = dqn.save_snapshot(&mut bytes).unwrap();
            let mut frozen = FrozenQNetwork::zeroed();
            frozen.load_snapshot(&bytes[..n]).unwrap();
            dqn.set_exploration(false);
            for obs in observations(100) {
                assert_eq!(
                    frozen.act(&obs).unwrap().bid.to_bits(),
                    dqn.act(&obs).unwrap().bid.to_bits()
                );
            }

            let mut ql = Box::new(QLearning::new(QlParams::default(), 1));
            // Teach it something so the table is not all zeros.
            for obs in observations(500) {
                let d = ql.act(&obs).unwrap();
                let t = crate::agent::AgentTransition {
                    state: obs,
                    bid: d.bid,
                    reward: -obs.msr.abs(),
                    next_state: obs,
                    done: true,
                };
                ql.record(&t).unwrap();
                ql.learn().unwrap();
            }
            let mut bytes = vec![0u8; QLearning::SNAPSHOT_BYTES];
            ql.save_snapshot(&mut bytes).unwrap();
            let mut frozen = Box::new(FrozenQTable::zeroed());
            frozen.load_snapshot(&bytes).unwrap();
            ql.set_exploration(false);
            for obs in observations(300) {
                assert_eq!(
                    frozen.act(&obs).unwrap().bid.to_bits(),
                    ql.act(&obs).unwrap().bid.to_bits()
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn snapshot_rejects_truncated_corrupted_and_foreign() {
    let (_, good) = actor_snapshot();
    let load = |b: &[u8]| {
        let mut f = FrozenActor::zeroed();
        f.load_snapshot(b)
    };
    assert!(matches!(load(&good[..10]), Err(SnapshotError::Truncated { .. })));
    assert!(matches!(
        load(&good[..good.len() - 1]),
        Err(SnapshotError::Truncated { .. })
    ));
    let mut bad = good.clone();
    bad[100] ^= 0x40;
    assert_eq!(load(&bad), Err(SnapshotError::BadCrc));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(load(&bad), Err(SnapshotError::BadMagic));
    let mut bad = good.clone();
    bad[4] = 2;
    reseal(&mut bad);
    assert_eq!(load(&bad), Err(SnapshotError::UnsupportedVersion { found: 2 }));
    let mut bad = good.clone();
    bad[6] = 1;
    reseal(&mut bad);
    assert_eq!(load(&bad), Err(SnapshotError::WrongKind { found: 1 }));
    let mut bad = good.clone();
    bad[6] = 99;
    reseal(&mut bad);
    assert_eq!(load(&bad), Err(SnapshotError::WrongKind { found: 99 }));
    let mut bad = good.clone();
    bad[10] = 32; // hidden width 32
    reseal(&mut bad);
    assert_eq!(load(&bad), Err(SnapshotError::ShapeMismatch));
    let mut bad = good.clone();
    bad[HEADER_BYTES..HEADER_BYTES + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut bad);
    assert_eq!(load(&bad), Err(SnapshotError::NonFinite { index: 0 }));
    // A DQN snapshot is not an actor.
    let dqn = Box::new(Dqn::<64>::new(DqnParams::default(), 1));
    let mut q = vec![0u8; 20_000];
    let n = dqn.save_snapshot(&mut q).unwrap();
    assert_eq!(load(&q[..n]), Err(SnapshotError::WrongKind { found: 1 }));
    // The policy is untouched by a failed load.
    let mut f = FrozenActor::zeroed();
    f.load_snapshot(&good).unwrap();
    let before = f.clone();
    assert!(f.load_snapshot(&bad).is_err());
    assert_eq!(f, before);
    // Too small an output buffer.
    let net = ActorNet::zeroed();
    let header = crate::agent::frozen::network_header(
        SnapshotKind::DdpgActor,
        crate::agent::frozen::ACTOR_SHAPE,
        None,
    );
    assert_eq!(
        write(&header, &net, &mut [0u8; 100]),
        Err(SnapshotError::BufferTooSmall {
            needed: ACTOR_SNAPSHOT_BYTES
        })
    );
}

proptest::proptest! {
    /// Any byte string is refused or accepted without a panic.
    #[test]
    fn snapshot_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
        let mut f = FrozenActor::zeroed();
        let _ = f.load_snapshot(&bytes);
        let _ = read_header(&bytes);
    }
}

//! Snapshot round trips and every kind of bad snapshot.

#![cfg(feature = "learn")]

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::agent::frozen::{ACTOR_SNAPSHOT_BYTES, ActorNet};
use crate::agent::{
    Ddpg, DdpgParams, Dqn, DqnParams, FrozenActor, FrozenQNetwork, FrozenQTable, Policy, QLearning, QlParams,
    Td3,
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

/// A trained TD3 agent's snapshot is an actor snapshot: the inference-only actor and a DDPG
/// agent act from it as the TD3 agent does.
#[test]
fn td3_snapshot_is_an_actor_snapshot() {
    let mut agent = Box::new(Td3::<256>::new(DdpgParams::td3(), 8));
    let mut rng = Rng::seed_from_u64(2);
    for _ in 0..80 {
        agent
            .record(&crate::agent::AgentTransition::random(&mut rng))
            .unwrap();
        agent.learn().unwrap();
    }
    let mut bytes = vec![0u8; ACTOR_SNAPSHOT_BYTES];
    assert_eq!(agent.save_snapshot(&mut bytes), Ok(ACTOR_SNAPSHOT_BYTES));
    let mut frozen = FrozenActor::zeroed();
    frozen.load_snapshot(&bytes).unwrap();
    let mut ddpg = Box::new(Ddpg::<64>::new(DdpgParams::default(), 6));
    ddpg.load_snapshot(&bytes).unwrap();
    let mut fresh = Box::new(Td3::<64>::new(DdpgParams::td3(), 1));
    fresh.load_snapshot(&bytes).unwrap();
    for obs in observations(100) {
        let want = agent.policy_bid(&obs).to_bits();
        assert_eq!(frozen.act(&obs).unwrap().bid.to_bits(), want);
        assert_eq!(ddpg.policy_bid(&obs).to_bits(), want);
        assert_eq!(fresh.policy_bid(&obs).to_bits(), want);
    }
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
    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        load(&longer),
        Err(SnapshotError::TrailingBytes {
            expected: good.len(),
            got: good.len() + 1
        })
    );
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

/// A refused load leaves a learning agent as it was: a DQN snapshot whose action bids are
/// out of range, and a DDPG snapshot with a non-finite parameter past the first (the
/// networks are loaded in place, so every check comes before any write).
#[test]
fn snapshot_refused_load_leaves_learning_agents_unchanged() {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(|| {
            let source = Box::new(Dqn::<64>::new(DqnParams::default(), 3));
            let mut bytes = vec![0u8; 20_000];
            let n = source.save_snapshot(&mut bytes).unwrap();
            let mut bad = bytes[..n].to_vec();
            bad[20..24].copy_from_slice(&1.5f32.to_le_bytes());
            reseal(&mut bad);
            let mut dqn = Box::new(Dqn::<64>::new(DqnParams::default(), 4));
            let mut probe = vec![0u8; 20_000];
            let before = dqn.save_snapshot(&mut probe).unwrap();
            let before = probe[..before].to_vec();
            assert_eq!(dqn.load_snapshot(&bad), Err(SnapshotError::ShapeMismatch));
            let after = dqn.save_snapshot(&mut probe).unwrap();
            assert_eq!(
                probe[..after],
                before[..],
                "the Q-network and bids are as they were"
            );
            dqn.load_snapshot(&bytes[..n]).unwrap();
            let loaded = dqn.save_snapshot(&mut probe).unwrap();
            assert_eq!(probe[..loaded], bytes[..n], "a good snapshot loads");

            let (_, good) = actor_snapshot();
            let mut bad = good.clone();
            let last = good.len() - CRC_BYTES - 4;
            bad[last..last + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
            reseal(&mut bad);
            let mut ddpg = Box::new(Ddpg::<64>::new(DdpgParams::default(), 5));
            let before = ddpg.actor_parameters().clone();
            assert!(matches!(
                ddpg.load_snapshot(&bad),
                Err(SnapshotError::NonFinite { .. })
            ));
            assert_eq!(*ddpg.actor_parameters(), before);
        })
        .unwrap()
        .join()
        .unwrap();
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

/// docs/snapshot.md's layout table, row by row: (offset, size) of the header fields, which
/// must tile the header, and what a written DQN snapshot holds at each.
#[test]
fn snapshot_layout_matches_docs_snapshot_md() {
    let doc = include_str!("../../../docs/snapshot.md");
    let rows: Vec<(usize, usize)> = doc
        .lines()
        .filter_map(|l| {
            let mut cols = l.strip_prefix("| ")?.split(" | ");
            Some((cols.next()?.parse().ok()?, cols.next()?.parse().ok()?))
        })
        .collect();
    let mut next = 0;
    for &(offset, size) in &rows {
        assert_eq!(offset, next, "rows follow each other: {rows:?}");
        next = offset + size;
    }
    assert_eq!(next, HEADER_BYTES, "the numbered rows are the header");
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let dqn = Box::new(Dqn::<64>::new(DqnParams::default(), 2));
            let mut bytes = vec![0u8; 20_000];
            let n = dqn.save_snapshot(&mut bytes).unwrap();
            let field = |k: usize| &bytes[rows[k].0..rows[k].0 + rows[k].1];
            let bids = DqnParams::default().action_bids;
            let expected: [Vec<u8>; 10] = [
                MAGIC.to_vec(),
                VERSION.to_le_bytes().to_vec(),
                vec![SnapshotKind::DqnQNetwork as u8],
                vec![0],
                5u16.to_le_bytes().to_vec(),
                64u16.to_le_bytes().to_vec(),
                3u16.to_le_bytes().to_vec(),
                vec![0, 0],
                (((n - HEADER_BYTES - CRC_BYTES) / 4) as u32)
                    .to_le_bytes()
                    .to_vec(),
                bids.iter().flat_map(|b| b.to_le_bytes()).collect(),
            ];
            assert_eq!(rows.len(), expected.len());
            for (k, want) in expected.iter().enumerate() {
                assert_eq!(field(k), &want[..], "row at offset {}", rows[k].0);
            }
            assert!(
                doc.contains("4,739 (18,992 bytes") && n == 18_992,
                "the Q-network snapshot size"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

/// A header's length never wraps: the largest parameter count gives a length no buffer can
/// hold on any target (saturating at `usize::MAX` where 4·n overflows), so it is refused as
/// truncated.
#[test]
fn snapshot_length_of_a_crafted_count_does_not_wrap() {
    let (_, good) = actor_snapshot();
    let mut bad = good.clone();
    bad[16..20].copy_from_slice(&u32::MAX.to_le_bytes());
    let header_total = read_header(&bad).unwrap_err();
    assert!(
        matches!(header_total, SnapshotError::Truncated { needed, .. } if needed >= 4 * (u32::MAX as usize / 4))
    );
    let huge = Header {
        kind: SnapshotKind::DdpgActor,
        state_dim: 5,
        hidden: 64,
        outputs: 1,
        parameter_count: u32::MAX,
        extra: [0; 12],
    };
    assert!(huge.total_bytes() > u32::MAX as usize || huge.total_bytes() == usize::MAX);
}

//! The server answers every request, refuses bad ones without touching the agent, and
//! gives the same bids as an in-process agent.

use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::agent::Policy;
use crate::wire::frame::FrameDecoder;
use crate::wire::message::WireTransition;

type Server = AgentServer<256, 20_000>;

/// Servers build agents by value (a Q-learning table is 1.2 MB): run tests on a big stack.
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

fn server() -> Box<Server> {
    // Built on the heap: the server is large.
    let mut s: Box<Server> = Box::default();
    let hello = s.handle(Message::Configure(Configure {
        policy: 0,
        seed: 4,
        vm_count: 2,
        explore_steps: 10,
        anneal_steps: 10,
    }));
    assert!(
        matches!(
            hello,
            Message::Hello {
                protocol: 1,
                policy: crate::agent::PolicyKind::Ddpg,
                ..
            }
        ),
        "{hello:?}"
    );
    s
}

fn obs(x: f32) -> [f32; 5] {
    [x, 0.3, 0.0, -0.1, 0.6]
}

#[test]
fn wire_server_matches_in_process_agent() {
    big_stack(|| {
        let mut s = server();
        let mut local = Box::new(
            configured_policy::<256>(&Configure {
                policy: 0,
                seed: 4,
                vm_count: 2,
                explore_steps: 10,
                anneal_steps: 10,
            })
            .unwrap(),
        );
        for k in 0..200 {
            let x = (k as f32 * 0.37).sin();
            let Message::Bid { bid, .. } = s.handle(Message::Act { obs: obs(x) }) else {
                panic!("no bid")
            };
            let o = Observation::from_array(obs(x)).unwrap();
            let d = local.act(&o).unwrap();
            assert_eq!(bid.to_bits(), d.bid.to_bits());
            let t = WireTransition {
                state: obs(x),
                bid,
                reward: -x.abs(),
                next_state: obs(-x),
                done: k % 50 == 49,
            };
            assert_eq!(s.handle(Message::Transition(t)), Message::Ack);
            local
                .record(&AgentTransition {
                    state: o,
                    bid,
                    reward: -x.abs(),
                    next_state: Observation::from_array(obs(-x)).unwrap(),
                    done: t.done,
                })
                .unwrap();
            let Message::Learned { outcome } = s.handle(Message::Learn) else {
                panic!("no learn")
            };
            let want = local.learn().unwrap();
            assert_eq!(outcome, want);
            if let (
                crate::agent::LearnOutcome::Updated { loss: a },
                crate::agent::LearnOutcome::Updated { loss: b },
            ) = (outcome, want)
            {
                assert_eq!(a.to_bits(), b.to_bits());
            }
        }
    });
}

#[test]
fn wire_server_refuses_bad_requests() {
    big_stack(|| {
        let mut fresh: Box<Server> = Box::default();
        assert_eq!(
            fresh.handle(Message::Learn),
            Message::Error {
                code: ErrorCode::NotConfigured,
                detail: 0x04
            }
        );
        assert_eq!(
            fresh.handle(Message::Configure(Configure {
                policy: 9,
                seed: 0,
                vm_count: 2,
                explore_steps: 0,
                anneal_steps: 0
            })),
            Message::Error {
                code: ErrorCode::BadConfig,
                detail: 1
            }
        );
        // No VMs, or more than a node may have, for every policy: refused, nothing set up.
        for policy in 0..4 {
            for vm_count in [0, crate::agent::equal_split::MAX_VM_COUNT + 1, u32::MAX] {
                let configure = Configure {
                    policy,
                    seed: 0,
                    vm_count,
                    explore_steps: 0,
                    anneal_steps: 0,
                };
                assert_eq!(
                    fresh.handle(Message::Configure(configure)),
                    Message::Error {
                        code: ErrorCode::BadConfig,
                        detail: 2
                    },
                    "policy {policy}, {vm_count} VMs"
                );
                assert!(matches!(
                    fresh.handle(Message::GetStats),
                    Message::Error {
                        code: ErrorCode::NotConfigured,
                        ..
                    }
                ));
            }
        }
        let mut s = server();
        assert!(matches!(
            s.handle(Message::Act { obs: [f32::NAN; 5] }),
            Message::Error {
                code: ErrorCode::InvalidObservation,
                ..
            }
        ));
        let t = WireTransition {
            state: obs(0.1),
            bid: 0.0,
            reward: f32::INFINITY,
            next_state: obs(0.1),
            done: false,
        };
        assert!(matches!(
            s.handle(Message::Transition(t)),
            Message::Error {
                code: ErrorCode::InvalidTransition,
                ..
            }
        ));
        let stats = s.slots.active().unwrap().stats();
        assert_eq!(s.handle(Message::GetStats), Message::Stats(stats));
        assert!(matches!(
            s.handle(Message::Ack),
            Message::Error {
                code: ErrorCode::Malformed,
                ..
            }
        ));
    });
}

#[test]
fn wire_server_snapshot_round_trip_in_chunks() {
    big_stack(|| {
        let mut a = server();
        let mut snapshot = Vec::new();
        loop {
            let Message::SnapshotData { total, offset, data } = a.handle(Message::SnapshotRead {
                offset: snapshot.len() as u32,
            }) else {
                panic!()
            };
            assert_eq!(offset as usize, snapshot.len());
            snapshot.extend_from_slice(data);
            if snapshot.len() == total as usize {
                break;
            }
        }
        let mut b: Box<Server> = Box::default();
        b.handle(Message::Configure(Configure {
            policy: 0,
            seed: 98,
            vm_count: 2,
            explore_steps: 10,
            anneal_steps: 10,
        }));
        // Reading on from an offset without a snapshot taken (offset 0 takes one) is refused.
        assert_eq!(
            b.handle(Message::SnapshotRead { offset: 1000 }),
            Message::Error {
                code: ErrorCode::Snapshot,
                detail: 1
            }
        );
        b.handle(Message::Configure(Configure {
            policy: 0,
            seed: 99,
            vm_count: 2,
            explore_steps: 10,
            anneal_steps: 10,
        }));
        b.handle(Message::SetExploration { on: false });
        a.handle(Message::SetExploration { on: false });
        let total = snapshot.len() as u32;
        for (k, chunk) in snapshot.chunks(SNAPSHOT_CHUNK).enumerate() {
            let reply = b.handle(Message::SnapshotWrite {
                total,
                offset: (k * SNAPSHOT_CHUNK) as u32,
                data: chunk,
            });
            assert_eq!(reply, Message::Ack);
        }
        for x in [-0.9, -0.2, 0.4, 0.8] {
            assert_eq!(
                a.handle(Message::Act { obs: obs(x) }),
                b.handle(Message::Act { obs: obs(x) })
            );
        }
        // A corrupted snapshot is refused (CRC), out-of-order pieces too.
        let mut bad = snapshot.clone();
        bad[100] ^= 1;
        for (k, chunk) in bad.chunks(SNAPSHOT_CHUNK).enumerate() {
            let reply = b.handle(Message::SnapshotWrite {
                total,
                offset: (k * SNAPSHOT_CHUNK) as u32,
                data: chunk,
            });
            if (k + 1) * SNAPSHOT_CHUNK >= bad.len() {
                assert_eq!(
                    reply,
                    Message::Error {
                        code: ErrorCode::Snapshot,
                        detail: 6
                    }
                );
            }
        }
        assert!(matches!(
            b.handle(Message::SnapshotWrite {
                total,
                offset: 500,
                data: &[0; 10]
            }),
            Message::Error {
                code: ErrorCode::Snapshot,
                ..
            }
        ));
        assert!(matches!(
            b.handle(Message::SnapshotWrite {
                total: 10_000_000,
                offset: 0,
                data: &[0; 10]
            }),
            Message::Error {
                code: ErrorCode::Snapshot,
                detail: 8
            }
        ));
    });
}

#[test]
fn wire_server_serves_frames_and_frame_errors() {
    big_stack(|| {
        let mut s = server();
        let mut out = vec![0u8; MAX_FRAME];
        let n = s.serve(Err(FrameError::Crc), &mut out);
        let mut dec = FrameDecoder::new();
        let (_, event) = dec.push(&out[..n]);
        let (t, p) = event.unwrap().unwrap();
        assert_eq!(
            Message::decode(t, p),
            Ok(Message::Error {
                code: ErrorCode::BadFrame,
                detail: 3
            })
        );
        let n = s.serve(Ok((0x42, &[])), &mut out);
        let mut dec = FrameDecoder::new();
        let (_, event) = dec.push(&out[..n]);
        let (t, p) = event.unwrap().unwrap();
        assert_eq!(
            Message::decode(t, p),
            Ok(Message::Error {
                code: ErrorCode::Malformed,
                detail: 0x42
            })
        );
    });
}

/// A node and its VMs for the wire analyzer: mostly feasible, sometimes refused (weight 0,
/// a limit below the floor, reservations or allocations over the capacity, granularity 0),
/// with bids of any bits (NaN and ±∞ included).
fn analyze_case()
-> impl proptest::strategy::Strategy<Value = (crate::bid::BidConfig, Vec<crate::wire::analyze::WireVm>)> {
    use crate::bid::{BidConfig, ShareRule, VmTerms};
    use crate::wire::analyze::{MAX_ANALYZE_VMS, WireVm};
    use proptest::prelude::*;
    let vm = (
        0u64..1 << 33,
        any::<u32>(),
        0u8..8,
        0u64..1 << 31,
        0u64..1 << 33,
        0u32..5,
    );
    (
        1usize..=MAX_ANALYZE_VMS,
        0u64..1 << 29,
        prop_oneof![Just(0u64), 1u64..1 << 21],
        any::<bool>(),
    )
        .prop_flat_map(move |(n, floor, g, equal)| {
            (
                Just((floor, g, equal)),
                0u64..(n as u64 + 2) << 33,
                proptest::collection::vec(vm.clone(), n),
            )
        })
        .prop_map(|((floor, g, equal), capacity, raw)| {
            let node = BidConfig {
                capacity_bytes: capacity,
                floor_bytes: floor,
                granularity_bytes: g.max(u64::from(capacity % 97 != 0)),
                share: if equal {
                    ShareRule::Equal
                } else {
                    ShareRule::Proportional
                },
            };
            let vms = raw
                .into_iter()
                .map(|(allocation, bid_bits, kind, min, max, weight)| WireVm {
                    allocation_bytes: allocation,
                    // Half of the bids in [-1, 1], the others any bits.
                    bid: if kind < 4 {
                        f32::from_bits(bid_bits)
                    } else {
                        (bid_bits as f32 / u32::MAX as f32) * 2.0 - 1.0
                    },
                    terms: VmTerms {
                        min_bytes: if kind % 2 == 0 { 0 } else { min },
                        max_bytes: if kind < 6 { u64::MAX } else { max },
                        weight: weight.max(u32::from(kind != 7)),
                    },
                })
                .collect();
            (node, vms)
        })
}

/// Analyze through frames (needing no Configure) gives what `analyze_with_terms` gives in
/// process, to the byte, and the refusals it gives: 20,000 generated nodes.
#[test]
fn wire_analyze_matches_the_in_process_analyzer() {
    use crate::bid::{VmGrant, analyze_with_terms};
    use crate::wire::analyze::{AnalyzeVms, error_detail};
    big_stack(|| {
        let s: core::cell::RefCell<Box<Server>> = core::cell::RefCell::default();
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
            cases: 20_000,
            ..Default::default()
        });
        let (refused, served) = (core::cell::Cell::new(0u32), core::cell::Cell::new(0u32));
        runner
            .run(&analyze_case(), |(node, vms)| {
                let mut records = [0u8; 1024];
                let request = Message::Analyze {
                    node,
                    vms: AnalyzeVms::write(&mut records, &vms).unwrap(),
                };
                let mut payload = [0u8; MAX_FRAME];
                let n = request.encode_payload(&mut payload).unwrap();
                let mut frame = [0u8; MAX_FRAME];
                let len = encode_frame(0x0A, &payload[..n], &mut frame).unwrap();
                let mut decoder = Box::new(FrameDecoder::new());
                let (_, event) = decoder.push(&frame[..len]);
                let mut out = [0u8; MAX_FRAME];
                let reply_len = s.borrow_mut().serve(event.unwrap(), &mut out);
                let (_, reply) = decoder.push(&out[..reply_len]);
                let (t, p) = reply.unwrap().unwrap();
                let reply = Message::decode(t, p).unwrap();

                let mut allocations: Vec<u64> = vms.iter().map(|v| v.allocation_bytes).collect();
                let bids: Vec<f32> = vms.iter().map(|v| v.bid).collect();
                let terms: Vec<_> = vms.iter().map(|v| v.terms).collect();
                let mut grants = vec![VmGrant::default(); vms.len()];
                match analyze_with_terms(&node, &terms, &mut allocations, &bids, &mut grants) {
                    Ok(summary) => {
                        served.set(served.get() + 1);
                        let Message::Allocated {
                            free_bytes,
                            sanitized_bids,
                            allocations: got,
                        } = reply
                        else {
                            panic!("{reply:?}")
                        };
                        proptest::prop_assert_eq!(got.iter().collect::<Vec<_>>(), allocations);
                        proptest::prop_assert_eq!(
                            (free_bytes, sanitized_bids),
                            (summary.free_bytes, summary.sanitized_bids)
                        );
                    }
                    Err(e) => {
                        refused.set(refused.get() + 1);
                        proptest::prop_assert_eq!(
                            reply,
                            Message::Error {
                                code: ErrorCode::Analyze,
                                detail: error_detail(e)
                            }
                        );
                    }
                }
                Ok(())
            })
            .unwrap();
        // Both outcomes are exercised.
        let (served, refused) = (served.get(), refused.get());
        assert!(
            served > 2_000 && refused > 2_000,
            "served {served}, refused {refused}"
        );
    });
}

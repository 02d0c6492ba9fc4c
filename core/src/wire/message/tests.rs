//! Every message round-trips; bad payloads are typed errors.

use proptest::collection::vec;
use proptest::prelude::any;
use proptest::proptest;

use super::*;
use crate::wire::analyze::{Allocations, AnalyzeVms};

/// Two VM records of an Analyze request, and two allocations of its reply.
static ANALYZE_RECORDS: [u8; 64] = {
    let mut r = [0u8; 64];
    r[0] = 1; // VM 0: 1 B allocated, the rest 0 (weight 0: the analyzer refuses it, the codec carries it)
    r[32 + 28] = 2; // VM 1: weight 2
    r
};
static ALLOCATIONS: [u8; 16] = [7, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 1];

fn all_messages() -> [Message<'static>; 22] {
    let t = WireTransition {
        state: [0.1, 0.2, -0.3, 0.4, 0.5],
        bid: -0.25,
        reward: -1.5,
        next_state: [0.0; 5],
        done: true,
    };
    [
        Message::Configure(Configure {
            policy: 0,
            seed: u64::MAX - 3,
            vm_count: 2,
            explore_steps: 20_000,
            anneal_steps: 30_000,
        }),
        Message::Act {
            obs: [1.0, 0.5, -1.0, 0.25, 0.75],
        },
        Message::Transition(t),
        Message::Learn,
        Message::StartEpisode,
        Message::SetExploration { on: true },
        Message::GetStats,
        Message::SnapshotRead { offset: 1000 },
        Message::SnapshotWrite {
            total: 18472,
            offset: 1000,
            data: &[1, 2, 3],
        },
        Message::Hello {
            protocol: 1,
            policy: crate::agent::PolicyKind::EqualSplit,
            agent_bytes: 256_312,
        },
        Message::Bid {
            bid: 0.125,
            explored: true,
            fallback: None,
        },
        Message::Bid {
            bid: -0.5,
            explored: false,
            fallback: Some(crate::agent::Fallback::NonFiniteOutput),
        },
        Message::Bid {
            bid: 0.25,
            explored: false,
            fallback: Some(crate::agent::Fallback::Shielded),
        },
        Message::Ack,
        Message::Learned {
            outcome: crate::agent::LearnOutcome::Updated { loss: 0.5 },
        },
        Message::Learned {
            outcome: crate::agent::LearnOutcome::Skipped,
        },
        Message::Learned {
            outcome: crate::agent::LearnOutcome::Recovered,
        },
        Message::Stats(PolicyStats {
            acts: 1,
            explored: 2,
            learn_steps: 3,
            fallbacks: 4,
            divergences: 5,
            last_loss: 6.0,
            epsilon: 0.5,
            replay_len: 7,
        }),
        Message::SnapshotData {
            total: 36,
            offset: 0,
            data: &[9; 36],
        },
        Message::Analyze {
            node: crate::bid::BidConfig {
                share: crate::bid::ShareRule::Equal,
                ..crate::bid::BidConfig::new(1 << 40)
            },
            vms: AnalyzeVms::from_bytes(&ANALYZE_RECORDS).unwrap(),
        },
        Message::Allocated {
            free_bytes: 12,
            sanitized_bids: 1,
            allocations: Allocations::from_bytes(&ALLOCATIONS).unwrap(),
        },
        Message::Error {
            code: ErrorCode::Snapshot,
            detail: 3,
        },
    ]
}

#[test]
fn wire_messages_round_trip() {
    let mut buf = [0u8; 1024];
    for m in all_messages() {
        let n = m.encode_payload(&mut buf).unwrap();
        assert_eq!(Message::decode(m.type_byte(), &buf[..n]), Ok(m));
        let variable = matches!(m, Message::SnapshotWrite { .. } | Message::SnapshotData { .. });
        if n > 0 && !variable {
            assert_eq!(
                Message::decode(m.type_byte(), &buf[..n - 1]).unwrap_err(),
                MessageError::BadLength(m.type_byte()),
                "{m:?} truncated"
            );
        }
        // Only the variable-length snapshot messages accept a longer payload.
        let long = Message::decode(m.type_byte(), &buf[..n + 1]);
        assert!(long.is_err() || variable, "{m:?} with an extra byte");
    }
}

/// Snapshot pieces carry at most SNAPSHOT_CHUNK bytes, as docs/protocol.md says (the frame
/// would have room for 1016).
#[test]
fn wire_snapshot_pieces_are_at_most_one_chunk() {
    let payload = std::vec![0u8; 8 + SNAPSHOT_CHUNK + 1];
    for t in [0x09, 0x88] {
        assert_eq!(Message::decode(t, &payload), Err(MessageError::BadLength(t)));
        assert!(Message::decode(t, &payload[..8 + SNAPSHOT_CHUNK]).is_ok());
    }
}

#[test]
fn wire_message_errors() {
    assert_eq!(Message::decode(0x42, &[]), Err(MessageError::UnknownType(0x42)));
    assert_eq!(Message::decode(0x09, &[0; 7]), Err(MessageError::BadLength(0x09)));
    assert_eq!(Message::decode(0x06, &[2]), Err(MessageError::BadValue(0x06)));
    // A Hello naming no policy; a Bid whose fallback is no known reason; a Learned with an
    // unknown outcome, or with a loss although it did not update.
    assert_eq!(
        Message::decode(0x81, &[1, 8, 0, 0, 0, 0, 0, 0]),
        Err(MessageError::BadValue(0x81))
    );
    assert_eq!(
        Message::decode(0x82, &[0, 0, 0, 0, 0, 3]),
        Err(MessageError::BadValue(0x82))
    );
    assert_eq!(
        Message::decode(0x84, &[3, 0, 0, 0, 0]),
        Err(MessageError::BadValue(0x84))
    );
    assert_eq!(
        Message::decode(0x84, &[0, 0, 0, 0x80, 0x3f]),
        Err(MessageError::BadValue(0x84))
    );
    assert_eq!(
        Message::decode(0xFF, &[0x99, 0]),
        Err(MessageError::BadValue(0xFF))
    );
    assert_eq!(
        Message::Act { obs: [0.0; 5] }.encode_payload(&mut [0u8; 19]),
        Err(MessageError::TooLong)
    );
    // Analyze: an unknown share rule; no VM; a partial record; more VMs than a frame holds.
    let mut analyze = [0u8; 28 + 32];
    analyze[24] = 2;
    assert_eq!(Message::decode(0x0A, &analyze), Err(MessageError::BadValue(0x0A)));
    assert_eq!(
        Message::decode(0x0A, &[0; 28]),
        Err(MessageError::BadLength(0x0A))
    );
    assert_eq!(
        Message::decode(0x0A, &[0; 28 + 31]),
        Err(MessageError::BadLength(0x0A))
    );
    assert_eq!(
        Message::decode(0x0A, &[0; 28 + 32 * 32]),
        Err(MessageError::BadLength(0x0A))
    );
    assert!(Message::decode(0x0A, &[0; 28 + 32 * 31]).is_ok());
    assert_eq!(
        Message::decode(0x8A, &[0; 16]),
        Err(MessageError::BadLength(0x8A))
    );
    assert_eq!(
        Message::decode(0x8A, &[0; 16 + 12]),
        Err(MessageError::BadLength(0x8A))
    );
}

proptest! {
    #[test]
    fn wire_arbitrary_payloads_never_panic(t in any::<u8>(), payload in vec(any::<u8>(), 0..128)) {
        let _ = Message::decode(t, &payload);
    }
}

/// The payload size docs/protocol.md gives for a message type (by its type byte): the sum
/// of the fields its table lists (`name u32`, `N × \`f32\``, `N reserved bytes`), and the
/// "(N bytes)" it states, if any.
fn documented_payload(type_byte: u8) -> (usize, Option<usize>) {
    let doc = include_str!("../../../../docs/protocol.md");
    let row = doc
        .lines()
        .find(|l| l.starts_with(&std::format!("| `0x{type_byte:02X}` |")))
        .unwrap_or_else(|| panic!("docs/protocol.md has no row for 0x{type_byte:02X}"));
    let payload = row.split(" | ").nth(2).unwrap();
    let size = |t: &str| match t {
        "u8" | "bool" => 1,
        "u16" => 2,
        "u32" | "f32" => 4,
        "u64" => 8,
        other => panic!("0x{type_byte:02X}: unknown field type {other}"),
    };
    let count_before = |text: &str, marker: &str| -> Option<usize> {
        let before = text.strip_suffix(marker)?.trim_end();
        before.rsplit(' ').next()?.parse().ok()
    };
    let mut fields = 0;
    let parts: std::vec::Vec<&str> = payload.split('`').collect();
    for (k, part) in parts.iter().enumerate() {
        if k % 2 == 1 {
            match part.split_whitespace().collect::<std::vec::Vec<_>>()[..] {
                [_name, ty] => fields += size(ty),
                [ty] => fields += size(ty) * count_before(parts[k - 1], "× ").unwrap_or(1),
                _ => panic!("0x{type_byte:02X}: field `{part}`"),
            }
        } else {
            for piece in part.split(',') {
                let piece = piece.trim();
                if let Some(n) =
                    count_before(piece, "reserved bytes").or(count_before(piece, "reserved byte"))
                {
                    fields += n;
                }
            }
        }
    }
    let stated = payload
        .rsplit_once('(')
        .and_then(|(_, tail)| tail.strip_suffix(" bytes)"))
        .and_then(|n| n.parse().ok());
    (fields, stated)
}

/// docs/protocol.md's tables agree with the encoder: every message's documented fields add
/// up to its encoded payload (the snapshot pieces: before their data; Analyze and
/// Allocated: the fixed fields and one record), and so does the
/// stated byte count where the table gives one.
#[test]
fn wire_payload_sizes_match_docs_protocol_md() {
    let mut buf = [0u8; 1024];
    for m in all_messages() {
        let n = m.encode_payload(&mut buf).unwrap();
        let fixed = match m {
            Message::SnapshotWrite { data, .. } | Message::SnapshotData { data, .. } => n - data.len(),
            // Their tables list the fixed fields and then the fields of one record.
            Message::Analyze { vms, .. } => n - vms.bytes().len() + crate::wire::analyze::ANALYZE_VM_BYTES,
            Message::Allocated { allocations, .. } => {
                n - allocations.bytes().len() + crate::wire::analyze::ALLOCATION_BYTES
            }
            _ => n,
        };
        let (fields, stated) = documented_payload(m.type_byte());
        assert_eq!(fields, fixed, "{m:?}: the documented fields");
        if let Some(stated) = stated {
            assert_eq!(stated, n, "{m:?}: the documented byte count");
        }
    }
}

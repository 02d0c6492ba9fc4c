//! Frame round trips, every kind of bad frame, and resynchronization.

use std::vec::Vec;

use proptest::collection::vec;
use proptest::prelude::any;
use proptest::{prop_assert, proptest};

use super::*;

fn frame(msg_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(msg_type, payload, &mut buf).unwrap();
    buf[..n].to_vec()
}

/// Feeds `bytes` (then `flush` zero bytes) and collects every event.
fn decode_all(bytes: &[u8], flush: usize) -> Vec<Result<(u8, Vec<u8>), FrameError>> {
    let mut dec = FrameDecoder::new();
    let mut events = Vec::new();
    let padding = std::vec![0u8; flush];
    for chunk in [bytes, &padding[..]] {
        let mut rest = chunk;
        loop {
            let (used, event) = dec.push(rest);
            rest = &rest[used..];
            match event {
                Some(e) => events.push(e.map(|(t, p)| (t, p.to_vec()))),
                None if used == 0 => break,
                None => {}
            }
        }
    }
    events
}

#[test]
fn wire_frame_round_trip_and_layout() {
    let f = frame(0x42, &[1, 2, 3]);
    assert_eq!(&f[..6], &[0xC5, 0xA7, 1, 0x42, 3, 0]);
    assert_eq!(f.len(), 6 + 3 + 4);
    assert_eq!(decode_all(&f, 0), [Ok((0x42, std::vec![1, 2, 3]))]);
    let empty = frame(7, &[]);
    let max = frame(8, &[0xAB; MAX_PAYLOAD]);
    let both: Vec<u8> = empty.iter().chain(&max).copied().collect();
    assert_eq!(
        decode_all(&both, 0),
        [Ok((7, std::vec![])), Ok((8, std::vec![0xAB; MAX_PAYLOAD]))]
    );
    assert_eq!(
        encode_frame(1, &[0; MAX_PAYLOAD + 1], &mut [0; 2 * MAX_FRAME]),
        Err(FrameError::TooLong)
    );
    assert_eq!(encode_frame(1, &[0; 10], &mut [0; 12]), Err(FrameError::TooLong));
}

#[test]
fn wire_frame_byte_by_byte() {
    let f = frame(3, b"split me");
    let mut dec = FrameDecoder::new();
    let mut got = None;
    for b in &f {
        let (used, event) = dec.push(std::slice::from_ref(b));
        assert_eq!(used, 1);
        if let Some(e) = event {
            got = Some(e.map(|(t, p)| (t, p.to_vec())));
        }
    }
    assert_eq!(got, Some(Ok((3, b"split me".to_vec()))));
}

#[test]
fn wire_bad_frames_are_reported_then_resynchronized() {
    let good = frame(9, b"ok");
    // Wrong CRC.
    let mut bad_crc = frame(1, b"abc");
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    // Wrong version.
    let mut bad_version = frame(1, b"abc");
    bad_version[2] = 9;
    // Oversized length.
    let mut oversized = frame(1, b"abc");
    oversized[4] = 0xff;
    oversized[5] = 0xff;
    for (bad, want) in [
        (bad_crc, FrameError::Crc),
        (bad_version, FrameError::Version { found: 9 }),
        (oversized, FrameError::Oversized { length: 0xffff }),
    ] {
        let stream: Vec<u8> = bad.iter().chain(&good).copied().collect();
        let events = decode_all(&stream, 0);
        assert_eq!(events.first(), Some(&Err(want)));
        assert_eq!(events.last(), Some(&Ok((9, b"ok".to_vec()))), "{events:?}");
    }
    // Garbage, including stray sync bytes, before a frame.
    let stream: Vec<u8> = [0x00, 0xC5, 0x13, 0xC5, 0xC5, 0xA7]
        .iter()
        .chain(&good)
        .copied()
        .collect();
    assert_eq!(decode_all(&stream, 0).last(), Some(&Ok((9, b"ok".to_vec()))));
}

#[test]
fn wire_truncated_frame_then_good_frame() {
    let good = frame(9, b"ok");
    let truncated = &frame(1, &[7u8; 200])[..50];
    let stream: Vec<u8> = truncated.iter().chain(&good).copied().collect();
    // The truncated frame swallows the good one until enough bytes arrive to fail its CRC.
    let events = decode_all(&stream, MAX_FRAME);
    assert!(events.contains(&Err(FrameError::Crc)));
    assert!(events.contains(&Ok((9, b"ok".to_vec()))), "{events:?}");
    // Or the host gives up on the partial frame after a timeout.
    let mut dec = FrameDecoder::new();
    let (used, event) = dec.push(&stream);
    assert_eq!((used, event.is_none()), (stream.len(), true));
    let found = dec.abandon_partial().map(|r| r.map(|(t, p)| (t, p.to_vec())));
    assert_eq!(found, Some(Ok((9, b"ok".to_vec()))));
}

proptest! {
    /// Any garbage before a frame: nothing panics, and the frame is found.
    #[test]
    fn wire_resynchronizes_after_any_garbage(garbage in vec(any::<u8>(), 0..300), payload in vec(any::<u8>(), 0..64), t in any::<u8>()) {
        let good = frame(t, &payload);
        let stream: Vec<u8> = garbage.iter().chain(&good).copied().collect();
        let events = decode_all(&stream, MAX_FRAME);
        prop_assert!(events.contains(&Ok((t, payload.clone()))));
    }

    /// Arbitrary bytes never panic or loop forever.
    #[test]
    fn wire_arbitrary_bytes_terminate(bytes in vec(any::<u8>(), 0..3000)) {
        let _ = decode_all(&bytes, 16);
    }
}

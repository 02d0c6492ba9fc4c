//! Properties checked on arbitrary input. Each function panics only when a property is
//! broken (that is a finding); any input must otherwise be handled without a panic.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a broken property is reported as a panic, which the fuzzer records"
)]

use std::path::Path;

use cavmem_core::agent::{EqualSplit, EqualSplitParams, FrozenActor, FrozenQNetwork};
use cavmem_core::bid::{BidConfig, ShareRule, VmGrant, analyze};
use cavmem_core::mdp::{MdpParams, NodeMdp, Observation, VmSample};
use cavmem_core::wire::FrameDecoder;
use cavmem_core::wire::frame::MAX_FRAME;
use cavmem_core::wire::server::AgentServer;
use cavmem_harness::scenario::Scenario;

mod c_abi;
pub use c_abi::c_abi;

/// The frame decoder and the agent server on any byte stream: every event gets a reply
/// frame, and the decoder always makes progress.
pub fn wire_stream(bytes: &[u8]) {
    thread_local! {
        static SERVER: std::cell::RefCell<Box<AgentServer<64, 20_000>>> = std::cell::RefCell::new(Box::default());
    }
    SERVER.with(|server| {
        let mut server = server.borrow_mut();
        let mut decoder = Box::new(FrameDecoder::new());
        let mut out = vec![0u8; MAX_FRAME];
        let mut rest = bytes;
        for _ in 0..100_000 {
            let (used, event) = decoder.push(rest);
            rest = &rest[used..];
            match event {
                Some(event) => {
                    let n = server.serve(event, &mut out);
                    assert!(n > 0, "every request gets a reply frame");
                }
                None if used == 0 => return,
                None => {}
            }
        }
        panic!("decoder made no progress");
    });
}

/// Snapshot readers on any bytes: refused, or accepted and re-saved identically.
pub fn snapshot_bytes(bytes: &[u8]) {
    let mut actor = FrozenActor::zeroed();
    if actor.load_snapshot(bytes).is_ok() {
        assert_eq!(
            bytes.len(),
            cavmem_core::agent::frozen::ACTOR_SNAPSHOT_BYTES,
            "an accepted actor snapshot is exactly one snapshot long"
        );
    }
    let mut q = FrozenQNetwork::zeroed();
    let _ = q.load_snapshot(bytes);
    let mut split = EqualSplit::new(EqualSplitParams { vm_count: 2 });
    if split.load_snapshot(bytes).is_ok() {
        let mut again = vec![0u8; 64];
        let n = split
            .save_snapshot(&mut again)
            .expect("an equal-split snapshot fits 64 bytes");
        assert_eq!(
            &again[..n],
            bytes,
            "an accepted snapshot re-encodes to itself, byte for byte and nothing more"
        );
    }
}

/// The scenario parser on any text: a scenario or an error naming the file.
pub fn scenario_text(text: &str) {
    if let Err(e) = Scenario::parse(Path::new("fuzz.toml"), text) {
        assert!(
            e.to_string().starts_with("fuzz.toml: "),
            "error names the file: {e}"
        );
        assert!(!e.reason.is_empty());
    }
}

/// Raw sensor values through the MDP, then bids through the Bid Analyzer: observations are
/// finite and in range or refused; allocations conserve memory and keep the floor.
pub fn sensors_and_bids(data: &[u8]) {
    let word = |k: usize| -> u32 {
        let b = |i: usize| data.get(4 * k + i).copied().unwrap_or(0);
        u32::from_le_bytes([b(0), b(1), b(2), b(3)])
    };
    let vms = 1 + (word(0) % 8) as usize;
    let capacity = u64::from(word(1)) << 16;
    let floor = u64::from(word(2) % (1 << 24));
    let mut mdp = NodeMdp::new(MdpParams::default());
    let samples: Vec<VmSample> = (0..vms)
        .map(|j| VmSample {
            miss_rate_pages_per_s: f32::from_bits(word(3 + 3 * j)),
            allocation_bytes: u64::from(word(4 + 3 * j)) << 8,
            msr_bound_pages_per_s: f32::from_bits(word(5 + 3 * j)),
        })
        .collect();
    let mut obs = vec![Observation::default(); vms];
    if mdp.observe(capacity, &samples, &mut obs).is_ok() {
        for o in &obs {
            o.validate()
                .expect("accepted measurements give valid observations");
        }
    }
    let mut allocations: Vec<u64> = samples.iter().map(|s| s.allocation_bytes).collect();
    let bids: Vec<f32> = (0..vms).map(|j| f32::from_bits(word(40 + j))).collect();
    let config = BidConfig {
        capacity_bytes: capacity,
        floor_bytes: floor,
        granularity_bytes: 1 + u64::from(word(60) % 4096),
        share: if word(61) % 2 == 0 {
            ShareRule::Proportional
        } else {
            ShareRule::Equal
        },
    };
    let mut grants = vec![VmGrant::default(); vms];
    if let Ok(summary) = analyze(&config, &mut allocations, &bids, &mut grants) {
        let total: u64 = allocations.iter().sum();
        assert_eq!(total + summary.free_bytes, capacity, "memory conserved");
        assert!(allocations.iter().all(|a| *a >= floor), "floor kept");
    }
}

//! The C interface (`libcavmem.a`'s entry points, called through the same Rust functions)
//! driven by arbitrary bytes: a script of calls with arbitrary values, buffer sizes, buffer
//! alignments and null pointers. Every call returns a status and never aborts; the statuses
//! are the documented ones; whatever succeeds keeps its promises (bids in [-1, 1], snapshots
//! that load back, allocations at or above the floor and within the capacity).
//!
//! Pointers and lengths are always true to the memory behind them: a C caller that lies
//! about a buffer's length is outside any contract, so lengths vary but never overstate.

use std::cell::RefCell;
use std::ptr;

use cavmem_capi::{
    CAVMEM_MAX_VM_COUNT, CAVMEM_MAX_VMS, CavmemConfig, CavmemNode, CavmemStats, CavmemStatus, cavmem_act,
    cavmem_agent_align, cavmem_agent_init, cavmem_agent_size, cavmem_analyze_bids,
    cavmem_analyze_bids_scratch, cavmem_bid_scratch_align, cavmem_bid_scratch_size, cavmem_learn,
    cavmem_load_snapshot, cavmem_record, cavmem_save_snapshot, cavmem_set_exploration, cavmem_start_episode,
    cavmem_stats,
};

/// Reads the script; zeros once the bytes run out.
struct Script<'a>(&'a [u8]);

impl Script<'_> {
    fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
    /// Any f32, NaN and infinities included, or (half the time) a plain value in [-1.3, 1.3]
    /// so that calls get past validation too.
    fn f32(&mut self) -> f32 {
        let selector = self.u8();
        if selector < 128 {
            f32::from(self.u16()) / 65535.0 * 2.6 - 1.3
        } else {
            f32::from_bits(self.u32())
        }
    }
    fn obs(&mut self) -> [f32; 5] {
        [self.f32(), self.f32(), self.f32(), self.f32(), self.f32()]
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

thread_local! {
    /// Agent memory, 8-byte aligned, big enough for the largest policy plus a misalignment.
    static ARENA: RefCell<Vec<u64>> = RefCell::new(vec![0; (max_agent_size() + 64) / 8]);
}

fn max_agent_size() -> usize {
    (0..4u32).map(|p| cavmem_agent_size(p)).max().unwrap_or(0)
}

/// Valid observations are finite and in range (`Observation::from_array`).
fn valid_obs(o: &[f32; 5]) -> bool {
    cavmem_core::mdp::Observation::from_array(*o).is_ok()
}

/// Runs one script of calls.
#[allow(clippy::too_many_lines, reason = "one interpreter: a call per arm")]
pub fn c_abi(data: &[u8]) {
    ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        arena.fill(0);
        let base = arena.as_mut_ptr().cast::<u8>();
        let total = arena.len() * 8;
        let mut s = Script(data);

        let policy = u32::from(s.u8() % 5); // 4: unknown
        let offset = usize::from(s.u8() % 16);
        let size = cavmem_agent_size(policy);
        let shortfall = if s.u8() % 4 == 0 {
            usize::from(s.u16()) % 64 + 1
        } else {
            0
        };
        let len = size.saturating_sub(shortfall);
        let config = CavmemConfig {
            policy,
            vm_count: s.u32() % 300,
            seed: s.u64(),
            explore_steps: u64::from(s.u16()),
            anneal_steps: u64::from(s.u16()),
        };
        let config_ptr = if s.u8() == 255 {
            ptr::null()
        } else {
            &raw const config
        };
        // SAFETY: `offset + len` ≤ the arena's length; the config is a live value or null.
        let mem = unsafe { base.add(offset) };
        assert!(offset + len <= total);
        let status = unsafe { cavmem_agent_init(mem, len, config_ptr) };
        let expected = if config_ptr.is_null() {
            CavmemStatus::NullPointer
        } else if size == 0 || !(1..=CAVMEM_MAX_VM_COUNT).contains(&config.vm_count) {
            CavmemStatus::BadConfig
        } else if shortfall > 0 || offset % cavmem_agent_align() != 0 {
            CavmemStatus::BadBuffer
        } else {
            status // the configuration itself may still be refused
        };
        assert_eq!(
            status, expected,
            "init status (policy {policy}, offset {offset}, short by {shortfall})"
        );
        assert!(
            matches!(
                status,
                CavmemStatus::Ok
                    | CavmemStatus::NullPointer
                    | CavmemStatus::BadConfig
                    | CavmemStatus::BadBuffer
            ),
            "init: {status:?}"
        );
        let live = status == CavmemStatus::Ok;

        let mut learns = 0;
        for _ in 0..256 {
            if s.done() {
                break;
            }
            let agent = if s.u8() == 255 { ptr::null_mut() } else { mem };
            let op = s.u8() % 10;
            match op {
                0 => {
                    let obs = s.obs();
                    let mut bid = f32::NAN;
                    let bid_ptr = if s.u8() == 255 {
                        ptr::null_mut()
                    } else {
                        &raw mut bid
                    };
                    // SAFETY: live locals or null; `agent` is the arena slot or null.
                    let st = unsafe { cavmem_act(agent, obs.as_ptr(), bid_ptr) };
                    check_agent_call(st, agent, live, offset);
                    if st == CavmemStatus::Ok {
                        assert!(valid_obs(&obs), "act accepted {obs:?}");
                        assert!((-1.0..=1.0).contains(&bid), "bid {bid} out of [-1, 1]");
                    } else if live && !agent.is_null() && !bid_ptr.is_null() {
                        assert_eq!(st, CavmemStatus::InvalidInput, "act refused {obs:?}");
                        assert!(!valid_obs(&obs));
                    }
                }
                1 => {
                    let (state, bid, reward, next) = (s.obs(), s.f32(), s.f32(), s.obs());
                    let (done, repeat) = (s.u8() % 2 == 1, 1 + s.u8() % 80);
                    for _ in 0..repeat {
                        // SAFETY: live arrays; `agent` as above.
                        let st =
                            unsafe { cavmem_record(agent, state.as_ptr(), bid, reward, next.as_ptr(), done) };
                        check_agent_call(st, agent, live, offset);
                        assert!(
                            matches!(
                                st,
                                CavmemStatus::Ok
                                    | CavmemStatus::InvalidInput
                                    | CavmemStatus::NullPointer
                                    | CavmemStatus::NotInitialized
                                    | CavmemStatus::BadBuffer
                            ),
                            "record: {st:?}"
                        );
                    }
                }
                2 if learns < 8 => {
                    learns += 1;
                    let mut loss = f32::NAN;
                    // SAFETY: as above.
                    let st = unsafe { cavmem_learn(agent, &raw mut loss) };
                    check_agent_call(st, agent, live, offset);
                    if st == CavmemStatus::Ok {
                        assert!(loss.is_finite(), "loss {loss}");
                    }
                }
                3 => {
                    // SAFETY: as above.
                    let st = unsafe { cavmem_start_episode(agent) };
                    check_agent_call(st, agent, live, offset);
                }
                4 => {
                    // SAFETY: as above.
                    let st = unsafe { cavmem_set_exploration(agent, s.u8() % 2 == 1) };
                    check_agent_call(st, agent, live, offset);
                }
                5 => {
                    let mut stats = CavmemStats::default();
                    // SAFETY: as above.
                    let st = unsafe { cavmem_stats(agent, &raw mut stats) };
                    check_agent_call(st, agent, live, offset);
                    if st == CavmemStatus::Ok {
                        assert!((0.0..=1.0).contains(&stats.epsilon), "ε {}", stats.epsilon);
                        assert!(stats.explored <= stats.acts && stats.fallbacks <= stats.acts);
                    }
                }
                6 => save_and_reload(&mut s, agent, live, offset),
                7 => {
                    let n = usize::from(s.u16()) % (s.0.len() + 1);
                    let bytes = &s.0[..n];
                    // SAFETY: `n` readable bytes of the script.
                    let st = unsafe { cavmem_load_snapshot(agent, bytes.as_ptr(), bytes.len()) };
                    s.0 = &s.0[n..];
                    check_agent_call(st, agent, live, offset);
                    if live && !agent.is_null() {
                        assert!(
                            matches!(st, CavmemStatus::Ok | CavmemStatus::BadSnapshot),
                            "load: {st:?}"
                        );
                        // Whatever happened, the agent still acts on a valid observation.
                        let mut bid = f32::NAN;
                        let obs = [0.1, 0.3, 0.0, -0.1, 0.6];
                        // SAFETY: live locals.
                        let st = unsafe { cavmem_act(agent, obs.as_ptr(), &raw mut bid) };
                        assert_eq!(st, CavmemStatus::Ok, "act after a load attempt");
                        assert!((-1.0..=1.0).contains(&bid));
                    }
                }
                8 => analyze(&mut s, false),
                _ => analyze(&mut s, true),
            }
        }
    });
}

/// A call on `agent`: null → NullPointer; memory that init refused → NotInitialized (or
/// BadBuffer when misaligned); a live agent → no header error.
fn check_agent_call(st: CavmemStatus, agent: *mut u8, live: bool, offset: usize) {
    if agent.is_null() {
        assert_eq!(st, CavmemStatus::NullPointer);
    } else if !live {
        let expected = if offset.is_multiple_of(cavmem_agent_align()) {
            CavmemStatus::NotInitialized
        } else {
            CavmemStatus::BadBuffer
        };
        assert_eq!(st, expected, "call on memory init refused");
    } else {
        assert!(
            !matches!(
                st,
                CavmemStatus::NotInitialized | CavmemStatus::BadBuffer | CavmemStatus::BadConfig
            ),
            "call on a live agent: {st:?}"
        );
    }
}

/// Saves into a buffer of arbitrary length; a saved snapshot loads back into the agent.
fn save_and_reload(s: &mut Script<'_>, agent: *mut u8, live: bool, offset: usize) {
    let len = match s.u8() % 3 {
        0 => usize::from(s.u16()),
        1 => 1 << 21, // room for any policy
        _ => usize::from(s.u8()),
    };
    let mut buf = vec![0u8; len];
    let mut written = usize::MAX;
    // SAFETY: `len` writable bytes; a live local for `written`.
    let st = unsafe { cavmem_save_snapshot(agent, buf.as_mut_ptr(), buf.len(), &raw mut written) };
    if !live || agent.is_null() {
        check_agent_call(st, agent, live, offset);
        return;
    }
    match st {
        CavmemStatus::Ok => {
            assert!(written <= len, "wrote {written} of {len} bytes");
            // SAFETY: `written` readable bytes.
            let back = unsafe { cavmem_load_snapshot(agent, buf.as_ptr(), written) };
            assert_eq!(back, CavmemStatus::Ok, "an agent's own snapshot loads back");
        }
        // Too small for this policy's snapshot.
        CavmemStatus::BadBuffer => assert!(len < 1 << 21, "{len} bytes refused"),
        other => panic!("save into {len} bytes: {other:?}"),
    }
}

/// The Bid Analyzer on an arbitrary node (through the fixed-size or the scratch entry).
fn analyze(s: &mut Script<'_>, scratch: bool) {
    let n = usize::from(s.u16()) % if scratch { 300 } else { CAVMEM_MAX_VMS + 8 };
    let node = CavmemNode {
        capacity_bytes: s.u64() >> (s.u8() % 64),
        floor_bytes: s.u64() >> (s.u8() % 64),
        granularity_bytes: s.u64() >> (s.u8() % 65).min(63),
        share: s.u32() % 3,
    };
    let mut allocations: Vec<u64> = (0..n).map(|_| s.u64() >> (s.u8() % 64)).collect();
    let before = allocations.clone();
    let bids: Vec<f32> = (0..n).map(|_| s.f32()).collect();
    let mut requested = vec![0u64; n];
    let want_requested = s.u8().is_multiple_of(2);
    let req_ptr = if want_requested {
        requested.as_mut_ptr()
    } else {
        ptr::null_mut()
    };
    let st = if scratch {
        let need = cavmem_bid_scratch_size(n);
        let len = need.saturating_sub(usize::from(s.u8().is_multiple_of(4)) * (1 + usize::from(s.u8())));
        let misalign = usize::from(s.u8().is_multiple_of(4)) * (1 + usize::from(s.u8()) % 7);
        let mut buf = vec![0u64; len / 8 + 2];
        assert!(misalign + len <= buf.len() * 8);
        // SAFETY: `len` writable bytes at `misalign` into `buf`.
        let scratch_ptr = unsafe { buf.as_mut_ptr().cast::<u8>().add(misalign) };
        // SAFETY: `n` elements in each array, `len` bytes of scratch.
        let st = unsafe {
            cavmem_analyze_bids_scratch(
                &raw const node,
                allocations.as_mut_ptr(),
                bids.as_ptr(),
                n,
                req_ptr,
                scratch_ptr,
                len,
            )
        };
        if len < need || misalign % cavmem_bid_scratch_align() != 0 {
            assert_eq!(st, CavmemStatus::BadBuffer, "short or misaligned scratch");
        }
        st
    } else {
        // SAFETY: `n` elements in each array.
        let st = unsafe {
            cavmem_analyze_bids(
                &raw const node,
                allocations.as_mut_ptr(),
                bids.as_ptr(),
                n,
                req_ptr,
            )
        };
        if n > CAVMEM_MAX_VMS {
            assert_eq!(st, CavmemStatus::BadBuffer, "{n} VMs > CAVMEM_MAX_VMS");
        }
        st
    };
    match st {
        CavmemStatus::Ok => {
            let sum = allocations.iter().try_fold(0u64, |acc, a| acc.checked_add(*a));
            assert!(
                sum.is_some_and(|t| t <= node.capacity_bytes),
                "allocations exceed capacity"
            );
            assert!(
                allocations.iter().all(|a| *a >= node.floor_bytes),
                "an allocation below the floor"
            );
        }
        CavmemStatus::BadConfig | CavmemStatus::InfeasibleNode | CavmemStatus::BadBuffer => {
            assert_eq!(allocations, before, "a refused call leaves the allocations alone");
        }
        other => panic!("analyze: {other:?}"),
    }
}

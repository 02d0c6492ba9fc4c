//! The C entry points on good and bad buffers, pointers and values — the unsafe code of this
//! crate. Small enough for Miri (`cargo +nightly miri test -p cavmem-capi`), which checks
//! every pointer access for undefined behaviour; the fuzz target `c_abi` covers the same
//! calls with arbitrary inputs.

use std::vec;
use std::vec::Vec;

use super::*;
use cavmem_core::agent::DdpgParams;
use cavmem_core::agent::Policy;

/// Agent memory for `policy`, aligned, with `extra` spare bytes.
fn arena(policy: u32, extra: usize) -> Vec<u64> {
    vec![0u64; (cavmem_agent_size(policy) + extra).div_ceil(8)]
}

fn config(policy: u32) -> CavmemConfig {
    CavmemConfig {
        policy,
        vm_count: 2,
        seed: 7,
        explore_steps: 2,
        anneal_steps: 2,
    }
}

const OBS: [f32; 5] = [0.1, 0.3, 0.0, -0.1, 0.6];

/// Saves the agent's snapshot into `buf`, loads it back, and returns its length.
///
/// # Safety
/// `agent` is a live agent's memory; `buf` is not part of it.
unsafe fn save_and_load(agent: *mut u8, buf: &mut [u8]) -> usize {
    let mut written = 0usize;
    // SAFETY: per the caller; `buf` is a live slice of its length.
    unsafe {
        assert_eq!(
            cavmem_save_snapshot(agent, buf.as_mut_ptr(), buf.len(), &mut written),
            CavmemStatus::Ok
        );
        assert_eq!(
            cavmem_load_snapshot(agent, buf.as_ptr(), written),
            CavmemStatus::Ok
        );
    }
    written
}

#[test]
fn capi_every_policy_acts_records_learns_and_round_trips_a_snapshot() {
    for policy in PolicyKind::ALL.map(|k| u32::from(k.code())) {
        let mut mem = arena(policy, 0);
        let len = mem.len() * 8;
        let agent = mem.as_mut_ptr().cast::<u8>();
        // SAFETY (all calls below): live buffers of the stated lengths.
        unsafe {
            assert_eq!(cavmem_agent_init(agent, len, &config(policy)), CavmemStatus::Ok);
            let mut bid = f32::NAN;
            assert_eq!(cavmem_act(agent, OBS.as_ptr(), &mut bid), CavmemStatus::Ok);
            assert!((-1.0..=1.0).contains(&bid));
            for _ in 0..3 {
                assert_eq!(
                    cavmem_record(agent, OBS.as_ptr(), bid, -0.5, OBS.as_ptr(), false),
                    CavmemStatus::Ok
                );
            }
            let mut loss = f32::NAN;
            assert_eq!(cavmem_learn(agent, &mut loss), CavmemStatus::Ok);
            assert_eq!(cavmem_start_episode(agent), CavmemStatus::Ok);
            assert_eq!(cavmem_set_exploration(agent, false), CavmemStatus::Ok);
            let mut stats = CavmemStats::default();
            assert_eq!(cavmem_stats(agent, &mut stats), CavmemStatus::Ok);
            assert_eq!(stats.acts, 1);
            if policy == 2 {
                continue; // a 1.2 MB table: too slow for Miri, covered by the native tests
            }
            let mut buf = vec![0u8; 64 << 10];
            let mut written = save_and_load(agent, &mut buf);
            assert_eq!(
                cavmem_save_snapshot(agent, buf.as_mut_ptr(), 3, &mut written),
                CavmemStatus::BadBuffer
            );
            buf[written / 2] ^= 1;
            assert_eq!(
                cavmem_load_snapshot(agent, buf.as_ptr(), written),
                CavmemStatus::BadSnapshot
            );
        }
    }
}

#[test]
fn capi_refuses_bad_pointers_buffers_and_values() {
    let mut mem = arena(3, 16);
    let len = cavmem_agent_size(3);
    let base = mem.as_mut_ptr().cast::<u8>();
    let mut bid = 0.0f32;
    // SAFETY (all calls below): live buffers of the stated lengths, or null.
    unsafe {
        assert_eq!(
            cavmem_agent_init(core::ptr::null_mut(), len, &config(3)),
            CavmemStatus::NullPointer
        );
        assert_eq!(
            cavmem_agent_init(base, len, core::ptr::null()),
            CavmemStatus::NullPointer
        );
        assert_eq!(cavmem_agent_init(base, len, &config(9)), CavmemStatus::BadConfig);
        assert_eq!(
            cavmem_agent_init(base, len - 1, &config(3)),
            CavmemStatus::BadBuffer
        );
        assert_eq!(
            cavmem_agent_init(base.add(1), len, &config(3)),
            CavmemStatus::BadBuffer
        );
        assert_eq!(
            cavmem_act(base, OBS.as_ptr(), &mut bid),
            CavmemStatus::NotInitialized
        );
        assert_eq!(
            cavmem_act(base.add(4), OBS.as_ptr(), &mut bid),
            CavmemStatus::BadBuffer
        );
        assert_eq!(cavmem_agent_init(base, len, &config(3)), CavmemStatus::Ok);
        assert_eq!(
            cavmem_act(base, core::ptr::null(), &mut bid),
            CavmemStatus::NullPointer
        );
        assert_eq!(
            cavmem_act(base, OBS.as_ptr(), core::ptr::null_mut()),
            CavmemStatus::NullPointer
        );
        let bad = [f32::NAN, 0.0, 0.0, 0.0, 0.0];
        assert_eq!(
            cavmem_act(base, bad.as_ptr(), &mut bid),
            CavmemStatus::InvalidInput
        );
        // Observations need not be aligned: C arrays inside packed structs.
        let mut packed = [0u8; 21];
        for (k, v) in OBS.iter().enumerate() {
            packed[1 + 4 * k..5 + 4 * k].copy_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(
            cavmem_act(base, packed.as_ptr().add(1).cast::<f32>(), &mut bid),
            CavmemStatus::Ok
        );
        assert_eq!(
            cavmem_load_snapshot(base, core::ptr::null(), 0),
            CavmemStatus::NullPointer
        );
        assert_eq!(
            cavmem_load_snapshot(base, [0u8; 4].as_ptr(), 4),
            CavmemStatus::BadSnapshot
        );
    }
}

/// A configuration with no VMs, or more than `CAVMEM_MAX_VM_COUNT`, is refused for every
/// policy (the equal split used to bid +1 or −1 forever with one); the limit itself is taken.
#[test]
fn capi_refuses_impossible_vm_counts() {
    for policy in PolicyKind::ALL.map(|k| u32::from(k.code())) {
        let mut mem = arena(policy, 0);
        let len = mem.len() * 8;
        let agent = mem.as_mut_ptr().cast::<u8>();
        for (vm_count, want) in [
            (0, CavmemStatus::BadConfig),
            (CAVMEM_MAX_VM_COUNT + 1, CavmemStatus::BadConfig),
            (u32::MAX, CavmemStatus::BadConfig),
            (CAVMEM_MAX_VM_COUNT, CavmemStatus::Ok),
            (1, CavmemStatus::Ok),
        ] {
            let config = CavmemConfig {
                vm_count,
                ..config(policy)
            };
            // SAFETY: a live buffer of `len` bytes and a config.
            assert_eq!(
                unsafe { cavmem_agent_init(agent, len, &config) },
                want,
                "policy {policy}, {vm_count} VMs"
            );
        }
    }
}

#[test]
fn capi_bid_analyzer_with_and_without_scratch() {
    let node = CavmemNode {
        capacity_bytes: 6 << 30,
        floor_bytes: 384 << 20,
        granularity_bytes: 4096,
        share: 0,
    };
    let bids = [0.5f32, -0.5, f32::NAN];
    let mut requested = [0u64; 3];
    // SAFETY (all calls below): arrays of three, scratch of the stated length, or null.
    unsafe {
        let mut allocations = [1u64 << 30; 3];
        let st = cavmem_analyze_bids(
            &node,
            allocations.as_mut_ptr(),
            bids.as_ptr(),
            3,
            requested.as_mut_ptr(),
        );
        assert_eq!(st, CavmemStatus::Ok);
        assert!(allocations.iter().sum::<u64>() <= node.capacity_bytes);
        assert_eq!(requested[0], 3 << 29);
        let mut again = [1u64 << 30; 3];
        let mut scratch = vec![0u64; cavmem_bid_scratch_size(3).div_ceil(8) + 1];
        let s = scratch.as_mut_ptr().cast::<u8>();
        let need = cavmem_bid_scratch_size(3);
        assert_eq!(
            cavmem_analyze_bids_scratch(
                &node,
                again.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut(),
                s,
                need
            ),
            CavmemStatus::Ok
        );
        assert_eq!(again, allocations, "both entry points give the same allocations");
        assert_eq!(
            cavmem_analyze_bids_scratch(
                &node,
                again.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut(),
                s,
                need - 1
            ),
            CavmemStatus::BadBuffer
        );
        assert_eq!(
            cavmem_analyze_bids_scratch(
                &node,
                again.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut(),
                s.add(1),
                need
            ),
            CavmemStatus::BadBuffer
        );
        assert_eq!(
            cavmem_analyze_bids(
                core::ptr::null(),
                again.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut()
            ),
            CavmemStatus::NullPointer
        );
        let tight = CavmemNode {
            capacity_bytes: 1 << 20,
            ..node
        };
        let before = again;
        assert_eq!(
            cavmem_analyze_bids(
                &tight,
                again.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut()
            ),
            CavmemStatus::InfeasibleNode
        );
        assert_eq!(again, before, "a refused call changes nothing");
        let many = vec![0.0f32; CAVMEM_MAX_VMS + 1];
        let mut allocs = vec![0u64; CAVMEM_MAX_VMS + 1];
        assert_eq!(
            cavmem_analyze_bids(
                &node,
                allocs.as_mut_ptr(),
                many.as_ptr(),
                many.len(),
                core::ptr::null_mut()
            ),
            CavmemStatus::BadBuffer
        );
    }
}

/// A typed read of zero-filled memory as a slot: Miri checks that every field's all-zero
/// bytes are a valid value (bools, enum tags, options) — what `cavmem_agent_init` relies on.
fn zero_filled_slot_is_valid<T>() {
    let mem = vec![0u64; size_of::<Slot<T>>().div_ceil(8)];
    // SAFETY: the memory is large enough and aligned (u64, and no slot needs more); the
    // read is the check (Miri reports an invalid value).
    let slot = unsafe { core::ptr::read(mem.as_ptr().cast::<Slot<T>>()) };
    assert_eq!(slot.magic, 0);
}

#[test]
fn capi_zero_filled_memory_is_a_valid_agent() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            zero_filled_slot_is_valid::<DdpgAgent>();
            zero_filled_slot_is_valid::<DqnAgent>();
            if !cfg!(miri) {
                zero_filled_slot_is_valid::<QLearning>(); // 1.2 MB: slow under Miri
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn capi_init_builds_the_same_agent_as_new() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut mem = arena(0, 0);
            let len = mem.len() * 8;
            let p = mem.as_mut_ptr().cast::<u8>();
            let c = config(0);
            let mut reference = std::boxed::Box::new(DdpgAgent::new(
                DdpgParams {
                    epsilon: schedule(&c),
                    ..DdpgParams::default()
                },
                c.seed,
            ));
            let mut ours = vec![0u8; 64 << 10];
            let mut theirs = vec![0u8; 64 << 10];
            let mut written = 0;
            // SAFETY: live buffers of the stated lengths.
            unsafe {
                assert_eq!(cavmem_agent_init(p, len, &c), CavmemStatus::Ok);
                for k in 0..20 {
                    let obs = [0.05 * k as f32 - 0.5, 0.3, 0.0, -0.1, 0.6];
                    let mut bid = f32::NAN;
                    assert_eq!(cavmem_act(p, obs.as_ptr(), &mut bid), CavmemStatus::Ok);
                    let expected = reference.act(&Observation::from_array(obs).unwrap()).unwrap().bid;
                    assert_eq!(bid.to_bits(), expected.to_bits(), "act {k}");
                }
                assert_eq!(
                    cavmem_save_snapshot(p, ours.as_mut_ptr(), ours.len(), &mut written),
                    CavmemStatus::Ok
                );
            }
            let n = reference.save_snapshot(&mut theirs).unwrap();
            assert_eq!(ours[..written], theirs[..n], "same weights");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// The thread stack docs/embedding.md and the header promise is enough for every call.
const DOCUMENTED_STACK_BYTES: usize = 16 << 10;

/// Every entry point, for every policy — init, act, record, learn past the replay's warm-up,
/// stats, snapshot save and load, and the Bid Analyzer at its largest node — on a thread
/// whose stack is the documented 16 KiB. A call that needs more overflows it, and the
/// overflow aborts this test binary.
#[test]
#[cfg_attr(
    miri,
    ignore = "70 learning steps of every policy and a 1.2 MB table: hours under Miri"
)]
fn capi_every_call_fits_the_documented_stack() {
    let run = || {
        for policy in PolicyKind::ALL.map(|k| u32::from(k.code())) {
            let mut mem = arena(policy, 0);
            let len = mem.len() * 8;
            let agent = mem.as_mut_ptr().cast::<u8>();
            let mut buf = vec![0u8; cavmem_core::agent::QLearning::SNAPSHOT_BYTES];
            // SAFETY (all calls below): live buffers of the stated lengths.
            unsafe {
                assert_eq!(cavmem_agent_init(agent, len, &config(policy)), CavmemStatus::Ok);
                let mut bid = 0.0f32;
                let mut loss = 0.0f32;
                for _ in 0..70 {
                    assert_eq!(cavmem_act(agent, OBS.as_ptr(), &mut bid), CavmemStatus::Ok);
                    assert_eq!(
                        cavmem_record(agent, OBS.as_ptr(), bid, -0.5, OBS.as_ptr(), false),
                        CavmemStatus::Ok
                    );
                    assert_eq!(cavmem_learn(agent, &mut loss), CavmemStatus::Ok);
                }
                let mut stats = CavmemStats::default();
                assert_eq!(cavmem_stats(agent, &mut stats), CavmemStatus::Ok);
                save_and_load(agent, &mut buf);
            }
        }
        let node = CavmemNode {
            capacity_bytes: 64 << 30,
            floor_bytes: 384 << 20,
            granularity_bytes: 4096,
            share: 0,
        };
        let mut allocations = [512u64 << 20; CAVMEM_MAX_VMS];
        let bids = [0.25f32; CAVMEM_MAX_VMS];
        // SAFETY: arrays of CAVMEM_MAX_VMS; `requested` null.
        let st = unsafe {
            cavmem_analyze_bids(
                &node,
                allocations.as_mut_ptr(),
                bids.as_ptr(),
                CAVMEM_MAX_VMS,
                core::ptr::null_mut(),
            )
        };
        assert_eq!(st, CavmemStatus::Ok);
    };
    std::thread::Builder::new()
        .stack_size(DOCUMENTED_STACK_BYTES)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

/// Every policy through the C entry points decides as the core's [`AnyPolicy`] built from
/// the same configuration does, to the bit, over 80 acting and learning steps on random
/// observations.
#[test]
#[cfg_attr(miri, ignore = "a 1.2 MB table and 80 learning steps: hours under Miri")]
fn capi_bids_equal_the_core_policy() {
    use cavmem_core::agent::AnyPolicy;
    use cavmem_core::rng::Rng;
    let run = || {
        for kind in PolicyKind::ALL {
            let policy = u32::from(kind.code());
            let c = config(policy);
            let mut core_policy = std::boxed::Box::new(AnyPolicy::<CAVMEM_REPLAY_CAPACITY>::new(
                kind,
                &PolicyParams::with_epsilon(schedule(&c)),
                c.seed,
                c.vm_count,
            ));
            let mut mem = arena(policy, 0);
            let len = mem.len() * 8;
            let agent = mem.as_mut_ptr().cast::<u8>();
            let mut rng = Rng::seed_from_u64(5);
            // SAFETY (all calls below): live buffers of the stated lengths.
            unsafe {
                assert_eq!(cavmem_agent_init(agent, len, &c), CavmemStatus::Ok);
                let mut obs = cavmem_core::mdp::Observation::random(&mut rng);
                for step in 0..80 {
                    let next = cavmem_core::mdp::Observation::random(&mut rng);
                    let mut bid = f32::NAN;
                    assert_eq!(
                        cavmem_act(agent, obs.to_array().as_ptr(), &mut bid),
                        CavmemStatus::Ok
                    );
                    let want = core_policy.act(&obs).unwrap().bid;
                    assert_eq!(bid.to_bits(), want.to_bits(), "{kind:?}, step {step}");
                    let t = AgentTransition {
                        state: obs,
                        bid,
                        reward: -rng.uniform_f32(),
                        next_state: next,
                        done: false,
                    };
                    let (s, n) = (t.state.to_array(), t.next_state.to_array());
                    assert_eq!(
                        cavmem_record(agent, s.as_ptr(), bid, t.reward, n.as_ptr(), false),
                        CavmemStatus::Ok
                    );
                    core_policy.record(&t).unwrap();
                    let mut loss = f32::NAN;
                    assert_eq!(cavmem_learn(agent, &mut loss), CavmemStatus::Ok);
                    core_policy.learn().unwrap();
                    obs = next;
                }
            }
        }
    };
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn capi_bid_analyzer_with_terms() {
    let node = CavmemNode {
        capacity_bytes: 4 << 30,
        floor_bytes: 384 << 20,
        granularity_bytes: 1 << 20,
        share: 0,
    };
    let gib = 1u64 << 30;
    let none = CavmemVmTerms {
        min_bytes: 0,
        max_bytes: u64::MAX,
        weight: 1,
    };
    // VM 0 reserved 1 GiB, VM 1 limited to 2 GiB, VM 2 weight 3.
    let terms = [
        CavmemVmTerms {
            min_bytes: gib,
            ..none
        },
        CavmemVmTerms {
            max_bytes: 2 * gib,
            ..none
        },
        CavmemVmTerms { weight: 3, ..none },
    ];
    let bids = [-1.0f32, 1.0, 1.0];
    let mut scratch = vec![0u64; cavmem_bid_scratch_size(3).div_ceil(8)];
    // SAFETY (all calls below): arrays of three, scratch of the stated length, or null.
    unsafe {
        let mut on_stack = [2 * gib, gib + gib / 2, gib / 2];
        let st = cavmem_analyze_bids_terms(
            &node,
            terms.as_ptr(),
            on_stack.as_mut_ptr(),
            bids.as_ptr(),
            3,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            0,
        );
        assert_eq!(st, CavmemStatus::Ok);
        assert_eq!(on_stack[0], gib, "the reservation is kept");
        assert!(on_stack[1] <= 2 * gib, "the limit holds");
        assert_eq!(on_stack.iter().sum::<u64>(), node.capacity_bytes);
        let mut in_scratch = [2 * gib, gib + gib / 2, gib / 2];
        let st = cavmem_analyze_bids_terms(
            &node,
            terms.as_ptr(),
            in_scratch.as_mut_ptr(),
            bids.as_ptr(),
            3,
            core::ptr::null_mut(),
            scratch.as_mut_ptr().cast(),
            scratch.len() * 8,
        );
        assert_eq!(
            (st, in_scratch),
            (CavmemStatus::Ok, on_stack),
            "scratch or stack, the same"
        );
        // Null terms are the analyzer without terms.
        let mut plain = [gib, gib, gib];
        let mut with_null = plain;
        assert_eq!(
            cavmem_analyze_bids(&node, plain.as_mut_ptr(), bids.as_ptr(), 3, core::ptr::null_mut()),
            CavmemStatus::Ok
        );
        let st = cavmem_analyze_bids_terms(
            &node,
            core::ptr::null(),
            with_null.as_mut_ptr(),
            bids.as_ptr(),
            3,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
            0,
        );
        assert_eq!((st, with_null), (CavmemStatus::Ok, plain));
        // Refused terms change nothing.
        let before = [gib, gib, gib];
        for (bad, status) in [
            (
                [CavmemVmTerms { weight: 0, ..none }, none, none],
                CavmemStatus::BadConfig,
            ),
            (
                [
                    CavmemVmTerms {
                        max_bytes: 1 << 20,
                        ..none
                    },
                    none,
                    none,
                ],
                CavmemStatus::BadConfig,
            ),
            (
                [CavmemVmTerms {
                    min_bytes: 2 * gib,
                    ..none
                }; 3],
                CavmemStatus::InfeasibleNode,
            ),
        ] {
            let mut allocations = before;
            let st = cavmem_analyze_bids_terms(
                &node,
                bad.as_ptr(),
                allocations.as_mut_ptr(),
                bids.as_ptr(),
                3,
                core::ptr::null_mut(),
                core::ptr::null_mut(),
                0,
            );
            assert_eq!((st, allocations), (status, before));
        }
    }
}

#[test]
fn capi_kernels_are_chosen_and_refused() {
    let detected = cavmem_kernels();
    assert_eq!(
        cavmem_select_kernels(CavmemKernels::Generic as u32),
        CavmemStatus::Ok
    );
    assert_eq!(cavmem_kernels(), CavmemKernels::Generic as u32);
    assert_eq!(cavmem_select_kernels(7), CavmemStatus::BadConfig);
    assert_eq!(cavmem_kernels(), CavmemKernels::Generic as u32);
    let avx512 = cavmem_select_kernels(CavmemKernels::Avx512 as u32);
    assert_eq!(
        avx512 == CavmemStatus::Ok,
        cavmem_core::simd::available(KernelPath::Avx512)
    );
    assert_eq!(cavmem_select_kernels(detected), CavmemStatus::Ok);
}

#[test]
fn capi_loads_a_feedback_snapshot_with_fill_to() {
    use cavmem_core::agent::{Feedback, FeedbackParams};
    use cavmem_core::mdp::Observation;
    let rule = FeedbackParams {
        fill_to: 0.9,
        ..FeedbackParams::default()
    };
    let mut core = Feedback::new(rule);
    let mut snapshot = [0u8; cavmem_core::agent::controller::SNAPSHOT_BYTES];
    let n = core.save_snapshot(&mut snapshot).unwrap();
    // Nobody misses and a quarter of the node is free: only a filling controller asks.
    let obs = [-1.0, 0.25, -1.0, 0.0, 0.75];
    let o = Observation {
        msr: obs[0],
        mem_share: obs[1],
        avg_msr: obs[2],
        msr_tgt: obs[3],
        total_mem_use: obs[4],
    };
    let expected = core.act(&o).unwrap().bid;
    assert!(expected > 0.0);
    let mut mem = arena(4, 0);
    let len = mem.len() * 8;
    let agent = mem.as_mut_ptr().cast::<u8>();
    // SAFETY (all calls below): live buffers of the stated lengths.
    unsafe {
        assert_eq!(cavmem_agent_init(agent, len, &config(4)), CavmemStatus::Ok);
        let mut bid = f32::NAN;
        assert_eq!(cavmem_act(agent, obs.as_ptr(), &mut bid), CavmemStatus::Ok);
        assert_eq!(bid, 0.0, "the default controller leaves the free memory free");
        assert_eq!(
            cavmem_load_snapshot(agent, snapshot.as_ptr(), n),
            CavmemStatus::Ok
        );
        assert_eq!(cavmem_act(agent, obs.as_ptr(), &mut bid), CavmemStatus::Ok);
        assert_eq!(bid.to_bits(), expected.to_bits());
        let mut again = [0u8; 64];
        assert_eq!(save_and_load(agent, &mut again), n);
        assert_eq!(&again[..n], &snapshot[..n]);
    }
}

/// A slot is the agent and a 16-byte header; TD3's is its own size, not the largest.
#[test]
fn capi_slot_sizes_are_the_agents_and_a_header() {
    let ddpg = cavmem_agent_size(CavmemPolicy::Ddpg as u32);
    let td3 = cavmem_agent_size(CavmemPolicy::Td3 as u32);
    std::println!("cavmem_agent_size: DDPG {ddpg} B, TD3 {td3} B");
    assert_eq!(ddpg, size_of::<DdpgAgent>() + 16);
    assert_eq!(td3, size_of::<Td3Agent>() + 16);
    assert_eq!(cavmem_agent_size(CavmemPolicy::Residual as u32), ddpg);
    assert!(td3 <= 384 * 1024 && ddpg < td3);
}

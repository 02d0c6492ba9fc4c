//! The CAVMem agent core behind a C interface, for hypervisors, kernel modules and firmware
//! written in C: the entry points of `libcavmem.a` (built by `staticlib/`, which adds the
//! panic handler). The header is `include/cavmem.h` (cbindgen).
//!
//! No allocation: the caller provides the agent's memory (`cavmem_agent_size` and
//! `cavmem_agent_align` for a policy, then `cavmem_agent_init` into that buffer). Every call
//! returns a `CavmemStatus`; none aborts the host on bad input: null pointers, short or
//! misaligned buffers, uninitialized agents, non-finite values and bad snapshots are
//! error codes.

#![no_std]

#[cfg(test)]
extern crate std;

use core::mem::{align_of, size_of};

use cavmem_core::agent::{
    AgentTransition, Ddpg, Dqn, EqualSplit, EqualSplitParams, Feedback, LearnOutcome, Mom, PolicyKind,
    PolicyParams, QLearning, SnapshotPolicy, Td3,
};
use cavmem_core::bid::{BidConfig, BidError, ShareRule, VmGrant, VmTerms, analyze_with_terms};
use cavmem_core::mdp::Observation;
use cavmem_core::noise::EpsilonSchedule;
use cavmem_core::simd::KernelPath;

/// Replay capacity of the deep learners in this library (transitions).
pub const CAVMEM_REPLAY_CAPACITY: usize = 1024;

/// Result of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CavmemStatus {
    /// Success.
    Ok = 0,
    /// A pointer argument was null.
    NullPointer = 1,
    /// A buffer was too small or misaligned.
    BadBuffer = 2,
    /// The agent memory was not initialized by `cavmem_agent_init`.
    NotInitialized = 3,
    /// Unknown policy, a VM count outside `1..=CAVMEM_MAX_VM_COUNT`, a zero granularity,
    /// or VM terms refused (a weight of 0, a limit below the VM's floor).
    BadConfig = 4,
    /// An observation or transition value was NaN, infinite or out of range.
    InvalidInput = 5,
    /// A snapshot was refused (truncated, corrupted, other version, kind or shape).
    BadSnapshot = 6,
    /// The node cannot hold its VMs at the floor (or their reservations), or its
    /// allocations exceed its capacity.
    InfeasibleNode = 7,
}

/// Policies.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CavmemPolicy {
    /// DDPG (CAVMem).
    Ddpg = 0,
    /// Deep Q-learning.
    Dqn = 1,
    /// Tabular Q-learning (1.2 MB).
    QLearning = 2,
    /// Static equal split.
    EqualSplit = 3,
    /// Proportional feedback controller (no learning; docs/agents.md).
    Feedback = 4,
    /// MOM-style fixed-step controller (no learning; docs/agents.md).
    Mom = 5,
    /// DDPG learning a correction to the feedback controller's bid (docs/agents.md).
    Residual = 6,
    /// TD3: DDPG with twin critics, delayed actor updates and target policy smoothing
    /// (docs/agents.md).
    Td3 = 7,
}

// The C values are the core's policy codes (`PolicyKind::code`, also the wire's policy byte).
const _: () = assert!(
    CavmemPolicy::Ddpg as u8 == PolicyKind::Ddpg.code()
        && CavmemPolicy::Dqn as u8 == PolicyKind::Dqn.code()
        && CavmemPolicy::QLearning as u8 == PolicyKind::QLearning.code()
        && CavmemPolicy::EqualSplit as u8 == PolicyKind::EqualSplit.code()
        && CavmemPolicy::Feedback as u8 == PolicyKind::Feedback.code()
        && CavmemPolicy::Mom as u8 == PolicyKind::Mom.code()
        && CavmemPolicy::Residual as u8 == PolicyKind::Residual.code()
        && CavmemPolicy::Td3 as u8 == PolicyKind::Td3.code()
);

/// Network kernels. Every path gives the same bits; they differ in speed.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CavmemKernels {
    /// The core's own 8-lane kernels (AVX2 and FMA in the x86-64-v3 build).
    Generic = 0,
    /// 16-lane AVX-512F kernels for the 64-wide layers (x86-64 CPUs with AVX-512F).
    Avx512 = 1,
}

const KERNELS: [(CavmemKernels, KernelPath); 2] = [
    (CavmemKernels::Generic, KernelPath::Generic),
    (CavmemKernels::Avx512, KernelPath::Avx512),
];

/// The kernels this process runs, a `CavmemKernels` value: the widest the CPU has (asked
/// once, on first use), unless `cavmem_select_kernels` chose.
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_kernels() -> u32 {
    let active = cavmem_core::simd::active();
    KERNELS
        .iter()
        .find(|(_, p)| *p == active)
        .map_or(0, |(k, _)| *k as u32)
}

/// Chooses the kernels for the whole process (`kernels`, a `CavmemKernels` value): the
/// results stay the same bits, the speed and the registers used change (the generic ones
/// touch no zmm register).
///
/// Returns `OK`; `BAD_CONFIG` for an unknown value or kernels this CPU cannot run (the
/// kernels in force stay).
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_select_kernels(kernels: u32) -> CavmemStatus {
    let path = KERNELS
        .iter()
        .find(|(k, _)| *k as u32 == kernels)
        .map(|(_, p)| *p);
    match path.map(cavmem_core::simd::select) {
        Some(Ok(())) => CavmemStatus::Ok,
        _ => CavmemStatus::BadConfig,
    }
}

/// The policy a `CavmemPolicy` value names, if any.
fn kind_of(policy: u32) -> Option<PolicyKind> {
    u8::try_from(policy).ok().and_then(PolicyKind::from_code)
}

/// The largest VM count a configuration may give (the core's `MAX_VM_COUNT`; a literal so
/// that cbindgen writes it into the header, and a compile-time check keeps them equal).
pub const CAVMEM_MAX_VM_COUNT: u32 = 65536;
const _: () = assert!(CAVMEM_MAX_VM_COUNT == cavmem_core::agent::equal_split::MAX_VM_COUNT);

/// How an agent is set up.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CavmemConfig {
    /// A `CavmemPolicy` value.
    pub policy: u32,
    /// VMs on the node, `1..=CAVMEM_MAX_VM_COUNT` (`CAVMEM_STATUS_BAD_CONFIG` otherwise;
    /// the equal split divides the node by it).
    pub vm_count: u32,
    /// Seed of the agent's random stream.
    pub seed: u64,
    /// ε = 1 for this many steps...
    pub explore_steps: u64,
    /// ...then annealed to 0.001 over this many.
    pub anneal_steps: u64,
}

/// Counters of an agent.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CavmemStats {
    /// Decisions made.
    pub acts: u64,
    /// Decisions changed by exploration.
    pub explored: u64,
    /// Learning updates taken (one that diverged is counted here and in `divergences`).
    pub learn_steps: u64,
    /// Decisions that fell back to the safe bid.
    pub fallbacks: u64,
    /// Times the networks were re-initialized after diverging.
    pub divergences: u64,
    /// Loss of the latest update.
    pub last_loss: f32,
    /// Current ε.
    pub epsilon: f32,
    /// Transitions held.
    pub replay_len: u32,
}

/// A node for the Bid Analyzer.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CavmemNode {
    /// Memory shared by the VMs, bytes.
    pub capacity_bytes: u64,
    /// Minimum allocation of a VM, bytes.
    pub floor_bytes: u64,
    /// Allocation changes are multiples of this, bytes (> 0).
    pub granularity_bytes: u64,
    /// 0: share a short pool in proportion to requests; 1: equally.
    pub share: u32,
}

/// One VM's terms with the node (`cavmem_analyze_bids_terms`), as hypervisors offer them:
/// ESX's reservation, limit and shares, Hyper-V's minimum, maximum and weight.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CavmemVmTerms {
    /// Reservation, bytes: the VM's own floor (the node's floor applies when larger).
    pub min_bytes: u64,
    /// Limit, bytes (`UINT64_MAX`: none); at least the VM's floor.
    pub max_bytes: u64,
    /// Share of contended memory, ≥ 1 (1 for every VM: no weighting).
    pub weight: u32,
}

// The same layout as the core's terms, so a caller's array is used in place.
const _: () = assert!(
    size_of::<CavmemVmTerms>() == size_of::<VmTerms>()
        && align_of::<CavmemVmTerms>() == align_of::<VmTerms>()
        && core::mem::offset_of!(CavmemVmTerms, min_bytes) == core::mem::offset_of!(VmTerms, min_bytes)
        && core::mem::offset_of!(CavmemVmTerms, max_bytes) == core::mem::offset_of!(VmTerms, max_bytes)
        && core::mem::offset_of!(CavmemVmTerms, weight) == core::mem::offset_of!(VmTerms, weight)
);

const MAGIC: u64 = 0x4341_564d_4147_4e54; // "CAVMAGNT"

/// What lives in the caller's buffer.
#[repr(C)]
struct Slot<T> {
    magic: u64,
    policy: u32,
    agent: T,
}

/// cbindgen:ignore
type DdpgAgent = Ddpg<CAVMEM_REPLAY_CAPACITY>;
/// cbindgen:ignore
type DqnAgent = Dqn<CAVMEM_REPLAY_CAPACITY>;
/// cbindgen:ignore
type Td3Agent = Td3<CAVMEM_REPLAY_CAPACITY>;

fn slot_size(policy: u32) -> usize {
    match kind_of(policy) {
        Some(PolicyKind::Ddpg | PolicyKind::Residual) => size_of::<Slot<DdpgAgent>>(),
        Some(PolicyKind::Dqn) => size_of::<Slot<DqnAgent>>(),
        Some(PolicyKind::QLearning) => size_of::<Slot<QLearning>>(),
        Some(PolicyKind::EqualSplit) => size_of::<Slot<EqualSplit>>(),
        Some(PolicyKind::Feedback) => size_of::<Slot<Feedback>>(),
        Some(PolicyKind::Mom) => size_of::<Slot<Mom>>(),
        Some(PolicyKind::Td3) => size_of::<Slot<Td3Agent>>(),
        None => 0,
    }
}

const ALIGN: usize = {
    let a = [
        align_of::<Slot<DdpgAgent>>(),
        align_of::<Slot<DqnAgent>>(),
        align_of::<Slot<QLearning>>(),
        align_of::<Slot<EqualSplit>>(),
        align_of::<Slot<Feedback>>(),
        align_of::<Slot<Mom>>(),
    ];
    let mut m = 1;
    let mut i = 0;
    while i < a.len() {
        if a[i] > m {
            m = a[i];
        }
        i += 1;
    }
    m
};

/// Bytes of agent memory for `policy` (a `CavmemPolicy`); 0 for an unknown policy.
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_agent_size(policy: u32) -> usize {
    slot_size(policy)
}

/// Alignment the agent memory needs, bytes.
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_agent_align() -> usize {
    ALIGN
}

fn schedule(c: &CavmemConfig) -> EpsilonSchedule {
    EpsilonSchedule {
        explore_steps: c.explore_steps,
        anneal_steps: c.anneal_steps.max(1),
        ..EpsilonSchedule::default()
    }
}

/// Sets up an agent in `mem` (`len` bytes, aligned to `cavmem_agent_align()`), in place.
///
/// Returns `OK`; `NULL_POINTER` (`mem` or `config` null); `BAD_CONFIG` (unknown policy, or
/// `vm_count` outside `1..=CAVMEM_MAX_VM_COUNT`); `BAD_BUFFER` (`len` below
/// `cavmem_agent_size`, or `mem` misaligned). Stack: under 16 KiB (see
/// docs/embedding.md).
///
/// # Safety
/// `mem` must point to `len` writable bytes that nothing else uses while the agent lives;
/// `config` must point to a `CavmemConfig`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_agent_init(
    mem: *mut u8,
    len: usize,
    config: *const CavmemConfig,
) -> CavmemStatus {
    if mem.is_null() || config.is_null() {
        return CavmemStatus::NullPointer;
    }
    // SAFETY: non-null, and the caller guarantees it points to a config.
    let c = unsafe { &*config };
    let (Some(kind), size) = (kind_of(c.policy), slot_size(c.policy)) else {
        return CavmemStatus::BadConfig;
    };
    if !cavmem_core::agent::equal_split::valid_vm_count(c.vm_count) {
        return CavmemStatus::BadConfig;
    }
    if len < size || !(mem as usize).is_multiple_of(ALIGN) {
        return CavmemStatus::BadBuffer;
    }
    let params = PolicyParams::with_epsilon(schedule(c));
    let code = u32::from(kind.code());
    // SAFETY: `mem` is large enough and aligned for the slot (checked above) and exclusively
    // ours. The slot is zero-filled first: all-zero bytes are a valid value of every slot
    // type (each agent's `zeroed()`: numbers, arrays of numbers, `false`, and enums and
    // options whose zero tag is a valid variant — Miri checks a typed read of zero-filled
    // memory in `capi_zero_filled_memory_is_a_valid_agent`). The agent is then set up in
    // place by `reset`: no agent-sized temporary on the stack, and no copy of a constant
    // agent in the library.
    unsafe {
        core::ptr::write_bytes(mem, 0, size);
        mem.add(8).cast::<u32>().write(code);
        match kind {
            PolicyKind::Ddpg => (*mem.cast::<Slot<DdpgAgent>>()).agent.reset(params.ddpg, c.seed),
            PolicyKind::Residual => {
                (*mem.cast::<Slot<DdpgAgent>>())
                    .agent
                    .reset_with(params.ddpg, Some(params.residual), c.seed);
            }
            PolicyKind::Dqn => (*mem.cast::<Slot<DqnAgent>>()).agent.reset(params.dqn, c.seed),
            PolicyKind::QLearning => (*mem.cast::<Slot<QLearning>>()).agent.reset(params.ql, c.seed),
            PolicyKind::EqualSplit => {
                (*mem.cast::<Slot<EqualSplit>>()).agent =
                    EqualSplit::new(EqualSplitParams { vm_count: c.vm_count });
            }
            PolicyKind::Feedback => (*mem.cast::<Slot<Feedback>>()).agent = Feedback::new(params.feedback),
            PolicyKind::Mom => (*mem.cast::<Slot<Mom>>()).agent = Mom::new(params.mom),
            PolicyKind::Td3 => {
                (*mem.cast::<Slot<Td3Agent>>())
                    .agent
                    .reset(params.td3_learner(), c.seed);
            }
        }
        // Written last: the slot is valid only once everything above is.
        mem.cast::<u64>().write(MAGIC);
    }
    CavmemStatus::Ok
}

/// The agent in `mem`, if `cavmem_agent_init` set one up there.
///
/// # Safety
/// `mem` is null or points to memory passed to `cavmem_agent_init` (or at least 16 readable bytes).
unsafe fn agent<'a>(mem: *mut u8) -> Result<&'a mut dyn SnapshotPolicy, CavmemStatus> {
    if mem.is_null() {
        return Err(CavmemStatus::NullPointer);
    }
    if !(mem as usize).is_multiple_of(ALIGN) {
        return Err(CavmemStatus::BadBuffer);
    }
    // SAFETY: aligned and, per the caller, at least the slot header is readable.
    let (magic, policy) = unsafe { (mem.cast::<u64>().read(), mem.add(8).cast::<u32>().read()) };
    if magic != MAGIC {
        return Err(CavmemStatus::NotInitialized);
    }
    // SAFETY: the magic says cavmem_agent_init wrote a slot of this policy here.
    unsafe {
        Ok(match kind_of(policy) {
            Some(PolicyKind::Ddpg | PolicyKind::Residual) => &mut (*mem.cast::<Slot<DdpgAgent>>()).agent,
            Some(PolicyKind::Dqn) => &mut (*mem.cast::<Slot<DqnAgent>>()).agent,
            Some(PolicyKind::QLearning) => &mut (*mem.cast::<Slot<QLearning>>()).agent,
            Some(PolicyKind::EqualSplit) => &mut (*mem.cast::<Slot<EqualSplit>>()).agent,
            Some(PolicyKind::Feedback) => &mut (*mem.cast::<Slot<Feedback>>()).agent,
            Some(PolicyKind::Mom) => &mut (*mem.cast::<Slot<Mom>>()).agent,
            Some(PolicyKind::Td3) => &mut (*mem.cast::<Slot<Td3Agent>>()).agent,
            None => return Err(CavmemStatus::NotInitialized),
        })
    }
}

/// Reads five floats.
///
/// # Safety
/// `p` is null or points to five floats.
unsafe fn obs5(p: *const f32) -> Result<Observation, CavmemStatus> {
    if p.is_null() {
        return Err(CavmemStatus::NullPointer);
    }
    let mut v = [0.0f32; 5];
    // SAFETY: per the caller, five readable floats (read unaligned: C arrays may be packed).
    for (k, x) in v.iter_mut().enumerate() {
        *x = unsafe { p.add(k).read_unaligned() };
    }
    Observation::from_array(v).map_err(|_| CavmemStatus::InvalidInput)
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return status,
        }
    };
}

/// Chooses a bid in [-1, 1] for the observation `obs[5]` (Table 1 order) into `*bid`.
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there); `NULL_POINTER` (`obs` or `bid` null); `INVALID_INPUT` (an
/// observation value NaN, infinite or out of range; `*bid` untouched). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call; `obs` points to five floats; `bid` to one writable float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_act(agent: *mut u8, obs: *const f32, bid: *mut f32) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    let o = tri!(unsafe { obs5(obs) });
    if bid.is_null() {
        return CavmemStatus::NullPointer;
    }
    match a.act(&o) {
        // SAFETY: non-null and, per the caller, writable.
        Ok(d) => unsafe { bid.write_unaligned(d.bid) },
        Err(_) => return CavmemStatus::InvalidInput,
    }
    CavmemStatus::Ok
}

/// Records a transition: `state[5]`, the bid taken, its reward, `next_state[5]`, end of episode.
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there); `NULL_POINTER` (`state` or `next_state` null); `INVALID_INPUT` (a
/// NaN, infinite or out-of-range value; nothing recorded). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call; `state` and `next_state` point to five floats each.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_record(
    agent: *mut u8,
    state: *const f32,
    bid: f32,
    reward: f32,
    next_state: *const f32,
    done: bool,
) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    let s = tri!(unsafe { obs5(state) });
    let n = tri!(unsafe { obs5(next_state) });
    match a.record(&AgentTransition {
        state: s,
        bid,
        reward,
        next_state: n,
        done,
    }) {
        Ok(()) => CavmemStatus::Ok,
        Err(_) => CavmemStatus::InvalidInput,
    }
}

/// One learning step; `*loss` (if not null) gets its loss, 0 when skipped (too few
/// transitions yet, a policy that does not learn, or a diverged network re-initialized:
/// `cavmem_stats` counts those).
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there). Stack: under 16 KiB (7,520 bytes at most in `cavmem-fw`, measured).
///
/// # Safety
/// `agent` as for every call; `loss` is null or points to one writable float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_learn(agent: *mut u8, loss: *mut f32) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    let l = match a.learn() {
        Ok(LearnOutcome::Updated { loss }) => loss,
        _ => 0.0,
    };
    if !loss.is_null() {
        // SAFETY: non-null and, per the caller, writable.
        unsafe { loss.write_unaligned(l) };
    }
    CavmemStatus::Ok
}

/// Starts an episode (resets exploration noise).
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_start_episode(agent: *mut u8) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    a.start_episode();
    CavmemStatus::Ok
}

/// Turns exploration on (training) or off (evaluation).
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_set_exploration(agent: *mut u8, on: bool) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    a.set_exploration(on);
    CavmemStatus::Ok
}

/// Copies the agent's counters into `*out`.
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there); `NULL_POINTER` (`out` null). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call; `out` points to a writable `CavmemStats`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_stats(agent: *mut u8, out: *mut CavmemStats) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    if out.is_null() {
        return CavmemStatus::NullPointer;
    }
    let s = a.stats();
    let stats = CavmemStats {
        acts: s.acts,
        explored: s.explored,
        learn_steps: s.learn_steps,
        fallbacks: s.fallbacks,
        divergences: s.divergences,
        last_loss: s.last_loss,
        epsilon: s.epsilon,
        replay_len: s.replay_len,
    };
    // SAFETY: non-null and, per the caller, writable.
    unsafe { out.write_unaligned(stats) };
    CavmemStatus::Ok
}

/// Writes the policy's snapshot (docs/snapshot.md) into `buf` (`len` bytes); `*written`
/// gets its length.
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there); `NULL_POINTER` (`buf` or `written` null); `BAD_BUFFER` (`len` too
/// small for the snapshot). Stack: under 16 KiB.
///
/// # Safety
/// `agent` as for every call; `buf` points to `len` writable bytes; `written` to a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_save_snapshot(
    agent: *mut u8,
    buf: *mut u8,
    len: usize,
    written: *mut usize,
) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    if buf.is_null() || written.is_null() {
        return CavmemStatus::NullPointer;
    }
    // SAFETY: per the caller, `len` writable bytes that do not overlap the agent.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len) };
    match a.save_snapshot(out) {
        // SAFETY: non-null and, per the caller, writable.
        Ok(n) => unsafe { written.write_unaligned(n) },
        Err(_) => return CavmemStatus::BadBuffer,
    }
    CavmemStatus::Ok
}

/// Loads a snapshot of the agent's policy from `buf` (`len` bytes, exactly the snapshot);
/// the agent is unchanged on error. Every check (length, header, CRC, kind, shape, finite
/// values, bids) comes before the values are copied into the agent's own memory.
///
/// Returns `OK`; `NULL_POINTER` (`agent` null), `BAD_BUFFER` (`agent` misaligned), `NOT_INITIALIZED` (no agent set up there); `NULL_POINTER` (`buf` null); `BAD_SNAPSHOT` (any check failed).
/// Stack: under 16 KiB (no network-sized temporary).
///
/// # Safety
/// `agent` as for every call; `buf` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_load_snapshot(agent: *mut u8, buf: *const u8, len: usize) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    let a = tri!(unsafe { self::agent(agent) });
    if buf.is_null() {
        return CavmemStatus::NullPointer;
    }
    // SAFETY: per the caller, `len` readable bytes.
    let bytes = unsafe { core::slice::from_raw_parts(buf, len) };
    match a.load_snapshot(bytes) {
        Ok(()) => CavmemStatus::Ok,
        Err(_) => CavmemStatus::BadSnapshot,
    }
}

/// Largest node `cavmem_analyze_bids` takes in one call, VMs; larger nodes use
/// `cavmem_analyze_bids_scratch` with caller-provided scratch memory.
pub const CAVMEM_MAX_VMS: usize = 64;

/// The Bid Analyzer on checked slices; `grants` has one slot per VM.
fn analyze_node(
    node: &CavmemNode,
    terms: Option<&[VmTerms]>,
    allocs: &mut [u64],
    bids: &[f32],
    grants: &mut [VmGrant],
    requested: *mut u64,
) -> CavmemStatus {
    let config = BidConfig {
        capacity_bytes: node.capacity_bytes,
        floor_bytes: node.floor_bytes,
        granularity_bytes: node.granularity_bytes,
        share: if node.share == 1 {
            ShareRule::Equal
        } else {
            ShareRule::Proportional
        },
    };
    let result = match terms {
        Some(terms) => analyze_with_terms(&config, terms, allocs, bids, grants),
        None => cavmem_core::bid::analyze(&config, allocs, bids, grants),
    };
    match result {
        Ok(_) => {}
        Err(BidError::ZeroGranularity | BidError::BadTerms { .. }) => return CavmemStatus::BadConfig,
        Err(_) => return CavmemStatus::InfeasibleNode,
    }
    if !requested.is_null() {
        for (k, g) in grants.iter().enumerate() {
            // SAFETY: non-null and, per the caller of the public function, `n` writable elements.
            unsafe { requested.add(k).write_unaligned(g.requested_bytes) };
        }
    }
    CavmemStatus::Ok
}

/// The Bid Analyzer for a whole node of `n` VMs (at most `CAVMEM_MAX_VMS`): `allocations[n]`
/// (bytes) hold the current allocations on entry and the new ones on return; `bids[n]` are
/// the VMs' bids; `requested[n]` (if not null) gets each VM's request `(1 + bid)·M` in bytes.
/// Bids are sanitized, not refused: a NaN or infinite bid counts as 0 (hold) and any other
/// bid is clamped to [-1, 1], so a faulty agent cannot stop the node's step.
///
/// Returns `OK`; `NULL_POINTER` (`node`, `allocations` or `bids` null); `BAD_BUFFER` (`n`
/// above `CAVMEM_MAX_VMS`); `BAD_CONFIG` (zero granularity); `INFEASIBLE_NODE` (the VMs'
/// floors do not fit the capacity, or the allocations given already exceed it); on any error `allocations`
/// are as they were. Stack: under 16 KiB (the grants of `CAVMEM_MAX_VMS` VMs on it).
///
/// # Safety
/// `node` points to a `CavmemNode`; `allocations` to `n` writable `uint64_t`; `bids` to
/// `n` floats; `requested` is null or points to `n` writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_analyze_bids(
    node: *const CavmemNode,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
) -> CavmemStatus {
    // SAFETY: forwarded caller guarantees.
    unsafe { analyze_on_stack(node, core::ptr::null(), allocations, bids, n, requested) }
}

/// Runs the analyzer with the grants of at most `CAVMEM_MAX_VMS` VMs on the stack.
///
/// # Safety
/// As `cavmem_analyze_bids_terms` with a null `scratch`.
unsafe fn analyze_on_stack(
    node: *const CavmemNode,
    terms: *const CavmemVmTerms,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
) -> CavmemStatus {
    let mut grants = [VmGrant::default(); CAVMEM_MAX_VMS];
    let Some(grants) = grants.get_mut(..n) else {
        return CavmemStatus::BadBuffer;
    };
    // SAFETY: forwarded caller guarantees.
    unsafe { analyze_with(node, terms, allocations, bids, n, requested, grants) }
}

/// Bytes of scratch memory `cavmem_analyze_bids_scratch` needs for `n` VMs.
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_bid_scratch_size(n: usize) -> usize {
    n.saturating_mul(size_of::<VmGrant>())
}

/// Alignment of that scratch memory, bytes.
#[unsafe(no_mangle)]
pub extern "C" fn cavmem_bid_scratch_align() -> usize {
    align_of::<VmGrant>()
}

/// `cavmem_analyze_bids` for a node of any size, with `scratch` (`scratch_len` bytes,
/// at least `cavmem_bid_scratch_size(n)`, aligned to `cavmem_bid_scratch_align()`)
/// provided by the caller.
///
/// Returns what `cavmem_analyze_bids` returns, and `NULL_POINTER` (`scratch` null) or
/// `BAD_BUFFER` (scratch too small or misaligned) instead of a limit on `n`.
///
/// # Safety
/// As `cavmem_analyze_bids`; `scratch` points to `scratch_len` writable bytes used by
/// nothing else during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_analyze_bids_scratch(
    node: *const CavmemNode,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
    scratch: *mut u8,
    scratch_len: usize,
) -> CavmemStatus {
    if scratch.is_null() {
        return CavmemStatus::NullPointer;
    }
    // SAFETY: forwarded caller guarantees.
    unsafe {
        analyze_in_scratch(
            node,
            core::ptr::null(),
            allocations,
            bids,
            n,
            requested,
            scratch,
            scratch_len,
        )
    }
}

/// The Bid Analyzer with per-VM terms: `terms[n]` gives each VM's reservation, limit and
/// weight (`docs/embedding.md`); otherwise as `cavmem_analyze_bids` (`scratch` null, at
/// most `CAVMEM_MAX_VMS` VMs) or `cavmem_analyze_bids_scratch` (`scratch` given). `terms`
/// null gives every VM no reservation, no limit and weight 1: the same result as without
/// terms. A VM's reservation is never taken from it, it never holds more than its limit
/// (one above it, after the limit was lowered, is brought down to it), and a short free
/// pool is shared by weight.
///
/// Returns what those return, and `BAD_CONFIG` for a weight of 0 or a limit below the VM's
/// floor, `INFEASIBLE_NODE` when the VMs' floors (reservations, or the node's floor where
/// larger) exceed the capacity; on any error `allocations` are as they were.
///
/// # Safety
/// As `cavmem_analyze_bids` (and `cavmem_analyze_bids_scratch` when `scratch` is not
/// null); `terms` is null or points to `n` `CavmemVmTerms`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cavmem_analyze_bids_terms(
    node: *const CavmemNode,
    terms: *const CavmemVmTerms,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
    scratch: *mut u8,
    scratch_len: usize,
) -> CavmemStatus {
    if !scratch.is_null() {
        // SAFETY: forwarded caller guarantees.
        return unsafe {
            analyze_in_scratch(node, terms, allocations, bids, n, requested, scratch, scratch_len)
        };
    }
    // SAFETY: forwarded caller guarantees.
    unsafe { analyze_on_stack(node, terms, allocations, bids, n, requested) }
}

/// Checks the scratch buffer, sets up the grants in it and runs the analyzer.
///
/// # Safety
/// As `cavmem_analyze_bids_terms` with a non-null `scratch`.
#[allow(clippy::too_many_arguments)]
unsafe fn analyze_in_scratch(
    node: *const CavmemNode,
    terms: *const CavmemVmTerms,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
    scratch: *mut u8,
    scratch_len: usize,
) -> CavmemStatus {
    if scratch_len < cavmem_bid_scratch_size(n) || !(scratch as usize).is_multiple_of(align_of::<VmGrant>()) {
        return CavmemStatus::BadBuffer;
    }
    let first = scratch.cast::<VmGrant>();
    for k in 0..n {
        // SAFETY: inside the checked, aligned scratch buffer.
        unsafe { first.add(k).write(VmGrant::default()) };
    }
    // SAFETY: `n` initialized, aligned grants in memory the caller gave us alone.
    let grants = unsafe { core::slice::from_raw_parts_mut(first, n) };
    // SAFETY: forwarded caller guarantees.
    unsafe { analyze_with(node, terms, allocations, bids, n, requested, grants) }
}

/// Checks the pointers and runs the analyzer.
///
/// # Safety
/// As `cavmem_analyze_bids`.
unsafe fn analyze_with(
    node: *const CavmemNode,
    terms: *const CavmemVmTerms,
    allocations: *mut u64,
    bids: *const f32,
    n: usize,
    requested: *mut u64,
    grants: &mut [VmGrant],
) -> CavmemStatus {
    if node.is_null() || allocations.is_null() || bids.is_null() {
        return CavmemStatus::NullPointer;
    }
    // SAFETY: non-null and, per the caller, valid for `n` elements each.
    let (node, allocs, bids) = unsafe {
        (
            &*node,
            core::slice::from_raw_parts_mut(allocations, n),
            core::slice::from_raw_parts(bids, n),
        )
    };
    // SAFETY: null, or `n` terms per the caller; `CavmemVmTerms` has `VmTerms`'s layout
    // (checked at compile time).
    let terms =
        (!terms.is_null()).then(|| unsafe { core::slice::from_raw_parts(terms.cast::<VmTerms>(), n) });
    analyze_node(node, terms, allocs, bids, grants, requested)
}

#[cfg(test)]
mod tests;

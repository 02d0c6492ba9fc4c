//! The agent's side of the protocol: one agent, answering each request with one reply.
//!
//! [`AgentServer`] owns the agent (any of the four policies, replay capacity `R`) and a
//! staging area of `S` bytes for snapshots. [`AgentServer::serve`] turns one decoder event
//! (a frame or a frame error) into one encoded reply frame; a transport only moves bytes.
//! A refused request leaves the agent untouched. The server also runs the Bid Analyzer for
//! a host that sends Analyze requests; that needs no agent.

use crate::agent::{
    AgentTransition, AnyPolicy, PolicyError, PolicyKind, PolicyParams, PolicySlots, SnapshotPolicy,
};
use crate::mdp::{Observation, STATE_DIM};
use crate::noise::EpsilonSchedule;
use crate::snapshot::SnapshotError;

use super::analyze::{ALLOCATION_BYTES, Allocations, MAX_ANALYZE_VMS};
use super::frame::{FrameError, MAX_FRAME, PROTOCOL_VERSION, encode_frame};
use super::message::{Configure, ErrorCode, Message, SNAPSHOT_CHUNK, WireTransition};

/// One agent behind the wire protocol.
///
/// The policies sit side by side ([`PolicySlots`]) and Configure resets the chosen one in
/// place, so a server can be a zero-initialized `static` and setting up an agent needs no
/// stack copy of it.
#[derive(Debug)]
pub struct AgentServer<const R: usize, const S: usize> {
    slots: PolicySlots<R>,
    staging: [u8; S],
    staged: usize,
    /// The last Analyze request's allocations, as the reply carries them.
    allocated: [u8; MAX_ANALYZE_VMS * ALLOCATION_BYTES],
}

impl<const R: usize, const S: usize> Default for AgentServer<R, S> {
    fn default() -> Self {
        Self::new()
    }
}

fn error(code: ErrorCode, detail: u8) -> Message<'static> {
    Message::Error { code, detail }
}

fn snapshot_detail(e: SnapshotError) -> u8 {
    match e {
        SnapshotError::Truncated { .. } => 1,
        SnapshotError::BadMagic => 2,
        SnapshotError::UnsupportedVersion { .. } => 3,
        SnapshotError::WrongKind { .. } => 4,
        SnapshotError::ShapeMismatch => 5,
        SnapshotError::BadCrc => 6,
        SnapshotError::NonFinite { .. } => 7,
        SnapshotError::BufferTooSmall { .. } => 8,
        SnapshotError::TrailingBytes { .. } => 9,
    }
}

/// The ε schedule a [`Configure`] asks for.
fn schedule(c: &Configure) -> EpsilonSchedule {
    EpsilonSchedule {
        explore_steps: c.explore_steps,
        anneal_steps: c.anneal_steps.max(1),
        ..EpsilonSchedule::default()
    }
}

/// The policy a [`Configure`] asks for ([`AnyPolicy::new`] with the paper's parameters and
/// the Configure's ε schedule; the harness's `Hyperparams` send the same values); `None`
/// for an unknown policy byte.
pub fn configured_policy<const R: usize>(c: &Configure) -> Option<AnyPolicy<R>> {
    let kind = PolicyKind::from_code(c.policy)?;
    Some(AnyPolicy::new(
        kind,
        &PolicyParams::with_epsilon(schedule(c)),
        c.seed,
        c.vm_count,
    ))
}

impl<const R: usize, const S: usize> AgentServer<R, S> {
    /// A server with no agent yet (`const`, for `static` placement).
    pub const fn new() -> Self {
        Self {
            slots: PolicySlots::new(),
            staging: [0; S],
            staged: 0,
            allocated: [0; MAX_ANALYZE_VMS * ALLOCATION_BYTES],
        }
    }

    /// Sets up the policy a [`Configure`] asks for, in place; the BadConfig detail (1 unknown
    /// policy, 2 VM count outside `1..=MAX_VM_COUNT`) when it is refused, with nothing changed.
    fn configure(&mut self, c: &Configure) -> Result<PolicyKind, u8> {
        let kind = PolicyKind::from_code(c.policy).ok_or(1_u8)?;
        if !crate::agent::equal_split::valid_vm_count(c.vm_count) {
            return Err(2);
        }
        let params = PolicyParams::with_epsilon(schedule(c));
        self.slots.configure(kind, &params, c.seed, c.vm_count);
        Ok(kind)
    }

    /// Runs the Bid Analyzer for an Analyze request. Not inlined: its VM arrays (about
    /// 2 KiB) stay off the stack of the other requests.
    #[inline(never)]
    fn analyze(&mut self, node: &crate::bid::BidConfig, vms: super::analyze::AnalyzeVms<'_>) -> Message<'_> {
        match super::analyze::run(node, vms, &mut self.allocated) {
            Ok((summary, n)) => {
                let bytes = crate::rows::prefix(&self.allocated, n * ALLOCATION_BYTES);
                match Allocations::from_bytes(bytes) {
                    Some(allocations) => Message::Allocated {
                        free_bytes: summary.free_bytes,
                        sanitized_bids: summary.sanitized_bids,
                        allocations,
                    },
                    None => error(ErrorCode::Malformed, 0x0A),
                }
            }
            Err(e) => error(ErrorCode::Analyze, super::analyze::error_detail(e)),
        }
    }

    /// Answers one decoder event with one reply frame written into `out` (at least
    /// [`MAX_FRAME`] bytes); returns the frame's length (0 if `out` is too small).
    pub fn serve(&mut self, event: Result<(u8, &[u8]), FrameError>, out: &mut [u8]) -> usize {
        let reply = match event {
            Err(e) => error(ErrorCode::BadFrame, e.code()),
            Ok((msg_type, payload)) => match Message::decode(msg_type, payload) {
                Ok(msg) => self.handle(msg),
                Err(_) => error(ErrorCode::Malformed, msg_type),
            },
        };
        let mut payload = [0u8; MAX_FRAME];
        let Ok(n) = reply.encode_payload(&mut payload) else {
            return 0;
        };
        encode_frame(reply.type_byte(), crate::rows::prefix(&payload, n), out).unwrap_or(0)
    }

    /// Answers one request.
    pub fn handle<'s>(&'s mut self, msg: Message<'_>) -> Message<'s> {
        if let Message::Configure(c) = msg {
            let policy = match self.configure(&c) {
                Ok(kind) => kind,
                Err(detail) => return error(ErrorCode::BadConfig, detail),
            };
            self.staged = 0;
            return Message::Hello {
                protocol: PROTOCOL_VERSION,
                policy,
                agent_bytes: core::mem::size_of::<Self>() as u32,
            };
        }
        if let Message::Analyze { node, vms } = msg {
            return self.analyze(&node, vms);
        }
        let Self {
            slots,
            staging,
            staged,
            ..
        } = self;
        let Some(agent) = slots.active() else {
            return error(ErrorCode::NotConfigured, msg.type_byte());
        };
        match msg {
            Message::Act { obs } => act(agent, obs),
            Message::Transition(t) => record(agent, &t),
            Message::Learn => match agent.learn() {
                Ok(outcome) => Message::Learned { outcome },
                Err(_) => error(ErrorCode::InvalidTransition, 2),
            },
            Message::StartEpisode => {
                agent.start_episode();
                Message::Ack
            }
            Message::SetExploration { on } => {
                agent.set_exploration(on);
                Message::Ack
            }
            Message::GetStats => Message::Stats(agent.stats()),
            Message::SnapshotRead { offset } => snapshot_read(agent, staging, staged, offset),
            Message::SnapshotWrite { total, offset, data } => {
                snapshot_write(agent, staging, staged, (total as usize, offset as usize), data)
            }
            // Replies are not requests.
            other => error(ErrorCode::Malformed, other.type_byte()),
        }
    }
}

// The request handlers below are `inline(always)`: as parts of `handle` they keep every
// request's stack high-water in cavmem-fw where docs/embedding.md measures it (out of line,
// or left to the inliner, each request took 32-144 B more).

/// Act: the agent's bid for one observation (refused when it is not finite).
#[inline(always)]
fn act(agent: &mut dyn SnapshotPolicy, obs: [f32; STATE_DIM]) -> Message<'static> {
    let result = Observation::from_array(obs)
        .map_err(PolicyError::from)
        .and_then(|o| agent.act(&o));
    match result {
        Ok(d) => Message::Bid {
            bid: d.bid,
            explored: d.explored,
            fallback: d.fallback,
        },
        Err(_) => error(ErrorCode::InvalidObservation, 0),
    }
}

/// Transition: one step into the agent's replay (detail 0: a state not finite; 1: refused
/// by the agent).
#[inline(always)]
fn record(agent: &mut dyn SnapshotPolicy, t: &WireTransition) -> Message<'static> {
    let (Ok(state), Ok(next_state)) = (
        Observation::from_array(t.state),
        Observation::from_array(t.next_state),
    ) else {
        return error(ErrorCode::InvalidTransition, 0);
    };
    let transition = AgentTransition {
        state,
        bid: t.bid,
        reward: t.reward,
        next_state,
        done: t.done,
    };
    match agent.record(&transition) {
        Ok(()) => Message::Ack,
        Err(_) => error(ErrorCode::InvalidTransition, 1),
    }
}

/// SnapshotRead: offset 0 takes a snapshot into `staging`; every request returns the
/// chunk at `offset` of the one taken.
#[inline(always)]
fn snapshot_read<'s>(
    agent: &mut dyn SnapshotPolicy,
    staging: &'s mut [u8],
    staged: &mut usize,
    offset: u32,
) -> Message<'s> {
    if offset == 0 {
        match agent.save_snapshot(staging) {
            Ok(n) => *staged = n,
            Err(e) => return error(ErrorCode::Snapshot, snapshot_detail(e)),
        }
    } else if *staged == 0 || offset as usize > *staged {
        // No snapshot taken (offset 0 takes one), or past its end.
        let truncated = SnapshotError::Truncated {
            needed: offset as usize,
            got: *staged,
        };
        return error(ErrorCode::Snapshot, snapshot_detail(truncated));
    }
    let start = (offset as usize).min(*staged);
    let end = (start + SNAPSHOT_CHUNK).min(*staged);
    Message::SnapshotData {
        total: *staged as u32,
        offset: start as u32,
        data: staging.get(start..end).unwrap_or_default(),
    }
}

/// SnapshotWrite: chunks in order into `staging`; the last one loads the snapshot.
#[inline(always)]
fn snapshot_write(
    agent: &mut dyn SnapshotPolicy,
    staging: &mut [u8],
    staged: &mut usize,
    (total, offset): (usize, usize),
    data: &[u8],
) -> Message<'static> {
    if total > staging.len() {
        return error(
            ErrorCode::Snapshot,
            snapshot_detail(SnapshotError::BufferTooSmall { needed: total }),
        );
    }
    if offset == 0 {
        *staged = 0;
    }
    let in_order = offset == *staged && offset + data.len() <= total;
    let Some(dst) = staging.get_mut(offset..offset + data.len()).filter(|_| in_order) else {
        *staged = 0;
        let truncated = SnapshotError::Truncated {
            needed: total,
            got: offset,
        };
        return error(ErrorCode::Snapshot, snapshot_detail(truncated));
    };
    dst.copy_from_slice(data);
    *staged += data.len();
    if *staged < total {
        return Message::Ack;
    }
    *staged = 0;
    match agent.load_snapshot(crate::rows::prefix(staging, total)) {
        Ok(()) => Message::Ack,
        Err(e) => error(ErrorCode::Snapshot, snapshot_detail(e)),
    }
}

#[cfg(test)]
mod tests;

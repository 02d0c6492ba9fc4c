//! Typed messages: what each frame's payload means (docs/protocol.md has the byte tables).
//!
//! Requests go from the host to the agent (types `0x01`–`0x0A`); every request gets
//! exactly one reply (types `0x81`–`0x8A`, or [`Message::Error`] `0xFF`). All numbers are
//! little-endian; `f32` is IEEE 754 binary32; booleans are one byte, 0 or 1.

use crate::agent::PolicyKind;
use crate::agent::common::{Fallback, LearnOutcome, PolicyStats};
use crate::bid::BidConfig;
use crate::mdp::STATE_DIM;

use super::analyze::{ALLOCATED_HEADER_BYTES, ANALYZE_HEADER_BYTES, Allocations, AnalyzeVms};

/// How the agent of a `cavmem-fw` process is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Configure {
    /// Policy: its code ([`PolicyKind::code`]: 0 DDPG, 1 DQN, 2 Q-learning, 3 equal split).
    /// A byte, not a [`PolicyKind`]: a host may send any, and the agent answers an unknown
    /// one with BadConfig detail 1.
    pub policy: u8,
    /// Seed of the agent's random stream.
    pub seed: u64,
    /// Number of VMs on the node (the equal split needs it).
    pub vm_count: u32,
    /// ε schedule: steps of full exploration.
    pub explore_steps: u64,
    /// ε schedule: steps of annealing after them.
    pub anneal_steps: u64,
}

/// One step of experience, as sent in [`Message::Transition`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WireTransition {
    /// State (Table 1 order).
    pub state: [f32; STATE_DIM],
    /// The bid taken.
    pub bid: f32,
    /// The reward.
    pub reward: f32,
    /// Next state.
    pub next_state: [f32; STATE_DIM],
    /// End of episode.
    pub done: bool,
}

/// Error codes of [`Message::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ErrorCode {
    /// A frame was bad (detail: the frame error's code).
    BadFrame = 0x01,
    /// Unknown message type or wrong payload length (detail: the message type).
    Malformed = 0x10,
    /// A request other than Configure before the agent was configured.
    NotConfigured = 0x11,
    /// The observation was invalid (detail: the field index).
    InvalidObservation = 0x12,
    /// The transition was invalid.
    InvalidTransition = 0x13,
    /// A snapshot was refused (detail: which check failed).
    Snapshot = 0x14,
    /// The configuration is not usable (detail: 1 unknown policy).
    BadConfig = 0x15,
    /// The Bid Analyzer refused an Analyze request (detail: [`super::analyze::error_detail`]).
    Analyze = 0x16,
}

impl ErrorCode {
    /// The code for a byte, if known.
    pub fn from_byte(b: u8) -> Option<Self> {
        [
            Self::BadFrame,
            Self::Malformed,
            Self::NotConfigured,
            Self::InvalidObservation,
            Self::InvalidTransition,
            Self::Snapshot,
            Self::BadConfig,
            Self::Analyze,
        ]
        .into_iter()
        .find(|c| *c as u8 == b)
    }
}

/// Every message of the protocol.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Message<'a> {
    /// `0x01` host → agent: set up a fresh agent. Reply: [`Message::Hello`].
    Configure(Configure),
    /// `0x02`: act on an observation. Reply: [`Message::Bid`].
    Act {
        /// The observation (Table 1 order).
        obs: [f32; STATE_DIM],
    },
    /// `0x03`: record a transition. Reply: [`Message::Ack`].
    Transition(WireTransition),
    /// `0x04`: one learning step. Reply: [`Message::Learned`].
    Learn,
    /// `0x05`: an episode starts. Reply: [`Message::Ack`].
    StartEpisode,
    /// `0x06`: exploration on (training) or off. Reply: [`Message::Ack`].
    SetExploration {
        /// On or off.
        on: bool,
    },
    /// `0x07`: ask for the statistics. Reply: [`Message::Stats`].
    GetStats,
    /// `0x08`: ask for the policy snapshot from `offset`. Reply: [`Message::SnapshotData`].
    SnapshotRead {
        /// First byte wanted.
        offset: u32,
    },
    /// `0x09`: a piece of a snapshot to load; the agent loads it when the last piece
    /// arrives. Reply: [`Message::Ack`] or [`Message::Error`].
    SnapshotWrite {
        /// The snapshot's total length.
        total: u32,
        /// Where this piece goes.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// `0x0A`: run the Bid Analyzer on a node's VMs (needs no Configure). Reply:
    /// [`Message::Allocated`] or [`Message::Error`] code Analyze.
    Analyze {
        /// Capacity, floor, granularity and share rule.
        node: BidConfig,
        /// 1 to [`super::analyze::MAX_ANALYZE_VMS`] VMs: allocation, bid and terms.
        vms: AnalyzeVms<'a>,
    },
    /// `0x81` agent → host: configured.
    Hello {
        /// Protocol version.
        protocol: u8,
        /// The policy configured.
        policy: PolicyKind,
        /// Bytes of agent state (static memory).
        agent_bytes: u32,
    },
    /// `0x82`: the decision.
    Bid {
        /// The bid.
        bid: f32,
        /// Changed by exploration.
        explored: bool,
        /// Why a safe bid was used, if one was (on the wire [`Fallback::code`], 0 for none).
        fallback: Option<Fallback>,
    },
    /// `0x83`: done.
    Ack,
    /// `0x84`: learning result: on the wire an outcome byte (0 skipped, 1 updated,
    /// 2 recovered from divergence) and the update's loss (0 unless updated).
    Learned {
        /// What the learning step did.
        outcome: LearnOutcome,
    },
    /// `0x87`: statistics.
    Stats(PolicyStats),
    /// `0x88`: a piece of the snapshot.
    SnapshotData {
        /// The snapshot's total length.
        total: u32,
        /// Where this piece starts.
        offset: u32,
        /// The bytes.
        data: &'a [u8],
    },
    /// `0x8A`: the Bid Analyzer's result.
    Allocated {
        /// Unallocated memory after the call, bytes.
        free_bytes: u64,
        /// Bids that were NaN or infinite and counted as 0.
        sanitized_bids: u32,
        /// The new allocations, bytes, in the request's VM order.
        allocations: Allocations<'a>,
    },
    /// `0xFF`: the request (or frame) was refused.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// Detail, per code.
        detail: u8,
    },
}

/// Largest piece of a snapshot in one message.
pub const SNAPSHOT_CHUNK: usize = 1000;

/// Why a payload is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageError {
    /// Unknown message type.
    UnknownType(u8),
    /// The payload length is wrong for the type.
    BadLength(u8),
    /// A field has an impossible value (e.g. a boolean other than 0 or 1).
    BadValue(u8),
    /// The output buffer is too small.
    TooLong,
}

impl core::fmt::Display for MessageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UnknownType(t) => write!(f, "unknown message type 0x{t:02x}"),
            Self::BadLength(t) => write!(f, "wrong payload length for message type 0x{t:02x}"),
            Self::BadValue(t) => write!(f, "impossible field value in message type 0x{t:02x}"),
            Self::TooLong => f.write_str("message does not fit the buffer"),
        }
    }
}

impl core::error::Error for MessageError {}

/// A bounded little-endian writer.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn bytes(&mut self, b: &[u8]) -> Result<(), MessageError> {
        let dst = self
            .buf
            .get_mut(self.pos..self.pos + b.len())
            .ok_or(MessageError::TooLong)?;
        dst.copy_from_slice(b);
        self.pos += b.len();
        Ok(())
    }
    fn u8(&mut self, v: u8) -> Result<(), MessageError> {
        self.bytes(&[v])
    }
    fn u32(&mut self, v: u32) -> Result<(), MessageError> {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<(), MessageError> {
        self.bytes(&v.to_le_bytes())
    }
    fn f32(&mut self, v: f32) -> Result<(), MessageError> {
        self.bytes(&v.to_le_bytes())
    }
    fn f32s(&mut self, v: &[f32]) -> Result<(), MessageError> {
        v.iter().try_for_each(|x| self.f32(*x))
    }
}

/// A bounded little-endian reader; every read past the end is an error.
struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
    msg_type: u8,
}

impl<'b> Reader<'b> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], MessageError> {
        let s = self
            .buf
            .get(self.pos..self.pos + n)
            .ok_or(MessageError::BadLength(self.msg_type))?;
        self.pos += n;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, MessageError> {
        Ok(self.array::<1>()?[0])
    }
    fn bool(&mut self) -> Result<bool, MessageError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(MessageError::BadValue(self.msg_type)),
        }
    }
    fn u32(&mut self) -> Result<u32, MessageError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, MessageError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn f32(&mut self) -> Result<f32, MessageError> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    fn f32s<const N: usize>(&mut self) -> Result<[f32; N], MessageError> {
        let mut a = [0.0f32; N];
        for x in &mut a {
            *x = self.f32()?;
        }
        Ok(a)
    }
    fn finish(&self) -> Result<(), MessageError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(MessageError::BadLength(self.msg_type))
        }
    }
}

/// The payloads with more than one field, one parser each (the layouts in docs/protocol.md).
/// `inline(always)`: as parts of `Message::decode` they keep cavmem-fw's stack high-water
/// where docs/embedding.md measures it.
impl<'b> Reader<'b> {
    fn bad_value(&self) -> MessageError {
        MessageError::BadValue(self.msg_type)
    }

    /// The rest of the payload, after a header of `header` bytes.
    fn rest(&mut self, header: usize) -> Result<&'b [u8], MessageError> {
        self.take(self.buf.len().saturating_sub(header))
    }

    #[inline(always)]
    fn configure(&mut self) -> Result<Configure, MessageError> {
        let policy = self.u8()?;
        self.take(3)?;
        Ok(Configure {
            policy,
            seed: self.u64()?,
            vm_count: self.u32()?,
            explore_steps: self.u64()?,
            anneal_steps: self.u64()?,
        })
    }

    #[inline(always)]
    fn transition(&mut self) -> Result<WireTransition, MessageError> {
        Ok(WireTransition {
            state: self.f32s()?,
            bid: self.f32()?,
            reward: self.f32()?,
            next_state: self.f32s()?,
            done: self.bool()?,
        })
    }

    /// SnapshotWrite's and SnapshotData's (total, offset, data).
    #[inline(always)]
    fn snapshot_chunk(&mut self) -> Result<(u32, u32, &'b [u8]), MessageError> {
        let (total, offset) = (self.u32()?, self.u32()?);
        if self.buf.len().saturating_sub(8) > SNAPSHOT_CHUNK {
            return Err(MessageError::BadLength(self.msg_type));
        }
        Ok((total, offset, self.rest(8)?))
    }

    #[inline(always)]
    fn analyze(&mut self) -> Result<(BidConfig, AnalyzeVms<'b>), MessageError> {
        let node = BidConfig {
            capacity_bytes: self.u64()?,
            floor_bytes: self.u64()?,
            granularity_bytes: self.u64()?,
            share: super::analyze::share_from_code(self.u8()?).ok_or(self.bad_value())?,
        };
        self.take(3)?;
        let records = self.rest(ANALYZE_HEADER_BYTES)?;
        let vms = AnalyzeVms::from_bytes(records).ok_or(MessageError::BadLength(self.msg_type))?;
        Ok((node, vms))
    }

    #[inline(always)]
    fn allocated(&mut self) -> Result<Message<'b>, MessageError> {
        let (free_bytes, sanitized_bids) = (self.u64()?, self.u32()?);
        self.take(4)?;
        let records = self.rest(ALLOCATED_HEADER_BYTES)?;
        let allocations = Allocations::from_bytes(records).ok_or(MessageError::BadLength(self.msg_type))?;
        Ok(Message::Allocated {
            free_bytes,
            sanitized_bids,
            allocations,
        })
    }

    #[inline(always)]
    fn hello(&mut self) -> Result<Message<'b>, MessageError> {
        let protocol = self.u8()?;
        let policy = PolicyKind::from_code(self.u8()?).ok_or(self.bad_value())?;
        self.take(2)?;
        Ok(Message::Hello {
            protocol,
            policy,
            agent_bytes: self.u32()?,
        })
    }

    #[inline(always)]
    fn bid(&mut self) -> Result<Message<'b>, MessageError> {
        let bid = self.f32()?;
        let explored = self.bool()?;
        let fallback = match self.u8()? {
            0 => None,
            code => Some(Fallback::from_code(code).ok_or(self.bad_value())?),
        };
        Ok(Message::Bid {
            bid,
            explored,
            fallback,
        })
    }

    /// Learned's outcome: its code and a loss that is 0 unless the code is 1 (Updated).
    #[inline(always)]
    fn learned(&mut self) -> Result<LearnOutcome, MessageError> {
        let (code, loss) = (self.u8()?, self.f32()?);
        let outcome = match code {
            0 => LearnOutcome::Skipped,
            1 => LearnOutcome::Updated { loss },
            2 => LearnOutcome::Recovered,
            _ => return Err(self.bad_value()),
        };
        if code != 1 && loss.to_bits() != 0 {
            return Err(self.bad_value());
        }
        Ok(outcome)
    }

    #[inline(always)]
    fn stats(&mut self) -> Result<PolicyStats, MessageError> {
        Ok(PolicyStats {
            acts: self.u64()?,
            explored: self.u64()?,
            learn_steps: self.u64()?,
            fallbacks: self.u64()?,
            divergences: self.u64()?,
            last_loss: self.f32()?,
            epsilon: self.f32()?,
            replay_len: self.u32()?,
        })
    }
}

impl<'a> Message<'a> {
    /// The message type byte.
    pub const fn type_byte(&self) -> u8 {
        match self {
            Self::Configure(_) => 0x01,
            Self::Act { .. } => 0x02,
            Self::Transition(_) => 0x03,
            Self::Learn => 0x04,
            Self::StartEpisode => 0x05,
            Self::SetExploration { .. } => 0x06,
            Self::GetStats => 0x07,
            Self::SnapshotRead { .. } => 0x08,
            Self::SnapshotWrite { .. } => 0x09,
            Self::Analyze { .. } => 0x0A,
            Self::Hello { .. } => 0x81,
            Self::Bid { .. } => 0x82,
            Self::Ack => 0x83,
            Self::Learned { .. } => 0x84,
            Self::Stats(_) => 0x87,
            Self::SnapshotData { .. } => 0x88,
            Self::Allocated { .. } => 0x8A,
            Self::Error { .. } => 0xFF,
        }
    }

    /// Writes the payload into `out`; returns its length.
    ///
    /// # Errors
    /// [`MessageError::TooLong`] when `out` is too small.
    pub fn encode_payload(&self, out: &mut [u8]) -> Result<usize, MessageError> {
        let mut w = Writer { buf: out, pos: 0 };
        match self {
            Self::Configure(c) => {
                w.u8(c.policy)?;
                w.bytes(&[0; 3])?;
                w.u64(c.seed)?;
                w.u32(c.vm_count)?;
                w.u64(c.explore_steps)?;
                w.u64(c.anneal_steps)?;
            }
            Self::Act { obs } => w.f32s(obs)?,
            Self::Transition(t) => {
                w.f32s(&t.state)?;
                w.f32(t.bid)?;
                w.f32(t.reward)?;
                w.f32s(&t.next_state)?;
                w.u8(u8::from(t.done))?;
            }
            Self::Learn | Self::StartEpisode | Self::GetStats | Self::Ack => {}
            Self::SetExploration { on } => w.u8(u8::from(*on))?,
            Self::SnapshotRead { offset } => w.u32(*offset)?,
            Self::SnapshotWrite { total, offset, data } | Self::SnapshotData { total, offset, data } => {
                w.u32(*total)?;
                w.u32(*offset)?;
                w.bytes(data)?;
            }
            Self::Analyze { node, vms } => {
                w.u64(node.capacity_bytes)?;
                w.u64(node.floor_bytes)?;
                w.u64(node.granularity_bytes)?;
                w.u8(super::analyze::share_code(node.share))?;
                w.bytes(&[0; 3])?;
                w.bytes(vms.bytes())?;
            }
            Self::Allocated {
                free_bytes,
                sanitized_bids,
                allocations,
            } => {
                w.u64(*free_bytes)?;
                w.u32(*sanitized_bids)?;
                w.bytes(&[0; 4])?;
                w.bytes(allocations.bytes())?;
            }
            Self::Hello {
                protocol,
                policy,
                agent_bytes,
            } => {
                w.u8(*protocol)?;
                w.u8(policy.code())?;
                w.bytes(&[0; 2])?;
                w.u32(*agent_bytes)?;
            }
            Self::Bid {
                bid,
                explored,
                fallback,
            } => {
                w.f32(*bid)?;
                w.u8(u8::from(*explored))?;
                w.u8(fallback.map_or(0, Fallback::code))?;
            }
            Self::Learned { outcome } => {
                let (code, loss) = match *outcome {
                    LearnOutcome::Skipped => (0, 0.0),
                    LearnOutcome::Updated { loss } => (1, loss),
                    LearnOutcome::Recovered => (2, 0.0),
                };
                w.u8(code)?;
                w.f32(loss)?;
            }
            Self::Stats(s) => {
                w.u64(s.acts)?;
                w.u64(s.explored)?;
                w.u64(s.learn_steps)?;
                w.u64(s.fallbacks)?;
                w.u64(s.divergences)?;
                w.f32(s.last_loss)?;
                w.f32(s.epsilon)?;
                w.u32(s.replay_len)?;
            }
            Self::Error { code, detail } => {
                w.u8(*code as u8)?;
                w.u8(*detail)?;
            }
        }
        Ok(w.pos)
    }

    /// Parses the payload of a frame of type `msg_type`.
    ///
    /// # Errors
    /// [`MessageError`] for an unknown type, a wrong length or an impossible value.
    pub fn decode(msg_type: u8, payload: &'a [u8]) -> Result<Self, MessageError> {
        let mut r = Reader {
            buf: payload,
            pos: 0,
            msg_type,
        };
        let msg = match msg_type {
            0x01 => Self::Configure(r.configure()?),
            0x02 => Self::Act { obs: r.f32s()? },
            0x03 => Self::Transition(r.transition()?),
            0x04 => Self::Learn,
            0x05 => Self::StartEpisode,
            0x06 => Self::SetExploration { on: r.bool()? },
            0x07 => Self::GetStats,
            0x08 => Self::SnapshotRead { offset: r.u32()? },
            0x09 => {
                let (total, offset, data) = r.snapshot_chunk()?;
                Self::SnapshotWrite { total, offset, data }
            }
            0x88 => {
                let (total, offset, data) = r.snapshot_chunk()?;
                Self::SnapshotData { total, offset, data }
            }
            0x0A => {
                let (node, vms) = r.analyze()?;
                Self::Analyze { node, vms }
            }
            0x8A => r.allocated()?,
            0x81 => r.hello()?,
            0x82 => r.bid()?,
            0x83 => Self::Ack,
            0x84 => Self::Learned {
                outcome: r.learned()?,
            },
            0x87 => Self::Stats(r.stats()?),
            0xFF => {
                let code = ErrorCode::from_byte(r.u8()?).ok_or(r.bad_value())?;
                Self::Error {
                    code,
                    detail: r.u8()?,
                }
            }
            other => return Err(MessageError::UnknownType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests;

//! Agents that act with an int8 actor (`cavmem run --load FILE --no-learn --int8`): the
//! core's [`FrozenInt8`] made from a DDPG, TD3 or `residual` snapshot. Each also computes
//! the `f32` policy's bid for the same observation, so a run measures how far the int8
//! decisions are from the ones the snapshot would make ([`Int8Tolerance`]).

use std::sync::{Arc, Mutex};

use cavmem_core::agent::int8::{FrozenInt8, QuantizeError};
use cavmem_core::agent::{
    AgentTransition, Decision, FrozenActor, FrozenResidual, LearnOutcome, Policy, PolicyError, PolicyStats,
    SnapshotPolicy,
};
use cavmem_core::mdp::Observation;
use cavmem_core::snapshot::{self, SnapshotError, SnapshotKind};

/// The `f32` policy a snapshot holds.
#[derive(Clone, Debug)]
enum Source {
    Actor(Box<FrozenActor>),
    Residual(Box<FrozenResidual>),
}

impl Source {
    fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        match self {
            Self::Actor(p) => p.act(obs),
            Self::Residual(p) => p.act(obs),
        }
    }
}

/// How far the int8 bids were from the `f32` ones, over every decision of the agents
/// that share it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Int8Tolerance {
    /// Decisions compared.
    pub decisions: u64,
    /// The largest |int8 bid − f32 bid|.
    pub max_abs_diff: f64,
    /// Sum of |int8 bid − f32 bid| (the mean is this over `decisions`).
    pub sum_abs_diff: f64,
}

impl Int8Tolerance {
    /// The mean |int8 bid − f32 bid| (0 before any decision).
    pub fn mean_abs_diff(&self) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            self.sum_abs_diff / self.decisions as f64
        }
    }
}

/// An agent acting with an int8 actor; it never learns or explores.
#[derive(Debug)]
pub struct Int8Agent {
    source: Source,
    /// The snapshot it was made from.
    bytes: Vec<u8>,
    int8: FrozenInt8,
    stats: PolicyStats,
    tolerance: Arc<Mutex<Int8Tolerance>>,
}

impl Int8Agent {
    /// An agent made from a DDPG or TD3 actor snapshot (kind 0) or a `residual` one (kind
    /// 6); it adds its comparisons to `tolerance`.
    ///
    /// # Errors
    /// [`SnapshotError`] naming the failed check; [`SnapshotError::WrongKind`] for a
    /// snapshot of another policy.
    pub fn from_snapshot(bytes: &[u8], tolerance: Arc<Mutex<Int8Tolerance>>) -> Result<Self, SnapshotError> {
        let (source, int8) = quantized(bytes)?;
        Ok(Self {
            source,
            bytes: bytes.to_vec(),
            int8,
            stats: PolicyStats::ZERO,
            tolerance,
        })
    }
}

impl Int8Agent {
    /// Whether it runs a `residual` policy (else a DDPG or TD3 actor).
    pub fn is_residual(&self) -> bool {
        self.int8.residual().is_some()
    }
}

/// The `f32` policy in `bytes` and its int8 version.
fn quantized(bytes: &[u8]) -> Result<(Source, FrozenInt8), SnapshotError> {
    // A loaded policy's parameters are finite (the reader checks), so quantizing fails only
    // for a policy that normalizes its observations (the int8 path does not): refused as
    // a snapshot of another shape.
    let refused = |e| match e {
        QuantizeError::NormalizedInputs => SnapshotError::ShapeMismatch,
        QuantizeError::NonFiniteParameter => SnapshotError::NonFinite { index: 0 },
    };
    match snapshot::read_header(bytes)?.kind {
        SnapshotKind::DdpgActor => {
            let mut p = Box::new(FrozenActor::zeroed());
            p.load_snapshot(bytes)?;
            let q = FrozenInt8::from_actor(&p).map_err(refused)?;
            Ok((Source::Actor(p), q))
        }
        SnapshotKind::ResidualActor => {
            let mut p = Box::new(FrozenResidual::zeroed());
            p.load_snapshot(bytes)?;
            let q = FrozenInt8::from_residual(&p).map_err(refused)?;
            Ok((Source::Residual(p), q))
        }
        other => Err(SnapshotError::WrongKind { found: other as u8 }),
    }
}

impl Policy for Int8Agent {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        let decision = self.int8.act(obs)?;
        let reference = self.source.act(obs)?;
        let diff = f64::from((decision.bid - reference.bid).abs());
        if let Ok(mut t) = self.tolerance.lock() {
            t.decisions += 1;
            t.max_abs_diff = t.max_abs_diff.max(diff);
            t.sum_abs_diff += diff;
        }
        self.stats.acts += 1;
        self.stats.fallbacks += u64::from(decision.fallback.is_some());
        Ok(decision)
    }

    fn record(&mut self, transition: &AgentTransition) -> Result<(), PolicyError> {
        cavmem_core::agent::common::check_transition(transition)
    }

    fn learn(&mut self) -> Result<LearnOutcome, PolicyError> {
        Ok(LearnOutcome::Skipped)
    }

    fn start_episode(&mut self) {}

    fn set_exploration(&mut self, _on: bool) {}

    fn stats(&self) -> PolicyStats {
        self.stats
    }
}

impl SnapshotPolicy for Int8Agent {
    /// Writes the snapshot the agent was made from (the `f32` actor).
    fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let n = self.bytes.len();
        out.get_mut(..n)
            .ok_or(SnapshotError::BufferTooSmall { needed: n })?
            .copy_from_slice(&self.bytes);
        Ok(n)
    }

    /// Replaces the policy with the one in `bytes` (as [`Int8Agent::from_snapshot`]);
    /// unchanged on error.
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        (self.source, self.int8) = quantized(bytes)?;
        self.bytes = bytes.to_vec();
        Ok(())
    }
}

//! The four policies of the paper behind one trait: DDPG (CAVMem), DQN, tabular
//! Q-learning and the static equal split; two controllers that do not learn
//! ([`controller`]: proportional feedback and MOM-style fixed steps); and [`residual`],
//! DDPG learning a correction to the feedback controller (with an optional [`shield`]).
//!
//! The decision loop of every VM agent is the same: [`Policy::act`] on an observation
//! gives a bid; after the Bid Analyzer and one node step, [`Policy::record`] stores the
//! transition and [`Policy::learn`] updates the policy. What all learners share lives
//! once in [`common`] (target networks with Adam and soft updates, the ε-greedy
//! explorer, statistics); each agent file holds only what differs.
//!
//! [`PolicyKind`] is the registry of policies: each one's name, its byte on the wire and in
//! the C ABI, and (with [`PolicyParams`]) its constructor, [`AnyPolicy::new`]. [`AnyPolicy`]
//! dispatches over them without a heap; [`PolicySlots`] sets one up in place, for static
//! or caller-provided memory. Adding a policy adds a variant to each and an arm to their
//! matches, which the compiler lists.

pub mod common;
pub mod controller;
#[cfg(feature = "learn")]
pub mod ddpg;
#[cfg(feature = "learn")]
pub mod dqn;
pub mod equal_split;
pub mod frozen;
pub mod int8;
pub mod normalize;
#[cfg(feature = "learn")]
pub mod ql;
pub mod residual;
pub mod shapes;
pub mod shield;
#[cfg(feature = "learn")]
pub mod slots;

pub use common::{Decision, Fallback, LearnOutcome, PolicyError, PolicyStats};
pub use controller::{Feedback, FeedbackParams, Mom, MomParams};
#[cfg(feature = "learn")]
pub use ddpg::{Ddpg, DdpgParams, LinearCritic, PaperCritic, Td3, Td3Params};
#[cfg(feature = "learn")]
pub use dqn::{Dqn, DqnParams};
pub use equal_split::{EqualSplit, EqualSplitParams};
pub use frozen::{FrozenActor, FrozenQNetwork, FrozenQTable, FrozenResidual};
#[cfg(feature = "learn")]
pub use ql::{QLearning, QlParams};
pub use residual::ResidualParams;
pub use shield::{ShieldParams, ShieldStats};
#[cfg(feature = "learn")]
pub use slots::PolicySlots;

use crate::mdp::Observation;
#[cfg(feature = "learn")]
use crate::snapshot::SnapshotError;

/// One step of one agent's experience, as the harness or hypervisor reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AgentTransition {
    /// The observation the agent acted on.
    pub state: Observation,
    /// The bid it chose (as returned by [`Policy::act`]).
    pub bid: f32,
    /// The reward of Eq. 2 for the step.
    pub reward: f32,
    /// The observation after the step.
    pub next_state: Observation,
    /// Whether the episode ended with this step.
    pub done: bool,
}

impl AgentTransition {
    /// A random transition, drawn in field order: both observations from
    /// [`Observation::random`], a bid in [-1, 1), a reward in (-1, 0], not the episode's
    /// end. For benchmarks and tests that need a filled replay.
    pub fn random(rng: &mut crate::rng::Rng) -> Self {
        Self {
            state: Observation::random(rng),
            bid: rng.uniform_range(-1.0, 1.0),
            reward: -rng.uniform_f32(),
            next_state: Observation::random(rng),
            done: false,
        }
    }
}

/// The decision loop every policy implements.
pub trait Policy {
    /// Chooses a bid in [-1, 1] for `obs`, exploring if exploration is on.
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`] for a non-finite or out-of-range observation.
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError>;

    /// Stores one transition for learning.
    ///
    /// # Errors
    /// [`PolicyError::InvalidTransition`] when a value is not finite or out of range; nothing is stored.
    fn record(&mut self, transition: &AgentTransition) -> Result<(), PolicyError>;

    /// One learning step (a minibatch update, or a table update).
    ///
    /// # Errors
    /// None today for the shipped policies; the `Result` leaves room for policies that can fail.
    fn learn(&mut self) -> Result<LearnOutcome, PolicyError>;

    /// Marks the start of an episode (resets exploration noise).
    fn start_episode(&mut self);

    /// Turns exploration on (training) or off (evaluation).
    fn set_exploration(&mut self, on: bool);

    /// Counters and the latest loss.
    fn stats(&self) -> PolicyStats;

    /// Whether every learned parameter (networks and their targets, or the table) is finite:
    /// a health check for the host. The network policies re-initialize diverged networks on
    /// their own and count it in [`PolicyStats::divergences`]; this lets the host verify it.
    fn parameters_finite(&self) -> bool {
        true
    }

    /// Fault-injection drills only (feature `fault-injection`): overwrites online parameter
    /// `index` (modulo their count) with `value`, as a memory fault would. Returns whether the
    /// policy has parameters that recover from divergence (the network policies).
    #[cfg(feature = "fault-injection")]
    fn inject_parameter_fault(&mut self, index: usize, value: f32) -> bool {
        let _ = (index, value);
        false
    }
}

/// A policy that can be saved to and loaded from a snapshot (docs/snapshot.md).
pub trait SnapshotPolicy: Policy {
    /// Writes the policy's snapshot into `out`; returns its length.
    ///
    /// # Errors
    /// [`crate::snapshot::SnapshotError::BufferTooSmall`].
    fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, crate::snapshot::SnapshotError>;
    /// Loads a snapshot of this kind of policy; unchanged on error.
    ///
    /// # Errors
    /// [`crate::snapshot::SnapshotError`] naming the failed check.
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), crate::snapshot::SnapshotError>;
}

/// Implements [`SnapshotPolicy`] through the type's own `save_snapshot` and `load_snapshot`.
macro_rules! snapshot_policy {
    ($($t:ty),* $(,)?) => {$(
        impl SnapshotPolicy for $t {
            fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, crate::snapshot::SnapshotError> {
                <$t>::save_snapshot(self, out)
            }
            fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), crate::snapshot::SnapshotError> {
                <$t>::load_snapshot(self, bytes)
            }
        }
    )*};
}

snapshot_policy!(EqualSplit, Feedback, Mom);
#[cfg(feature = "learn")]
snapshot_policy!(QLearning);

#[cfg(feature = "learn")]
impl<const R: usize, const C: usize, const K: usize> SnapshotPolicy for Ddpg<R, C, LinearCritic, K> {
    fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, crate::snapshot::SnapshotError> {
        Ddpg::save_snapshot(self, out)
    }
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), crate::snapshot::SnapshotError> {
        Ddpg::load_snapshot(self, bytes)
    }
}

#[cfg(feature = "learn")]
impl<const R: usize, const C: usize> SnapshotPolicy for Dqn<R, C> {
    fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, crate::snapshot::SnapshotError> {
        Dqn::save_snapshot(self, out)
    }
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), crate::snapshot::SnapshotError> {
        Dqn::load_snapshot(self, bytes)
    }
}

/// Which policy: the paper's four, the two controllers, then residual learning on the
/// feedback controller and TD3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PolicyKind {
    /// CAVMem: DDPG, continuous bids.
    Ddpg,
    /// Deep Q-learning, three discrete bids.
    Dqn,
    /// Tabular Q-learning, three discrete bids.
    QLearning,
    /// The static equal split.
    EqualSplit,
    /// The proportional feedback controller ([`controller::feedback`]).
    Feedback,
    /// The MOM-style fixed-step controller ([`controller::mom`]).
    Mom,
    /// DDPG learning a correction to the feedback controller's bid ([`residual`]).
    Residual,
    /// TD3: DDPG with twin critics, delayed actor updates and target policy smoothing
    /// ([`Td3`], [`Td3Params`]).
    Td3,
}

impl PolicyKind {
    /// Every policy: the paper's four in its order, the controllers, then `residual` and
    /// `td3`.
    pub const ALL: [Self; 8] = [
        Self::Ddpg,
        Self::Dqn,
        Self::QLearning,
        Self::EqualSplit,
        Self::Feedback,
        Self::Mom,
        Self::Residual,
        Self::Td3,
    ];

    /// The short name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ddpg => "ddpg",
            Self::Dqn => "dqn",
            Self::QLearning => "ql",
            Self::EqualSplit => "static",
            Self::Feedback => "feedback",
            Self::Mom => "mom",
            Self::Residual => "residual",
            Self::Td3 => "td3",
        }
    }

    /// Parses a short name (`ddpg`, `dqn`, `ql`, `static`, `feedback`, `mom`, `residual`,
    /// `td3`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The policy's byte in the wire protocol's Configure and Hello (docs/protocol.md) and
    /// its `CavmemPolicy` value in the C ABI: its place in [`PolicyKind::ALL`].
    ///
    /// ```
    /// use cavmem_core::agent::PolicyKind;
    /// assert_eq!(PolicyKind::QLearning.code(), 2);
    /// assert_eq!(PolicyKind::from_code(2), Some(PolicyKind::QLearning));
    /// ```
    pub const fn code(self) -> u8 {
        match self {
            Self::Ddpg => 0,
            Self::Dqn => 1,
            Self::QLearning => 2,
            Self::EqualSplit => 3,
            Self::Feedback => 4,
            Self::Mom => 5,
            Self::Residual => 6,
            Self::Td3 => 7,
        }
    }

    /// The policy with byte `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Whether the policy learns (`learn` updates it); the equal split and the
    /// controllers do not.
    pub const fn learns(self) -> bool {
        match self {
            Self::Ddpg | Self::Dqn | Self::QLearning | Self::Residual | Self::Td3 => true,
            Self::EqualSplit | Self::Feedback | Self::Mom => false,
        }
    }
}

/// The parameters of every policy: [`AnyPolicy::new`] and [`PolicySlots::configure`] take
/// the chosen one's (the equal split needs only the VM count).
#[cfg(feature = "learn")]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PolicyParams {
    /// DDPG.
    pub ddpg: DdpgParams,
    /// DQN.
    pub dqn: DqnParams,
    /// Q-learning.
    pub ql: QlParams,
    /// The feedback controller.
    pub feedback: FeedbackParams,
    /// The fixed-step controller.
    pub mom: MomParams,
    /// The residual policy's scale, base controller and shield (its learner takes
    /// [`Self::ddpg`]).
    pub residual: ResidualParams,
    /// TD3's own settings (the rest are [`Self::ddpg`]'s).
    pub td3: Td3Params,
}

#[cfg(feature = "learn")]
impl PolicyParams {
    /// TD3's learner parameters: [`Self::ddpg`] with [`Self::td3`]'s settings.
    pub fn td3_learner(&self) -> DdpgParams {
        self.td3.on(self.ddpg)
    }

    /// The paper's parameters with the exploration schedule `epsilon` for every learner
    /// (what a wire Configure or a C `CavmemConfig` asks for).
    pub fn with_epsilon(epsilon: crate::noise::EpsilonSchedule) -> Self {
        Self {
            ddpg: DdpgParams {
                epsilon,
                ..DdpgParams::default()
            },
            dqn: DqnParams {
                epsilon,
                ..DqnParams::default()
            },
            ql: QlParams {
                epsilon,
                ..QlParams::default()
            },
            ..Self::default()
        }
    }
}

/// Any of the policies, with replay capacity `R` and training chunks of `C` rows
/// ([`ddpg::CHUNK`]) for the two deep learners (with the `learn` feature).
#[cfg(feature = "learn")]
#[derive(Clone, Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "the core has no heap: callers box it or place it in a static"
)]
pub enum AnyPolicy<const R: usize, const C: usize = { ddpg::CHUNK }> {
    /// CAVMem, or the `residual` policy (DDPG correcting the feedback controller).
    Ddpg(Ddpg<R, C>),
    /// Deep Q-learning.
    Dqn(Dqn<R, C>),
    /// Tabular Q-learning.
    QLearning(QLearning),
    /// Static equal split.
    EqualSplit(EqualSplit),
    /// Proportional feedback.
    Feedback(Feedback),
    /// Fixed steps (MOM-style).
    Mom(Mom),
    /// TD3.
    Td3(Td3<R, C>),
}

#[cfg(feature = "learn")]
impl<const R: usize, const C: usize> AnyPolicy<R, C> {
    /// A fresh policy of `kind` with its parameters from `params`, seeded with `seed`; the
    /// equal split divides among `vm_count` VMs (at least 1). Built by value: box it, or
    /// use [`PolicySlots`] to set one up in place.
    pub fn new(kind: PolicyKind, params: &PolicyParams, seed: u64, vm_count: u32) -> Self {
        match kind {
            PolicyKind::Ddpg | PolicyKind::Residual => {
                let residual = (kind == PolicyKind::Residual).then_some(params.residual);
                Self::Ddpg(Ddpg::new_with(params.ddpg, residual, seed))
            }
            PolicyKind::Dqn => Self::Dqn(Dqn::new(params.dqn, seed)),
            PolicyKind::QLearning => Self::QLearning(QLearning::new(params.ql, seed)),
            PolicyKind::EqualSplit => Self::EqualSplit(EqualSplit::new(EqualSplitParams {
                vm_count: vm_count.max(1),
            })),
            PolicyKind::Feedback => Self::Feedback(Feedback::new(params.feedback)),
            PolicyKind::Mom => Self::Mom(Mom::new(params.mom)),
            PolicyKind::Td3 => Self::Td3(Td3::new(params.td3_learner(), seed)),
        }
    }

    /// Which policy this is.
    pub fn kind(&self) -> PolicyKind {
        match self {
            Self::Ddpg(p) if p.residual().is_some() => PolicyKind::Residual,
            Self::Ddpg(_) => PolicyKind::Ddpg,
            Self::Dqn(_) => PolicyKind::Dqn,
            Self::QLearning(_) => PolicyKind::QLearning,
            Self::EqualSplit(_) => PolicyKind::EqualSplit,
            Self::Feedback(_) => PolicyKind::Feedback,
            Self::Mom(_) => PolicyKind::Mom,
            Self::Td3(_) => PolicyKind::Td3,
        }
    }

    /// Writes the policy's snapshot (what acting needs); returns the bytes written.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        match self {
            Self::Ddpg(p) => p.save_snapshot(out),
            Self::Dqn(p) => p.save_snapshot(out),
            Self::QLearning(p) => p.save_snapshot(out),
            Self::EqualSplit(p) => p.save_snapshot(out),
            Self::Feedback(p) => p.save_snapshot(out),
            Self::Mom(p) => p.save_snapshot(out),
            Self::Td3(p) => p.save_snapshot(out),
        }
    }

    /// Loads a snapshot of the same kind of policy; unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`], including [`SnapshotError::WrongKind`] for another policy's snapshot.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        match self {
            Self::Ddpg(p) => p.load_snapshot(bytes),
            Self::Dqn(p) => p.load_snapshot(bytes),
            Self::QLearning(p) => p.load_snapshot(bytes),
            Self::EqualSplit(p) => p.load_snapshot(bytes),
            Self::Feedback(p) => p.load_snapshot(bytes),
            Self::Mom(p) => p.load_snapshot(bytes),
            Self::Td3(p) => p.load_snapshot(bytes),
        }
    }

    fn inner(&mut self) -> &mut dyn Policy {
        match self {
            Self::Ddpg(p) => p,
            Self::Dqn(p) => p,
            Self::QLearning(p) => p,
            Self::EqualSplit(p) => p,
            Self::Feedback(p) => p,
            Self::Mom(p) => p,
            Self::Td3(p) => p,
        }
    }
}

#[cfg(feature = "learn")]
impl<const R: usize, const C: usize> SnapshotPolicy for AnyPolicy<R, C> {
    fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        AnyPolicy::save_snapshot(self, out)
    }
    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        AnyPolicy::load_snapshot(self, bytes)
    }
}

#[cfg(feature = "learn")]
impl<const R: usize, const C: usize> Policy for AnyPolicy<R, C> {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        self.inner().act(obs)
    }
    fn record(&mut self, transition: &AgentTransition) -> Result<(), PolicyError> {
        self.inner().record(transition)
    }
    fn learn(&mut self) -> Result<LearnOutcome, PolicyError> {
        self.inner().learn()
    }
    fn start_episode(&mut self) {
        self.inner().start_episode();
    }
    fn set_exploration(&mut self, on: bool) {
        self.inner().set_exploration(on);
    }
    fn stats(&self) -> PolicyStats {
        match self {
            Self::Ddpg(p) => p.stats(),
            Self::Dqn(p) => p.stats(),
            Self::QLearning(p) => p.stats(),
            Self::EqualSplit(p) => p.stats(),
            Self::Feedback(p) => p.stats(),
            Self::Mom(p) => p.stats(),
            Self::Td3(p) => p.stats(),
        }
    }
    fn parameters_finite(&self) -> bool {
        match self {
            Self::Ddpg(p) => p.parameters_finite(),
            Self::Dqn(p) => p.parameters_finite(),
            Self::QLearning(p) => p.parameters_finite(),
            Self::EqualSplit(p) => p.parameters_finite(),
            Self::Feedback(p) => p.parameters_finite(),
            Self::Mom(p) => p.parameters_finite(),
            Self::Td3(p) => p.parameters_finite(),
        }
    }
    #[cfg(feature = "fault-injection")]
    fn inject_parameter_fault(&mut self, index: usize, value: f32) -> bool {
        self.inner().inject_parameter_fault(index, value)
    }
}

#[cfg(test)]
mod tests;

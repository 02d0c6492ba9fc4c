//! What every learning agent shares: a network with its target copy, gradients and Adam
//! state ([`Learner`]); the ε schedule and exploration switch ([`Explorer`]); transition
//! checks; decisions, outcomes, errors and statistics.

use crate::mdp::InvalidObservation;
#[cfg(feature = "learn")]
use crate::nn::{Head, Mlp, Parameters};
#[cfg(feature = "learn")]
use crate::noise::EpsilonSchedule;
#[cfg(feature = "learn")]
use crate::optim::{Adam, AdamState, soft_update};
#[cfg(feature = "learn")]
use crate::rng::Rng;

use super::AgentTransition;

/// A bid and how it was made.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Decision {
    /// The bid, finite and in [-1, 1].
    pub bid: f32,
    /// Whether exploration changed it.
    pub explored: bool,
    /// Set when the policy could not decide and the safe bid (0, hold) was used instead.
    pub fallback: Option<Fallback>,
}

impl Decision {
    /// The safe decision: hold (bid 0), with the reason.
    pub const fn hold(reason: Fallback) -> Self {
        Self::fall_back_to(0.0, reason)
    }

    /// A fallback to the safe bid `bid` (a controller's, or 0: [`Decision::hold`]), with the
    /// reason.
    pub const fn fall_back_to(bid: f32, reason: Fallback) -> Self {
        Self {
            bid,
            explored: false,
            fallback: Some(reason),
        }
    }
}

/// Why a policy fell back to a safe bid; its byte on the wire ([`Fallback::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Fallback {
    /// The network produced NaN or ±∞; it was re-initialized.
    NonFiniteOutput,
    /// The `residual` policy's runtime shield has handed the VM to the controller, whose
    /// bid this is: the learned bids did worse ([`super::shield`]).
    Shielded,
}

impl Fallback {
    /// The reason's byte in the wire protocol's Bid (0 is no fallback).
    pub const fn code(self) -> u8 {
        match self {
            Self::NonFiniteOutput => 1,
            Self::Shielded => 2,
        }
    }

    /// The reason with byte `code` (1 or 2), if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::NonFiniteOutput),
            2 => Some(Self::Shielded),
            _ => None,
        }
    }
}

/// What a call to `learn` did.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LearnOutcome {
    /// Nothing to learn from yet (replay below its warm-up size, or a non-learning policy).
    Skipped,
    /// One update; `loss` is the (critic's, or Q's) mean squared TD error before it.
    Updated {
        /// Mean squared temporal-difference error of the minibatch.
        loss: f32,
    },
    /// The update produced non-finite parameters: the networks were re-initialized.
    Recovered,
}

/// Errors of the decision loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PolicyError {
    /// The observation given to `act` is invalid.
    InvalidObservation(InvalidObservation),
    /// A transition given to `record` has an invalid value.
    InvalidTransition(TransitionField),
}

/// The invalid part of a transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TransitionField {
    /// The state.
    State(InvalidObservation),
    /// The next state.
    NextState(InvalidObservation),
    /// The bid is not finite or outside [-1, 1].
    Bid,
    /// The reward is not finite.
    Reward,
}

impl PolicyStats {
    /// All counters zero (`const`).
    pub const ZERO: Self = Self {
        acts: 0,
        explored: 0,
        learn_steps: 0,
        fallbacks: 0,
        divergences: 0,
        last_loss: 0.0,
        epsilon: 0.0,
        replay_len: 0,
    };
}

impl core::fmt::Display for PolicyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::InvalidObservation(e) => write!(f, "invalid observation: {e}"),
            Self::InvalidTransition(field) => write!(f, "invalid transition: {field:?}"),
        }
    }
}

impl core::error::Error for PolicyError {}

impl From<InvalidObservation> for PolicyError {
    fn from(e: InvalidObservation) -> Self {
        Self::InvalidObservation(e)
    }
}

/// Counters of one agent.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PolicyStats {
    /// Calls to `act` that returned a decision.
    pub acts: u64,
    /// Decisions changed by exploration.
    pub explored: u64,
    /// Gradient updates taken (a minibatch was sampled and the networks stepped), the same
    /// count for every learner; one that left a network non-finite is counted here and in
    /// `divergences`.
    pub learn_steps: u64,
    /// Decisions that fell back to the safe bid.
    pub fallbacks: u64,
    /// Times the networks were found non-finite and re-initialized.
    pub divergences: u64,
    /// Loss of the latest update (0 before the first).
    pub last_loss: f32,
    /// Current exploration probability ε (0 when exploration is off).
    pub epsilon: f32,
    /// Transitions held for learning.
    pub replay_len: u32,
}

/// Checks a transition before it is stored.
///
/// # Errors
/// [`PolicyError::InvalidTransition`] naming the offending part.
pub fn check_transition(t: &AgentTransition) -> Result<(), PolicyError> {
    let bad = |f| PolicyError::InvalidTransition(f);
    t.state.validate().map_err(|e| bad(TransitionField::State(e)))?;
    t.next_state
        .validate()
        .map_err(|e| bad(TransitionField::NextState(e)))?;
    if !(t.bid >= -1.0 && t.bid <= 1.0) {
        return Err(bad(TransitionField::Bid));
    }
    if !t.reward.is_finite() {
        return Err(bad(TransitionField::Reward));
    }
    Ok(())
}

/// The replay entry of a checked transition, with the agent's own encoding of the action.
#[cfg(feature = "learn")]
pub fn stored_transition<A>(
    t: &AgentTransition,
    action: A,
) -> crate::replay::Transition<{ crate::mdp::STATE_DIM }, A> {
    crate::replay::Transition {
        state: t.state.to_array(),
        action,
        reward: t.reward,
        next_state: t.next_state.to_array(),
        done: t.done,
    }
}

/// Draws a minibatch of replay indices into `batch` once the replay holds at least
/// `learn_starts` (and at least one) transitions; returns whether it did.
#[cfg(feature = "learn")]
pub fn sample_minibatch<T: Copy, const N: usize>(
    replay: &crate::replay::Replay<T, N>,
    learn_starts: u32,
    rng: &mut Rng,
    batch: &mut [u32],
) -> bool {
    replay.len() >= (learn_starts as usize).max(1) && replay.sample_indices(rng, batch).is_ok()
}

/// The ε schedule, the count of exploring steps, and the training/evaluation switch.
#[cfg(feature = "learn")]
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Explorer {
    schedule: EpsilonSchedule,
    steps: u64,
    enabled: bool,
}

#[cfg(feature = "learn")]
impl Explorer {
    /// Exploration off, with an all-zero schedule (for `const` placeholders).
    pub const ZERO: Self = Self {
        schedule: Self::ZERO_SCHEDULE,
        steps: 0,
        enabled: false,
    };

    /// An all-zero ε schedule (for `const` placeholders).
    pub const ZERO_SCHEDULE: EpsilonSchedule = EpsilonSchedule {
        start: 0.0,
        end: 0.0,
        explore_steps: 0,
        anneal_steps: 0,
        anneal: crate::noise::Anneal::Exponential,
    };

    /// Exploration on, at step 0 of `schedule`.
    pub const fn new(schedule: EpsilonSchedule) -> Self {
        Self {
            schedule,
            steps: 0,
            enabled: true,
        }
    }

    /// The current ε (0 when off).
    pub fn epsilon(&self) -> f32 {
        if self.enabled {
            self.schedule.epsilon(self.steps)
        } else {
            0.0
        }
    }

    /// Turns exploration on or off; the schedule resumes where it was.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Whether exploration is on.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The agent's counters with the current ε and the number of transitions it holds.
    pub fn stats(&self, counters: PolicyStats, held: usize) -> PolicyStats {
        PolicyStats {
            epsilon: self.epsilon(),
            replay_len: u32::try_from(held).unwrap_or(u32::MAX),
            ..counters
        }
    }

    /// Decides whether this step explores (probability ε) and advances the schedule.
    /// Draws one uniform number whether or not exploration is on, so switching it does
    /// not shift the random stream of the rest of the agent.
    pub fn roll(&mut self, rng: &mut Rng) -> bool {
        let epsilon = self.epsilon();
        if self.enabled {
            self.steps = self.steps.saturating_add(1);
        }
        rng.uniform_f32() < epsilon
    }
}

/// A trained network with everything its updates need: the online network, its target
/// copy, a gradient accumulator, and Adam's moments.
#[cfg(feature = "learn")]
#[derive(Clone, Debug, PartialEq)]
pub struct Learner<const I: usize, const H: usize, const O: usize, A: Head> {
    /// The online network.
    pub net: Mlp<I, H, O, A>,
    /// The target network (Polyak-averaged copy).
    pub target: Mlp<I, H, O, A>,
    /// Gradient accumulator for one minibatch.
    pub grads: Mlp<I, H, O, A>,
    adam: AdamState<Mlp<I, H, O, A>>,
    optimizer: Adam,
}

#[cfg(feature = "learn")]
impl<const I: usize, const H: usize, const O: usize, A: Head> Learner<I, H, O, A> {
    /// All-zero networks; call [`Learner::init`] before use.
    pub const fn zeroed(optimizer: Adam) -> Self {
        Self {
            net: Mlp::zeroed(),
            target: Mlp::zeroed(),
            grads: Mlp::zeroed(),
            adam: AdamState::new(Mlp::zeroed(), Mlp::zeroed()),
            optimizer,
        }
    }

    /// Replaces the optimizer's hyperparameters (the moments are kept; [`Learner::init`] resets them).
    pub fn set_optimizer(&mut self, optimizer: Adam) {
        self.optimizer = optimizer;
    }

    /// Seeded initialization; the target starts equal to the online network.
    pub fn init(&mut self, rng: &mut Rng) {
        self.net.init(rng);
        self.target.copy_from(&self.net);
        self.grads.fill_zero();
        self.adam.reset();
    }

    /// One Adam step with the accumulated gradients.
    pub fn apply_gradients(&mut self) {
        self.optimizer.step(&mut self.net, &self.grads, &mut self.adam);
    }

    /// `target ← (1 − τ)·target + τ·net`; returns whether both networks are finite (see
    /// [`soft_update`]: the check comes with the pass).
    pub fn update_target(&mut self, tau: f32) -> bool {
        soft_update(&mut self.target, &self.net, tau)
    }

    /// Whether the online and target networks are finite.
    pub fn is_finite(&self) -> bool {
        self.net.all_finite() && self.target.all_finite()
    }

    /// Parameters of the online network.
    pub fn parameter_count(&self) -> usize {
        self.net.parameter_count()
    }
}

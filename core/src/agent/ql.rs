//! Tabular Q-learning (Watkins 1989), the paper's QL baseline (section 4): three discrete
//! bids and each of the five state variables quantized into 10 bins, "a state-action
//! matrix of 300,000 entries" — here a fixed `f32` array of 100,000 × 3 (1.2 MB).
//!
//! One-step update `Q(s,a) ← Q(s,a) + α·(r + γ·max_a' Q(s',a') − Q(s,a))`, applied by
//! `learn` to the transitions recorded since the previous call (at most [`PENDING`]).

use crate::rows::at;
use heapless::Vec;

use crate::mdp::Observation;
use crate::nn::Parameters;
use crate::noise::EpsilonSchedule;
use crate::rng::Rng;
use crate::snapshot::{self, SnapshotError, SnapshotKind};

use super::common::{Decision, Explorer, LearnOutcome, PolicyError, PolicyStats, check_transition};
pub use super::shapes::{
    ACTIONS, BINS, DEFAULT_ACTION_BIDS, QTable, STATES, argmax, nearest_action, state_index,
};
use super::{AgentTransition, Policy};

/// Transitions that can wait for `learn`.
pub const PENDING: usize = 8;

/// Q-learning hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QlParams {
    /// Step size α (not in the paper; 0.1).
    pub alpha: f32,
    /// Discount γ (0.99).
    pub gamma: f32,
    /// The bid of each discrete action (the same defaults as DQN).
    pub action_bids: [f32; ACTIONS],
    /// ε schedule (the same as DDPG's).
    pub epsilon: EpsilonSchedule,
}

impl Default for QlParams {
    fn default() -> Self {
        Self {
            alpha: 0.1,
            gamma: 0.99,
            action_bids: DEFAULT_ACTION_BIDS,
            epsilon: EpsilonSchedule::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct Pending {
    state: u32,
    action: u8,
    reward: f32,
    next_state: u32,
    done: bool,
}

/// A tabular Q-learning agent. Large (1.2 MB): construct it on the heap or in a `static`.
#[derive(Clone, Debug)]
pub struct QLearning {
    params: QlParams,
    table: QTable,
    pending: Vec<Pending, PENDING>,
    explorer: Explorer,
    rng: Rng,
    stats: PolicyStats,
}

impl QLearning {
    /// A seeded agent with an all-zero table.
    pub fn new(params: QlParams, seed: u64) -> Self {
        let mut agent = Self::zeroed();
        agent.reset(params, seed);
        agent
    }

    /// An all-zero agent that must be [`QLearning::reset`] before use (`const`, for `static` placement).
    pub const fn zeroed() -> Self {
        Self {
            params: QlParams {
                alpha: 0.0,
                gamma: 0.0,
                action_bids: [0.0; ACTIONS],
                epsilon: Explorer::ZERO_SCHEDULE,
            },
            table: QTable::zeroed(),
            pending: Vec::new(),
            explorer: Explorer::ZERO,
            rng: Rng::unseeded(),
            stats: PolicyStats::ZERO,
        }
    }

    /// Makes this a fresh agent with `params` and `seed`, in place (as [`QLearning::new`]).
    pub fn reset(&mut self, params: QlParams, seed: u64) {
        self.params = params;
        self.table.fill_zero();
        self.pending.clear();
        self.explorer = Explorer::new(params.epsilon);
        self.rng = Rng::seed_from_u64(seed);
        self.stats = PolicyStats::ZERO;
    }

    /// The hyperparameters.
    pub fn params(&self) -> &QlParams {
        &self.params
    }

    /// The table row for `obs`.
    pub fn q_values(&self, obs: &Observation) -> [f32; ACTIONS] {
        self.table.row(state_index(obs))
    }

    /// Bytes of this policy's snapshot.
    pub const SNAPSHOT_BYTES: usize = snapshot::HEADER_BYTES + 4 * STATES * ACTIONS + snapshot::CRC_BYTES;

    /// Writes the table and action bids as a snapshot; returns the bytes written.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let header = super::frozen::network_header(
            SnapshotKind::QTable,
            super::frozen::QTABLE_SHAPE,
            Some(self.params.action_bids),
        );
        snapshot::write(&header, &self.table, out)
    }

    /// Loads a Q-table snapshot and its action bids; the agent is unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] for a truncated, corrupted, other-version, other-kind or other-shape snapshot.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let header = snapshot::read_header(bytes)?;
        let bids = header.action_bids();
        if header.kind == SnapshotKind::QTable
            && !bids.iter().all(|b| b.is_finite() && (-1.0..=1.0).contains(b))
        {
            return Err(SnapshotError::ShapeMismatch);
        }
        snapshot::read_into(
            bytes,
            SnapshotKind::QTable,
            super::frozen::QTABLE_SHAPE,
            &mut self.table,
        )?;
        self.params.action_bids = bids;
        Ok(())
    }

    fn apply(&mut self, p: Pending) -> f32 {
        let next = self.table.row(p.next_state as usize);
        let best_next = at(&next, usize::from(argmax(&next)));
        let target = p.reward
            + if p.done {
                0.0
            } else {
                self.params.gamma * best_next
            };
        let Some(q) = self.table.value_mut(p.state as usize, usize::from(p.action)) else {
            return 0.0;
        };
        let td = target - *q;
        *q += self.params.alpha * td;
        td * td
    }
}

impl Policy for QLearning {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let q = self.q_values(obs);
        self.stats.acts += 1;
        let explored = self.explorer.roll(&mut self.rng);
        let random_action = self.rng.below(ACTIONS as u32) as usize;
        let action = if explored {
            random_action
        } else {
            usize::from(argmax(&q))
        };
        self.stats.explored += u64::from(explored);
        let bid = at(&self.params.action_bids, action);
        Ok(Decision {
            bid,
            explored,
            fallback: None,
        })
    }

    fn record(&mut self, t: &AgentTransition) -> Result<(), PolicyError> {
        check_transition(t)?;
        let p = Pending {
            state: state_index(&t.state) as u32,
            action: nearest_action(&self.params.action_bids, t.bid),
            reward: t.reward,
            next_state: state_index(&t.next_state) as u32,
            done: t.done,
        };
        if let Err(oldest_overflow) = self.pending.push(p) {
            // Full: apply the queue now rather than drop experience.
            for q in core::mem::take(&mut self.pending) {
                self.apply(q);
            }
            self.pending.push(oldest_overflow).ok();
        }
        Ok(())
    }

    fn learn(&mut self) -> Result<LearnOutcome, PolicyError> {
        if self.pending.is_empty() {
            return Ok(LearnOutcome::Skipped);
        }
        let mut loss = 0.0;
        let count = self.pending.len() as f32;
        for p in core::mem::take(&mut self.pending) {
            loss += self.apply(p) / count;
        }
        self.stats.learn_steps += 1;
        self.stats.last_loss = loss;
        Ok(LearnOutcome::Updated { loss })
    }

    fn start_episode(&mut self) {}

    fn set_exploration(&mut self, on: bool) {
        self.explorer.set_enabled(on);
    }

    fn stats(&self) -> PolicyStats {
        self.explorer.stats(self.stats, self.pending.len())
    }

    fn parameters_finite(&self) -> bool {
        self.table.all_finite()
    }
}

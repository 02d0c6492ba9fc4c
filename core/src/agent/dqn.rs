//! Deep Q-learning (Mnih et al. 2015), the paper's DQL baseline (section 4): the same
//! state, a Q-network 5 → 64 → 64 → 3 over three discrete bids (release / hold / grow),
//! Adam at 1e-3, ε-greedy exploration on the same schedule as DDPG, a target network and
//! replay. The bid values are parameters: the paper does not give them.

use crate::mdp::{Observation, STATE_DIM};
use crate::nn::{Identity, MlpTape, Parameters};
use crate::noise::EpsilonSchedule;
use crate::optim::Adam;
use crate::replay::{Replay, Transition};
use crate::rng::Rng;
use crate::rows::{at, prefix, prefix_mut};
use crate::snapshot::{self, SnapshotError, SnapshotKind};

use super::common::{
    Decision, Explorer, Fallback, LearnOutcome, Learner, PolicyError, PolicyStats, check_transition,
    sample_minibatch, stored_transition,
};
use super::ddpg::{BATCH, CHUNK};
use super::frozen::{QNET_SHAPE, greedy_action, network_header};
pub use super::shapes::{ACTIONS, DEFAULT_ACTION_BIDS, HIDDEN, argmax, nearest_action};
use super::{AgentTransition, Policy};

/// DQN hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DqnParams {
    /// Learning rate (paper: 1e-3).
    pub lr: f32,
    /// Discount γ (0.99).
    pub gamma: f32,
    /// Soft target update rate τ; `τ = 1` with `target_every = C` is the hard copy of Mnih et al.
    pub tau: f32,
    /// Update the target every this many learning steps (≥ 1).
    pub target_every: u32,
    /// The bid of each discrete action.
    pub action_bids: [f32; ACTIONS],
    /// ε schedule (the same as DDPG's).
    pub epsilon: EpsilonSchedule,
    /// Transitions held before the first update.
    pub learn_starts: u32,
}

impl Default for DqnParams {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            gamma: 0.99,
            tau: 0.001,
            target_every: 1,
            action_bids: DEFAULT_ACTION_BIDS,
            epsilon: EpsilonSchedule::default(),
            learn_starts: BATCH as u32,
        }
    }
}

/// A DQN agent with a replay of `R` transitions that trains in chunks of `C` rows
/// ([`CHUNK`]; results do not depend on `C`).
#[derive(Clone, Debug)]
pub struct Dqn<const R: usize, const C: usize = CHUNK> {
    params: DqnParams,
    q: Learner<STATE_DIM, HIDDEN, ACTIONS, Identity>,
    replay: Replay<Transition<STATE_DIM, u8>, R>,
    tape: MlpTape<STATE_DIM, HIDDEN, ACTIONS, C>,
    batch: [u32; BATCH],
    explorer: Explorer,
    rng: Rng,
    stats: PolicyStats,
}

impl<const R: usize, const C: usize> Dqn<R, C> {
    /// A seeded agent, ready to act.
    pub fn new(params: DqnParams, seed: u64) -> Self {
        let mut agent = Self::zeroed();
        agent.reset(params, seed);
        agent
    }

    /// An all-zero agent that must be [`Dqn::reset`] before use (`const`, for `static` placement).
    pub const fn zeroed() -> Self {
        const { assert!(C > 0, "a training chunk holds at least one row") };
        Self {
            params: DqnParams {
                lr: 0.0,
                gamma: 0.0,
                tau: 0.0,
                target_every: 0,
                action_bids: [0.0; ACTIONS],
                epsilon: Explorer::ZERO_SCHEDULE,
                learn_starts: 0,
            },
            q: Learner::zeroed(Adam {
                lr: 0.0,
                beta1: 0.0,
                beta2: 0.0,
                eps: 0.0,
            }),
            replay: Replay::new(),
            tape: MlpTape::new(),
            batch: [0; BATCH],
            explorer: Explorer::ZERO,
            rng: Rng::unseeded(),
            stats: PolicyStats::ZERO,
        }
    }

    /// Makes this a fresh agent with `params` and `seed`, in place (as [`Dqn::new`]).
    pub fn reset(&mut self, params: DqnParams, seed: u64) {
        self.params = params;
        self.q.set_optimizer(Adam::with_lr(params.lr));
        self.replay.clear();
        self.batch = [0; BATCH];
        self.explorer = Explorer::new(params.epsilon);
        self.rng = Rng::seed_from_u64(seed);
        self.stats = PolicyStats::ZERO;
        self.q.init(&mut self.rng);
    }

    /// The hyperparameters.
    pub fn params(&self) -> &DqnParams {
        &self.params
    }

    /// Q-values of the three actions.
    pub fn q_values(&self, obs: &Observation) -> [f32; ACTIONS] {
        self.q.net.forward(&obs.to_array())
    }

    /// Writes the Q-network and action bids as a snapshot; returns the bytes written.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let header = network_header(
            SnapshotKind::DqnQNetwork,
            QNET_SHAPE,
            Some(self.params.action_bids),
        );
        snapshot::write(&header, &self.q.net, out)
    }

    /// Loads a Q-network snapshot into the network and its target, with its action bids;
    /// the agent is unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] for a truncated, corrupted, other-version, other-kind or other-shape snapshot.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let header = snapshot::read_into_if(
            bytes,
            SnapshotKind::DqnQNetwork,
            QNET_SHAPE,
            &mut self.q.net,
            super::frozen::check_action_bids,
        )?;
        self.q.target.copy_from(&self.q.net);
        self.params.action_bids = header.action_bids();
        Ok(())
    }

    fn recover(&mut self) {
        self.stats.divergences += 1;
        self.q.init(&mut self.rng);
    }
}

impl<const R: usize, const C: usize> Policy for Dqn<R, C> {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let Ok(greedy) = greedy_action(&self.q_values(obs)) else {
            self.stats.fallbacks += 1;
            self.recover();
            return Ok(Decision::hold(Fallback::NonFiniteOutput));
        };
        self.stats.acts += 1;
        let explored = self.explorer.roll(&mut self.rng);
        let random_action = self.rng.below(ACTIONS as u32) as usize;
        let action = if explored { random_action } else { greedy };
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
        self.replay.push(stored_transition(
            t,
            nearest_action(&self.params.action_bids, t.bid),
        ));
        Ok(())
    }

    fn learn(&mut self) -> Result<LearnOutcome, PolicyError> {
        if !sample_minibatch(
            &self.replay,
            self.params.learn_starts,
            &mut self.rng,
            &mut self.batch,
        ) {
            return Ok(LearnOutcome::Skipped);
        }
        // Minimize (Q(s,a) − y)², y = r + γ·(1 − done)·max_a' Q'(s', a').
        let scale = 1.0 / BATCH as f32;
        let mut loss = 0.0;
        self.q.grads.fill_zero();
        for chunk in self.batch.chunks(C) {
            let mut states = [[0.0; STATE_DIM]; C];
            let mut next_states = [[0.0; STATE_DIM]; C];
            let mut actions = [0usize; C];
            let mut rewards = [0.0f32; C];
            let mut dones = [false; C];
            let mut rows = 0;
            for (((((state, next), action), reward), done), index) in states
                .iter_mut()
                .zip(&mut next_states)
                .zip(&mut actions)
                .zip(&mut rewards)
                .zip(&mut dones)
                .zip(chunk)
            {
                let Some(t) = self.replay.get(*index as usize) else {
                    continue;
                };
                *state = t.state;
                *next = t.next_state;
                *action = usize::from(t.action);
                *reward = t.reward;
                *done = t.done;
                rows += 1;
            }
            // The target network on the chunk's next states at once (forward only).
            let mut next_q = [[0.0f32; ACTIONS]; C];
            self.q
                .target
                .forward_rows(prefix(&next_states, rows), prefix_mut(&mut next_q, rows));
            let mut targets = [0.0f32; C];
            for (((target, next), reward), done) in targets
                .iter_mut()
                .zip(&next_q)
                .zip(&rewards)
                .zip(&dones)
                .take(rows)
            {
                let best_next = at(next, usize::from(argmax(next)));
                *target = *reward + if *done { 0.0 } else { self.params.gamma * best_next };
            }
            let mut d_out = [[0.0f32; ACTIONS]; C];
            let outputs = self.q.net.forward_tape(&mut self.tape, prefix(&states, rows));
            for (((d, q), action), y) in d_out.iter_mut().zip(outputs).zip(&actions).zip(&targets) {
                if let (Some(dk), Some(qk)) = (d.get_mut(*action), q.get(*action)) {
                    let err = *qk - *y;
                    loss += err * err * scale;
                    *dk = 2.0 * err * scale;
                }
            }
            self.q
                .net
                .backward(&mut self.tape, &d_out, Some(&mut self.q.grads), None);
        }
        self.q.apply_gradients();
        self.stats.learn_steps += 1;
        if self
            .stats
            .learn_steps
            .is_multiple_of(u64::from(self.params.target_every.max(1)))
        {
            // Checked below with the online network, as on the steps without this update.
            let _ = self.q.update_target(self.params.tau);
        }
        if !(loss.is_finite() && self.q.is_finite()) {
            self.recover();
            return Ok(LearnOutcome::Recovered);
        }
        self.stats.last_loss = loss;
        Ok(LearnOutcome::Updated { loss })
    }

    fn start_episode(&mut self) {}

    fn set_exploration(&mut self, on: bool) {
        self.explorer.set_enabled(on);
    }

    fn stats(&self) -> PolicyStats {
        self.explorer.stats(self.stats, self.replay.len())
    }

    fn parameters_finite(&self) -> bool {
        self.q.is_finite()
    }

    #[cfg(feature = "fault-injection")]
    fn inject_parameter_fault(&mut self, index: usize, value: f32) -> bool {
        self.q.net.overwrite_parameter(index, value);
        true
    }
}

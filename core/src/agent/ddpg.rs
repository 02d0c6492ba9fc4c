//! CAVMem's agent: DDPG (Lillicrap et al. 2016) with the paper's shapes (section 4):
//! actor 5 → 64 → 64 → 1 tanh, critic (5 + 1) → 64 → 64 → 1, Adam at 1e-4 / 1e-3,
//! target networks, replay, minibatch 64, OU noise added with probability ε.
//!
//! A minibatch is processed in chunks of `C` rows (a const parameter: [`CHUNK`] = 8 by
//! default, so the activations kept for backpropagation stay small on a microcontroller;
//! [`BATCH`] on a host, one chunk per minibatch). Gradients accumulate over the chunks in
//! row order, so every chunk size gives the same bits as a whole-batch update. The actor
//! step asks the critic only for `∂Q/∂a`, not its weight gradients.

use crate::mdp::{Observation, STATE_DIM};
use crate::nn::{Head, Identity, MlpTape, Parameters, Tanh};
use crate::noise::{EpsilonSchedule, OuNoise, OuParams};
use crate::optim::Adam;
use crate::replay::{Replay, Transition};
use crate::rng::Rng;
use crate::rows::{prefix, prefix_mut};
use crate::snapshot::{self, SnapshotError, SnapshotKind};

use super::common::{
    Decision, Explorer, Fallback, LearnOutcome, Learner, PolicyError, PolicyStats, check_transition,
    sample_minibatch, stored_transition,
};
use super::frozen::{ACTOR_SHAPE, ActorNet, actor_bid_row, network_header};
use super::normalize::{InputMap, RunningStats};
use super::residual::ResidualParams;
pub use super::shapes::HIDDEN;
use super::shield::{Shield, ShieldParams, ShieldStats, Source};
use super::{AgentTransition, Policy};

/// Minibatch size.
pub const BATCH: usize = 64;
/// The default rows per forward/backward chunk of a minibatch (the `C` of [`Ddpg`] and
/// [`super::Dqn`]): 8, the firmware's. `C = BATCH` (hosts) takes 118,048 B more per DDPG agent
/// (tapes of 64 rows) and lets the backward pass use larger kernels
/// ([`crate::nn::mlp::TRANSPOSE_MIN_ROWS`]): about 5% less time per update.
pub const CHUNK: usize = 8;
/// Critic input width: the state and the bid.
pub const CRITIC_INPUT: usize = STATE_DIM + 1;

/// The critic's default output function: linear, `Q = z` (the `Q` of [`Ddpg`]).
///
/// The paper says "the output layers use Tanh" for both networks; a tanh critic cannot
/// represent returns below −1, and with rewards in [−2, 0] and γ = 0.99 the returns reach
/// about −100. [`Identity`] is the default; `Ddpg<R, C, Tanh>` ([`PaperCritic`]) is the
/// literal reading.
pub type LinearCritic = Identity;
/// The paper's literal critic head, `Q = tanh(z)`.
pub type PaperCritic = Tanh;

/// TD3 (Fujimoto et al. 2018): DDPG with twin critics; use it with
/// [`DdpgParams::td3`] for the delayed actor updates and the target policy smoothing.
pub type Td3<const R: usize, const C: usize = CHUNK> = Ddpg<R, C, LinearCritic, 2>;

/// DDPG hyperparameters; `Default` gives the paper's values where it states them.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DdpgParams {
    /// Actor learning rate (paper: 1e-4).
    pub actor_lr: f32,
    /// Critic learning rate (paper: 1e-3).
    pub critic_lr: f32,
    /// Discount γ (not in the paper; 0.99 as in Lillicrap et al.).
    pub gamma: f32,
    /// Soft target update rate τ (not in the paper; 0.001 as in Lillicrap et al.).
    pub tau: f32,
    /// Exploration noise.
    pub ou: OuParams,
    /// ε schedule (paper: 1 for 200 episodes, then annealed to 0.001).
    pub epsilon: EpsilonSchedule,
    /// Transitions held before the first update (at least one minibatch).
    pub learn_starts: u32,
    /// The networks see the states normalized by their running statistics
    /// ([`super::normalize`]); off in the paper and by default (the same bits as without).
    pub normalize_observations: bool,
    /// Learning steps per actor update; the target networks move with the actor (TD3's
    /// delayed policy updates: 2; 1, the default, is DDPG).
    pub policy_delay: u32,
    /// σ of the Gaussian noise added to the target policy's bids, clipped to
    /// ±[`Self::target_noise_clip`] (TD3's target policy smoothing: 0.2; 0, the default,
    /// is DDPG and draws no random numbers).
    pub target_noise: f32,
    /// Bound of the target policy's noise (TD3: 0.5).
    pub target_noise_clip: f32,
}

impl DdpgParams {
    /// DDPG's defaults with TD3's own ([`Td3Params::default`]).
    pub fn td3() -> Self {
        Td3Params::default().on(Self::default())
    }
}

/// What TD3 (Fujimoto et al. 2018) sets beyond DDPG's hyperparameters; `Default` gives
/// the TD3 paper's values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Td3Params {
    /// Learning steps per actor and target update (2).
    pub policy_delay: u32,
    /// σ of the Gaussian noise on the target policy's bids (0.2).
    pub target_noise: f32,
    /// Bound of that noise (0.5).
    pub target_noise_clip: f32,
}

impl Default for Td3Params {
    fn default() -> Self {
        Self {
            policy_delay: 2,
            target_noise: 0.2,
            target_noise_clip: 0.5,
        }
    }
}

impl Td3Params {
    /// `ddpg` with these settings in place of its own.
    pub fn on(self, ddpg: DdpgParams) -> DdpgParams {
        DdpgParams {
            policy_delay: self.policy_delay,
            target_noise: self.target_noise,
            target_noise_clip: self.target_noise_clip,
            ..ddpg
        }
    }
}

impl Default for DdpgParams {
    fn default() -> Self {
        Self {
            actor_lr: 1e-4,
            critic_lr: 1e-3,
            gamma: 0.99,
            tau: 0.001,
            ou: OuParams::default(),
            epsilon: EpsilonSchedule::default(),
            learn_starts: BATCH as u32,
            normalize_observations: false,
            policy_delay: 1,
            target_noise: 0.0,
            target_noise_clip: 0.0,
        }
    }
}

type Actor = Learner<STATE_DIM, HIDDEN, 1, Tanh>;
type Critic<Q> = Learner<CRITIC_INPUT, HIDDEN, 1, Q>;

/// A DDPG agent with a replay of `R` transitions that trains in chunks of `C` rows
/// (module docs; results do not depend on `C`), its critic's output function the
/// [`Head`] `Q` ([`LinearCritic`] by default, [`PaperCritic`] for the paper's tanh), and
/// `K` critics (1; 2 for TD3's twin critics, [`Td3`]: each learns toward the smaller of
/// the two target critics' values, the actor follows the first). Its size is a
/// compile-time fact: `size_of::<Ddpg<1024>>()` is under 256 KiB.
///
/// # Examples
/// ```
/// use cavmem_core::agent::{Ddpg, DdpgParams, Policy};
/// use cavmem_core::mdp::Observation;
/// let mut agent = Box::new(Ddpg::<1024>::new(DdpgParams::default(), 7));
/// let obs = Observation { msr: 0.5, mem_share: 0.2, avg_msr: 0.0, msr_tgt: -0.2, total_mem_use: 0.4 };
/// let decision = agent.act(&obs).unwrap();
/// assert!((-1.0..=1.0).contains(&decision.bid));
/// ```
#[derive(Clone, Debug)]
pub struct Ddpg<const R: usize, const C: usize = CHUNK, Q: Head = LinearCritic, const K: usize = 1> {
    params: DdpgParams,
    /// The `residual` policy's parameters (scale > 0: the actor corrects the feedback
    /// controller's bid); [`ResidualParams::ZERO`] for plain DDPG. No `Option`: an agent
    /// is all zero bytes until set up, so a `static` one sits in `.bss`.
    residual: ResidualParams,
    /// The `residual` policy's runtime shield ([`super::shield`]; inactive unless on).
    shield: Shield,
    pub(super) actor: Actor,
    critics: [Critic<Q>; K],
    replay: Replay<Transition<STATE_DIM, f32>, R>,
    actor_tape: MlpTape<STATE_DIM, HIDDEN, 1, C>,
    critic_tape: MlpTape<CRITIC_INPUT, HIDDEN, 1, C>,
    batch: [u32; BATCH],
    /// The recorded states' statistics and the map the networks see them through (with
    /// [`DdpgParams::normalize_observations`]; else zero and the identity, unused).
    obs_stats: RunningStats,
    input_map: InputMap,
    noise: OuNoise,
    explorer: Explorer,
    rng: Rng,
    stats: PolicyStats,
}

impl<const R: usize, const C: usize, Q: Head, const K: usize> Ddpg<R, C, Q, K> {
    /// The critic head's name ([`Head::NAME`]): `"identity"` or `"tanh"`.
    pub const CRITIC_HEAD: &'static str = Q::NAME;

    /// A seeded agent, ready to act.
    pub fn new(params: DdpgParams, seed: u64) -> Self {
        Self::new_with(params, None, seed)
    }

    /// A seeded agent of the `residual` policy ([`super::residual`]): its actor corrects
    /// the feedback controller's bid by at most `residual.scale`.
    pub fn new_residual(params: DdpgParams, residual: ResidualParams, seed: u64) -> Self {
        Self::new_with(params, Some(residual), seed)
    }

    /// Plain DDPG (`residual` `None`) or the `residual` policy.
    pub fn new_with(params: DdpgParams, residual: Option<ResidualParams>, seed: u64) -> Self {
        let mut agent = Self::zeroed();
        agent.reset_with(params, residual, seed);
        agent
    }

    /// An all-zero agent that must be [`Ddpg::reset`] before use: `const`, so it can be a
    /// `static` (in `.bss`) and be set up in place, without a copy on the stack.
    pub const fn zeroed() -> Self {
        const { assert!(C > 0, "a training chunk holds at least one row") };
        const { assert!(K > 0, "an agent has at least one critic") };
        const NO_ADAM: Adam = Adam {
            lr: 0.0,
            beta1: 0.0,
            beta2: 0.0,
            eps: 0.0,
        };
        const NO_OU: OuParams = OuParams {
            theta: 0.0,
            sigma: 0.0,
            mu: 0.0,
            dt: 0.0,
        };
        Self {
            params: DdpgParams {
                actor_lr: 0.0,
                critic_lr: 0.0,
                gamma: 0.0,
                tau: 0.0,
                ou: NO_OU,
                epsilon: Explorer::ZERO_SCHEDULE,
                learn_starts: 0,
                normalize_observations: false,
                policy_delay: 0,
                target_noise: 0.0,
                target_noise_clip: 0.0,
            },
            residual: ResidualParams::ZERO,
            shield: Shield::new(ShieldParams::OFF),
            actor: Learner::zeroed(NO_ADAM),
            critics: [const { Learner::zeroed(NO_ADAM) }; K],
            replay: Replay::new(),
            actor_tape: MlpTape::new(),
            critic_tape: MlpTape::new(),
            batch: [0; BATCH],
            obs_stats: RunningStats::ZERO,
            // All zero bytes, as the rest (a `static` agent stays in `.bss`); unused until
            // `reset_with` sets the identity (normalization is off here).
            input_map: InputMap::UNSET,
            noise: OuNoise::new(NO_OU),
            explorer: Explorer::ZERO,
            rng: Rng::unseeded(),
            stats: PolicyStats::ZERO,
        }
    }

    /// Makes this a fresh agent with `params` and `seed`, in place: the same agent as
    /// [`Ddpg::new`] gives, without building one on the stack.
    pub fn reset(&mut self, params: DdpgParams, seed: u64) {
        self.reset_with(params, None, seed);
    }

    /// As [`Ddpg::reset`], for plain DDPG (`residual` `None`) or the `residual` policy.
    pub fn reset_with(&mut self, params: DdpgParams, residual: Option<ResidualParams>, seed: u64) {
        self.params = params;
        self.residual = residual.unwrap_or(ResidualParams::ZERO);
        self.shield = Shield::new(residual.map_or(ShieldParams::OFF, |r| r.shield));
        self.actor.set_optimizer(Adam::with_lr(params.actor_lr));
        for critic in &mut self.critics {
            critic.set_optimizer(Adam::with_lr(params.critic_lr));
        }
        self.replay.clear();
        self.batch = [0; BATCH];
        self.obs_stats = RunningStats::ZERO;
        self.input_map = InputMap::IDENTITY;
        self.noise = OuNoise::new(params.ou);
        self.explorer = Explorer::new(params.epsilon);
        self.rng = Rng::seed_from_u64(seed);
        self.stats = PolicyStats::ZERO;
        self.init_networks();
    }

    /// A state as the networks see it: through the running statistics' map with
    /// [`DdpgParams::normalize_observations`], else as it is.
    fn net_state(&self, state: &[f32; STATE_DIM]) -> [f32; STATE_DIM] {
        if self.params.normalize_observations {
            self.input_map.apply(state)
        } else {
            *state
        }
    }

    /// The running statistics of the recorded states (zero without
    /// [`DdpgParams::normalize_observations`]).
    pub fn observation_stats(&self) -> &RunningStats {
        &self.obs_stats
    }

    /// The hyperparameters.
    pub fn params(&self) -> &DdpgParams {
        &self.params
    }

    /// What the shield has done, if the agent has one.
    pub fn shield_stats(&self) -> Option<ShieldStats> {
        self.shield.is_active().then(|| self.shield.stats())
    }

    /// The residual policy's parameters; `None` for plain DDPG.
    pub fn residual(&self) -> Option<&ResidualParams> {
        (self.residual.scale > 0.0).then_some(&self.residual)
    }

    /// The bid without exploration (the deterministic policy: μ(s), or the controller's bid
    /// corrected by μ(s)), in [-1, 1]; NaN if the actor has diverged.
    pub fn policy_bid(&self, obs: &Observation) -> f32 {
        let Ok(bid) = actor_bid_row(&self.actor.net, &self.net_state(&obs.to_array())) else {
            return f32::NAN;
        };
        match self.residual() {
            Some(r) => r.compose(r.base_bid(obs), bid),
            None => bid,
        }
    }

    /// Writes the actor as a snapshot (what acting needs); returns the bytes written. The
    /// `residual` policy's snapshot (kind 6) also holds its scale and base controller; with
    /// [`DdpgParams::normalize_observations`] either ends with the observation statistics
    /// (11 values: docs/snapshot.md).
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let stats = self.obs_stats.to_array();
        let stats = prefix(&stats, self.stats_in_snapshot());
        match self.residual() {
            Some(r) => super::residual::save_snapshot(r, &self.actor.net, stats, out),
            None => {
                let header = network_header(SnapshotKind::DdpgActor, ACTOR_SHAPE, None);
                let count = self.actor.net.parameter_count() + stats.len();
                snapshot::write_tensors(&header, count, self.actor.net.tensors().chain([stats]), out)
            }
        }
    }

    /// Values of observation statistics in this agent's snapshots: 11 with
    /// [`DdpgParams::normalize_observations`], else none.
    fn stats_in_snapshot(&self) -> usize {
        if self.params.normalize_observations {
            RunningStats::SNAPSHOT_VALUES
        } else {
            0
        }
    }

    /// Loads an actor snapshot of this agent's kind (plain or `residual`; the latter with
    /// its scale and base controller) into the actor and its target (the critic is
    /// untouched), and, with [`DdpgParams::normalize_observations`], its observation
    /// statistics (which such a snapshot must hold, and no other may); the agent is
    /// unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] for a truncated, corrupted, other-version, other-kind or
    /// other-shape snapshot ([`SnapshotError::ShapeMismatch`] also for statistics present
    /// or missing against the agent's setting, or invalid).
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut values = [0.0; RunningStats::SNAPSHOT_VALUES];
        let stats = crate::rows::prefix_mut(&mut values, self.stats_in_snapshot());
        let valid = |v: &[f32]| RunningStats::valid_in_snapshot(v);
        match self.residual().copied() {
            Some(r) => {
                let loaded = super::residual::load_snapshot(bytes, &mut self.actor.net, stats, valid)?;
                self.residual = ResidualParams {
                    shield: r.shield,
                    correction_penalty: r.correction_penalty,
                    ..loaded
                };
            }
            None => {
                let n = self.actor.net.parameter_count();
                let stored = super::residual::stored_after(bytes, n);
                let mut kept = [0.0; RunningStats::SNAPSHOT_VALUES];
                for (k, v) in kept.iter_mut().enumerate() {
                    *v = stored(k);
                }
                let kept = prefix(&kept, stats.len());
                let mut parameters = super::residual::ActorAndTail {
                    actor: &mut self.actor.net,
                    tail: stats,
                };
                snapshot::read_into_if(
                    bytes,
                    SnapshotKind::DdpgActor,
                    ACTOR_SHAPE,
                    &mut parameters,
                    |_| valid(kept).then_some(()).ok_or(SnapshotError::ShapeMismatch),
                )?;
            }
        }
        if let (true, Some(loaded)) = (
            self.params.normalize_observations,
            RunningStats::from_array(&values),
        ) {
            self.obs_stats = loaded;
            self.input_map = loaded.input_map();
        }
        self.actor.target.copy_from(&self.actor.net);
        Ok(())
    }

    /// The actor network's parameters (for digests and inspection).
    pub fn actor_parameters(&self) -> &ActorNet {
        &self.actor.net
    }

    /// The (first) critic's value Q(s, a).
    pub fn q_value(&self, obs: &Observation, bid: f32) -> f32 {
        let [q] = self.critics[0]
            .net
            .forward(&critic_input(&self.net_state(&obs.to_array()), bid));
        q
    }

    fn init_networks(&mut self) {
        self.actor.init(&mut self.rng);
        for critic in &mut self.critics {
            critic.init(&mut self.rng);
        }
    }

    /// Re-initializes diverged networks and counts it.
    fn recover(&mut self) {
        self.stats.divergences += 1;
        self.init_networks();
    }

    /// Critic update on the sampled minibatch: minimize `(Q_k(s,a) − y)²` for each critic,
    /// `y = r + γ·(1 − done)·min_k Q'_k(s', μ'(s') + ε)` (ε: the target noise, 0 unless
    /// set). Returns the first critic's mean squared TD error.
    fn update_critic(&mut self) -> f32 {
        let scale = 1.0 / BATCH as f32;
        let mut loss = 0.0;
        for critic in &mut self.critics {
            critic.grads.fill_zero();
        }
        for chunk in self.batch.chunks(C) {
            let mut inputs = [[0.0; CRITIC_INPUT]; C];
            let mut next_states = [[0.0; STATE_DIM]; C];
            let mut rewards = [0.0f32; C];
            let mut continues = [0.0f32; C];
            let mut rows = 0;
            for ((((input, next), reward), cont), index) in inputs
                .iter_mut()
                .zip(&mut next_states)
                .zip(&mut rewards)
                .zip(&mut continues)
                .zip(chunk)
            {
                let Some(t) = self.replay.get(*index as usize) else {
                    continue;
                };
                *input = critic_input(&self.net_state(&t.state), t.action);
                *next = t.next_state;
                *reward = t.reward;
                *cont = if t.done { 0.0 } else { 1.0 };
                rows += 1;
            }
            // y = r + γ·(1 − done)·Q'(s', μ'(s')), target networks forward only.
            // The networks see the states normalized, the controller (residual) raw.
            let next_seen = self.net_states(&next_states);
            let mut next_bids = [[0.0f32; 1]; C];
            self.actor
                .target
                .forward_rows(prefix(&next_seen, rows), &mut next_bids);
            self.compose_rows(&next_states, &mut next_bids);
            smooth_target_bids(&self.params, &mut self.rng, prefix_mut(&mut next_bids, rows));
            let mut next_inputs = [[0.0; CRITIC_INPUT]; C];
            for ((row, next), [bid]) in next_inputs.iter_mut().zip(&next_seen).zip(&next_bids) {
                *row = critic_input(next, *bid);
            }
            let mut next_q = [[0.0f32; 1]; C];
            self.smallest_target_q(prefix(&next_inputs, rows), &mut next_q);
            let mut targets = [0.0f32; C];
            for (((y, r), c), [q]) in targets.iter_mut().zip(&rewards).zip(&continues).zip(&next_q) {
                *y = if *c == 0.0 {
                    *r
                } else {
                    *r + self.params.gamma * *q
                };
            }
            let rows_in = prefix(&inputs, rows);
            for (k, critic) in self.critics.iter_mut().enumerate() {
                let mut d_out = [[0.0f32; 1]; C];
                let outputs = critic.net.forward_tape(&mut self.critic_tape, rows_in);
                // dL/dQ; the backward pass multiplies by the head's derivative.
                for ((d, [q]), y) in d_out.iter_mut().zip(outputs).zip(&targets) {
                    let err = *q - *y;
                    if k == 0 {
                        loss += err * err * scale;
                    }
                    d[0] = 2.0 * err * scale;
                }
                critic
                    .net
                    .backward(&mut self.critic_tape, &d_out, Some(&mut critic.grads), None);
            }
        }
        for critic in &mut self.critics {
            critic.apply_gradients();
        }
        loss
    }

    /// Writes the smallest of the target critics' values for each row into `smallest`
    /// (the value, for one critic). Not inlined on x86-64, where inlined into
    /// `update_critic` it added 489 bytes to cavmem-fw's learning stack; inlined elsewhere:
    /// on the Cortex-M4 not inlining it cost 320 (`cavmem footprint`). Either way, the same bits.
    #[cfg_attr(target_arch = "x86_64", inline(never))]
    fn smallest_target_q(&self, inputs: &[[f32; CRITIC_INPUT]], smallest: &mut [[f32; 1]; C]) {
        for (k, critic) in self.critics.iter().enumerate() {
            if k == 0 {
                critic.target.forward_rows(inputs, smallest);
                continue;
            }
            let mut q = [[0.0f32; 1]; C];
            critic.target.forward_rows(inputs, &mut q);
            for ([low], [value]) in smallest.iter_mut().zip(&q) {
                *low = low.min(*value);
            }
        }
    }

    /// Actor update: ascend `Q(s, μ(s))`, using the critic's gradient with respect to the bid.
    fn update_actor(&mut self) {
        let scale = 1.0 / BATCH as f32;
        self.actor.grads.fill_zero();
        for chunk in self.batch.chunks(C) {
            let mut states = [[0.0; STATE_DIM]; C];
            let mut rows = 0;
            for (state, index) in states.iter_mut().zip(chunk) {
                if let Some(t) = self.replay.get(*index as usize) {
                    *state = t.state;
                    rows += 1;
                }
            }
            let seen = self.net_states(&states);
            let mut inputs = [[0.0; CRITIC_INPUT]; C];
            let mut bids = [[0.0f32; 1]; C];
            for (bid, out) in bids.iter_mut().zip(
                self.actor
                    .net
                    .forward_tape(&mut self.actor_tape, prefix(&seen, rows)),
            ) {
                *bid = *out;
            }
            let parts = self.compose_rows(&states, &mut bids);
            for ((input, state), [bid]) in inputs.iter_mut().zip(&seen).zip(&bids) {
                *input = critic_input(state, *bid);
            }
            let critic = &mut self.critics[0];
            critic
                .net
                .forward_tape(&mut self.critic_tape, prefix(&inputs, rows));
            // dL/dQ = −1/B per row; the backward pass multiplies by the head's derivative.
            let d_q = [[-scale]; C];
            let mut d_inputs = [[0.0f32; CRITIC_INPUT]; C];
            critic
                .net
                .backward(&mut self.critic_tape, &d_q, None, Some(&mut d_inputs));
            let mut d_bids = [[0.0f32; 1]; C];
            for ((d_bid, d_input), part) in d_bids.iter_mut().zip(&d_inputs).zip(&parts) {
                let d_loss_d_bid = d_input[STATE_DIM];
                d_bid[0] = match (self.residual(), part) {
                    (Some(r), Some((base, output))) => r.actor_gradient(*base, *output, d_loss_d_bid, scale),
                    _ => d_loss_d_bid,
                };
            }
            self.actor
                .net
                .backward(&mut self.actor_tape, &d_bids, Some(&mut self.actor.grads), None);
        }
        self.actor.apply_gradients();
    }

    /// Rows of states as the networks see them ([`Self::net_state`]).
    fn net_states(&self, states: &[[f32; STATE_DIM]; C]) -> [[f32; STATE_DIM]; C] {
        if !self.params.normalize_observations {
            return *states;
        }
        let mut seen = [[0.0; STATE_DIM]; C];
        for (dst, src) in seen.iter_mut().zip(states) {
            *dst = self.input_map.apply(src);
        }
        seen
    }

    /// For the `residual` policy, turns the actor's outputs `bids` (one per row of
    /// `states`) into the bids made and returns each row's base bid and actor output;
    /// plain DDPG leaves them (the bids are the outputs) and returns `None`s.
    fn compose_rows(
        &self,
        states: &[[f32; STATE_DIM]; C],
        bids: &mut [[f32; 1]; C],
    ) -> [Option<(f32, f32)>; C] {
        let mut parts = [None; C];
        if let Some(r) = self.residual() {
            for ((part, [bid]), state) in parts.iter_mut().zip(bids.iter_mut()).zip(states) {
                let base = r.base_bid_row(state);
                *part = Some((base, *bid));
                *bid = r.compose(base, *bid);
            }
        }
        parts
    }
}

/// TD3's target policy smoothing: adds Gaussian noise of σ `params.target_noise`, clipped
/// to ±`params.target_noise_clip`, to each target bid, keeping it in [−1, 1]; nothing (and
/// no random draw) when the target noise is 0.
fn smooth_target_bids(params: &DdpgParams, rng: &mut Rng, bids: &mut [[f32; 1]]) {
    let sigma = params.target_noise;
    if sigma <= 0.0 {
        return;
    }
    // `max`/`min`, not `clamp`, which asserts min ≤ max: `learn` must not panic, whatever
    // the bound (a negative or NaN one leaves the noise finite).
    let clip = params.target_noise_clip;
    for [bid] in bids {
        let noise = (sigma * rng.standard_normal()).max(-clip).min(clip);
        *bid = (*bid + noise).clamp(-1.0, 1.0);
    }
}

/// The critic's input row `[s, a]`.
fn critic_input(state: &[f32; STATE_DIM], bid: f32) -> [f32; CRITIC_INPUT] {
    let mut row = [0.0; CRITIC_INPUT];
    for (dst, src) in row.iter_mut().zip(state) {
        *dst = *src;
    }
    row[STATE_DIM] = bid;
    row
}

impl<const R: usize, const C: usize, Q: Head, const K: usize> Policy for Ddpg<R, C, Q, K> {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let base = self.residual().map(|r| (*r, r.base_bid(obs)));
        let Ok(bid) = actor_bid_row(&self.actor.net, &self.net_state(&obs.to_array())) else {
            self.stats.fallbacks += 1;
            self.recover();
            // The residual policy falls back to its controller; DDPG holds.
            let safe_bid = base.map_or(0.0, |(_, bid)| bid);
            return Ok(Decision::fall_back_to(safe_bid, Fallback::NonFiniteOutput));
        };
        let source = self.shield.next_source();
        let bid = match base {
            Some((_, base)) if source == Source::Controller => base,
            Some((r, base)) => r.compose(base, bid),
            None => bid,
        };
        self.stats.acts += 1;
        // Exploration (section 3.2): the OU process advances every step; its value is
        // added with probability ε.
        let noise = self.noise.sample(&mut self.rng);
        // The controller's steps (the shield's) are its own bids, not explored.
        let explored = self.explorer.roll(&mut self.rng) && source == Source::Learned;
        let bid = if explored { bid + noise } else { bid };
        self.stats.explored += u64::from(explored);
        // The controller in charge (not probing) is a fallback, and counted as one.
        let shielded = self.shield.stats().shielded && source == Source::Controller;
        self.stats.fallbacks += u64::from(shielded);
        Ok(Decision {
            bid: bid.clamp(-1.0, 1.0),
            explored,
            fallback: shielded.then_some(Fallback::Shielded),
        })
    }

    fn record(&mut self, t: &AgentTransition) -> Result<(), PolicyError> {
        check_transition(t)?;
        self.shield.record_reward(t.reward);
        if self.params.normalize_observations {
            self.obs_stats.push(&t.state.to_array());
            self.input_map = self.obs_stats.input_map();
        }
        self.replay.push(stored_transition(t, t.bid));
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
        let loss = self.update_critic();
        // TD3's delayed policy updates: the actor and the targets every `policy_delay`
        // steps (every step for DDPG).
        let delay = u64::from(self.params.policy_delay.max(1));
        let targets_finite = if self.stats.learn_steps.is_multiple_of(delay) {
            self.update_actor();
            let actor_finite = self.actor.update_target(self.params.tau);
            let mut critics_finite = true;
            for critic in &mut self.critics {
                critics_finite &= critic.update_target(self.params.tau);
            }
            actor_finite && critics_finite
        } else {
            true
        };
        self.stats.learn_steps += 1;
        if !(loss.is_finite() && targets_finite) {
            self.recover();
            return Ok(LearnOutcome::Recovered);
        }
        self.stats.last_loss = loss;
        Ok(LearnOutcome::Updated { loss })
    }

    fn start_episode(&mut self) {
        self.noise.reset();
    }

    fn set_exploration(&mut self, on: bool) {
        self.explorer.set_enabled(on);
    }

    fn stats(&self) -> PolicyStats {
        self.explorer.stats(self.stats, self.replay.len())
    }

    fn parameters_finite(&self) -> bool {
        self.actor.is_finite() && self.critics.iter().all(Learner::is_finite)
    }

    #[cfg(feature = "fault-injection")]
    fn inject_parameter_fault(&mut self, index: usize, value: f32) -> bool {
        let actor = self.actor.parameter_count();
        let critic = self.critics[0].parameter_count();
        let k = index % (actor + K * critic);
        if k < actor {
            self.actor.net.overwrite_parameter(k, value);
        } else {
            self.critics[(k - actor) / critic]
                .net
                .overwrite_parameter((k - actor) % critic, value);
        }
        true
    }
}

#[cfg(all(test, feature = "learn"))]
mod tests {
    use super::*;

    #[test]
    fn twin_critics_learn_toward_the_smaller_target_value() {
        let agent = std::boxed::Box::new(Td3::<64>::new(DdpgParams::td3(), 5));
        let rows = [
            [-0.5, 0.2, -0.1, 0.0, 0.7, 0.3],
            [0.4, -0.6, 0.2, -0.3, 0.1, -0.9],
        ];
        let each = |k: usize, agent: &Td3<64>| rows.map(|r| agent.critics[k].target.forward(&r)[0]);
        let (first, second) = (each(0, &agent), each(1, &agent));
        assert_ne!(first, second, "the twins start apart");
        let mut smallest = [[0.0f32; 1]; CHUNK];
        agent.smallest_target_q(&rows, &mut smallest);
        for row in 0..2 {
            assert_eq!(smallest[row][0], first[row].min(second[row]));
        }
        // One critic: its own values.
        let single = Ddpg::<64>::new(DdpgParams::default(), 5);
        let own = rows.map(|r| single.critics[0].target.forward(&r)[0]);
        let mut values = [[0.0f32; 1]; CHUNK];
        single.smallest_target_q(&rows, &mut values);
        assert_eq!([values[0][0], values[1][0]], own);
    }

    #[test]
    fn target_noise_is_clipped_and_bids_stay_in_range() {
        let params = DdpgParams {
            target_noise: 0.6,
            target_noise_clip: 0.3,
            ..DdpgParams::default()
        };
        let mut rng = Rng::seed_from_u64(1);
        let mut bids = [[0.0f32], [0.9], [-0.95], [0.5]];
        let before = bids;
        smooth_target_bids(&params, &mut rng, &mut bids);
        for ([after], [was]) in bids.iter().zip(&before) {
            assert!((after - was).abs() <= 0.3 + 1e-6 && (-1.0..=1.0).contains(after));
        }
        assert_ne!(bids, before);
        let mut untouched = before;
        let mut quiet = Rng::seed_from_u64(1);
        smooth_target_bids(&DdpgParams::default(), &mut quiet, &mut untouched);
        assert_eq!(
            (untouched, quiet.next_u64()),
            (before, Rng::seed_from_u64(1).next_u64())
        );
        // A bound that makes no sense does not panic, and the bids stay in range.
        for clip in [-0.3, f32::NAN] {
            let mut bids = before;
            smooth_target_bids(
                &DdpgParams {
                    target_noise_clip: clip,
                    ..params
                },
                &mut rng,
                &mut bids,
            );
            assert!(
                bids.iter().all(|[b]| (-1.0..=1.0).contains(b)),
                "{clip}: {bids:?}"
            );
        }
    }
}

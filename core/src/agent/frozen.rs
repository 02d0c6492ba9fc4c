//! Inference-only policies loaded from snapshots: what a host links when it only acts.
//!
//! A frozen policy holds only what acting needs (DDPG's actor, DQN's Q-network, the
//! Q-learning table) and never learns or explores. Its `act` applies the same checks as
//! the trainable agents: an invalid observation is an error, a non-finite output becomes
//! the safe bid (hold) with [`Fallback::NonFiniteOutput`].

use crate::mdp::{Observation, STATE_DIM};
use crate::nn::{Identity, Mlp, Tanh};
use crate::rows::at;
use crate::snapshot::{self, Header, SnapshotError, SnapshotKind};

use super::common::{Decision, Fallback, PolicyError};
use super::normalize::{InputMap, RunningStats};
use super::residual::{MAX_STATS, ResidualParams};
use super::shapes::{ACTIONS, HIDDEN, QTable, STATES, argmax, state_index};

/// The actor network type of DDPG.
pub type ActorNet = Mlp<STATE_DIM, HIDDEN, 1, Tanh>;
/// The Q-network type of DQN.
pub type QNet = Mlp<STATE_DIM, HIDDEN, ACTIONS, Identity>;

/// Shape of an actor snapshot: (state, hidden, outputs).
pub const ACTOR_SHAPE: (u16, u16, u16) = (STATE_DIM as u16, HIDDEN as u16, 1);
/// Shape of a Q-network snapshot.
pub const QNET_SHAPE: (u16, u16, u16) = (STATE_DIM as u16, HIDDEN as u16, ACTIONS as u16);
/// Shape of a Q-table snapshot.
pub const QTABLE_SHAPE: (u16, u16, u16) = (STATE_DIM as u16, 0, ACTIONS as u16);

/// The deterministic bid μ(s) of an actor, or the reason to fall back.
pub fn actor_bid(actor: &ActorNet, obs: &Observation) -> Result<f32, Fallback> {
    actor_bid_row(actor, &obs.to_array())
}

/// [`actor_bid`] for a state as the actor sees it (a row of its inputs).
pub fn actor_bid_row(actor: &ActorNet, state: &[f32; STATE_DIM]) -> Result<f32, Fallback> {
    let [bid] = actor.forward(state);
    if bid.is_finite() {
        Ok(bid.clamp(-1.0, 1.0))
    } else {
        Err(Fallback::NonFiniteOutput)
    }
}

/// The greedy action index of a row of Q-values, or the reason to fall back.
pub fn greedy_action(q: &[f32; ACTIONS]) -> Result<usize, Fallback> {
    if q.iter().all(|v| v.is_finite()) {
        Ok(usize::from(argmax(q)))
    } else {
        Err(Fallback::NonFiniteOutput)
    }
}

pub(super) fn decide(result: Result<f32, Fallback>) -> Decision {
    match result {
        Ok(bid) => Decision {
            bid,
            explored: false,
            fallback: None,
        },
        Err(reason) => Decision::hold(reason),
    }
}

/// The header of a network snapshot.
pub fn network_header(
    kind: SnapshotKind,
    shape: (u16, u16, u16),
    action_bids: Option<[f32; ACTIONS]>,
) -> Header {
    let mut extra = [0u8; 12];
    if let Some(bids) = action_bids {
        for (dst, b) in extra.chunks_exact_mut(4).zip(bids) {
            dst.copy_from_slice(&b.to_le_bytes());
        }
    }
    Header {
        kind,
        state_dim: shape.0,
        hidden: shape.1,
        outputs: shape.2,
        parameter_count: 0,
        extra,
    }
}

/// Accepts a DQN or Q-learning snapshot's action bids: finite and in [-1, 1]
/// ([`SnapshotError::ShapeMismatch`] otherwise).
///
/// # Errors
/// [`SnapshotError::ShapeMismatch`] for a bid that is not finite or outside [-1, 1].
pub fn check_action_bids(header: &Header) -> Result<(), SnapshotError> {
    let bids = header.action_bids();
    if bids.iter().all(|b| b.is_finite() && (-1.0..=1.0).contains(b)) {
        Ok(())
    } else {
        Err(SnapshotError::ShapeMismatch)
    }
}

/// DDPG's actor, frozen.
///
/// # Examples
/// ```
/// use cavmem_core::agent::{Ddpg, DdpgParams, FrozenActor, Policy};
/// use cavmem_core::mdp::Observation;
/// let agent = Box::new(Ddpg::<64>::new(DdpgParams::default(), 3));
/// let mut bytes = vec![0u8; cavmem_core::agent::frozen::ACTOR_SNAPSHOT_BYTES];
/// let n = agent.save_snapshot(&mut bytes).unwrap();
/// let mut frozen = FrozenActor::zeroed();
/// frozen.load_snapshot(&bytes[..n]).unwrap();
/// let obs = Observation { msr: 0.3, mem_share: 0.4, avg_msr: 0.1, msr_tgt: 0.0, total_mem_use: 0.8 };
/// assert_eq!(frozen.act(&obs).unwrap().bid, agent.policy_bid(&obs));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenActor {
    actor: ActorNet,
}

/// Bytes of an actor snapshot.
pub const ACTOR_SNAPSHOT_BYTES: usize = snapshot::HEADER_BYTES + 4 * 4609 + snapshot::CRC_BYTES;

impl FrozenActor {
    /// An all-zero actor (bids 0) until a snapshot is loaded; `const` for `static` placement.
    pub const fn zeroed() -> Self {
        Self { actor: Mlp::zeroed() }
    }

    /// Loads an actor snapshot; the policy is unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] for a truncated, corrupted, other-version, other-kind or other-shape snapshot.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        snapshot::read_into(bytes, SnapshotKind::DdpgActor, ACTOR_SHAPE, &mut self.actor)?;
        Ok(())
    }

    /// The actor network.
    pub fn actor(&self) -> &ActorNet {
        &self.actor
    }

    /// The bid for `obs`.
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`].
    pub fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        Ok(decide(actor_bid(&self.actor, obs)))
    }
}

/// The `residual` policy, frozen: the actor, its scale and its base controller (a type of
/// its own, so a host that links only [`FrozenActor`] does not carry the controller), and
/// for a policy trained with normalized observations the map its actor sees states
/// through, as the trained agent last had it.
///
/// # Examples
/// ```
/// use cavmem_core::agent::{Ddpg, DdpgParams, FrozenResidual, ResidualParams};
/// use cavmem_core::mdp::Observation;
/// let agent = Box::new(Ddpg::<64>::new_residual(DdpgParams::default(), ResidualParams::default(), 3));
/// let mut bytes = vec![0u8; cavmem_core::agent::frozen::RESIDUAL_SNAPSHOT_BYTES];
/// let n = agent.save_snapshot(&mut bytes).unwrap();
/// let mut frozen = FrozenResidual::zeroed();
/// frozen.load_snapshot(&bytes[..n]).unwrap();
/// let obs = Observation { msr: 0.3, mem_share: 0.4, avg_msr: 0.1, msr_tgt: 0.0, total_mem_use: 0.8 };
/// assert_eq!(frozen.act(&obs).unwrap().bid, agent.policy_bid(&obs));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenResidual {
    actor: ActorNet,
    residual: ResidualParams,
    input: Option<InputMap>,
}

/// Bytes of a residual snapshot, at most: an actor snapshot's, the scale and the base
/// controller's `fill_to` (written only when it is not 0: 4 bytes fewer).
pub const RESIDUAL_SNAPSHOT_BYTES: usize = ACTOR_SNAPSHOT_BYTES + 8;

/// Bytes of a residual snapshot of an agent trained with normalized observations, at most:
/// [`RESIDUAL_SNAPSHOT_BYTES`] and the observation statistics.
pub const NORMALIZED_RESIDUAL_SNAPSHOT_BYTES: usize = RESIDUAL_SNAPSHOT_BYTES + 4 * MAX_STATS;

impl FrozenResidual {
    /// An all-zero actor on the default controller (bids as the controller does) until a
    /// snapshot is loaded; `const` for `static` placement.
    pub const fn zeroed() -> Self {
        Self {
            actor: Mlp::zeroed(),
            residual: ResidualParams::DEFAULT,
            input: None,
        }
    }

    /// Loads a residual snapshot (actor, scale, controller, and the observation statistics
    /// when it holds them); unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] as for [`FrozenActor::load_snapshot`];
    /// [`SnapshotError::ShapeMismatch`] also for invalid statistics.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        // A plain residual snapshot holds one or two values after the actor (the scale, and
        // `fill_to` when it is not 0); a normalized one the statistics after them.
        let after_actor = (snapshot::read_header(bytes)?.parameter_count as usize)
            .saturating_sub(crate::nn::Parameters::parameter_count(&self.actor));
        let with_stats = after_actor > 2;
        let mut values = [0.0; RunningStats::SNAPSHOT_VALUES];
        let stats = crate::rows::prefix_mut(
            &mut values,
            if with_stats {
                RunningStats::SNAPSHOT_VALUES
            } else {
                0
            },
        );
        let valid = |v: &[f32]| RunningStats::valid_in_snapshot(v);
        self.residual = super::residual::load_snapshot(bytes, &mut self.actor, stats, valid)?;
        self.input = with_stats
            .then(|| RunningStats::from_array(&values).map(|s| s.input_map()))
            .flatten();
        Ok(())
    }

    /// The map the actor sees states through, for a policy trained with normalized
    /// observations; `None` otherwise.
    pub fn input_map(&self) -> Option<&InputMap> {
        self.input.as_ref()
    }

    /// The scale and the controller.
    pub fn residual(&self) -> &ResidualParams {
        &self.residual
    }

    /// The actor network (its output is the correction).
    pub fn actor(&self) -> &ActorNet {
        &self.actor
    }

    /// The bid for `obs`; a non-finite actor output gives the controller's bid with
    /// [`Fallback::NonFiniteOutput`].
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`].
    pub fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let base = self.residual.base_bid(obs);
        let state = obs.to_array();
        let seen = self.input.map_or(state, |map| map.apply(&state));
        Ok(match actor_bid_row(&self.actor, &seen) {
            Ok(correction) => decide(Ok(self.residual.compose(base, correction))),
            Err(reason) => Decision::fall_back_to(base, reason),
        })
    }
}

/// DQN's Q-network, frozen, with its three action bids.
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenQNetwork {
    q: QNet,
    action_bids: [f32; ACTIONS],
}

impl FrozenQNetwork {
    /// An all-zero network (always the first action) until a snapshot is loaded.
    pub const fn zeroed() -> Self {
        Self {
            q: Mlp::zeroed(),
            action_bids: [0.0; ACTIONS],
        }
    }

    /// Loads a Q-network snapshot; the policy is unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] as for [`FrozenActor::load_snapshot`].
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let header = snapshot::read_into_if(
            bytes,
            SnapshotKind::DqnQNetwork,
            QNET_SHAPE,
            &mut self.q,
            check_action_bids,
        )?;
        self.action_bids = header.action_bids();
        Ok(())
    }

    /// The network and the action bids.
    pub fn parts(&self) -> (&QNet, [f32; ACTIONS]) {
        (&self.q, self.action_bids)
    }

    /// The greedy bid for `obs`.
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`].
    pub fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let bid = greedy_action(&self.q.forward(&obs.to_array())).map(|a| at(&self.action_bids, a));
        Ok(decide(bid))
    }
}

/// Q-learning's table, frozen (1.2 MB: place it on the heap or in a `static`).
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenQTable {
    table: QTable,
    action_bids: [f32; ACTIONS],
}

impl FrozenQTable {
    /// An all-zero table until a snapshot is loaded.
    pub const fn zeroed() -> Self {
        Self {
            table: QTable::zeroed(),
            action_bids: [0.0; ACTIONS],
        }
    }

    /// Loads a Q-table snapshot; the policy is unchanged on error (the table is read
    /// twice: once to check, once to copy, so no second table is needed).
    ///
    /// # Errors
    /// [`SnapshotError`] as for [`FrozenActor::load_snapshot`].
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let header = snapshot::read_header(bytes)?;
        if header.kind != SnapshotKind::QTable {
            return Err(SnapshotError::WrongKind {
                found: header.kind as u8,
            });
        }
        let bids = header.action_bids();
        if header.parameter_count as usize != STATES * ACTIONS
            || !bids.iter().all(|b| b.is_finite() && (-1.0..=1.0).contains(b))
        {
            return Err(SnapshotError::ShapeMismatch);
        }
        snapshot::read_into(bytes, SnapshotKind::QTable, QTABLE_SHAPE, &mut self.table)?;
        self.action_bids = bids;
        Ok(())
    }

    /// The greedy bid for `obs`.
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`].
    pub fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let row = self.table.row(state_index(obs));
        let bid = greedy_action(&row).map(|a| at(&self.action_bids, a));
        Ok(decide(bid))
    }
}

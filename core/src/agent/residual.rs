//! Residual learning on the feedback controller: the `residual` policy is DDPG whose actor
//! learns a bounded correction to [`controller::feedback`](super::controller::feedback)'s
//! bid (Johannink et al. 2019, Silver et al. 2018), so it starts at the controller's
//! quality (the actor's last layer starts near 0) and can learn what the controller misses.
//!
//! `bid = clamp(clamp(feedback(s), −1, 1) + scale · μ(s), −1, 1)`, μ(s) ∈ [−1, 1] the
//! actor's tanh output. The critic values the bid actually made, `Q(s, bid)`; the actor's
//! gradient is `∂Q/∂bid · scale` where the outer clamp does not bind and, where it does,
//! only if it moves the bid back inside ([`ResidualParams::correction_gradient`]).

use super::controller::{ControlRule, FeedbackParams};
use super::frozen::{ACTOR_SHAPE, ActorNet, network_header};
use super::shield::ShieldParams;
use crate::mdp::{Observation, STATE_DIM};
use crate::nn::Parameters;
use crate::rows::prefix;
use crate::snapshot::{self, HEADER_BYTES, SnapshotError, SnapshotKind};

/// Parameters of the residual policy: the base controller and how far the actor may move
/// its bid.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ResidualParams {
    /// The largest correction the actor can add to the controller's bid, (0, 2] (bid
    /// units). Default 0.25.
    pub scale: f32,
    /// The base controller's parameters (default: the feedback controller's defaults).
    pub base: FeedbackParams,
    /// The runtime shield of a trainable agent ([`super::shield`]; off by default). Not
    /// part of a snapshot (loading one keeps the agent's own).
    pub shield: ShieldParams,
    /// β of the actor's penalty `β · μ(s)²` on its correction (training only, not in a
    /// snapshot), ≥ 0: pulls the learned bids toward the controller's unless the critic
    /// says otherwise. Default 0.3 (docs/agents.md: chosen over 0, 0.5 and 1 on s1–s3 and
    /// the suite, ten seeds each).
    pub correction_penalty: f32,
}

impl Default for ResidualParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl ResidualParams {
    /// The defaults, as a constant: scale 0.25 on the feedback controller's defaults, a
    /// correction penalty of 0.3, the shield off.
    pub const DEFAULT: Self = Self {
        scale: 0.25,
        base: FeedbackParams::DEFAULT,
        shield: ShieldParams::DEFAULT,
        correction_penalty: 0.3,
    };

    /// Every number 0 (scale 0 is not a valid residual policy): the all-zero placeholder of
    /// a plain DDPG agent.
    pub const ZERO: Self = Self {
        scale: 0.0,
        base: FeedbackParams::ZERO,
        shield: ShieldParams::OFF,
        correction_penalty: 0.0,
    };

    /// The snapshot's four numbers: scale, then the base's three.
    pub fn to_array(&self) -> [f32; 4] {
        let [gain, avg_floor, missing] = self.base.to_array();
        [self.scale, gain, avg_floor, missing]
    }

    /// The parameters `values` (snapshot order) stand for, if they are valid (the default
    /// shield and correction penalty, which a snapshot does not hold).
    pub fn from_array([scale, gain, avg_floor, missing]: [f32; 4]) -> Option<Self> {
        let base = FeedbackParams::from_array([gain, avg_floor, missing])?;
        (scale > 0.0 && scale <= 2.0).then_some(Self {
            scale,
            base,
            ..Self::DEFAULT
        })
    }

    /// The controller's bid for a valid `obs`, clamped to [-1, 1].
    pub fn base_bid(&self, obs: &Observation) -> f32 {
        self.base.bid(obs).clamp(-1.0, 1.0)
    }

    /// [`Self::base_bid`] for a state as stored in the replay (a network input row, checked
    /// when it was recorded).
    pub fn base_bid_row(&self, state: &[f32; STATE_DIM]) -> f32 {
        let [msr, mem_share, avg_msr, msr_tgt, total_mem_use] = *state;
        self.base_bid(&Observation {
            msr,
            mem_share,
            avg_msr,
            msr_tgt,
            total_mem_use,
        })
    }

    /// The bid made when the actor says `correction` (in [-1, 1]) on a state whose base bid
    /// is `base_bid`.
    ///
    /// ```
    /// use cavmem_core::agent::ResidualParams;
    /// let r = ResidualParams::default(); // scale 0.25
    /// assert_eq!(r.compose(0.5, 1.0), 0.75);
    /// assert_eq!(r.compose(0.9, 1.0), 1.0);
    /// ```
    pub fn compose(&self, base_bid: f32, correction: f32) -> f32 {
        (base_bid + self.scale * correction).clamp(-1.0, 1.0)
    }

    /// The actor's loss gradient `∂L/∂correction` from the critic's `∂L/∂bid`: `scale ·
    /// ∂L/∂bid` inside [-1, 1]; where the clamp binds, only a gradient that moves the bid
    /// back inside passes (else a controller saturated at ±1, as it is whenever a VM takes
    /// free memory, would leave the actor no gradient at all).
    ///
    /// ```
    /// use cavmem_core::agent::ResidualParams;
    /// let r = ResidualParams::default(); // scale 0.25
    /// assert_eq!(r.correction_gradient(0.0, 0.5, 2.0), 0.5);
    /// assert_eq!(r.correction_gradient(1.0, 0.5, 2.0), 0.5); // descent lowers the bid
    /// assert_eq!(r.correction_gradient(1.0, 0.5, -2.0), 0.0); // would push it further out
    /// ```
    pub fn correction_gradient(&self, base_bid: f32, correction: f32, d_loss_d_bid: f32) -> f32 {
        let raw = base_bid + self.scale * correction;
        let outward = (raw > 1.0 && d_loss_d_bid < 0.0) || (raw < -1.0 && d_loss_d_bid > 0.0);
        if outward { 0.0 } else { self.scale * d_loss_d_bid }
    }

    /// The actor's whole loss gradient for one minibatch row of weight `row_weight` (1/B):
    /// [`Self::correction_gradient`] plus, with a [`Self::correction_penalty`] β, the
    /// penalty's `2β · correction · row_weight` (`β · μ²` averaged over the batch).
    pub fn actor_gradient(&self, base_bid: f32, correction: f32, d_loss_d_bid: f32, row_weight: f32) -> f32 {
        let critic = self.correction_gradient(base_bid, correction, d_loss_d_bid);
        if self.correction_penalty > 0.0 {
            critic + 2.0 * self.correction_penalty * correction * row_weight
        } else {
            critic
        }
    }
}

/// Writes a residual snapshot ([`SnapshotKind::ResidualActor`]): the base controller's
/// three parameters in the kind-specific bytes, the actor's parameters, the scale, then the
/// base's `fill_to` when it is not 0 (so other snapshots keep their bytes), then `stats`
/// (an agent's observation statistics, [`super::normalize`]; empty without them).
///
/// # Errors
/// [`SnapshotError::BufferTooSmall`].
pub fn save_snapshot(
    residual: &ResidualParams,
    actor: &ActorNet,
    stats: &[f32],
    out: &mut [u8],
) -> Result<usize, SnapshotError> {
    let header = network_header(
        SnapshotKind::ResidualActor,
        ACTOR_SHAPE,
        Some(residual.base.to_array()),
    );
    let tail = [residual.scale, residual.base.fill_to];
    let tail = prefix(&tail, 1 + usize::from(residual.base.extension().is_some()));
    let tensors = actor.tensors().chain([tail, stats]);
    let count = actor.parameter_count() + tail.len() + stats.len();
    snapshot::write_tensors(&header, count, tensors, out)
}

/// Reads a residual snapshot into `actor` and, when it holds them, `stats.len()` values of
/// observation statistics into `stats` (empty: a snapshot with them is refused; not empty:
/// one without them is); returns its scale and base controller. `accept_stats` judges the
/// stored statistics before anything is written. Nothing is changed on error.
///
/// # Errors
/// [`SnapshotError`] as for any network snapshot; [`SnapshotError::ShapeMismatch`] for a
/// scale, base parameter or statistics out of range, or statistics present or missing
/// against `stats`.
pub fn load_snapshot(
    bytes: &[u8],
    actor: &mut ActorNet,
    stats: &mut [f32],
    accept_stats: impl FnOnce(&[f32]) -> bool,
) -> Result<ResidualParams, SnapshotError> {
    let n = actor.parameter_count();
    let stats_len = stats.len();
    let extended = snapshot::read_header(bytes)?.parameter_count as usize == n + 2 + stats_len;
    let mut read = None;
    let mut tail = [0.0; 2 + MAX_STATS];
    let tail_len = 1 + usize::from(extended) + stats_len;
    let tail = tail.get_mut(..tail_len).ok_or(SnapshotError::ShapeMismatch)?;
    let stored = stored_after(bytes, n);
    let mut parameters = ActorAndTail { actor, tail };
    snapshot::read_into_if(
        bytes,
        SnapshotKind::ResidualActor,
        ACTOR_SHAPE,
        &mut parameters,
        |h| {
            let [gain, avg_floor, missing] = h.extra_f32s();
            read = ResidualParams::from_array([stored(0), gain, avg_floor, missing]);
            if let (Some(r), true) = (read, extended) {
                read = r
                    .base
                    .with_extension(stored(1))
                    .map(|base| ResidualParams { base, ..r });
            }
            let first = 1 + usize::from(extended);
            let mut kept = [0.0; MAX_STATS];
            for (k, v) in kept.iter_mut().enumerate() {
                *v = stored(first + k);
            }
            match read {
                Some(_) if accept_stats(prefix(&kept, stats_len)) => Ok(()),
                _ => Err(SnapshotError::ShapeMismatch),
            }
        },
    )?;
    let first = tail_len.saturating_sub(stats_len);
    for (dst, src) in stats.iter_mut().zip(parameters.tail.iter().skip(first)) {
        *dst = *src;
    }
    read.ok_or(SnapshotError::ShapeMismatch)
}

/// The most values of observation statistics a snapshot carries after its network.
pub const MAX_STATS: usize = 1 + 2 * STATE_DIM;

/// The `k`-th f32 after the first `n` parameters of a snapshot (NaN past its end).
pub(super) fn stored_after(bytes: &[u8], n: usize) -> impl Fn(usize) -> f32 + '_ {
    let at = HEADER_BYTES + 4 * n;
    move |k| {
        bytes
            .get(at + 4 * k..at + 4 * k + 4)
            .map_or(f32::NAN, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The parameters of an actor snapshot with values after the network: a residual one's
/// scale and, in an extended one, the base's `fill_to`; observation statistics.
pub(super) struct ActorAndTail<'a> {
    pub(super) actor: &'a mut ActorNet,
    pub(super) tail: &'a mut [f32],
}

impl Parameters for ActorAndTail<'_> {
    fn tensors(&self) -> impl Iterator<Item = &[f32]> {
        self.actor.tensors().chain(core::iter::once(&*self.tail))
    }
    fn tensors_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        self.actor.tensors_mut().chain(core::iter::once(&mut *self.tail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_numbers_round_trip_and_invalid_ones_are_refused() {
        let r = ResidualParams::default();
        assert_eq!(ResidualParams::from_array(r.to_array()), Some(r));
        for scale in [0.0, -0.1, 2.5, f32::NAN, f32::INFINITY] {
            let mut a = r.to_array();
            a[0] = scale;
            assert_eq!(ResidualParams::from_array(a), None, "scale {scale}");
        }
        let mut a = r.to_array();
        a[1] = 0.0; // gain
        assert_eq!(ResidualParams::from_array(a), None);
    }

    #[test]
    fn compose_adds_the_scaled_correction_and_clamps() {
        let r = ResidualParams {
            scale: 0.5,
            ..ResidualParams::default()
        };
        assert_eq!(r.compose(0.0, 0.0), 0.0);
        assert_eq!(r.compose(-0.25, 1.0), 0.25);
        assert_eq!(r.compose(-0.75, -1.0), -1.0);
        assert_eq!(r.compose(1.0, 0.5), 1.0);
        assert_eq!(r.compose(1.0, -0.5), 0.75);
    }

    #[test]
    fn only_gradients_back_inside_pass_the_clamp() {
        let r = ResidualParams {
            scale: 0.5,
            ..ResidualParams::default()
        };
        assert_eq!(r.correction_gradient(0.2, 0.3, 1.0), 0.5);
        assert_eq!(r.correction_gradient(0.2, 0.3, -1.0), -0.5);
        // Above 1: descent on a positive ∂L/∂bid lowers the bid (passes), a negative one not.
        assert_eq!(r.correction_gradient(1.0, 0.1, 1.0), 0.5);
        assert_eq!(r.correction_gradient(1.0, 0.1, -1.0), 0.0);
        // Below −1, the mirror image.
        assert_eq!(r.correction_gradient(-1.0, -0.1, -1.0), -0.5);
        assert_eq!(r.correction_gradient(-1.0, -0.1, 1.0), 0.0);
    }
}

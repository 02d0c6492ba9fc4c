//! DDPG's actor in int8, for inference only: an option for hosts short of memory, not the
//! default path (its bids differ from the `f32` actor's; docs/embedding.md measures by how
//! much).
//!
//! The 64 × 64 hidden layer — 4,096 of the actor's 4,609 parameters — runs in int8
//! ([`crate::nn::int8`]: weights per output, inputs per call); the first layer, whose five
//! inputs have different ranges, and the one-output head stay `f32`, computed as in the
//! `f32` actor. 6,404 bytes of parameters instead of 18,436. A quantized policy is made
//! from a loaded inference-only one ([`FrozenInt8::from_actor`],
//! [`FrozenInt8::from_residual`]); the snapshot format is unchanged.

use crate::mdp::{Observation, STATE_DIM};
use crate::nn::act::relu;
use crate::nn::int8::Int8Dense;
use crate::nn::{Dense, Head, Tanh};

use super::common::{Decision, Fallback, PolicyError};
use super::frozen::{ActorNet, FrozenActor, FrozenResidual, decide};
use super::residual::ResidualParams;
use super::shapes::HIDDEN;

/// Why an actor could not be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QuantizeError {
    /// A weight or bias of the actor is NaN or infinite.
    NonFiniteParameter,
    /// The policy sees its states through normalized observations, which the int8 path
    /// does not apply.
    NormalizedInputs,
}

impl core::fmt::Display for QuantizeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NonFiniteParameter => f.write_str("the actor has a non-finite parameter"),
            Self::NormalizedInputs => {
                f.write_str("the policy normalizes its observations; the int8 path does not")
            }
        }
    }
}

/// The actor `5 → 64 → 64 → 1` with its hidden layer in int8 (module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Int8Actor {
    l1: Dense<STATE_DIM, HIDDEN>,
    l2: Int8Dense<HIDDEN, HIDDEN>,
    l3: Dense<HIDDEN, 1>,
}

impl Int8Actor {
    /// An all-zero actor (bids 0); `const` for `static` placement.
    pub const fn zeroed() -> Self {
        Self {
            l1: Dense::zeroed(),
            l2: Int8Dense::zeroed(),
            l3: Dense::zeroed(),
        }
    }

    /// `actor` with its hidden layer quantized.
    ///
    /// # Errors
    /// [`QuantizeError::NonFiniteParameter`].
    pub fn quantize(actor: &ActorNet) -> Result<Self, QuantizeError> {
        use crate::nn::Parameters;
        if !actor.all_finite() {
            return Err(QuantizeError::NonFiniteParameter);
        }
        let (l1, l2, l3) = actor.layers();
        Ok(Self {
            l1: l1.clone(),
            l2: Int8Dense::quantize(l2).ok_or(QuantizeError::NonFiniteParameter)?,
            l3: l3.clone(),
        })
    }

    /// The actor's output for a state row, in [-1, 1], or the reason to fall back.
    ///
    /// # Errors
    /// [`Fallback::NonFiniteOutput`].
    pub fn bid(&self, state: &[f32; STATE_DIM]) -> Result<f32, Fallback> {
        let mut h1 = [0.0; HIDDEN];
        let mut h2 = [0.0; HIDDEN];
        let mut y = [0.0; 1];
        self.l1.forward_then(state, &mut h1, relu);
        self.l2.forward_then(&h1, &mut h2, relu);
        self.l3.forward_then(&h2, &mut y, Tanh::apply);
        let [bid] = y;
        if bid.is_finite() {
            Ok(bid.clamp(-1.0, 1.0))
        } else {
            Err(Fallback::NonFiniteOutput)
        }
    }

    /// Bytes of the actor's parameters.
    pub const fn parameter_bytes() -> usize {
        4 * (STATE_DIM * HIDDEN + HIDDEN) + Int8Dense::<HIDDEN, HIDDEN>::parameter_bytes() + 4 * (HIDDEN + 1)
    }
}

/// An inference-only DDPG or `residual` policy acting with an [`Int8Actor`].
///
/// # Examples
/// ```
/// use cavmem_core::agent::{Ddpg, DdpgParams, FrozenResidual, ResidualParams};
/// use cavmem_core::agent::int8::FrozenInt8;
/// use cavmem_core::mdp::Observation;
/// let agent = Box::new(Ddpg::<64>::new_residual(DdpgParams::default(), ResidualParams::default(), 3));
/// let mut bytes = vec![0u8; cavmem_core::agent::frozen::RESIDUAL_SNAPSHOT_BYTES];
/// let n = agent.save_snapshot(&mut bytes).unwrap();
/// let mut frozen = FrozenResidual::zeroed();
/// frozen.load_snapshot(&bytes[..n]).unwrap();
/// let int8 = FrozenInt8::from_residual(&frozen).unwrap();
/// let obs = Observation { msr: 0.3, mem_share: 0.4, avg_msr: 0.1, msr_tgt: 0.0, total_mem_use: 0.8 };
/// let (a, b) = (int8.act(&obs).unwrap().bid, frozen.act(&obs).unwrap().bid);
/// assert!((a - b).abs() < 0.01);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct FrozenInt8 {
    actor: Int8Actor,
    /// [`ResidualParams::ZERO`] for plain DDPG.
    residual: ResidualParams,
}

impl FrozenInt8 {
    /// An all-zero DDPG actor (bids 0) until made from a policy; `const` for `static` placement.
    pub const fn zeroed() -> Self {
        Self {
            actor: Int8Actor::zeroed(),
            residual: ResidualParams::ZERO,
        }
    }

    /// DDPG's (or TD3's) actor, quantized.
    ///
    /// # Errors
    /// [`QuantizeError::NonFiniteParameter`].
    pub fn from_actor(frozen: &FrozenActor) -> Result<Self, QuantizeError> {
        Ok(Self {
            actor: Int8Actor::quantize(frozen.actor())?,
            residual: ResidualParams::ZERO,
        })
    }

    /// A `residual` policy with its actor quantized (its scale and controller as they are).
    ///
    /// # Errors
    /// [`QuantizeError::NonFiniteParameter`]; [`QuantizeError::NormalizedInputs`] for a
    /// policy trained with normalized observations.
    pub fn from_residual(frozen: &FrozenResidual) -> Result<Self, QuantizeError> {
        if frozen.input_map().is_some() {
            return Err(QuantizeError::NormalizedInputs);
        }
        Ok(Self {
            actor: Int8Actor::quantize(frozen.actor())?,
            residual: *frozen.residual(),
        })
    }

    /// The residual policy's scale and controller; `None` for a DDPG actor.
    pub fn residual(&self) -> Option<&ResidualParams> {
        (self.residual.scale > 0.0).then_some(&self.residual)
    }

    /// The bid for `obs`, as [`FrozenActor::act`] or [`FrozenResidual::act`] gives it with
    /// the int8 actor.
    ///
    /// # Errors
    /// [`PolicyError::InvalidObservation`].
    pub fn act(&self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        let output = self.actor.bid(&obs.to_array());
        Ok(match self.residual() {
            Some(r) => {
                let base = r.base_bid(obs);
                match output {
                    Ok(correction) => decide(Ok(r.compose(base, correction))),
                    Err(reason) => Decision::fall_back_to(base, reason),
                }
            }
            None => decide(output),
        })
    }
}

#[cfg(all(test, feature = "learn"))]
mod tests {
    use super::*;
    use crate::agent::{Ddpg, DdpgParams};
    use crate::nn::Parameters;
    use crate::rng::Rng;

    fn random_observations(seed: u64, n: usize) -> impl Iterator<Item = Observation> {
        let mut rng = Rng::seed_from_u64(seed);
        (0..n).map(move |_| Observation::random(&mut rng))
    }

    /// An actor with weights of a trained one's magnitude: hidden layers in ±1/√fan-in,
    /// the head in ±0.3 (the initial head's ±0.003 would hide every error).
    fn actor(seed: u64) -> ActorNet {
        let mut net = ActorNet::zeroed();
        net.init(&mut Rng::seed_from_u64(seed));
        let mut rng = Rng::seed_from_u64(seed + 100);
        let count = net.parameter_count();
        for (k, v) in net.tensors_mut().flat_map(|t| t.iter_mut()).enumerate() {
            if k + HIDDEN + 1 >= count {
                *v = rng.uniform_range(-0.3, 0.3);
            }
        }
        net
    }

    #[test]
    fn int8_bids_stay_near_the_f32_actor() {
        for seed in 0..5 {
            let net = actor(seed);
            let q = Int8Actor::quantize(&net).unwrap();
            let mut worst = 0.0f32;
            for obs in random_observations(seed, 2000) {
                let s = obs.to_array();
                let [exact] = net.forward(&s);
                worst = worst.max((q.bid(&s).unwrap() - exact.clamp(-1.0, 1.0)).abs());
            }
            assert!(worst < 0.02, "seed {seed}: {worst}");
            assert!(worst > 0.0, "seed {seed}: the int8 path is not the f32 one");
        }
    }

    #[test]
    fn residual_policy_keeps_its_controller_and_scale() {
        let agent = std::boxed::Box::new(Ddpg::<64>::new_residual(
            DdpgParams::default(),
            ResidualParams::default(),
            7,
        ));
        let mut bytes = std::vec![0u8; crate::agent::frozen::RESIDUAL_SNAPSHOT_BYTES];
        let n = agent.save_snapshot(&mut bytes).unwrap();
        let mut frozen = FrozenResidual::zeroed();
        frozen.load_snapshot(&bytes[..n]).unwrap();
        let int8 = FrozenInt8::from_residual(&frozen).unwrap();
        assert_eq!(int8.residual(), Some(frozen.residual()));
        for obs in random_observations(8, 500) {
            let (a, b) = (int8.act(&obs).unwrap(), frozen.act(&obs).unwrap());
            assert!((a.bid - b.bid).abs() <= 0.25 * 0.02, "{obs:?}: {a:?} vs {b:?}");
            assert_eq!(a.fallback, None);
        }
    }

    /// Sets parameter `k` (in [`Parameters::tensors`] order) to `value`.
    fn set<P: Parameters>(net: &mut P, k: usize, value: f32) {
        if let Some(v) = net.tensors_mut().flat_map(|t| t.iter_mut()).nth(k) {
            *v = value;
        }
    }

    #[test]
    fn invalid_observations_are_errors_and_diverged_actors_are_refused() {
        let int8 = FrozenInt8::from_actor(&FrozenActor::zeroed()).unwrap();
        assert_eq!(int8.residual(), None);
        let bad = Observation {
            msr: f32::NAN,
            ..Observation::default()
        };
        assert!(matches!(int8.act(&bad), Err(PolicyError::InvalidObservation(_))));
        for k in [3, 1000, 4608] {
            let mut net = actor(1);
            set(&mut net, k, f32::INFINITY);
            assert_eq!(
                Int8Actor::quantize(&net),
                Err(QuantizeError::NonFiniteParameter),
                "{k}"
            );
        }
    }

    #[test]
    fn a_non_finite_output_falls_back() {
        let mut q = Int8Actor::quantize(&actor(2)).unwrap();
        set(&mut q.l3, HIDDEN, f32::NAN);
        let s = Observation::default().to_array();
        assert_eq!(q.bid(&s), Err(Fallback::NonFiniteOutput));
        let policy = FrozenInt8 {
            actor: q,
            residual: ResidualParams::default(),
        };
        let obs = Observation::default();
        let decision = policy.act(&obs).unwrap();
        assert_eq!(decision.fallback, Some(Fallback::NonFiniteOutput));
        assert_eq!(decision.bid, ResidualParams::default().base_bid(&obs));
    }

    #[test]
    fn an_int8_actor_is_a_third_of_the_f32_one() {
        assert_eq!(Int8Actor::parameter_bytes(), 6_404);
        assert_eq!(core::mem::size_of::<Int8Actor>(), 6_404);
        assert_eq!(4 * ActorNet::zeroed().parameter_count(), 18_436);
    }
}

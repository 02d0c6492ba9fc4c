//! Feedback controllers that need no learning: what a hypervisor integrator ships when
//! learning is not wanted, and what a learned agent must beat ([`Feedback`], [`Mom`]).
//!
//! A controller is a [`ControlRule`] (its parameters and the bid they give for one
//! observation) inside [`Controller`], which validates inputs, counts decisions and saves
//! the rule's three parameters as a snapshot (docs/snapshot.md). Both rules read only the
//! agent's own observation, so every VM's agent decides alone, as the learned ones do; the
//! miss rates they compare are fractions of each VM's bound, `(msr + 1) / 2` ∈ [0, 1].

pub mod feedback;
pub mod mom;

pub use feedback::FeedbackParams;
pub use mom::MomParams;

use crate::mdp::Observation;
use crate::snapshot::{self, SnapshotError, SnapshotKind};

use super::common::{Decision, LearnOutcome, PolicyError, PolicyStats, check_transition};
use super::{AgentTransition, Policy};

/// Bytes of a controller's snapshot, at most: its three parameters sit in the header, an
/// extension ([`ControlRule::extension`]) in one `f32` after it.
pub const SNAPSHOT_BYTES: usize = snapshot::PARAMETERLESS_BYTES + 4;

/// A controller's rule: three `f32` parameters, optionally a fourth (its extension), and
/// the bid they give.
pub trait ControlRule: Copy + Default {
    /// The snapshot kind that holds this rule.
    const KIND: SnapshotKind;
    /// The bid in [-1, 1] for a valid observation.
    fn bid(&self, obs: &Observation) -> f32;
    /// The parameters, in snapshot order.
    fn to_array(&self) -> [f32; 3];
    /// The rule with parameters `values` (snapshot order), if they are valid; its
    /// extension at its default.
    fn from_array(values: [f32; 3]) -> Option<Self>;
    /// A fourth parameter, written after the header only when it is not its default
    /// (so a snapshot of the defaults has the same bytes as before it existed).
    fn extension(&self) -> Option<f32> {
        None
    }
    /// The rule with its extension set to `value`, if the rule has one and it is valid.
    fn with_extension(self, _value: f32) -> Option<Self> {
        None
    }
}

/// A VM's miss rate as a fraction of its bound, [0, 1], from a rescaled one in [-1, 1].
pub fn miss_fraction(msr: f32) -> f32 {
    ((msr + 1.0) * 0.5).clamp(0.0, 1.0)
}

/// The bid that asks for `share_of_node` more of the node (negative: less) for a VM
/// holding `mem_share` of it, clamped to [-1, 1]; 1 for a VM holding nothing.
pub fn bid_for_share(share_of_node: f32, mem_share: f32) -> f32 {
    if mem_share > 0.0 {
        (share_of_node / mem_share).clamp(-1.0, 1.0)
    } else if share_of_node > 0.0 {
        1.0
    } else {
        0.0
    }
}

/// A controller running rule `R`.
///
/// # Examples
/// ```
/// use cavmem_core::agent::{Feedback, FeedbackParams, Policy};
/// use cavmem_core::mdp::Observation;
/// let mut policy = Feedback::new(FeedbackParams::default());
/// // This VM misses at 60% of its bound while the node averages 30%: it asks for more.
/// let obs = Observation { msr: 0.2, mem_share: 0.5, avg_msr: -0.4, total_mem_use: 1.0, ..Observation::default() };
/// assert!(policy.act(&obs).unwrap().bid > 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Controller<R> {
    rule: R,
    stats: PolicyStats,
}

impl<R: ControlRule> Controller<R> {
    /// The controller with `rule`.
    pub const fn new(rule: R) -> Self {
        Self {
            rule,
            stats: PolicyStats::ZERO,
        }
    }

    /// Its rule.
    pub const fn rule(&self) -> &R {
        &self.rule
    }

    /// Writes the rule's parameters as a snapshot; returns the bytes written.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let mut extra = [0u8; 12];
        for (dst, v) in extra.chunks_exact_mut(4).zip(self.rule.to_array()) {
            dst.copy_from_slice(&v.to_le_bytes());
        }
        match self.rule.extension() {
            None => snapshot::write_parameterless(R::KIND, extra, out),
            Some(value) => snapshot::write_extended(R::KIND, extra, value, out),
        }
    }

    /// Loads a snapshot of this controller's kind; unchanged on error.
    ///
    /// # Errors
    /// [`SnapshotError`] for a bad snapshot, one of another kind, or invalid parameters
    /// ([`SnapshotError::ShapeMismatch`]).
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let mut rule = None;
        snapshot::read_extended(bytes, R::KIND, |h, extension| {
            rule = R::from_array(h.extra_f32s());
            if let (Some(r), Some(value)) = (rule, extension) {
                rule = r.with_extension(value);
            }
            rule.map(|_| ()).ok_or(SnapshotError::ShapeMismatch)
        })?;
        if let Some(rule) = rule {
            self.rule = rule;
        }
        Ok(())
    }
}

impl<R: ControlRule> Policy for Controller<R> {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        self.stats.acts += 1;
        let bid = self.rule.bid(obs);
        // A rule's arithmetic on valid inputs is finite; hold if it ever is not.
        Ok(if bid.is_finite() {
            Decision {
                bid: bid.clamp(-1.0, 1.0),
                explored: false,
                fallback: None,
            }
        } else {
            self.stats.fallbacks += 1;
            Decision::hold(super::Fallback::NonFiniteOutput)
        })
    }

    fn record(&mut self, t: &AgentTransition) -> Result<(), PolicyError> {
        check_transition(t)
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

/// The proportional feedback controller ([`feedback`]).
pub type Feedback = Controller<FeedbackParams>;
/// The MOM-style fixed-step controller ([`mom`]).
pub type Mom = Controller<MomParams>;

#[cfg(test)]
mod tests;

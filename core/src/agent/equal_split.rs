//! The static policy of the paper (section 4): "divides memory equally among VMs". Each
//! step it bids whatever moves its VM toward `1 / vm_count` of the node; bids are limited
//! to [-1, 1], so reaching the equal share can take more than one step.

use crate::mdp::Observation;
use crate::snapshot::{self, SnapshotError, SnapshotKind};

use super::common::{Decision, LearnOutcome, PolicyError, PolicyStats, check_transition};
use super::{AgentTransition, Policy};

/// The largest number of VMs a node may have: configurations and snapshots give a VM count
/// in `1..=MAX_VM_COUNT` (the equal share 1/65,536 is still far above `f32` resolution).
pub const MAX_VM_COUNT: u32 = 1 << 16;

/// Whether `vm_count` is a possible number of VMs on a node: `1..=`[`MAX_VM_COUNT`].
pub const fn valid_vm_count(vm_count: u32) -> bool {
    vm_count >= 1 && vm_count <= MAX_VM_COUNT
}

/// Parameters of the equal split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EqualSplitParams {
    /// Number of VMs sharing the node (the observation does not tell it).
    pub vm_count: u32,
}

impl Default for EqualSplitParams {
    fn default() -> Self {
        Self { vm_count: 2 }
    }
}

/// The static equal split.
///
/// # Examples
/// ```
/// use cavmem_core::agent::{EqualSplit, EqualSplitParams, Policy};
/// use cavmem_core::mdp::Observation;
/// let mut policy = EqualSplit::new(EqualSplitParams { vm_count: 2 });
/// // A VM holding a quarter of the node asks to double, to reach half.
/// let obs = Observation { mem_share: 0.25, ..Observation::default() };
/// assert_eq!(policy.act(&obs).unwrap().bid, 1.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct EqualSplit {
    params: EqualSplitParams,
    stats: PolicyStats,
}

impl EqualSplit {
    /// The policy for `params.vm_count` VMs.
    pub const fn new(params: EqualSplitParams) -> Self {
        Self {
            params,
            stats: PolicyStats::ZERO,
        }
    }

    /// Bytes of this policy's snapshot.
    pub const SNAPSHOT_BYTES: usize = snapshot::PARAMETERLESS_BYTES;

    /// Writes the VM count as a snapshot; returns the bytes written.
    ///
    /// # Errors
    /// [`SnapshotError::BufferTooSmall`].
    pub fn save_snapshot(&self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let mut extra = [0u8; 12];
        extra[..4].copy_from_slice(&self.params.vm_count.to_le_bytes());
        snapshot::write_parameterless(SnapshotKind::EqualSplit, extra, out)
    }

    /// Loads an equal-split snapshot (its VM count).
    ///
    /// # Errors
    /// [`SnapshotError`] for a bad snapshot or one of another kind.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let header = snapshot::read_parameterless(bytes, SnapshotKind::EqualSplit, |h| {
            if valid_vm_count(h.vm_count()) {
                Ok(())
            } else {
                Err(SnapshotError::ShapeMismatch)
            }
        })?;
        self.params.vm_count = header.vm_count();
        Ok(())
    }

    /// Changes the number of VMs (VMs came or went).
    pub fn set_vm_count(&mut self, vm_count: u32) {
        self.params.vm_count = vm_count;
    }
}

impl Policy for EqualSplit {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        self.stats.acts += 1;
        let share = 1.0 / self.params.vm_count.max(1) as f32;
        let bid = if obs.mem_share > 0.0 {
            share / obs.mem_share - 1.0
        } else {
            1.0
        };
        Ok(Decision {
            bid: bid.clamp(-1.0, 1.0),
            explored: false,
            fallback: None,
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

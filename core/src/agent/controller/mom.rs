//! The fixed-step controller in the style of oVirt's Memory Overcommitment Manager (MOM):
//! memory moves in fixed steps from VMs that miss little to VMs that miss much.
//!
//! MOM decides centrally (grow the VM with the highest miss rate by a step taken from the
//! one with the lowest); here each VM's agent decides alone on what it observes, which for
//! two VMs is the same rule: a VM missing more than `(1 + deadband)` times the node's
//! average grows by `step` of the node, one missing less than `(1 − deadband)` times it
//! shrinks by `step` — only while the node misses at all and is under pressure (less than
//! a step free; MOM inflates balloons only under host memory pressure) — and a VM that
//! misses asks for all the free memory too (MOM gives guests host memory while the host
//! is not under pressure). Every step is a fixed share of the node, whatever the VM holds.

use super::{ControlRule, bid_for_share, miss_fraction};
use crate::mdp::Observation;
use crate::snapshot::SnapshotKind;

/// Parameters of the fixed-step controller.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MomParams {
    /// Memory moved per decision, as a share of the node, (0, 1]. Default 1/16 (384 MiB
    /// of the paper's 6 GiB node): the best of {1/32, 1/16, 1/8} on seed 0 of s1–s3 (the
    /// sum of their mean miss rates).
    pub step: f32,
    /// Relative band around the node's average in which a VM holds, [0, 1). Default 0.75:
    /// the best of {0.25, 0.5, 0.75} on the same runs (docs/agents.md; the three differ
    /// by less than 2%).
    pub deadband: f32,
    /// A miss rate above this fraction of the bound counts as missing, [0, 1). Default 0.001.
    pub missing: f32,
}

impl Default for MomParams {
    fn default() -> Self {
        Self {
            step: 1.0 / 16.0,
            deadband: 0.75,
            missing: 0.001,
        }
    }
}

impl MomParams {
    /// Every parameter 0 (not a valid rule): the all-zero placeholder of a `static` slot.
    pub const ZERO: Self = Self {
        step: 0.0,
        deadband: 0.0,
        missing: 0.0,
    };
}

impl ControlRule for MomParams {
    const KIND: SnapshotKind = SnapshotKind::Mom;

    fn bid(&self, obs: &Observation) -> f32 {
        let own = miss_fraction(obs.msr);
        let avg = miss_fraction(obs.avg_msr);
        let free = (1.0 - obs.total_mem_use).max(0.0);
        let share = if own > self.missing && own > avg * (1.0 + self.deadband) {
            self.step.max(free)
        } else if avg > self.missing && own < avg * (1.0 - self.deadband) && free < self.step {
            -self.step
        } else if own > self.missing {
            free
        } else {
            0.0
        };
        bid_for_share(share, obs.mem_share)
    }

    fn to_array(&self) -> [f32; 3] {
        [self.step, self.deadband, self.missing]
    }

    fn from_array([step, deadband, missing]: [f32; 3]) -> Option<Self> {
        let valid =
            step > 0.0 && step <= 1.0 && (0.0..1.0).contains(&deadband) && (0.0..1.0).contains(&missing);
        valid.then_some(Self {
            step,
            deadband,
            missing,
        })
    }
}

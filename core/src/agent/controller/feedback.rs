//! The proportional feedback controller: a VM that misses more than the node's average
//! asks for more memory in proportion to the gap, one that misses less gives some back,
//! and a VM that misses takes free memory.
//!
//! With `r` the VM's miss rate and `r̄` the node's average (fractions of the bound),
//! `bid = gain·(r − r̄)/(r̄ + avg_floor)`; when `r > missing` and the node has free memory
//! the bid is at least what would take all of it (the Bid Analyzer shares it among the VMs
//! that ask). With `fill_to` > 0, while no VM misses (`r̄ ≤ missing`) a VM that does not
//! miss asks for the free memory above a reserve of `1 − fill_to` of the node, so memory
//! is in place before a demand jumps instead of one step after. Clamped to [-1, 1].

use super::{ControlRule, bid_for_share, miss_fraction};
use crate::mdp::Observation;
use crate::snapshot::SnapshotKind;

/// Parameters of the feedback controller.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FeedbackParams {
    /// Proportional gain on the relative gap `(r − r̄)/(r̄ + avg_floor)`, in (0, 100].
    /// Default 0.125: the best of {1/32, 1/16, 0.09, 1/8, 0.18, 1/4, 1/2, 1, 2, 4, 8} on
    /// seed 0 of s1–s3 (docs/agents.md).
    pub gain: f32,
    /// Added to the node's average before dividing (fraction of the bound), (0, 1]: keeps
    /// the gap finite when nobody misses. Default 0.01.
    pub avg_floor: f32,
    /// A VM missing more than this fraction of its bound takes free memory, [0, 1).
    /// Default 0.001 (60 pages/s for a 6-vCPU VM at 100 µs per fault).
    pub missing: f32,
    /// While the node's average misses at most `missing`, a VM that does not miss takes
    /// free memory until the node's use reaches this fraction of it, [0, 1]. Default 0:
    /// never (free memory waits until a VM misses). 0.9 keeps a tenth of the node free
    /// for arrivals (docs/agents.md, "Filling idle memory").
    pub fill_to: f32,
}

impl Default for FeedbackParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FeedbackParams {
    /// The defaults, as a constant.
    pub const DEFAULT: Self = Self {
        gain: 0.125,
        avg_floor: 0.01,
        missing: 0.001,
        fill_to: 0.0,
    };

    /// Every parameter 0 (not a valid rule): the all-zero placeholder of a `static` slot.
    pub const ZERO: Self = Self {
        gain: 0.0,
        avg_floor: 0.0,
        missing: 0.0,
        fill_to: 0.0,
    };

    /// Whether `fill_to` is in range, [0, 1].
    pub fn valid_fill_to(fill_to: f32) -> bool {
        (0.0..=1.0).contains(&fill_to)
    }
}

impl ControlRule for FeedbackParams {
    const KIND: SnapshotKind = SnapshotKind::Feedback;

    fn bid(&self, obs: &Observation) -> f32 {
        let own = miss_fraction(obs.msr);
        let avg = miss_fraction(obs.avg_msr);
        let gap = self.gain * (own - avg) / (avg + self.avg_floor);
        let free = (1.0 - obs.total_mem_use).max(0.0);
        if own > self.missing && free > 0.0 {
            gap.max(bid_for_share(free, obs.mem_share))
        } else if avg <= self.missing && obs.total_mem_use < self.fill_to {
            gap.max(bid_for_share(self.fill_to - obs.total_mem_use, obs.mem_share))
        } else {
            gap
        }
    }

    fn to_array(&self) -> [f32; 3] {
        [self.gain, self.avg_floor, self.missing]
    }

    fn extension(&self) -> Option<f32> {
        (self.fill_to != 0.0).then_some(self.fill_to)
    }

    fn with_extension(self, fill_to: f32) -> Option<Self> {
        Self::valid_fill_to(fill_to).then_some(Self { fill_to, ..self })
    }

    fn from_array([gain, avg_floor, missing]: [f32; 3]) -> Option<Self> {
        let valid = gain > 0.0
            && gain <= 100.0
            && avg_floor > 0.0
            && avg_floor <= 1.0
            && (0.0..1.0).contains(&missing);
        valid.then_some(Self {
            gain,
            avg_floor,
            missing,
            fill_to: 0.0,
        })
    }
}

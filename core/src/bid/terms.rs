//! Per-VM terms with the node, as hypervisors offer them (ESX's reservation, limit and
//! shares; Hyper-V's minimum, maximum and weight): a VM's reservation can't be taken from
//! it, it never holds more than its limit, and contended memory is shared by weight.

use super::{BidConfig, BidError};

/// One VM's reservation, limit and weight. [`VmTerms::DEFAULT`] (no reservation above the
/// node's floor, no limit, weight 1) leaves the Bid Analyzer exactly as without terms.
///
/// # Examples
/// ```
/// use cavmem_core::bid::{analyze_with_terms, BidConfig, VmGrant, VmTerms};
/// use cavmem_core::units::GIB;
/// let config = BidConfig::new(4 * GIB);
/// // VM 0 is reserved 2 GiB, VM 1 is limited to 1.5 GiB.
/// let terms = [
///     VmTerms { min_bytes: 2 * GIB, ..VmTerms::DEFAULT },
///     VmTerms { max_bytes: 3 * GIB / 2, ..VmTerms::DEFAULT },
/// ];
/// let mut allocations = [GIB, GIB];
/// let mut grants = [VmGrant::default(); 2];
/// analyze_with_terms(&config, &terms, &mut allocations, &[-1.0, 1.0], &mut grants).unwrap();
/// assert_eq!(allocations, [2 * GIB, 3 * GIB / 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(C)]
pub struct VmTerms {
    /// Reservation, bytes: the VM's own floor (the node's floor applies when this is lower).
    pub min_bytes: u64,
    /// Limit, bytes (`u64::MAX`: none): the VM never holds more; a VM above it after the
    /// limit was lowered is brought down to it in the next call.
    pub max_bytes: u64,
    /// Share of contended memory, ≥ 1: when the free pool is short, growers get it in
    /// proportion to weight × increase asked (proportional rule), or in increments
    /// proportional to weight (equal rule).
    pub weight: u32,
}

impl VmTerms {
    /// No reservation, no limit, weight 1.
    pub const DEFAULT: Self = Self {
        min_bytes: 0,
        max_bytes: u64::MAX,
        weight: 1,
    };

    /// The VM's floor on a node whose floor is `node_floor_bytes`: the larger of the two.
    pub const fn floor_bytes(&self, node_floor_bytes: u64) -> u64 {
        if self.min_bytes > node_floor_bytes {
            self.min_bytes
        } else {
            node_floor_bytes
        }
    }
}

impl Default for VmTerms {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a VM's terms are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TermsFault {
    /// The weight is 0.
    ZeroWeight,
    /// The limit is below the VM's floor (its reservation or the node's floor).
    LimitBelowFloor,
}

/// The terms of every VM of a call. Two implementations, so that [`super::analyze`]
/// (every VM [`VmTerms::DEFAULT`]) compiles to code without terms: the inference-only
/// firmware image links only that one.
pub(super) trait TermsOf: Copy {
    /// Whether every VM has [`VmTerms::DEFAULT`] (known at compile time).
    const UNIFORM: bool;

    /// VM `j`'s terms.
    fn of(self, j: usize) -> VmTerms;

    /// Checks every VM's terms and that all floors fit the capacity.
    fn check(self, config: &BidConfig, vms: usize) -> Result<(), BidError>;

    /// VM `j`'s floor on a node whose floor is `node_floor`.
    fn floor(self, j: usize, node_floor: u64) -> u64 {
        self.of(j).floor_bytes(node_floor)
    }
}

/// Every VM has [`VmTerms::DEFAULT`].
#[derive(Clone, Copy, Debug)]
pub(super) struct Uniform;

impl TermsOf for Uniform {
    const UNIFORM: bool = true;

    #[inline(always)]
    fn of(self, _j: usize) -> VmTerms {
        VmTerms::DEFAULT
    }

    fn check(self, config: &BidConfig, vms: usize) -> Result<(), BidError> {
        config.check(vms)
    }
}

/// VM `j` has `terms[j]`.
#[derive(Clone, Copy, Debug)]
pub(super) struct PerVm<'a>(pub(super) &'a [VmTerms]);

impl TermsOf for PerVm<'_> {
    const UNIFORM: bool = false;

    fn of(self, j: usize) -> VmTerms {
        self.0.get(j).copied().unwrap_or(VmTerms::DEFAULT)
    }

    fn check(self, config: &BidConfig, vms: usize) -> Result<(), BidError> {
        let terms = self.0;
        if terms.len() != vms {
            return Err(BidError::LengthMismatch);
        }
        if config.granularity_bytes == 0 {
            return Err(BidError::ZeroGranularity);
        }
        let mut reserved: u128 = 0;
        for (vm, t) in terms.iter().enumerate() {
            let floor = t.floor_bytes(config.floor_bytes);
            if t.weight == 0 {
                return Err(BidError::BadTerms {
                    vm,
                    fault: TermsFault::ZeroWeight,
                });
            }
            if t.max_bytes < floor {
                return Err(BidError::BadTerms {
                    vm,
                    fault: TermsFault::LimitBelowFloor,
                });
            }
            reserved += u128::from(floor);
        }
        if reserved > u128::from(config.capacity_bytes) {
            return Err(BidError::ReservationsExceedCapacity {
                reserved_bytes: u64::try_from(reserved).unwrap_or(u64::MAX),
                capacity_bytes: config.capacity_bytes,
            });
        }
        Ok(())
    }
}

//! The Bid Analyzer (paper, section 3.2, "Environment Constraints"): turns every VM's bid
//! into a feasible allocation, in integer bytes.
//!
//! A bid `a ∈ [-1, 1]` asks for `(1 + a)·M_j` bytes, `M_j` being the VM's allocation.
//! The rules, in order:
//! 1. **Sanitize.** A NaN or infinite bid counts as 0 (hold); bids are clamped to [-1, 1].
//! 2. **Releases first.** Every negative bid is served: the VM shrinks toward its request
//!    but never below its floor, and the memory joins the free pool. A VM above its limit
//!    (a limit lowered since the last call) is brought down to it.
//! 3. **Floor repair.** A VM that *entered* below its floor (a new VM, or a host that
//!    shrank it) is raised to the floor, from the free pool and, if that is short, from
//!    the other VMs' memory above their floors, in proportion to it. This is the only case
//!    in which a VM that did not bid to grow grows; the analyzer's own outputs never need it.
//! 4. **Grows.** Positive bids are granted from the free pool, up to each VM's limit; when
//!    the pool is short, it is shared by the [`ShareRule`] (proportional to the requested
//!    increase by default), weighted by the VMs' [`VmTerms::weight`].
//!
//! A VM's floor is the node's floor, or its reservation ([`VmTerms::min_bytes`]) when that
//! is larger; [`analyze`] gives every VM [`VmTerms::DEFAULT`], [`analyze_with_terms`] takes
//! one [`VmTerms`] per VM. Every change except floor repair and bringing a VM down to its
//! limit is a multiple of the granularity (rounded toward the current allocation, so nobody
//! gets more than asked). After every call, `free + Σ allocations = capacity` exactly, every
//! allocation ≥ its floor and ≤ its limit.

use crate::units::{DEFAULT_FLOOR_BYTES, MIB};

/// How a short free pool is shared among growing VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShareRule {
    /// Each grower gets the pool times its share of the total requested increase (default).
    #[default]
    Proportional,
    /// Water-filling: equal increments, capped at each VM's request.
    Equal,
}

/// The node-wide settings of the analyzer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BidConfig {
    /// Memory the VMs may share, bytes.
    pub capacity_bytes: u64,
    /// Minimum allocation of any VM, bytes (paper: 384 MB).
    pub floor_bytes: u64,
    /// Allocation changes are multiples of this, bytes (default 1 MiB).
    pub granularity_bytes: u64,
    /// Sharing of a short free pool.
    pub share: ShareRule,
}

impl BidConfig {
    /// A node of `capacity_bytes` with the paper's floor, 1 MiB granularity and proportional sharing.
    pub const fn new(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            floor_bytes: DEFAULT_FLOOR_BYTES,
            granularity_bytes: MIB,
            share: ShareRule::Proportional,
        }
    }

    /// Checks that `vms` VMs at the floor fit and the granularity is positive.
    ///
    /// # Errors
    /// [`BidError::ZeroGranularity`] or [`BidError::Infeasible`].
    pub fn check(&self, vms: usize) -> Result<(), BidError> {
        if self.granularity_bytes == 0 {
            return Err(BidError::ZeroGranularity);
        }
        let need = (vms as u128) * u128::from(self.floor_bytes);
        if need > u128::from(self.capacity_bytes) {
            return Err(BidError::Infeasible {
                capacity_bytes: self.capacity_bytes,
                vms,
                floor_bytes: self.floor_bytes,
            });
        }
        Ok(())
    }
}

/// What one VM asked for and what it got.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct VmGrant {
    /// The bid as used (after sanitizing and clamping).
    pub bid: f32,
    /// Whether the bid was NaN or infinite and replaced by 0.
    pub bid_sanitized: bool,
    /// Allocation before the call, bytes.
    pub previous_bytes: u64,
    /// `(1 + bid)·previous`, bytes.
    pub requested_bytes: u64,
    /// Allocation after the call, bytes.
    pub granted_bytes: u64,
}

/// Node-wide totals of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BidSummary {
    /// Unallocated memory after the call, bytes.
    pub free_bytes: u64,
    /// Memory released by negative bids, bytes.
    pub released_bytes: u64,
    /// Memory moved to raise VMs to the floor, bytes.
    pub floor_repair_bytes: u64,
    /// Increase asked by positive bids (after rounding to the granularity), bytes.
    pub requested_growth_bytes: u64,
    /// Increase granted, bytes.
    pub granted_growth_bytes: u64,
    /// Number of NaN/infinite bids replaced by 0.
    pub sanitized_bids: u32,
}

/// Why the analyzer refused to run; allocations are then untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BidError {
    /// Allocations, bids and grants differ in length.
    LengthMismatch,
    /// The granularity is zero.
    ZeroGranularity,
    /// `capacity < VMs × floor`: no allocation can satisfy the floor.
    Infeasible {
        /// Node capacity, bytes.
        capacity_bytes: u64,
        /// Number of VMs.
        vms: usize,
        /// Floor, bytes.
        floor_bytes: u64,
    },
    /// A VM's terms are refused (its weight is 0, or its limit is below its floor).
    BadTerms {
        /// The VM, counted from 0.
        vm: usize,
        /// What is wrong.
        fault: TermsFault,
    },
    /// The VMs' floors (reservations, or the node's floor where larger) exceed the capacity.
    ReservationsExceedCapacity {
        /// Sum of the VMs' floors, bytes (saturated at `u64::MAX`).
        reserved_bytes: u64,
        /// Node capacity, bytes.
        capacity_bytes: u64,
    },
    /// The current allocations already exceed the capacity.
    OverCommitted {
        /// Sum of the allocations, bytes (saturated at `u64::MAX`).
        allocated_bytes: u64,
        /// Node capacity, bytes.
        capacity_bytes: u64,
    },
}

impl core::fmt::Display for BidError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::LengthMismatch => f.write_str("allocations, bids and grants differ in length"),
            Self::ZeroGranularity => f.write_str("allocation granularity is zero"),
            Self::Infeasible {
                capacity_bytes,
                vms,
                floor_bytes,
            } => write!(
                f,
                "capacity {capacity_bytes} B cannot hold {vms} VMs at the floor of {floor_bytes} B"
            ),
            Self::BadTerms { vm, fault } => match fault {
                TermsFault::ZeroWeight => write!(f, "VM {vm}: weight 0 (weights are at least 1)"),
                TermsFault::LimitBelowFloor => {
                    write!(f, "VM {vm}: limit below its floor (reservation or node floor)")
                }
            },
            Self::ReservationsExceedCapacity {
                reserved_bytes,
                capacity_bytes,
            } => write!(
                f,
                "the VMs' reservations ({reserved_bytes} B) exceed the capacity ({capacity_bytes} B)"
            ),
            Self::OverCommitted {
                allocated_bytes,
                capacity_bytes,
            } => {
                write!(
                    f,
                    "allocations ({allocated_bytes} B) exceed the capacity ({capacity_bytes} B)"
                )
            }
        }
    }
}

impl core::error::Error for BidError {}

/// `(1 + bid)·allocation` in bytes, saturating.
fn requested_bytes(allocation: u64, bid: f32) -> u64 {
    let want = (1.0 + f64::from(bid)) * allocation as f64;
    // `as` from f64 saturates at the integer range and maps NaN to 0.
    want as u64
}

/// `x` rounded down to a multiple of `g` (`g > 0`).
fn round_down(x: u64, g: u64) -> u64 {
    x - x % g
}

/// Applies every bid: `allocations` holds the current allocations on entry and the new
/// ones on return; `grants[j]` tells VM `j`'s request and result.
///
/// # Errors
/// [`BidError`] when lengths differ or the node is infeasible or over-committed; nothing
/// is changed then.
///
/// # Examples
/// ```
/// use cavmem_core::bid::{analyze, BidConfig, VmGrant};
/// use cavmem_core::units::GIB;
/// let config = BidConfig::new(3 * GIB);
/// let mut allocations = [GIB, GIB];
/// let mut grants = [VmGrant::default(); 2];
/// // VM 0 releases half; VM 1 asks to double: it gets the free GiB and the released half.
/// let summary = analyze(&config, &mut allocations, &[-0.5, 1.0], &mut grants).unwrap();
/// assert_eq!(allocations, [GIB / 2, 2 * GIB]);
/// assert_eq!(summary.free_bytes, GIB / 2);
/// assert_eq!(grants[1].requested_bytes, 2 * GIB);
/// ```
pub fn analyze(
    config: &BidConfig,
    allocations: &mut [u64],
    bids: &[f32],
    grants: &mut [VmGrant],
) -> Result<BidSummary, BidError> {
    analyze_terms(config, Uniform, allocations, bids, grants)
}

/// [`analyze`] with one [`VmTerms`] per VM: `terms[j]` is VM `j`'s reservation, limit and
/// weight. With [`VmTerms::DEFAULT`] for every VM, the same result as [`analyze`].
///
/// # Errors
/// As [`analyze`]; [`BidError::LengthMismatch`] when `terms` has another length,
/// [`BidError::BadTerms`] for a weight of 0 or a limit below the VM's floor,
/// [`BidError::ReservationsExceedCapacity`] when the VMs' floors do not fit.
pub fn analyze_with_terms(
    config: &BidConfig,
    terms: &[VmTerms],
    allocations: &mut [u64],
    bids: &[f32],
    grants: &mut [VmGrant],
) -> Result<BidSummary, BidError> {
    analyze_terms(config, PerVm(terms), allocations, bids, grants)
}

fn analyze_terms<T: TermsOf>(
    config: &BidConfig,
    terms: T,
    allocations: &mut [u64],
    bids: &[f32],
    grants: &mut [VmGrant],
) -> Result<BidSummary, BidError> {
    let n = allocations.len();
    if bids.len() != n || grants.len() != n {
        return Err(BidError::LengthMismatch);
    }
    terms.check(config, n)?;
    let allocated = allocations.iter().fold(0u64, |s, a| s.saturating_add(*a));
    if allocated > config.capacity_bytes {
        return Err(BidError::OverCommitted {
            allocated_bytes: allocated,
            capacity_bytes: config.capacity_bytes,
        });
    }
    let g = config.granularity_bytes;
    let mut free = config.capacity_bytes - allocated;
    let mut summary = BidSummary::default();

    // 1. Sanitize, record requests, and 2. serve releases.
    for (j, ((alloc, bid), grant)) in allocations
        .iter_mut()
        .zip(bids)
        .zip(grants.iter_mut())
        .enumerate()
    {
        let sanitized = !bid.is_finite();
        let bid = if sanitized { 0.0 } else { bid.clamp(-1.0, 1.0) };
        summary.sanitized_bids += u32::from(sanitized);
        let requested = requested_bytes(*alloc, bid);
        *grant = VmGrant {
            bid,
            bid_sanitized: sanitized,
            previous_bytes: *alloc,
            requested_bytes: requested,
            granted_bytes: *alloc,
        };
        let floor = terms.floor(j, config.floor_bytes);
        if bid < 0.0 {
            let target = requested.max(floor);
            if *alloc > target {
                let release = round_down(*alloc - target, g);
                *alloc -= release;
                free += release;
                summary.released_bytes += release;
            }
        }
        let limit = terms.of(j).max_bytes;
        if *alloc > limit {
            free += *alloc - limit;
            summary.released_bytes += *alloc - limit;
            *alloc = limit;
        }
    }

    // 3. Raise VMs that entered below their floor.
    summary.floor_repair_bytes = repair_floor(allocations, terms, config.floor_bytes, &mut free);

    // 4. Grows, in units of the granularity.
    let grow = Growth { grants, terms, g };
    let wanted_units: u64 = (0..n).map(|j| grow.want(j, allocations[j])).sum();
    summary.requested_growth_bytes = wanted_units * g;
    let before_growth: u64 = allocations.iter().sum();
    let free_units = free / g;
    if wanted_units <= free_units {
        for (j, alloc) in allocations.iter_mut().enumerate() {
            *alloc += grow.want(j, *alloc) * g;
        }
    } else {
        match config.share {
            ShareRule::Proportional => grow.share_proportional(allocations, free_units, wanted_units),
            ShareRule::Equal => grow.share_equal(allocations, free_units),
        }
    }
    let now_allocated: u64 = allocations.iter().sum();
    summary.granted_growth_bytes = now_allocated - before_growth;
    summary.free_bytes = config.capacity_bytes - now_allocated;
    for (alloc, grant) in allocations.iter().zip(grants.iter_mut()) {
        grant.granted_bytes = *alloc;
    }
    Ok(summary)
}

/// Raises every VM below its floor to it, from `free` and then from the other VMs' excess
/// over their floors in proportion to that excess. Returns the bytes moved.
fn repair_floor<T: TermsOf>(allocations: &mut [u64], terms: T, node_floor: u64, free: &mut u64) -> u64 {
    let floor = |j: usize| terms.floor(j, node_floor);
    let need: u64 = allocations
        .iter()
        .enumerate()
        .map(|(j, a)| floor(j).saturating_sub(*a))
        .sum();
    if need == 0 {
        return 0;
    }
    if need > *free {
        let shortage = need - *free;
        let excess: u64 = allocations
            .iter()
            .enumerate()
            .map(|(j, a)| a.saturating_sub(floor(j)))
            .sum();
        // capacity ≥ Σ floors guarantees excess ≥ shortage.
        let mut taken: u64 = 0;
        for (j, a) in allocations.iter_mut().enumerate() {
            let e = a.saturating_sub(floor(j));
            let take = if excess == 0 {
                0
            } else {
                (u128::from(shortage) * u128::from(e) / u128::from(excess)) as u64
            };
            *a -= take;
            taken += take;
        }
        for (j, a) in allocations.iter_mut().enumerate() {
            if taken >= shortage {
                break;
            }
            let take = a.saturating_sub(floor(j)).min(shortage - taken);
            *a -= take;
            taken += take;
        }
        *free += taken;
    }
    for (j, a) in allocations.iter_mut().enumerate() {
        let f = floor(j);
        if *a < f {
            let add = (f - *a).min(*free);
            *a += add;
            *free -= add;
        }
    }
    need
}

/// The growth step: who wants how many units, and how a short pool is shared.
struct Growth<'g, T> {
    grants: &'g [VmGrant],
    terms: T,
    /// Granularity, bytes (> 0).
    g: u64,
}

impl<T: TermsOf> Growth<'_, T> {
    /// Units still wanted by VM `j`, a grower whose allocation is now `alloc`: up to its
    /// request and its limit. Inlined, so that a constant granularity stays a constant
    /// (no 64-bit division routine in the inference-only firmware image).
    #[inline(always)]
    fn want(&self, j: usize, alloc: u64) -> u64 {
        let Some(grant) = self.grants.get(j) else {
            return 0;
        };
        let goal = grant.requested_bytes.min(self.terms.of(j).max_bytes);
        if grant.bid > 0.0 && goal > alloc {
            (goal - alloc) / self.g
        } else {
            0
        }
    }

    #[inline(always)]
    fn weight(&self, j: usize) -> u64 {
        u64::from(self.terms.of(j).weight)
    }

    /// Shares `free_units` in proportion to each grower's weight × wanted units; the
    /// remainder (fewer units than growers) goes one unit each to unsatisfied growers in
    /// index order.
    fn share_proportional(&self, allocations: &mut [u64], free_units: u64, wanted_units: u64) {
        // Without weights the total is the units wanted, and every product fits in u128.
        let weighted: u128 = if T::UNIFORM {
            u128::from(wanted_units)
        } else {
            (0..allocations.len())
                .map(|j| u128::from(self.want(j, allocations[j])) * u128::from(self.weight(j)))
                .fold(0, u128::saturating_add)
        };
        let mut left = free_units;
        for (j, alloc) in allocations.iter_mut().enumerate() {
            let want = self.want(j, *alloc);
            let give = if T::UNIFORM {
                u128::from(free_units) * u128::from(want) / weighted.max(1)
            } else {
                let share = u128::from(want) * u128::from(self.weight(j));
                u128::from(free_units).saturating_mul(share) / weighted.max(1)
            } as u64;
            let give = give.min(want).min(left);
            *alloc += give * self.g;
            left -= give;
        }
        self.distribute_remainder(allocations, left);
    }

    /// Water-filling: increments proportional to weight to every unsatisfied grower until
    /// the pool is spent.
    fn share_equal(&self, allocations: &mut [u64], free_units: u64) {
        let mut left = free_units;
        loop {
            let active_weight: u64 = (0..allocations.len())
                .filter(|j| self.want(*j, allocations[*j]) > 0)
                .map(|j| self.weight(j))
                .fold(0, u64::saturating_add);
            if active_weight == 0 || left < active_weight {
                break;
            }
            let level = left / active_weight;
            for (j, alloc) in allocations.iter_mut().enumerate() {
                let give = self.want(j, *alloc).min(level.saturating_mul(self.weight(j)));
                *alloc += give * self.g;
                left -= give;
            }
        }
        self.distribute_remainder(allocations, left);
    }

    /// Gives up to `left` single units, in index order, to growers that still want more.
    fn distribute_remainder(&self, allocations: &mut [u64], mut left: u64) {
        for (j, alloc) in allocations.iter_mut().enumerate() {
            if left == 0 {
                break;
            }
            if self.want(j, *alloc) > 0 {
                *alloc += self.g;
                left -= 1;
            }
        }
    }
}

mod reclaim;
mod terms;
pub use reclaim::reclaim;
use terms::{PerVm, TermsOf, Uniform};
pub use terms::{TermsFault, VmTerms};

#[cfg(test)]
mod tests;

//! The Bid Analyzer over the wire: an Analyze request carries a node and up to
//! [`MAX_ANALYZE_VMS`] VMs (allocation, bid, reservation, limit, weight); the reply carries
//! the new allocations, as [`crate::bid::analyze_with_terms`] computes them.
//!
//! The VM records stay in the frame's bytes ([`AnalyzeVms`], [`Allocations`]), so a
//! message stays small and `Copy`; [`run`] decodes them into fixed arrays on the stack.

use crate::bid::{
    BidConfig, BidError, BidSummary, ShareRule, TermsFault, VmGrant, VmTerms, analyze_with_terms,
};

use super::frame::MAX_PAYLOAD;
use super::message::MessageError;

/// Bytes of an Analyze request before its VM records: capacity, floor, granularity (u64
/// each), the share rule (u8) and 3 reserved bytes.
pub const ANALYZE_HEADER_BYTES: usize = 28;
/// Bytes of one VM record: allocation, reservation, limit (u64 each), bid (f32), weight (u32).
pub const ANALYZE_VM_BYTES: usize = 32;
/// Most VMs in one Analyze request: as many records as fit one frame's payload.
pub const MAX_ANALYZE_VMS: usize = (MAX_PAYLOAD - ANALYZE_HEADER_BYTES) / ANALYZE_VM_BYTES;
// The largest request fills one frame's payload; one more VM would not fit.
const _: () = assert!(ANALYZE_HEADER_BYTES + MAX_ANALYZE_VMS * ANALYZE_VM_BYTES <= MAX_PAYLOAD);
const _: () = assert!(ANALYZE_HEADER_BYTES + (MAX_ANALYZE_VMS + 1) * ANALYZE_VM_BYTES > MAX_PAYLOAD);
/// Bytes of an Allocated reply before its allocations: free bytes (u64), sanitized bids
/// (u32) and 4 reserved bytes.
pub const ALLOCATED_HEADER_BYTES: usize = 16;
/// Bytes of one allocation in an Allocated reply (u64).
pub const ALLOCATION_BYTES: usize = 8;

/// One VM of an Analyze request.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct WireVm {
    /// Current allocation, bytes.
    pub allocation_bytes: u64,
    /// The VM's bid (any `f32`: the analyzer sanitizes NaN and ±∞ to 0 and clamps).
    pub bid: f32,
    /// Reservation, limit and weight ([`VmTerms::DEFAULT`]: none).
    pub terms: VmTerms,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(a)
}

/// The VM records of an Analyze request: 1 to [`MAX_ANALYZE_VMS`] records of
/// [`ANALYZE_VM_BYTES`], in the frame's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct AnalyzeVms<'a>(&'a [u8]);

impl<'a> AnalyzeVms<'a> {
    /// The records in `bytes`; `None` unless they are 1 to [`MAX_ANALYZE_VMS`] whole records.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        let n = bytes.len() / ANALYZE_VM_BYTES;
        (bytes.len().is_multiple_of(ANALYZE_VM_BYTES) && (1..=MAX_ANALYZE_VMS).contains(&n))
            .then_some(Self(bytes))
    }

    /// Writes `vms` as records into `out` and returns them.
    ///
    /// # Errors
    /// [`MessageError::TooLong`] when there are none or more than [`MAX_ANALYZE_VMS`], or
    /// `out` is too small.
    pub fn write(out: &'a mut [u8], vms: &[WireVm]) -> Result<Self, MessageError> {
        let len = vms.len() * ANALYZE_VM_BYTES;
        if vms.is_empty() || vms.len() > MAX_ANALYZE_VMS || out.len() < len {
            return Err(MessageError::TooLong);
        }
        for (record, vm) in out.chunks_exact_mut(ANALYZE_VM_BYTES).zip(vms) {
            record[0..8].copy_from_slice(&vm.allocation_bytes.to_le_bytes());
            record[8..16].copy_from_slice(&vm.terms.min_bytes.to_le_bytes());
            record[16..24].copy_from_slice(&vm.terms.max_bytes.to_le_bytes());
            record[24..28].copy_from_slice(&vm.bid.to_le_bytes());
            record[28..32].copy_from_slice(&vm.terms.weight.to_le_bytes());
        }
        Ok(Self(crate::rows::prefix(out, len)))
    }

    /// The records' bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Number of VMs.
    pub fn len(&self) -> usize {
        self.0.len() / ANALYZE_VM_BYTES
    }

    /// Whether there are none (never, for records that came from [`Self::from_bytes`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The VMs, in order.
    pub fn iter(&self) -> impl Iterator<Item = WireVm> + 'a {
        self.0.chunks_exact(ANALYZE_VM_BYTES).map(|r| WireVm {
            allocation_bytes: le_u64(r, 0),
            bid: f32::from_bits(le_u32(r, 24)),
            terms: VmTerms {
                min_bytes: le_u64(r, 8),
                max_bytes: le_u64(r, 16),
                weight: le_u32(r, 28),
            },
        })
    }
}

/// The allocations of an Allocated reply: up to [`MAX_ANALYZE_VMS`] u64s, in the frame's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Allocations<'a>(&'a [u8]);

impl<'a> Allocations<'a> {
    /// The allocations in `bytes`; `None` unless they are 1 to [`MAX_ANALYZE_VMS`] whole u64s.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Self> {
        let n = bytes.len() / ALLOCATION_BYTES;
        (bytes.len().is_multiple_of(ALLOCATION_BYTES) && (1..=MAX_ANALYZE_VMS).contains(&n))
            .then_some(Self(bytes))
    }

    /// Writes `allocations` into `out` and returns them.
    ///
    /// # Errors
    /// [`MessageError::TooLong`] when there are none or more than [`MAX_ANALYZE_VMS`], or
    /// `out` is too small.
    pub fn write(out: &'a mut [u8], allocations: &[u64]) -> Result<Self, MessageError> {
        let len = allocations.len() * ALLOCATION_BYTES;
        if allocations.is_empty() || allocations.len() > MAX_ANALYZE_VMS || out.len() < len {
            return Err(MessageError::TooLong);
        }
        for (dst, a) in out.chunks_exact_mut(ALLOCATION_BYTES).zip(allocations) {
            dst.copy_from_slice(&a.to_le_bytes());
        }
        Ok(Self(crate::rows::prefix(out, len)))
    }

    /// The allocations' bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }

    /// Number of VMs.
    pub fn len(&self) -> usize {
        self.0.len() / ALLOCATION_BYTES
    }

    /// Whether there are none (never, for allocations that came from [`Self::from_bytes`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The allocations, bytes, in the request's VM order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        self.0.chunks_exact(ALLOCATION_BYTES).map(|c| le_u64(c, 0))
    }
}

/// The share rule's byte: 0 proportional, 1 equal.
pub const fn share_code(share: ShareRule) -> u8 {
    match share {
        ShareRule::Proportional => 0,
        ShareRule::Equal => 1,
    }
}

/// The share rule of a byte, if known.
pub const fn share_from_code(code: u8) -> Option<ShareRule> {
    match code {
        0 => Some(ShareRule::Proportional),
        1 => Some(ShareRule::Equal),
        _ => None,
    }
}

/// The Analyze error's detail byte for a refusal (docs/protocol.md): 1 zero granularity,
/// 2 the VMs' floors (reservations, or the node's floor where larger) exceed the capacity,
/// 3 the allocations exceed the capacity, `0x40 | vm` weight 0, `0x80 | vm` limit below
/// the VM's floor (`vm` counted from 0; requests carry at most 31 VMs).
pub const fn error_detail(e: BidError) -> u8 {
    match e {
        BidError::ZeroGranularity => 1,
        BidError::Infeasible { .. } | BidError::ReservationsExceedCapacity { .. } => 2,
        BidError::OverCommitted { .. } => 3,
        BidError::BadTerms { vm, fault } => {
            let vm = (vm & 0x3F) as u8;
            match fault {
                TermsFault::ZeroWeight => 0x40 | vm,
                TermsFault::LimitBelowFloor => 0x80 | vm,
            }
        }
        _ => 0,
    }
}

/// Runs the Bid Analyzer on a request's VMs; writes the new allocations into `out` and
/// returns the call's summary and how many VMs there were.
///
/// # Errors
/// The analyzer's [`BidError`]; nothing is written then.
pub fn run(
    node: &BidConfig,
    vms: AnalyzeVms<'_>,
    out: &mut [u8; MAX_ANALYZE_VMS * ALLOCATION_BYTES],
) -> Result<(BidSummary, usize), BidError> {
    let mut allocations = [0u64; MAX_ANALYZE_VMS];
    let mut bids = [0f32; MAX_ANALYZE_VMS];
    let mut terms = [VmTerms::DEFAULT; MAX_ANALYZE_VMS];
    let mut grants = [VmGrant::default(); MAX_ANALYZE_VMS];
    let n = vms.len().min(MAX_ANALYZE_VMS);
    for (j, vm) in vms.iter().take(n).enumerate() {
        allocations[j] = vm.allocation_bytes;
        bids[j] = vm.bid;
        terms[j] = vm.terms;
    }
    let summary = analyze_with_terms(
        node,
        crate::rows::prefix(&terms, n),
        crate::rows::prefix_mut(&mut allocations, n),
        crate::rows::prefix(&bids, n),
        crate::rows::prefix_mut(&mut grants, n),
    )?;
    for (dst, a) in out
        .chunks_exact_mut(ALLOCATION_BYTES)
        .zip(crate::rows::prefix(&allocations, n))
    {
        dst.copy_from_slice(&a.to_le_bytes());
    }
    Ok((summary, n))
}

#[cfg(test)]
mod tests;

//! Records round-trip; refusals map to documented detail bytes; [`run`] is the analyzer.

use super::*;
use crate::units::GIB;

fn vm(allocation_bytes: u64, bid: f32, min_bytes: u64, max_bytes: u64, weight: u32) -> WireVm {
    WireVm {
        allocation_bytes,
        bid,
        terms: VmTerms {
            min_bytes,
            max_bytes,
            weight,
        },
    }
}

#[test]
fn wire_analyze_records_round_trip() {
    let vms = [
        vm(GIB, -0.5, 0, u64::MAX, 1),
        vm(3, f32::NAN, 7, 9, u32::MAX),
        vm(u64::MAX, f32::NEG_INFINITY, u64::MAX, 0, 0),
    ];
    let mut buf = [0u8; 3 * ANALYZE_VM_BYTES];
    let records = AnalyzeVms::write(&mut buf, &vms).unwrap();
    assert_eq!(records.len(), 3);
    let back: std::vec::Vec<WireVm> = records.iter().collect();
    for (a, b) in vms.iter().zip(&back) {
        assert_eq!(a.allocation_bytes, b.allocation_bytes);
        assert_eq!(a.bid.to_bits(), b.bid.to_bits());
        assert_eq!(a.terms, b.terms);
    }
    let mut out = [0u8; 16];
    let allocations = Allocations::write(&mut out, &[1, u64::MAX]).unwrap();
    assert_eq!(allocations.iter().collect::<std::vec::Vec<_>>(), [1, u64::MAX]);
}

#[test]
fn wire_analyze_records_refuse_empty_or_too_many() {
    let mut buf = [0u8; 40 * ANALYZE_VM_BYTES];
    assert_eq!(AnalyzeVms::write(&mut buf, &[]), Err(MessageError::TooLong));
    let many = [vm(0, 0.0, 0, 0, 1); MAX_ANALYZE_VMS + 1];
    assert_eq!(AnalyzeVms::write(&mut buf, &many), Err(MessageError::TooLong));
    assert_eq!(
        AnalyzeVms::write(&mut [0u8; 31], &many[..1]),
        Err(MessageError::TooLong)
    );
    assert_eq!(Allocations::write(&mut [0u8; 8], &[]), Err(MessageError::TooLong));
    assert!(AnalyzeVms::from_bytes(&buf[..MAX_ANALYZE_VMS * ANALYZE_VM_BYTES]).is_some());
    assert!(AnalyzeVms::from_bytes(&buf[..(MAX_ANALYZE_VMS + 1) * ANALYZE_VM_BYTES]).is_none());
}

#[test]
fn wire_analyze_runs_the_analyzer_with_terms() {
    // docs/protocol.md's example: VM 0 reserved 2 GiB, VM 1 limited to 1.5 GiB.
    let node = BidConfig::new(4 * GIB);
    let vms = [
        vm(GIB, -1.0, 2 * GIB, u64::MAX, 1),
        vm(GIB, 1.0, 0, 3 * GIB / 2, 1),
    ];
    let mut buf = [0u8; 2 * ANALYZE_VM_BYTES];
    let records = AnalyzeVms::write(&mut buf, &vms).unwrap();
    let mut out = [0u8; MAX_ANALYZE_VMS * ALLOCATION_BYTES];
    let (summary, n) = run(&node, records, &mut out).unwrap();
    assert_eq!(n, 2);
    let allocations = Allocations::from_bytes(&out[..16]).unwrap();
    assert_eq!(
        allocations.iter().collect::<std::vec::Vec<_>>(),
        [2 * GIB, 3 * GIB / 2]
    );
    assert_eq!(summary.free_bytes, GIB / 2);
}

#[test]
fn wire_analyze_error_details_name_the_refusal() {
    let node = BidConfig::new(4 * GIB);
    let detail = |node: &BidConfig, vms: &[WireVm]| {
        let mut buf = [0u8; MAX_ANALYZE_VMS * ANALYZE_VM_BYTES];
        let records = AnalyzeVms::write(&mut buf, vms).unwrap();
        let mut out = [0u8; MAX_ANALYZE_VMS * ALLOCATION_BYTES];
        let refused = run(node, records, &mut out).unwrap_err();
        assert_eq!(out, [0u8; MAX_ANALYZE_VMS * ALLOCATION_BYTES], "nothing written");
        error_detail(refused)
    };
    let ok = vm(GIB, 0.0, 0, u64::MAX, 1);
    let zero_g = BidConfig {
        granularity_bytes: 0,
        ..node
    };
    assert_eq!(detail(&zero_g, &[ok]), 1);
    assert_eq!(detail(&BidConfig::new(100), &[vm(0, 0.0, 0, u64::MAX, 1)]), 2);
    assert_eq!(
        detail(
            &node,
            &[
                vm(GIB, 0.0, 3 * GIB, u64::MAX, 1),
                vm(GIB, 0.0, 2 * GIB, u64::MAX, 1)
            ]
        ),
        2
    );
    assert_eq!(detail(&node, &[vm(5 * GIB, 0.0, 0, u64::MAX, 1)]), 3);
    assert_eq!(detail(&node, &[ok, ok, vm(GIB, 0.0, 0, u64::MAX, 0)]), 0x42);
    assert_eq!(detail(&node, &[ok, vm(GIB, 0.0, 0, GIB / 4, 1)]), 0x81);
}

//! Bid Analyzer tests: hand-worked cases and property tests of every rule.

use proptest::collection::vec;
use proptest::prelude::{Just, Strategy, any, prop_oneof};
use proptest::{prop_assert, prop_assert_eq, proptest};

use std::vec;
use std::vec::Vec;

use super::*;
use crate::units::{GIB, PAGE_BYTES};

fn run(config: &BidConfig, allocations: &mut [u64], bids: &[f32]) -> BidSummary {
    let mut grants = [VmGrant::default(); 16];
    analyze(config, allocations, bids, &mut grants[..allocations.len()]).unwrap()
}

#[test]
fn bid_analyzer_releases_are_served_first() {
    let config = BidConfig::new(4 * GIB);
    // No free memory: VM 1's release is what lets VM 0 grow.
    let mut allocations = [2 * GIB, 2 * GIB];
    let summary = run(&config, &mut allocations, &[1.0, -0.25]);
    assert_eq!(allocations, [2 * GIB + GIB / 2, 2 * GIB - GIB / 2]);
    assert_eq!(summary.released_bytes, GIB / 2);
    assert_eq!(summary.free_bytes, 0);
}

#[test]
fn bid_analyzer_never_below_floor() {
    let config = BidConfig::new(4 * GIB);
    let mut allocations = [GIB / 2, GIB];
    run(&config, &mut allocations, &[-1.0, -1.0]);
    assert_eq!(allocations, [DEFAULT_FLOOR_BYTES, DEFAULT_FLOOR_BYTES]);
}

#[test]
fn bid_analyzer_shares_short_pool_proportionally() {
    let config = BidConfig::new(4 * GIB);
    let mut allocations = [GIB, 2 * GIB, GIB / 2];
    // Free: 0.5 GiB. Requests: +1 GiB and +0.5 GiB → shared 2:1.
    let summary = run(&config, &mut allocations, &[1.0, 0.25, 0.0]);
    assert_eq!(summary.requested_growth_bytes, 3 * GIB / 2);
    assert_eq!(summary.granted_growth_bytes, GIB / 2);
    assert_eq!(summary.free_bytes, 0);
    let g0 = allocations[0] - GIB;
    let g1 = allocations[1] - 2 * GIB;
    assert_eq!(g0 + g1, GIB / 2);
    // 512 MiB in 2:1 is 341⅓ : 170⅔ MiB; both round down and the one spare MiB goes to the
    // first unsatisfied grower.
    assert_eq!((g0, g1), (342 * MIB, 170 * MIB));
    assert_eq!(allocations[2], GIB / 2);
}

#[test]
fn bid_analyzer_equal_share_water_fills() {
    let config = BidConfig {
        share: ShareRule::Equal,
        ..BidConfig::new(4 * GIB)
    };
    let mut allocations = [GIB, GIB, GIB + GIB / 2];
    // Free: 0.5 GiB = 512 MiB. VM 0 wants +1 GiB, VM 1 wants +100 MiB: VM 1 is filled, VM 0 gets the rest.
    let bid1 = 100.0 / 1024.0;
    run(&config, &mut allocations, &[1.0, bid1, 0.0]);
    assert_eq!(allocations[1], GIB + 100 * MIB);
    assert_eq!(allocations[0], GIB + 412 * MIB);
}

#[test]
fn bid_analyzer_sanitizes_non_finite_bids() {
    let config = BidConfig::new(4 * GIB);
    let mut allocations = [GIB, GIB, GIB];
    let mut grants = [VmGrant::default(); 3];
    let summary = analyze(
        &config,
        &mut allocations,
        &[f32::NAN, f32::INFINITY, 7.0],
        &mut grants,
    )
    .unwrap();
    assert_eq!(summary.sanitized_bids, 2);
    assert!(grants[0].bid_sanitized && grants[1].bid_sanitized && !grants[2].bid_sanitized);
    assert_eq!(grants[2].bid, 1.0, "clamped");
    assert_eq!(allocations, [GIB, GIB, 2 * GIB]);
}

#[test]
fn bid_analyzer_floor_repair_takes_from_excess() {
    let config = BidConfig {
        floor_bytes: 300,
        granularity_bytes: 1,
        ..BidConfig::new(1000)
    };
    let mut allocations = [100, 450, 450];
    let summary = run(&config, &mut allocations, &[0.0, 0.0, 0.0]);
    assert_eq!(allocations, [300, 350, 350]);
    assert_eq!(summary.floor_repair_bytes, 200);
    assert_eq!(summary.free_bytes, 0);
}

#[test]
fn bid_analyzer_errors() {
    let mut grants = [VmGrant::default(); 2];
    let config = BidConfig::new(GIB / 2);
    assert!(matches!(
        analyze(&config, &mut [GIB / 4, GIB / 4], &[0.0, 0.0], &mut grants),
        Err(BidError::Infeasible { vms: 2, .. })
    ));
    let config = BidConfig::new(4 * GIB);
    assert_eq!(
        analyze(&config, &mut [GIB, GIB], &[0.0], &mut grants),
        Err(BidError::LengthMismatch)
    );
    let mut over = [3 * GIB, 2 * GIB];
    assert!(matches!(
        analyze(&config, &mut over, &[0.0, 0.0], &mut grants),
        Err(BidError::OverCommitted { .. })
    ));
    assert_eq!(over, [3 * GIB, 2 * GIB], "untouched on error");
    let zero_g = BidConfig {
        granularity_bytes: 0,
        ..config
    };
    assert_eq!(
        analyze(&zero_g, &mut [GIB, GIB], &[0.0, 0.0], &mut grants),
        Err(BidError::ZeroGranularity)
    );
}

fn bid_strategy() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -1.2f32..1.2f32,
        1 => Just(0.0f32),
        1 => prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY), Just(-1.0f32), Just(1.0f32)],
    ]
}

/// A node: (capacity, floor, granularity, share rule, allocations, bids).
fn node_strategy(allow_below_floor: bool) -> impl Strategy<Value = (BidConfig, Vec<u64>, Vec<f32>)> {
    (
        1usize..=12,
        1u64..=512,
        prop_oneof![Just(1u64), Just(PAGE_BYTES), Just(MIB), Just(3 * MIB)],
        any::<bool>(),
    )
        .prop_flat_map(move |(n, floor_mib, g, equal)| {
            let floor = floor_mib * MIB;
            let min_cap = n as u64 * floor;
            (
                Just((n, floor, g, equal)),
                min_cap..=min_cap * 4 + 8 * GIB,
                vec(0.0f64..1.0, n),
                vec(bid_strategy(), n),
            )
        })
        .prop_map(move |((n, floor, g, equal), capacity, weights, bids)| {
            let share = if equal {
                ShareRule::Equal
            } else {
                ShareRule::Proportional
            };
            let config = BidConfig {
                capacity_bytes: capacity,
                floor_bytes: floor,
                granularity_bytes: g,
                share,
            };
            let total: f64 = weights.iter().sum::<f64>() + 0.3;
            let allocations: Vec<u64> = if allow_below_floor {
                weights
                    .iter()
                    .map(|w| (w / total * capacity as f64) as u64)
                    .collect()
            } else {
                let spare = capacity - n as u64 * floor;
                weights
                    .iter()
                    .map(|w| floor + (w / total * spare as f64) as u64)
                    .collect()
            };
            (config, allocations, bids)
        })
}

fn check_invariants(
    config: &BidConfig,
    before: &[u64],
    after: &[u64],
    grants: &[VmGrant],
    summary: &BidSummary,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let total: u64 = after.iter().sum();
    prop_assert!(total <= config.capacity_bytes);
    prop_assert_eq!(
        summary.free_bytes + total,
        config.capacity_bytes,
        "memory created or lost"
    );
    for (j, a) in after.iter().enumerate() {
        prop_assert!(*a >= config.floor_bytes, "VM {} below floor", j);
        prop_assert_eq!(grants[j].granted_bytes, *a);
        prop_assert_eq!(grants[j].previous_bytes, before[j]);
        prop_assert!(grants[j].bid.is_finite() && (-1.0..=1.0).contains(&grants[j].bid));
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 100_000, ..Default::default() })]

    #[test]
    fn bid_analyzer_rules_hold(case in node_strategy(false)) {
        let (config, before, bids) = case;
        let mut after = before.clone();
        let mut grants = vec![VmGrant::default(); before.len()];
        let summary = analyze(&config, &mut after, &bids, &mut grants).unwrap();
        check_invariants(&config, &before, &after, &grants, &summary)?;
        let g = config.granularity_bytes;
        let mut unsatisfied_grower = false;
        for j in 0..before.len() {
            let (old, new, grant) = (before[j], after[j], grants[j]);
            prop_assert_eq!(old.abs_diff(new) % g, 0, "change not a multiple of the granularity");
            if grant.bid <= 0.0 {
                prop_assert!(new <= old, "VM {} grew on a bid of {}", j, grant.bid);
                // No over-release: stays at or above both the floor and its request, unless
                // it was already below that (then it holds).
                prop_assert!(new >= grant.requested_bytes.max(config.floor_bytes).min(old));
                // Releases are served: what is left above the target is less than one unit.
                prop_assert!(new - grant.requested_bytes.max(config.floor_bytes).min(new) < g.max(1) || grant.bid == 0.0);
            } else {
                prop_assert!(new >= old);
                prop_assert!(new <= grant.requested_bytes.max(old), "VM {} got more than it asked", j);
                if grant.requested_bytes.saturating_sub(new) >= g {
                    unsatisfied_grower = true;
                }
            }
        }
        if unsatisfied_grower {
            prop_assert!(summary.free_bytes < g, "free memory left while a grower is short");
        }
    }

    #[test]
    fn bid_analyzer_repairs_any_node_below_floor(case in node_strategy(true)) {
        let (config, before, bids) = case;
        let mut after = before.clone();
        let mut grants = vec![VmGrant::default(); before.len()];
        let summary = analyze(&config, &mut after, &bids, &mut grants).unwrap();
        check_invariants(&config, &before, &after, &grants, &summary)?;
    }

    #[test]
    fn bid_analyzer_rejects_infeasible_nodes(n in 2usize..64, floor in 1u64..1_000_000, short in 1u64..1000) {
        let capacity = (n as u64 * floor).saturating_sub(short.min(floor));
        let config = BidConfig { capacity_bytes: capacity, floor_bytes: floor, granularity_bytes: 1, share: ShareRule::Proportional };
        let mut allocations = vec![0u64; n];
        let mut grants = vec![VmGrant::default(); n];
        let result = analyze(&config, &mut allocations, &vec![0.0; n], &mut grants);
        let is_infeasible = matches!(result, Err(BidError::Infeasible { .. }));
        prop_assert!(is_infeasible);
    }
}

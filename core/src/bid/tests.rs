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

#[test]
fn bid_analyzer_shares_contended_memory_by_weight() {
    let config = BidConfig::new(4 * GIB);
    let terms = [
        VmTerms {
            weight: 2,
            ..VmTerms::DEFAULT
        },
        VmTerms::DEFAULT,
        VmTerms::DEFAULT,
    ];
    // Free: 768 MiB; VMs 0 and 1 each ask +1 GiB: weight 2:1 gives 512 and 256 MiB.
    let mut allocations = [GIB, GIB, GIB + 256 * MIB];
    let mut grants = [VmGrant::default(); 3];
    analyze_with_terms(&config, &terms, &mut allocations, &[1.0, 1.0, 0.0], &mut grants).unwrap();
    assert_eq!(allocations, [GIB + 512 * MIB, GIB + 256 * MIB, GIB + 256 * MIB]);
    // The equal rule water-fills in increments of 2:1: VM 1 wants only 100 MiB, VM 0 the rest.
    let equal = BidConfig {
        share: ShareRule::Equal,
        ..config
    };
    let mut allocations = [GIB, GIB, GIB + 256 * MIB];
    let bid1 = 100.0 / 1024.0;
    analyze_with_terms(&equal, &terms, &mut allocations, &[1.0, bid1, 0.0], &mut grants).unwrap();
    assert_eq!(allocations, [GIB + 668 * MIB, GIB + 100 * MIB, GIB + 256 * MIB]);
}

#[test]
fn bid_analyzer_keeps_reservations_and_limits() {
    let config = BidConfig::new(4 * GIB);
    let terms = [
        VmTerms {
            min_bytes: GIB,
            ..VmTerms::DEFAULT
        },
        VmTerms {
            max_bytes: 2 * GIB,
            ..VmTerms::DEFAULT
        },
        VmTerms::DEFAULT,
    ];
    let mut grants = [VmGrant::default(); 3];
    // VM 0 releases everything but keeps its reservation; VM 1 asks for 3 GiB, gets 2.
    let mut allocations = [2 * GIB, GIB + GIB / 2, GIB / 2];
    analyze_with_terms(&config, &terms, &mut allocations, &[-1.0, 1.0, 0.0], &mut grants).unwrap();
    assert_eq!(allocations, [GIB, 2 * GIB, GIB / 2]);
    // A VM entering below its reservation (an arrival) is raised to it from the others'
    // memory above their floors, in proportion to it: 1 GiB from 1.5 GiB and 0.5 GiB above.
    let mut allocations = [0, 2 * GIB, 2 * GIB];
    let summary = analyze_with_terms(&config, &terms, &mut allocations, &[0.0; 3], &mut grants).unwrap();
    assert_eq!(allocations[0], GIB);
    assert_eq!(summary.floor_repair_bytes, GIB);
    assert_eq!(allocations.iter().sum::<u64>(), 4 * GIB);
    // A limit lowered below the allocation brings the VM down to it at once.
    let lowered = [
        VmTerms::DEFAULT,
        VmTerms {
            max_bytes: GIB,
            ..VmTerms::DEFAULT
        },
        VmTerms::DEFAULT,
    ];
    let mut allocations = [GIB, 2 * GIB, GIB];
    analyze_with_terms(&config, &lowered, &mut allocations, &[0.0, 0.5, 0.0], &mut grants).unwrap();
    assert_eq!(allocations, [GIB, GIB, GIB]);
}

#[test]
fn bid_analyzer_refuses_terms_it_cannot_hold() {
    let config = BidConfig::new(4 * GIB);
    let mut grants = [VmGrant::default(); 2];
    let mut allocations = [GIB, GIB];
    let check = |terms: [VmTerms; 2], allocations: &mut [u64; 2], grants: &mut [VmGrant; 2]| {
        analyze_with_terms(&config, &terms, allocations, &[0.5, 0.5], grants)
    };
    let big = VmTerms {
        min_bytes: 2 * GIB + 1,
        ..VmTerms::DEFAULT
    };
    assert_eq!(
        check([big, big], &mut allocations, &mut grants),
        Err(BidError::ReservationsExceedCapacity {
            reserved_bytes: 4 * GIB + 2,
            capacity_bytes: 4 * GIB
        })
    );
    let zero = VmTerms {
        weight: 0,
        ..VmTerms::DEFAULT
    };
    assert_eq!(
        check([VmTerms::DEFAULT, zero], &mut allocations, &mut grants),
        Err(BidError::BadTerms {
            vm: 1,
            fault: TermsFault::ZeroWeight
        })
    );
    let low = VmTerms {
        max_bytes: DEFAULT_FLOOR_BYTES - 1,
        ..VmTerms::DEFAULT
    };
    assert_eq!(
        check([low, VmTerms::DEFAULT], &mut allocations, &mut grants),
        Err(BidError::BadTerms {
            vm: 0,
            fault: TermsFault::LimitBelowFloor
        })
    );
    assert_eq!(
        analyze_with_terms(
            &config,
            &[VmTerms::DEFAULT],
            &mut allocations,
            &[0.5, 0.5],
            &mut grants
        ),
        Err(BidError::LengthMismatch)
    );
    assert_eq!(allocations, [GIB, GIB], "a refused call changes nothing");
}

/// Per-VM terms for `n` VMs of a node: reservations (some above the floor), limits (some
/// none) and weights 1–4, with the reservations fitting `capacity`.
fn terms_strategy(n: usize, floor: u64, capacity: u64) -> impl Strategy<Value = Vec<VmTerms>> {
    let spare = capacity - n as u64 * floor;
    vec(
        (
            0u64..=spare / n as u64,
            prop_oneof![Just(None), (0u64..=capacity).prop_map(Some)],
            1u32..=4,
        ),
        n,
    )
    .prop_map(move |raw| {
        raw.into_iter()
            .map(|(extra, limit, weight)| {
                let min_bytes = if extra % 3 == 0 { 0 } else { floor + extra };
                let own_floor = min_bytes.max(floor);
                let max_bytes = limit.map_or(u64::MAX, |l| l.max(own_floor));
                VmTerms {
                    min_bytes,
                    max_bytes,
                    weight,
                }
            })
            .collect()
    })
}

/// A node with terms, and steps of (arrivals/departures mask, bids).
type ChurnCase = (BidConfig, Vec<VmTerms>, Vec<u64>, Vec<(Vec<bool>, Vec<f32>)>);

fn churn_strategy() -> impl Strategy<Value = ChurnCase> {
    node_strategy(false).prop_flat_map(|(config, allocations, _)| {
        let n = allocations.len();
        (
            Just(config),
            terms_strategy(n, config.floor_bytes, config.capacity_bytes),
            Just(allocations),
            vec(
                (vec(proptest::bool::weighted(0.8), n), vec(bid_strategy(), n)),
                1..8,
            ),
        )
    })
}

/// Checks a step's result against the terms of the VMs present.
fn check_terms(
    config: &BidConfig,
    terms: &[VmTerms],
    after: &[u64],
    summary: &BidSummary,
) -> Result<(), proptest::test_runner::TestCaseError> {
    let total: u64 = after.iter().sum();
    prop_assert_eq!(
        summary.free_bytes + total,
        config.capacity_bytes,
        "memory created or lost"
    );
    for (j, (a, t)) in after.iter().zip(terms).enumerate() {
        prop_assert!(
            *a >= t.floor_bytes(config.floor_bytes),
            "VM {} below its floor",
            j
        );
        prop_assert!(*a <= t.max_bytes, "VM {} above its limit", j);
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest::test_runner::Config { cases: 100_000, ..Default::default() })]

    /// Default terms are the analyzer without terms, to the byte.
    #[test]
    fn bid_analyzer_default_terms_change_nothing(case in node_strategy(true)) {
        let (config, before, bids) = case;
        let (mut plain, mut with) = (before.clone(), before.clone());
        let mut grants = vec![VmGrant::default(); before.len()];
        let mut grants_with = grants.clone();
        let a = analyze(&config, &mut plain, &bids, &mut grants);
        let terms = vec![VmTerms::DEFAULT; before.len()];
        let b = analyze_with_terms(&config, &terms, &mut with, &bids, &mut grants_with);
        prop_assert_eq!(a, b);
        prop_assert_eq!(plain, with);
        prop_assert_eq!(grants, grants_with);
    }

    /// VMs arrive (with nothing) and leave at every step; after every step each present VM
    /// holds at least its floor and at most its limit, and no memory is created or lost.
    #[test]
    fn bid_analyzer_holds_terms_through_arrivals_and_departures(case in churn_strategy()) {
        let (config, terms, initial, steps) = case;
        let mut held = initial;
        let mut present = vec![true; held.len()];
        for (stay, bids) in steps {
            for (j, s) in stay.iter().enumerate() {
                if !*s {
                    held[j] = 0; // leaves; its memory is free
                } else if !present[j] {
                    held[j] = 0; // arrives with nothing
                }
                present[j] = *s;
            }
            let idx: Vec<usize> = (0..held.len()).filter(|j| present[*j]).collect();
            let mut now: Vec<u64> = idx.iter().map(|j| held[*j]).collect();
            let now_terms: Vec<VmTerms> = idx.iter().map(|j| terms[*j]).collect();
            let now_bids: Vec<f32> = idx.iter().map(|j| bids[*j]).collect();
            let mut grants = vec![VmGrant::default(); idx.len()];
            let summary = analyze_with_terms(&config, &now_terms, &mut now, &now_bids, &mut grants).unwrap();
            check_terms(&config, &now_terms, &now, &summary)?;
            for (j, a) in idx.iter().zip(now) {
                held[*j] = a;
            }
        }
    }
}

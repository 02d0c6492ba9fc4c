//! Every decider on generated nodes with arrivals, departures, reservations, limits and
//! weights: each present VM holds at least its floor and at most its limit after every step.

use std::path::Path;

use cavmem_core::rng::Rng;

use super::*;

/// A generated node of `vms` VMs with churn, and seeded terms: a third of the VMs reserved
/// 512 MiB–2 GiB, a third limited to 1–3 GiB, weights 1–4 (the reservations fit: 3 GiB per VM).
fn churn_with_terms(vms: usize, seed: u64) -> Scenario {
    let text = crate::scale::generate(vms, seed, 0.5);
    let mut rng = Rng::seed_from_u64(seed ^ 0x7e57);
    let mut out = String::new();
    for (k, part) in text.split("[[vm]]").enumerate() {
        if k > 0 {
            out.push_str("[[vm]]");
            let (kind, pick) = (rng.below(3), rng.below(1537));
            match kind {
                0 => out.push_str(&format!("\nmin = \"{} MiB\"", 512 + pick)),
                1 => out.push_str(&format!("\nmax = \"{} MiB\"", 1024 + pick + pick / 3)),
                _ => {}
            }
            out.push_str(&format!("\nweight = {}", 1 + rng.below(4)));
        }
        out.push_str(part);
    }
    Scenario::parse(Path::new("churn-terms.toml"), &out).unwrap()
}

fn run_one(scenario: &Scenario, policy: RunPolicy) -> RunResult {
    let spec = RunSpec {
        scenario: scenario.clone(),
        policy,
        formulation: FormulationName::Raw,
        episodes: 1,
        seed: 3,
        hyper: crate::agents::hyperparams_for_run(100 * scenario.vms.len() as u64),
        learn: true,
        agents_at: AgentsAt::Inprocess,
    };
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run(&spec, |_| {}).unwrap())
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn run_every_decider_keeps_floors_and_limits_through_churn() {
    for (vms, seed) in [(4, 1), (6, 2), (8, 3)] {
        let scenario = churn_with_terms(vms, seed);
        let node = &scenario.node;
        assert!(scenario.vms.iter().any(|v| v.terms.min_bytes > node.floor_bytes));
        assert!(scenario.vms.iter().any(|v| v.terms.max_bytes < u64::MAX));
        for policy in RunPolicy::all() {
            let result = run_one(&scenario, policy);
            assert_eq!(result.trace.len(), node.steps_per_episode as usize);
            for p in &result.trace {
                let total: u64 = p.allocation_bytes.iter().sum();
                assert!(
                    total <= node.capacity_bytes,
                    "{policy:?} step {}: over capacity",
                    p.step
                );
                for (j, (vm, held)) in scenario.vms.iter().zip(&p.allocation_bytes).enumerate() {
                    let what = format!("{policy:?}, {vms} VMs (seed {seed}), step {}, VM {j}", p.step);
                    if vm.present_at(p.step) {
                        assert!(*held >= vm.floor_bytes(node), "{what}: {held} B below its floor");
                        assert!(*held <= vm.terms.max_bytes, "{what}: {held} B above its limit");
                    } else {
                        assert_eq!(*held, 0, "{what}: holds memory while away");
                    }
                }
            }
        }
    }
}

#[test]
fn run_scenario_terms_are_checked() {
    let base = crate::scale::generate(2, 1, 0.0);
    let with = |extra: &str| {
        Scenario::parse(
            Path::new("t.toml"),
            &base.replacen("[[vm]]", &format!("[[vm]]\n{extra}"), 1),
        )
    };
    let s = with("min = \"2 GiB\"\nmax = \"4 GiB\"\nweight = 3").unwrap();
    assert_eq!(
        s.vms[0].terms,
        cavmem_core::bid::VmTerms {
            min_bytes: 2 << 30,
            max_bytes: 4 << 30,
            weight: 3
        }
    );
    assert_eq!(
        s.vms[0].initial_bytes(&s.node),
        2 << 30,
        "starts at its reservation"
    );
    assert_eq!(s.vms[1].terms, cavmem_core::bid::VmTerms::DEFAULT);
    for (extra, key, reason) in [
        ("weight = 0", "vm[0].weight", "at least 1"),
        ("max = \"100 MiB\"", "vm[0].max", "below the VM's floor"),
        ("min = \"6 GiB\"", "vm.min", "exceed node.capacity"),
        ("min = \"lots\"", "vm[0].min", ""),
    ] {
        let err = with(extra).unwrap_err();
        assert_eq!(err.key, key, "{extra}: {err}");
        assert!(err.to_string().contains(reason), "{extra}: {err}");
    }
}

/// Three VMs on 9 GiB: VMs 0 and 1 reserve 4.5 and 4.25 GiB, so VM 2 (arriving at step 20,
/// floor 384 MiB) waits until VM 1 leaves at `leave` (or for the rest of the episode).
fn crowded(leave: Option<u32>) -> Scenario {
    let text = crate::scale::generate(3, 7, 0.0);
    let mut parts = text.split("[[vm]]");
    let head = parts.next().unwrap_or_default();
    let vms: Vec<&str> = parts.collect();
    let name = leave.map_or("crowded-never".to_string(), |l| format!("crowded-{l}"));
    let head = head.replace("name = \"gen-3\"", &format!("name = \"{name}\""));
    let leave = leave.map_or(String::new(), |l| format!("\nleave = {l}"));
    let out = format!(
        "{head}[[vm]]\nmin = \"4608 MiB\"{}[[vm]]\nmin = \"4352 MiB\"{leave}{}[[vm]]\narrive = 20{}",
        vms[0], vms[1], vms[2]
    );
    Scenario::parse(Path::new("crowded.toml"), &out).unwrap()
}

#[test]
fn run_counts_waiting_steps_and_never_reports_a_waiting_vm_as_missing_nothing() {
    let scenario = crowded(Some(40));
    let result = run_one(&scenario, RunPolicy::Agents(PolicyKind::EqualSplit));
    let r = &result.records[2];
    assert_eq!((r.steps_waiting, r.admission_delay_steps), (20, 20), "{r:?}");
    assert!(r.avg_miss_rate_pages_per_s.is_finite() && r.avg_allocation_bytes >= (384 << 20) as f64);
    for early in &result.records[..2] {
        assert_eq!((early.steps_waiting, early.admission_delay_steps), (0, 0));
    }
    // A present VM holding less than its demand (VM 1 until it leaves, VM 2 on arrival) has
    // its misses measured, never 0.
    let short: Vec<(u32, usize, f64)> = result
        .trace
        .iter()
        .flat_map(|p| {
            (0..3)
                .filter(|&j| p.allocation_bytes[j] > 0 && p.allocation_bytes[j] < p.demand_bytes[j])
                .map(|j| (p.step, j, p.miss_rate_pages_per_s[j]))
        })
        .collect();
    assert!(
        short.iter().any(|s| s.1 == 1) && short.iter().any(|s| s.1 == 2),
        "{short:?}"
    );
    assert!(short.iter().all(|s| s.2 > 0.0), "{short:?}");
    // Never admitted: not measured (NaN, `null` in JSON), never 0 misses.
    let never = run_one(&crowded(None), RunPolicy::Agents(PolicyKind::EqualSplit));
    let r = &never.records[2];
    assert_eq!((r.steps_waiting, r.admission_delay_steps), (80, 80));
    assert!(
        r.avg_miss_rate_pages_per_s.is_nan() && r.avg_allocation_bytes.is_nan(),
        "{r:?}"
    );
    let json = serde_json::to_string(&never).unwrap();
    let back: RunResult = serde_json::from_str(&json).unwrap();
    assert!(back.records[2].avg_miss_rate_pages_per_s.is_nan());
    // The report flags both runs and leaves the unmeasured episodes out of the means.
    let agg = crate::report::Aggregate::new(&[result, never], 1);
    let flags = agg.waiting_flags();
    assert_eq!(flags.len(), 2, "{flags:?}");
    assert!(flags.iter().all(|(_, w)| w.max_steps >= 20));
    let measured = agg.get("crowded-40", FormulationName::Raw, "static").unwrap();
    assert!(measured.per_vm[2].miss.mean.is_finite());
    let unmeasured = agg.get("crowded-never", FormulationName::Raw, "static").unwrap();
    assert!(unmeasured.per_vm[2].miss.mean.is_nan(), "not measured, not 0");
}

/// An arriving VM is observed at the memory it was admitted with, not as the absent VM
/// the last step measured.
#[test]
fn run_observes_an_arriving_vm_at_its_admitted_memory() {
    let scenario = crowded(Some(40));
    let config = BidConfig {
        capacity_bytes: scenario.node.capacity_bytes,
        floor_bytes: scenario.node.floor_bytes,
        granularity_bytes: scenario.node.granularity_bytes,
        share: scenario.node.share,
    };
    let mut agents: Vec<Box<dyn SimAgent>> = Vec::new();
    let mut fresh = Node::new(&scenario, 1);
    NodeBackend::start_episode(&mut fresh).unwrap();
    for step in 0..40 {
        update_presence(&mut fresh, &scenario, &config, step, &mut agents).unwrap();
        NodeBackend::step(&mut fresh).unwrap();
    }
    // VM 1 leaves at 40 and VM 2, waiting since 20, is admitted in the same step.
    assert!(update_presence(&mut fresh, &scenario, &config, 40, &mut agents).unwrap());
    assert!(fresh.present()[2] && fresh.allocations()[2] >= scenario.node.floor_bytes);
    assert_eq!(
        fresh.readings()[2].allocation_bytes,
        0,
        "the last step's reading: absent"
    );
    fresh.refresh_readings();
    let admitted = fresh.allocations()[2];
    assert_eq!(fresh.readings()[2].allocation_bytes, admitted);
    let rate = fresh.true_miss_rate_pages_per_s(2, admitted).unwrap();
    assert_eq!(fresh.readings()[2].miss_rate_pages_per_s, rate);
}

/// The shipped churn scenario: every decider admits the arriving VM at its reservation in
/// the step it arrives.
#[test]
fn run_shipped_churn_scenario_admits_at_once_under_every_decider() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/s4-churn.toml");
    let scenario = Scenario::load(&path).unwrap();
    assert_eq!(
        (scenario.vms[2].arrive_step, scenario.vms[1].leave_step),
        (30, Some(80))
    );
    for policy in RunPolicy::all() {
        let result = run_one(&scenario, policy);
        for r in &result.records {
            assert_eq!(
                (r.steps_waiting, r.admission_delay_steps),
                (0, 0),
                "{policy:?}: {r:?}"
            );
            assert!(r.avg_miss_rate_pages_per_s.is_finite(), "{policy:?}: {r:?}");
        }
        let at_arrival = &result.trace[30].allocation_bytes;
        assert!(at_arrival[2] >= 1 << 30, "{policy:?}: {at_arrival:?}");
    }
}

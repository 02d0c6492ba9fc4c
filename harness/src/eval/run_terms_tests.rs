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

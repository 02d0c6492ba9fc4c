//! The traps of the paper's literal formulation, verified on the MDP itself, and the
//! default formulation's answer to each.

use cavmem_core::mdp::{NodeMdp, Observation, VmSample};

use super::*;

const GIB: u64 = 1 << 30;
/// t_fault = 100 µs; six vCPUs.
const T_FAULT_S: f32 = 100e-6;
const VCPUS: u32 = 6;

fn rewards(f: FormulationName, rates: [f32; 2], allocations: [u64; 2]) -> [f32; 2] {
    let bound = f.msr_bound().pages_per_s(T_FAULT_S, VCPUS);
    let params = f.mdp_params();
    let mut mdp = NodeMdp::new(params);
    let vms = rates
        .iter()
        .zip(allocations)
        .map(|(r, a)| VmSample {
            miss_rate_pages_per_s: *r,
            allocation_bytes: a,
            msr_bound_pages_per_s: bound,
        })
        .collect::<Vec<_>>();
    let mut obs = [Observation::default(); 2];
    // Two identical steps: the second step's target comes from the first.
    mdp.observe(6 * GIB, &vms, &mut obs).unwrap();
    mdp.observe(6 * GIB, &vms, &mut obs).unwrap();
    obs.map(|o| o.reward(&params))
}

/// Trap 1: at msr = 0 (half the bound) the literal target is 0 whatever the memory use,
/// so two VMs missing 5,000 pages/s each while a third of the node sits unused get the
/// best possible reward.
#[test]
fn trap_paper_target_has_zero_deviation_at_half_the_bound() {
    let half_bound = 0.5 / T_FAULT_S; // per-thread bound 10,000 pages/s
    let r = rewards(FormulationName::Paper, [half_bound; 2], [2 * GIB, 2 * GIB]);
    assert_eq!(
        r,
        [0.0, 0.0],
        "the paper's formulation rewards this thrashing node fully"
    );
    let r = rewards(FormulationName::Raw, [half_bound; 2], [2 * GIB, 2 * GIB]);
    assert!(
        r[0] < -0.05 && r[1] < -0.05,
        "raw: unused memory and misses are penalized: {r:?}"
    );
}

/// Trap 2: with the clipped per-thread bound, two VMs thrashing far above it both read
/// msr = 1; with all memory allocated the target is 1 too: zero deviation while thrashing.
#[test]
fn trap_clipped_bound_hides_thrashing() {
    let r = rewards(FormulationName::Paper, [50_000.0; 2], [3 * GIB, 3 * GIB]);
    assert_eq!(r, [0.0, 0.0]);
    let r = rewards(FormulationName::Raw, [50_000.0; 2], [3 * GIB, 3 * GIB]);
    assert!(
        r[0] < -0.3,
        "raw: thrashing costs through the miss penalty: {r:?}"
    );
}

/// Trap 3: below half the bound the literal target asks a VM with few misses to miss more
/// (the target lies above its own rate) while memory is unused.
#[test]
fn trap_paper_target_asks_for_more_misses_when_memory_is_free() {
    let low = 0.1 / T_FAULT_S; // 1,000 pages/s: msr = -0.8 on the per-thread bound
    let paper = rewards(FormulationName::Paper, [low; 2], [GIB, GIB]);
    let raw = rewards(FormulationName::Raw, [low; 2], [GIB, GIB]);
    // Paper: target = -0.8·√(1/3) = -0.46 > -0.8: the reward improves if the VM misses more.
    assert!(paper[0] < -0.3, "{paper:?}");
    // Raw: target = 1000·√(1/3) pages/s, below the VM's rate: less missing is better.
    let better_raw = rewards(FormulationName::Raw, [low / 2.0; 2], [GIB, GIB]);
    assert!(
        better_raw[0] > raw[0],
        "raw rewards fewer misses: {better_raw:?} vs {raw:?}"
    );
    let worse_paper = rewards(FormulationName::Paper, [low * 3.0; 2], [GIB, GIB]);
    assert!(
        worse_paper[0] > paper[0],
        "paper rewards more misses: {worse_paper:?} vs {paper:?}"
    );
}

/// With equal, low miss rates and all memory in use, both formulations are content.
#[test]
fn formulations_agree_on_a_balanced_node_without_misses() {
    for f in FormulationName::ALL {
        let r = rewards(f, [0.0; 2], [3 * GIB, 3 * GIB]);
        assert_eq!(r, [0.0, 0.0], "{f}");
    }
}

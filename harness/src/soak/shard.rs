//! One soak shard: the control loop of one node for a number of node steps, with faults
//! injected, and every invariant checked at every step.
//!
//! Each step: capacity events and VMs joining → reclaim if the node shrank → the sensors
//! report (maybe wrongly) → the sensor guards → the MDP → the agents learn from the last
//! step → the agents bid → VMs may vanish → the Bid Analyzer.

use std::collections::BTreeMap;

use cavmem_core::agent::{AgentTransition, Policy, PolicyKind, PolicyStats};
use cavmem_core::bid::{BidConfig, BidError, ShareRule, VmGrant, analyze, reclaim};
use cavmem_core::mdp::{MdpParams, NodeMdp, Observation, VmSample};
use cavmem_core::rng::Rng;
use cavmem_core::sensor::{Reading, SensorGuard};
use cavmem_core::units::{DEFAULT_FLOOR_BYTES, MIB};
use serde::{Deserialize, Serialize};

use super::faults::{FaultKind, FaultySensor};
use super::phased_node::{BOUND_PAGES_PER_S, SoakVm, nominal_capacity_bytes};
use crate::agents::{HarnessPolicy, derive_seed, make_policy};

/// Bad readings a guard bridges with the last good one before the VM counts as lost.
pub const MAX_HOLD_STEPS: u32 = 5;
/// Steps per episode (exploration noise is reset at each start).
const EPISODE_STEPS: u64 = 100;
/// Examples of violations kept in a report.
const MAX_EXAMPLES: usize = 20;

/// The policies on a soak node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SoakPolicy {
    /// Slot `j` runs DDPG, DQN, Q-learning or the equal split for `j mod 4` = 0, 1, 2, 3.
    Mix,
    /// DDPG everywhere.
    Ddpg,
    /// DQN everywhere.
    Dqn,
    /// Tabular Q-learning everywhere.
    Ql,
    /// The static equal split everywhere.
    Static,
}

/// What one shard runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardSpec {
    /// VM slots on the node.
    pub vms: usize,
    /// Agent steps to run (VMs on the node, summed over the node steps).
    pub agent_steps: u64,
    /// The policies.
    pub policy: SoakPolicy,
    /// Seed of the node, the faults and the agents.
    pub seed: u64,
    /// Probability that a VM's sensor goes bad in a step; VM, node and weight faults
    /// happen at a tenth of it.
    pub fault_rate: f64,
    /// The faults to inject.
    pub faults: Vec<FaultKind>,
}

/// Counters of a soak; shards add up.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SoakCounts {
    /// Node steps run.
    pub node_steps: u64,
    /// Agent steps (VMs on the node, summed over the steps).
    pub agent_steps: u64,
    /// Faults injected, by kind.
    pub injected: BTreeMap<String, u64>,
    /// Readings a guard replaced with the last good one.
    pub readings_held: u64,
    /// Readings with no usable value (the VM's bid was held at 0).
    pub readings_lost: u64,
    /// Steps in which the MDP refused the guarded measurements (should be 0).
    pub observations_refused: u64,
    /// Bids held at 0 because the VM's reading was lost.
    pub bids_held: u64,
    /// VMs that joined the node (into a slot left by a VM that vanished or was evicted).
    pub vms_joined: u64,
    /// VMs evicted because the shrunken node could not hold them at the floor.
    pub vms_evicted: u64,
    /// Bytes taken back from VMs when the node shrank.
    pub reclaimed_bytes: u64,
    /// Learning updates applied.
    pub updates: u64,
    /// Injected parameter faults after which the policy re-initialized its networks and
    /// its parameters were finite again by the end of the step.
    pub weight_faults_recovered: u64,
    /// Injected parameter faults whose VM left the node before its next learning step.
    pub weight_faults_gone: u64,
    /// Decisions that fell back to the safe bid (diverged output).
    pub fallbacks: u64,
    /// Network re-initializations after divergence.
    pub divergences: u64,
    /// Broken invariants, by kind (a correct build has none).
    pub violations: BTreeMap<String, u64>,
    /// The first few violations, described.
    pub examples: Vec<String>,
}

impl SoakCounts {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        self.node_steps += other.node_steps;
        self.agent_steps += other.agent_steps;
        for (k, v) in &other.injected {
            *self.injected.entry(k.clone()).or_default() += v;
        }
        self.readings_held += other.readings_held;
        self.readings_lost += other.readings_lost;
        self.observations_refused += other.observations_refused;
        self.bids_held += other.bids_held;
        self.vms_joined += other.vms_joined;
        self.vms_evicted += other.vms_evicted;
        self.reclaimed_bytes = self.reclaimed_bytes.saturating_add(other.reclaimed_bytes);
        self.updates += other.updates;
        self.weight_faults_recovered += other.weight_faults_recovered;
        self.weight_faults_gone += other.weight_faults_gone;
        self.fallbacks += other.fallbacks;
        self.divergences += other.divergences;
        for (k, v) in &other.violations {
            *self.violations.entry(k.clone()).or_default() += v;
        }
        for e in &other.examples {
            if self.examples.len() < MAX_EXAMPLES {
                self.examples.push(e.clone());
            }
        }
    }

    /// Total broken invariants.
    pub fn violation_count(&self) -> u64 {
        self.violations.values().sum()
    }

    fn inject(&mut self, kind: FaultKind) {
        *self.injected.entry(kind.name().to_string()).or_default() += 1;
    }

    fn violation(&mut self, kind: &str, step: u64, detail: String) {
        *self.violations.entry(kind.to_string()).or_default() += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(format!("step {step}: {kind}: {detail}"));
        }
    }

    fn add_stats(&mut self, s: &PolicyStats) {
        self.fallbacks += s.fallbacks;
        self.divergences += s.divergences;
    }
}

/// One VM slot of the node.
struct Slot {
    kind: PolicyKind,
    agent: Box<HarnessPolicy>,
    vm: Option<SoakVm>,
    sensor: FaultySensor,
    guard: SensorGuard,
    allocation_bytes: u64,
    rejoin_at: u64,
    /// The last step's observation and bid, if the VM acted on a usable reading.
    previous: Option<(Observation, f32)>,
    /// Parameter faults injected and not yet seen recovered.
    pending_faults: u64,
    divergences_before: u64,
    generation: u64,
}

fn kind_of(policy: SoakPolicy, slot: usize) -> PolicyKind {
    match policy {
        SoakPolicy::Mix => PolicyKind::ALL[slot % PolicyKind::ALL.len()],
        SoakPolicy::Ddpg => PolicyKind::Ddpg,
        SoakPolicy::Dqn => PolicyKind::Dqn,
        SoakPolicy::Ql => PolicyKind::QLearning,
        SoakPolicy::Static => PolicyKind::EqualSplit,
    }
}

/// Runs one shard to the end.
#[allow(clippy::too_many_lines, reason = "one control loop, step by step")]
pub fn run_shard(spec: &ShardSpec) -> SoakCounts {
    let mut c = SoakCounts::default();
    let mut rng = Rng::seed_from_u64(derive_seed(spec.seed, 7));
    let hyper = crate::agents::hyperparams_for_run(spec.agent_steps / spec.vms.max(1) as u64);
    // A bound on node steps, in case VMs stay away for long.
    let max_node_steps = 10 * spec.agent_steps.div_ceil(spec.vms.max(1) as u64) + 1000;
    let has = |k: FaultKind| spec.faults.contains(&k);
    let sensor_kinds: Vec<FaultKind> = spec.faults.iter().copied().filter(|k| k.is_sensor()).collect();
    let rare = spec.fault_rate / 10.0;
    let nominal = nominal_capacity_bytes(spec.vms);
    let mut capacity = nominal;
    let mut shrunk_left = 0u32;
    let params = MdpParams::default();
    let mut mdp = NodeMdp::new(params);
    let mut slots: Vec<Slot> = (0..spec.vms)
        .map(|j| {
            let kind = kind_of(spec.policy, j);
            Slot {
                kind,
                agent: make_policy(kind, &hyper, derive_seed(spec.seed, 100 + j as u64), j, spec.vms),
                vm: Some(SoakVm::new(&mut rng)),
                sensor: FaultySensor::new(),
                guard: SensorGuard::new(MAX_HOLD_STEPS),
                allocation_bytes: nominal / spec.vms as u64,
                rejoin_at: 0,
                previous: None,
                pending_faults: 0,
                divergences_before: 0,
                generation: 0,
            }
        })
        .collect();

    for step in 0..max_node_steps {
        if c.agent_steps >= spec.agent_steps {
            break;
        }
        // 1. The node shrinks or recovers; VMs join free slots.
        if shrunk_left > 0 {
            shrunk_left -= 1;
            if shrunk_left == 0 {
                capacity = nominal;
            }
        } else if has(FaultKind::Shrink) && f64::from(rng.uniform_f32()) < rare {
            capacity = nominal / 100 * u64::from(20 + rng.below(71));
            shrunk_left = 10 + rng.below(91);
            c.inject(FaultKind::Shrink);
        }
        let config = BidConfig {
            capacity_bytes: capacity,
            floor_bytes: DEFAULT_FLOOR_BYTES,
            granularity_bytes: MIB,
            share: ShareRule::Proportional,
        };
        for j in 0..slots.len() {
            let allocated: u64 = slots.iter().map(|s| s.allocation_bytes).sum();
            let s = &mut slots[j];
            if s.vm.is_none()
                && s.rejoin_at <= step
                && capacity.saturating_sub(allocated) >= config.floor_bytes
            {
                c.add_stats(&s.agent.stats());
                s.generation += 1;
                s.agent = make_policy(
                    s.kind,
                    &hyper,
                    derive_seed(spec.seed, (s.generation << 20) + 100 + j as u64),
                    j,
                    spec.vms,
                );
                s.vm = Some(SoakVm::new(&mut rng));
                s.sensor = FaultySensor::new();
                s.guard.reset();
                s.allocation_bytes = config.floor_bytes;
                s.previous = None;
                c.vms_joined += 1;
            }
        }

        // 2. Reclaim what a shrunken node no longer has; evict VMs it cannot hold.
        loop {
            let active: Vec<usize> = (0..slots.len()).filter(|j| slots[*j].vm.is_some()).collect();
            let mut allocations: Vec<u64> = active.iter().map(|j| slots[*j].allocation_bytes).collect();
            match reclaim(&config, &mut allocations) {
                Ok(bytes) => {
                    c.reclaimed_bytes = c.reclaimed_bytes.saturating_add(bytes);
                    for (j, a) in active.iter().zip(&allocations) {
                        slots[*j].allocation_bytes = *a;
                    }
                    break;
                }
                Err(BidError::Infeasible { .. }) => {
                    let Some(&last) = active.last() else { break };
                    evict(&mut slots[last], step, &mut rng, &mut c);
                    c.vms_evicted += 1;
                }
                Err(e) => {
                    c.violation("reclaim refused", step, e.to_string());
                    break;
                }
            }
        }
        let active: Vec<usize> = (0..slots.len()).filter(|j| slots[*j].vm.is_some()).collect();
        if active.is_empty() {
            c.node_steps += 1;
            continue;
        }
        let allocated: u64 = active.iter().map(|j| slots[*j].allocation_bytes).sum();
        if allocated > capacity {
            c.violation(
                "over capacity after reclaim",
                step,
                format!("{allocated} B > {capacity} B"),
            );
        }

        // 3. Sensors (maybe faulty) → guards → the MDP.
        let bound = BOUND_PAGES_PER_S as f32;
        let mut samples = Vec::with_capacity(active.len());
        let mut lost = vec![false; active.len()];
        for (k, j) in active.iter().enumerate() {
            let s = &mut slots[*j];
            let Some(vm) = s.vm.as_mut() else { continue };
            vm.advance(&mut rng);
            let truth = vm.miss_rate(s.allocation_bytes, &mut rng);
            let (reported, started) = s.sensor.report(truth, spec.fault_rate, &sensor_kinds, &mut rng);
            if let Some(kind) = started {
                c.inject(kind);
            }
            let guarded = s.guard.check(reported as f32, bound, params.absurd_factor);
            match guarded.reading {
                Reading::Fresh => {}
                Reading::Held { .. } => c.readings_held += 1,
                Reading::Lost { .. } => {
                    c.readings_lost += 1;
                    lost[k] = true;
                }
            }
            samples.push(VmSample {
                miss_rate_pages_per_s: guarded.rate_pages_per_s,
                allocation_bytes: s.allocation_bytes,
                msr_bound_pages_per_s: bound,
            });
        }
        let mut obs = vec![Observation::default(); active.len()];
        let observed = match mdp.observe(capacity, &samples, &mut obs) {
            Ok(_) => true,
            Err(e) => {
                c.observations_refused += 1;
                c.violation("guarded measurements refused", step, e.to_string());
                false
            }
        };

        // 4. Memory faults in a learning network policy — half before its learning step
        // (which detects them), half before its bid (the actor's output may be NaN: the
        // agent falls back to the safe bid) — then learning from the last step.
        let weight_fault = has(FaultKind::Weights) && f64::from(rng.uniform_f32()) < rare;
        let before_learning = rng.below(2) == 0;
        if weight_fault && before_learning {
            inject_weight_fault(&mut slots, &active, &mut rng, &mut c);
        }
        for (k, j) in active.iter().enumerate() {
            let s = &mut slots[*j];
            if step % EPISODE_STEPS == 0 {
                s.agent.start_episode();
            }
            let usable = observed && !lost[k];
            if let (Some((state, bid)), true) = (s.previous, usable) {
                let t = AgentTransition {
                    state,
                    bid,
                    reward: obs[k].reward(&params),
                    next_state: obs[k],
                    done: (step + 1) % EPISODE_STEPS == 0,
                };
                if let Err(e) = s.agent.record(&t) {
                    c.violation("valid transition refused", step, format!("slot {j}: {e}"));
                }
            }
            match s.agent.learn() {
                Ok(cavmem_core::agent::LearnOutcome::Updated { .. }) => c.updates += 1,
                Ok(_) => {}
                Err(e) => c.violation("learn failed", step, format!("slot {j}: {e}")),
            }
            if !s.agent.parameters_finite() {
                c.violation(
                    "parameters not finite after learn",
                    step,
                    format!("slot {j} ({})", s.kind.name()),
                );
            } else if s.pending_faults > 0 && s.agent.stats().divergences > s.divergences_before {
                c.weight_faults_recovered += std::mem::take(&mut s.pending_faults);
            }
        }

        if weight_fault && !before_learning {
            inject_weight_fault(&mut slots, &active, &mut rng, &mut c);
        }

        // 5. Bids: held at 0 for VMs without a usable reading.
        let mut bids = vec![0.0f32; active.len()];
        for (k, j) in active.iter().enumerate() {
            let s = &mut slots[*j];
            if !observed || lost[k] {
                c.bids_held += 1;
                s.previous = None;
                continue;
            }
            match s.agent.act(&obs[k]) {
                Ok(d) if d.bid.is_finite() && (-1.0..=1.0).contains(&d.bid) => {
                    bids[k] = d.bid;
                    s.previous = Some((obs[k], d.bid));
                }
                Ok(d) => c.violation(
                    "bid not finite or out of range",
                    step,
                    format!("slot {j}: {}", d.bid),
                ),
                Err(e) => c.violation("valid observation refused", step, format!("slot {j}: {e}")),
            }
        }
        c.agent_steps += active.len() as u64;

        // 6. VMs that vanish between their bid and the Bid Analyzer.
        let mut keep = vec![true; active.len()];
        if has(FaultKind::Vanish) {
            for (k, j) in active.iter().enumerate() {
                if f64::from(rng.uniform_f32()) < rare {
                    evict(&mut slots[*j], step, &mut rng, &mut c);
                    keep[k] = false;
                    c.inject(FaultKind::Vanish);
                }
            }
        }
        let staying: Vec<usize> = (0..active.len()).filter(|k| keep[*k]).collect();

        // 7. The Bid Analyzer on the VMs still there.
        if !staying.is_empty() {
            let before: Vec<u64> = staying
                .iter()
                .map(|k| slots[active[*k]].allocation_bytes)
                .collect();
            let mut allocations = before.clone();
            let stay_bids: Vec<f32> = staying.iter().map(|k| bids[*k]).collect();
            let mut grants = vec![VmGrant::default(); staying.len()];
            match analyze(&config, &mut allocations, &stay_bids, &mut grants) {
                Ok(summary) => {
                    let total: u64 = allocations.iter().sum();
                    if total + summary.free_bytes != capacity {
                        c.violation(
                            "memory not conserved",
                            step,
                            format!("{total} + {} != {capacity}", summary.free_bytes),
                        );
                    }
                    if allocations.iter().any(|a| *a < config.floor_bytes) {
                        c.violation("allocation below the floor", step, format!("{allocations:?}"));
                    }
                    if summary.sanitized_bids > 0 {
                        c.violation("a non-finite bid reached the analyzer", step, String::new());
                    }
                    for (k, a) in staying.iter().zip(&allocations) {
                        slots[active[*k]].allocation_bytes = *a;
                    }
                }
                Err(e) => c.violation("analyzer refused", step, e.to_string()),
            }
        }
        c.node_steps += 1;
    }
    for s in &slots {
        c.add_stats(&s.agent.stats());
    }
    c
}

/// Overwrites a random parameter of a random network policy that has started learning
/// with NaN or ±∞.
fn inject_weight_fault(slots: &mut [Slot], active: &[usize], rng: &mut Rng, c: &mut SoakCounts) {
    let learners: Vec<usize> = active
        .iter()
        .copied()
        .filter(|j| matches!(slots[*j].kind, PolicyKind::Ddpg | PolicyKind::Dqn))
        .filter(|j| slots[*j].agent.stats().learn_steps > 0)
        .collect();
    if learners.is_empty() {
        return;
    }
    let j = learners[rng.below(learners.len() as u32) as usize];
    let value = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.below(3) as usize];
    let s = &mut slots[j];
    if s.pending_faults == 0 {
        s.divergences_before = s.agent.stats().divergences;
    }
    if s.agent.inject_parameter_fault(rng.next_u32() as usize, value) {
        s.pending_faults += 1;
        c.inject(FaultKind::Weights);
    }
}

/// The VM in `slot` leaves the node; its memory returns to the pool, and a new VM may take
/// the slot 5–50 steps later.
fn evict(slot: &mut Slot, step: u64, rng: &mut Rng, c: &mut SoakCounts) {
    c.weight_faults_gone += std::mem::take(&mut slot.pending_faults);
    slot.vm = None;
    slot.allocation_bytes = 0;
    slot.previous = None;
    slot.rejoin_at = step + 5 + u64::from(rng.below(46));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(faults: Vec<FaultKind>, fault_rate: f64) -> ShardSpec {
        ShardSpec {
            vms: 4,
            agent_steps: 12_000,
            policy: SoakPolicy::Mix,
            seed: 11,
            fault_rate,
            faults,
        }
    }

    #[test]
    fn soak_shard_survives_every_fault_without_violations() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let c = run_shard(&spec(FaultKind::ALL.to_vec(), 0.05));
                assert_eq!(c.violation_count(), 0, "{:?}", c.examples);
                assert!(c.agent_steps >= 12_000 && c.node_steps > 3000, "VMs come and go");
                for kind in FaultKind::ALL {
                    assert!(
                        c.injected.get(kind.name()).copied().unwrap_or(0) > 0,
                        "{} never injected: {:?}",
                        kind.name(),
                        c.injected
                    );
                }
                assert!(c.readings_held > 0 && c.readings_lost > 0 && c.bids_held > 0);
                assert!(c.vms_joined > 0 && c.vms_evicted > 0 && c.reclaimed_bytes > 0 && c.updates > 0);
                let weights = c.injected["weights"];
                assert_eq!(
                    c.weight_faults_recovered + c.weight_faults_gone,
                    weights,
                    "every parameter fault recovered"
                );
                assert!(c.fallbacks > 0, "some faults reach an act: the agent falls back");
                assert!(c.divergences >= weights);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn soak_shard_is_deterministic_and_clean_without_faults() {
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(|| {
                let a = run_shard(&spec(Vec::new(), 0.05));
                assert_eq!(a.violation_count(), 0, "{:?}", a.examples);
                assert!(a.injected.is_empty());
                assert_eq!((a.readings_held, a.readings_lost, a.vms_joined), (0, 0, 0));
                assert_eq!((a.agent_steps, a.node_steps), (12_000, 3000));
                let b = run_shard(&spec(Vec::new(), 0.05));
                assert_eq!(a, b, "same seed, same soak");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}

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

/// The policies on a soak node: `mix`, or one policy's name ([`PolicyKind::name`]) for it
/// everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SoakPolicy {
    /// Slot `j` runs policy `j mod N` of [`PolicyKind::ALL`] (N policies).
    Mix,
    /// This policy everywhere.
    One(PolicyKind),
}

impl SoakPolicy {
    /// `mix` or the policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mix => "mix",
            Self::One(kind) => kind.name(),
        }
    }

    /// Every choice: `mix`, then each policy.
    pub fn all() -> impl Iterator<Item = Self> {
        std::iter::once(Self::Mix).chain(PolicyKind::ALL.map(Self::One))
    }

    /// The choice named `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::all().find(|p| p.name() == name)
    }
}

impl From<SoakPolicy> for String {
    fn from(p: SoakPolicy) -> Self {
        p.name().to_string()
    }
}

impl TryFrom<String> for SoakPolicy {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        Self::from_name(&name).ok_or_else(|| {
            let names: Vec<&str> = Self::all().map(Self::name).collect();
            format!("{name:?} is not one of: {}", names.join(", "))
        })
    }
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
        SoakPolicy::One(kind) => kind,
    }
}

/// Runs one shard to the end.
pub fn run_shard(spec: &ShardSpec) -> SoakCounts {
    let mut shard = Shard::new(spec);
    // A bound on node steps, in case VMs stay away for long.
    let max_node_steps = 10 * spec.agent_steps.div_ceil(spec.vms.max(1) as u64) + 1000;
    for step in 0..max_node_steps {
        if shard.c.agent_steps >= spec.agent_steps {
            break;
        }
        shard.step(step);
    }
    for s in &shard.slots {
        shard.c.add_stats(&s.agent.stats());
    }
    shard.c
}

/// One shard's node while it runs: its slots, capacity, MDP, random stream and counts.
struct Shard<'s> {
    spec: &'s ShardSpec,
    hyper: crate::agents::Hyperparams,
    rng: Rng,
    c: SoakCounts,
    /// The sensor faults asked for.
    sensor_kinds: Vec<FaultKind>,
    /// The rate of the rare faults (shrinking, weights, vanishing VMs).
    rare: f64,
    nominal: u64,
    capacity: u64,
    /// Steps until a shrunken node recovers.
    shrunk_left: u32,
    params: MdpParams,
    mdp: NodeMdp,
    slots: Vec<Slot>,
}

/// What the sensors, guards and MDP made of one step: an observation per active VM, which
/// VMs' readings were lost, and whether the MDP took the measurements at all.
struct Sensed {
    obs: Vec<Observation>,
    lost: Vec<bool>,
    observed: bool,
}

impl Sensed {
    fn usable(&self, k: usize) -> bool {
        self.observed && !self.lost[k]
    }
}

impl<'s> Shard<'s> {
    fn new(spec: &'s ShardSpec) -> Self {
        let mut rng = Rng::seed_from_u64(derive_seed(spec.seed, 7));
        let hyper = crate::agents::hyperparams_for_run(spec.agent_steps / spec.vms.max(1) as u64);
        let nominal = nominal_capacity_bytes(spec.vms);
        let slots = (0..spec.vms)
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
        let params = MdpParams::default();
        Self {
            spec,
            hyper,
            rng,
            c: SoakCounts::default(),
            sensor_kinds: spec.faults.iter().copied().filter(|k| k.is_sensor()).collect(),
            rare: spec.fault_rate / 10.0,
            nominal,
            capacity: nominal,
            shrunk_left: 0,
            params,
            mdp: NodeMdp::new(params),
            slots,
        }
    }

    fn has(&self, kind: FaultKind) -> bool {
        self.spec.faults.contains(&kind)
    }

    /// The slots with a VM on the node.
    fn active(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|j| self.slots[*j].vm.is_some())
            .collect()
    }

    /// One node step; every invariant broken is counted in `self.c`.
    fn step(&mut self, step: u64) {
        let config = self.resize_and_join(step);
        self.reclaim(step, &config);
        let active = self.active();
        if active.is_empty() {
            self.c.node_steps += 1;
            return;
        }
        let allocated: u64 = active.iter().map(|j| self.slots[*j].allocation_bytes).sum();
        if allocated > self.capacity {
            let capacity = self.capacity;
            self.c.violation(
                "over capacity after reclaim",
                step,
                format!("{allocated} B > {capacity} B"),
            );
        }
        let sensed = self.sense(step, &active);
        self.learn(step, &active, &sensed);
        let bids = self.bid(step, &active, &sensed);
        let staying = self.vanish(step, &active);
        self.analyze(step, &config, &active, &staying, &bids);
        self.c.node_steps += 1;
    }

    /// Step 1: The node shrinks or recovers; VMs join free slots. Returns the Bid Analyzer's
    /// configuration for the node as it is now.
    fn resize_and_join(&mut self, step: u64) -> BidConfig {
        if self.shrunk_left > 0 {
            self.shrunk_left -= 1;
            if self.shrunk_left == 0 {
                self.capacity = self.nominal;
            }
        } else if self.has(FaultKind::Shrink) && f64::from(self.rng.uniform_f32()) < self.rare {
            self.capacity = self.nominal / 100 * u64::from(20 + self.rng.below(71));
            self.shrunk_left = 10 + self.rng.below(91);
            self.c.inject(FaultKind::Shrink);
        }
        let config = BidConfig {
            capacity_bytes: self.capacity,
            floor_bytes: DEFAULT_FLOOR_BYTES,
            granularity_bytes: MIB,
            share: ShareRule::Proportional,
        };
        let (spec, hyper) = (self.spec, &self.hyper);
        for j in 0..self.slots.len() {
            let allocated: u64 = self.slots.iter().map(|s| s.allocation_bytes).sum();
            let s = &mut self.slots[j];
            if s.vm.is_none()
                && s.rejoin_at <= step
                && self.capacity.saturating_sub(allocated) >= config.floor_bytes
            {
                self.c.add_stats(&s.agent.stats());
                s.generation += 1;
                let seed = derive_seed(spec.seed, (s.generation << 20) + 100 + j as u64);
                s.agent = make_policy(s.kind, hyper, seed, j, spec.vms);
                s.vm = Some(SoakVm::new(&mut self.rng));
                s.sensor = FaultySensor::new();
                s.guard.reset();
                s.allocation_bytes = config.floor_bytes;
                s.previous = None;
                self.c.vms_joined += 1;
            }
        }
        config
    }

    /// Step 2: Reclaim what a shrunken node no longer has; evict VMs it cannot hold.
    fn reclaim(&mut self, step: u64, config: &BidConfig) {
        loop {
            let active = self.active();
            let mut allocations: Vec<u64> = active.iter().map(|j| self.slots[*j].allocation_bytes).collect();
            match reclaim(config, &mut allocations) {
                Ok(bytes) => {
                    self.c.reclaimed_bytes = self.c.reclaimed_bytes.saturating_add(bytes);
                    for (j, a) in active.iter().zip(&allocations) {
                        self.slots[*j].allocation_bytes = *a;
                    }
                    return;
                }
                Err(BidError::Infeasible { .. }) => {
                    let Some(&last) = active.last() else { return };
                    evict(&mut self.slots[last], step, &mut self.rng, &mut self.c);
                    self.c.vms_evicted += 1;
                }
                Err(e) => {
                    self.c.violation("reclaim refused", step, e.to_string());
                    return;
                }
            }
        }
    }

    /// Step 3: Sensors (maybe faulty) → guards → the MDP.
    fn sense(&mut self, step: u64, active: &[usize]) -> Sensed {
        let bound = BOUND_PAGES_PER_S as f32;
        let mut samples = Vec::with_capacity(active.len());
        let mut lost = vec![false; active.len()];
        for (k, j) in active.iter().enumerate() {
            let s = &mut self.slots[*j];
            let Some(vm) = s.vm.as_mut() else { continue };
            vm.advance(&mut self.rng);
            let truth = vm.miss_rate(s.allocation_bytes, &mut self.rng);
            let (reported, started) =
                s.sensor
                    .report(truth, self.spec.fault_rate, &self.sensor_kinds, &mut self.rng);
            if let Some(kind) = started {
                self.c.inject(kind);
            }
            let guarded = s.guard.check(reported as f32, bound, self.params.absurd_factor);
            match guarded.reading {
                Reading::Fresh => {}
                Reading::Held { .. } => self.c.readings_held += 1,
                Reading::Lost { .. } => {
                    self.c.readings_lost += 1;
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
        let observed = match self.mdp.observe(self.capacity, &samples, &mut obs) {
            Ok(_) => true,
            Err(e) => {
                self.c.observations_refused += 1;
                self.c
                    .violation("guarded measurements refused", step, e.to_string());
                false
            }
        };
        Sensed { obs, lost, observed }
    }

    /// Step 4: Memory faults in a learning network policy — half before its learning step
    /// (which detects them), half before its bid (the actor's output may be NaN: the agent
    /// falls back to the safe bid) — then learning from the last step.
    fn learn(&mut self, step: u64, active: &[usize], sensed: &Sensed) {
        let weight_fault = self.has(FaultKind::Weights) && f64::from(self.rng.uniform_f32()) < self.rare;
        let before_learning = self.rng.below(2) == 0;
        if weight_fault && before_learning {
            inject_weight_fault(&mut self.slots, active, &mut self.rng, &mut self.c);
        }
        for (k, j) in active.iter().enumerate() {
            let (s, c) = (&mut self.slots[*j], &mut self.c);
            if step.is_multiple_of(EPISODE_STEPS) {
                s.agent.start_episode();
            }
            if let (Some((state, bid)), true) = (s.previous, sensed.usable(k)) {
                let t = AgentTransition {
                    state,
                    bid,
                    reward: sensed.obs[k].reward(&self.params),
                    next_state: sensed.obs[k],
                    done: (step + 1).is_multiple_of(EPISODE_STEPS),
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
            inject_weight_fault(&mut self.slots, active, &mut self.rng, &mut self.c);
        }
    }

    /// Step 5: Bids: held at 0 for VMs without a usable reading.
    fn bid(&mut self, step: u64, active: &[usize], sensed: &Sensed) -> Vec<f32> {
        let mut bids = vec![0.0f32; active.len()];
        for (k, j) in active.iter().enumerate() {
            let s = &mut self.slots[*j];
            if !sensed.usable(k) {
                self.c.bids_held += 1;
                s.previous = None;
                continue;
            }
            match s.agent.act(&sensed.obs[k]) {
                Ok(d) if d.bid.is_finite() && (-1.0..=1.0).contains(&d.bid) => {
                    bids[k] = d.bid;
                    s.previous = Some((sensed.obs[k], d.bid));
                }
                Ok(d) => self.c.violation(
                    "bid not finite or out of range",
                    step,
                    format!("slot {j}: {}", d.bid),
                ),
                Err(e) => self
                    .c
                    .violation("valid observation refused", step, format!("slot {j}: {e}")),
            }
        }
        self.c.agent_steps += active.len() as u64;
        bids
    }

    /// Step 6: VMs that vanish between their bid and the Bid Analyzer; returns the places in
    /// `active` of those that stay.
    fn vanish(&mut self, step: u64, active: &[usize]) -> Vec<usize> {
        let mut keep = vec![true; active.len()];
        if self.has(FaultKind::Vanish) {
            for (k, j) in active.iter().enumerate() {
                if f64::from(self.rng.uniform_f32()) < self.rare {
                    evict(&mut self.slots[*j], step, &mut self.rng, &mut self.c);
                    keep[k] = false;
                    self.c.inject(FaultKind::Vanish);
                }
            }
        }
        (0..active.len()).filter(|k| keep[*k]).collect()
    }

    /// Step 7: The Bid Analyzer on the VMs still there; memory conserved, every VM at its floor
    /// at least, no non-finite bid reaching it.
    fn analyze(&mut self, step: u64, config: &BidConfig, active: &[usize], staying: &[usize], bids: &[f32]) {
        if staying.is_empty() {
            return;
        }
        let mut allocations: Vec<u64> = staying
            .iter()
            .map(|k| self.slots[active[*k]].allocation_bytes)
            .collect();
        let stay_bids: Vec<f32> = staying.iter().map(|k| bids[*k]).collect();
        let mut grants = vec![VmGrant::default(); staying.len()];
        let capacity = self.capacity;
        let c = &mut self.c;
        match analyze(config, &mut allocations, &stay_bids, &mut grants) {
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
                    self.slots[active[*k]].allocation_bytes = *a;
                }
            }
            Err(e) => c.violation("analyzer refused", step, e.to_string()),
        }
    }
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

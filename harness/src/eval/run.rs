//! One run: a policy on a scenario, one agent per VM, for a number of episodes (the
//! paper's loop: observe → act → Bid Analyzer → node step → reward → record → learn).

use std::time::Instant;

use cavmem_core::agent::{AgentTransition, PolicyError, PolicyKind};
use cavmem_core::bid::{BidConfig, BidError, VmGrant, VmTerms, analyze_with_terms};
use cavmem_core::mdp::{NodeMdp, Observation, ObserveError, VmSample};
use serde::{Deserialize, Serialize};

use super::formulation::FormulationName;
use super::oracle;
use super::run_policy::RunPolicy;
use crate::agents::firmware::{self, FirmwareAgent};
use crate::agents::{AgentsAt, Hyperparams, SimAgent, derive_seed, make_policy};
use crate::backend::node_backend::{NodeBackend, NodeError};
use crate::cputime::thread_cpu_s;
use crate::scenario::Scenario;
use crate::sim::{Node, VmReading};

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The scenario.
    pub scenario: Scenario,
    /// The policy of every VM, or the limit.
    pub policy: RunPolicy,
    /// The MDP formulation.
    pub formulation: FormulationName,
    /// Episodes to run.
    pub episodes: u32,
    /// Seed: places the workloads and seeds the agents.
    pub seed: u64,
    /// Hyperparameters.
    pub hyper: Hyperparams,
    /// Whether agents record, learn and explore (false: a trained policy is only evaluated).
    pub learn: bool,
    /// Where the agents run.
    pub agents_at: AgentsAt,
}

/// Per-episode, per-VM figures of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Episode, 0-based.
    pub episode: u32,
    /// VM, 0-based.
    pub vm: usize,
    /// Mean measured miss rate over the steps the VM was on the node, pages/s; NaN (`null`
    /// in JSON) when it was on the node at no step of the episode although the scenario
    /// had it there (it waited the whole episode): not measured, never 0.
    #[serde(with = "super::nan_null")]
    pub avg_miss_rate_pages_per_s: f64,
    /// Mean |miss rate − target| over those steps, pages/s (target in force at each step,
    /// converted to pages/s with the VM's bound); NaN as above.
    #[serde(with = "super::nan_null")]
    pub miss_rate_deviation_pages_per_s: f64,
    /// Mean allocation over those steps, bytes; NaN as above.
    #[serde(with = "super::nan_null")]
    pub avg_allocation_bytes: f64,
    /// Mean memory the workload needed over those steps, bytes; NaN as above.
    #[serde(with = "super::nan_null")]
    pub avg_demand_bytes: f64,
    /// Sum of the agent's rewards.
    pub reward: f64,
    /// CPU time of the thread running the agent's act, record and learn calls (the limit's
    /// planning, shared among its VMs), seconds: not wall time, which grows with the
    /// machine's load.
    pub overhead_s: f64,
    /// Fraction of the steps on the node that ended with the VM at its floor; NaN as above.
    #[serde(with = "super::nan_null")]
    pub at_floor_fraction: f64,
    /// Decisions that fell back to the safe bid.
    pub fallbacks: u64,
    /// Steps at which the scenario had the VM on the node but it held nothing: it waited
    /// because one more VM's floor (or reservation) did not fit, or a real VM was not there.
    #[serde(default)]
    pub steps_waiting: u32,
    /// Steps from the VM's arrival (the episode's start, or its `arrive` step) to the first
    /// step it held its floor; the rest of the episode if it never did.
    #[serde(default)]
    pub admission_delay_steps: u32,
}

/// One step of the last episode completed, for allocation traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TracePoint {
    /// Step within the episode.
    pub step: u32,
    /// Allocation per VM, bytes.
    pub allocation_bytes: Vec<u64>,
    /// Measured miss rate per VM, pages/s.
    pub miss_rate_pages_per_s: Vec<f64>,
    /// Demand per VM, bytes.
    pub demand_bytes: Vec<u64>,
}

/// Everything a run produced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Scenario name.
    pub scenario: String,
    /// Policy name.
    pub policy: String,
    /// Formulation.
    pub formulation: FormulationName,
    /// Seed.
    pub seed: u64,
    /// Episodes run.
    pub episodes: u32,
    /// One record per episode and VM.
    pub records: Vec<EpisodeRecord>,
    /// The last episode completed, step by step.
    pub trace: Vec<TracePoint>,
    /// Wall time of the whole run, seconds.
    pub wall_s: f64,
    /// Whether the run stopped early (Ctrl-C on a real node); `episodes` are then the
    /// episodes completed.
    #[serde(default)]
    pub interrupted: bool,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The MDP rejected the node's measurements.
    #[error("observation: {0}")]
    Observe(ObserveError),
    /// The Bid Analyzer refused the node.
    #[error("bid analyzer: {0}")]
    Bid(BidError),
    /// The node refused the allocations or failed to measure a step.
    #[error("node: {0}")]
    Node(#[source] NodeError),
    /// A policy refused its input.
    #[error("policy: {0}")]
    Policy(PolicyError),
    /// Agents could not be set up (the thread they run on).
    #[error("agents: {0}")]
    Agents(String),
    /// A firmware agent could not be found or set up.
    #[error("agents: {0}")]
    Firmware(#[from] crate::agents::firmware::FirmwareError),
    /// The limit asked a node that has no true miss-rate curves (a real node).
    #[error("{0}: the oracle needs the simulator's true miss-rate curves, which a real node does not have")]
    NoCurves(&'static str),
}

/// Runs `f` in a pool of one thread (with a 64 MiB stack, room for agents built by value),
/// so that the run loop's learning steps run in turn: for figures that promise one thread.
///
/// # Errors
/// [`RunError::Agents`] when the thread cannot be started.
pub fn on_one_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, RunError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .stack_size(64 << 20)
        .build()
        .map_err(|e| RunError::Agents(format!("thread pool: {e}")))?;
    Ok(pool.install(f))
}

/// One learning step of every agent on the node. The agents are independent, so their
/// steps run in parallel when a core is free (rayon; inside one thread's pool they run in
/// turn); each agent's result is the same bits on any thread. Adds each step's time to its
/// VM's overhead.
fn learn_all(
    agents: &mut [Box<dyn SimAgent>],
    present: &[bool],
    acc: &mut [EpisodeRecord],
) -> Result<(), RunError> {
    use rayon::prelude::*;
    let times: Vec<Result<(usize, f64), PolicyError>> = agents
        .par_iter_mut()
        .enumerate()
        .filter(|(j, _)| present.get(*j).copied().unwrap_or(false))
        .map(|(j, agent)| {
            let t0 = thread_cpu_s();
            agent.learn().map(|_| (j, thread_cpu_s() - t0))
        })
        .collect();
    for t in times {
        let (j, seconds) = t.map_err(RunError::Policy)?;
        if let Some(a) = acc.get_mut(j) {
            a.overhead_s += seconds;
        }
    }
    Ok(())
}

/// Observations of the VMs on the node (`active`, in index order) into `obs[j]` for each
/// active `j`: the MDP sees only the VMs present.
fn observe_active(
    mdp: &mut NodeMdp,
    node: &dyn NodeBackend,
    bounds: &[f32],
    active: &[usize],
    obs: &mut [Observation],
) -> Result<cavmem_core::mdp::NodeStep, ObserveError> {
    if active.is_empty() {
        return Ok(cavmem_core::mdp::NodeStep::default()); // nobody to observe (yet)
    }
    let all = samples(node.readings(), bounds);
    let present: Vec<VmSample> = active.iter().map(|j| all[*j]).collect();
    let mut out = vec![Observation::default(); active.len()];
    let step = mdp.observe(node.capacity_bytes(), &present, &mut out)?;
    for (j, o) in active.iter().zip(out) {
        obs[*j] = o;
    }
    Ok(step)
}

/// Lets the VMs whose presence changes at `step` leave (their memory returns to the pool)
/// or arrive (with the initial allocation, or what is free if less; when less than the
/// floor is free, at the floor, taken from the others' memory above theirs by the Bid
/// Analyzer's floor repair; a VM waits only while the node cannot hold one more VM at the
/// floor). Returns whether the node's VMs changed.
fn update_presence(
    node: &mut dyn NodeBackend,
    scenario: &Scenario,
    config: &BidConfig,
    step: u32,
    agents: &mut [Box<dyn SimAgent>],
) -> Result<bool, RunError> {
    let mut changed = false;
    for j in 0..node.present().len() {
        let wanted = scenario.vms[j].present_at(step);
        if wanted == node.present()[j] {
            continue;
        }
        if !wanted {
            node.set_present(j, false).map_err(RunError::Node)?;
            changed = true;
            continue;
        }
        if !floor_fits(node.present(), scenario, j) {
            continue; // one more VM's floor does not fit: it waits
        }
        node.set_present(j, true).map_err(RunError::Node)?;
        if !node.present()[j] {
            continue; // a real VM that is not there (yet): tried again next step
        }
        // A real VM may join with the memory it has (its node checked that it fits).
        if node.allocations()[j] == 0 {
            admit(node, config, scenario, j)?;
        }
        if let Some(agent) = agents.get_mut(j) {
            agent.start_episode();
        }
        changed = true;
    }
    Ok(changed)
}

/// Whether the floors (reservations, or the node's floor where larger) of the VMs present
/// and of VM `j` fit the node.
fn floor_fits(present: &[bool], scenario: &Scenario, j: usize) -> bool {
    let node = &scenario.node;
    let floors: u128 = (0..present.len())
        .filter(|k| present[*k] || *k == j)
        .map(|k| u128::from(scenario.vms[k].floor_bytes(node)))
        .sum();
    floors <= u128::from(node.capacity_bytes)
}

/// Gives VM `j`, just arrived with nothing, its initial allocation or what is free if less
/// (whole granules); below its floor, the Bid Analyzer's floor repair (every bid 0) raises
/// it to the floor from the other present VMs' memory above theirs.
fn admit(
    node: &mut dyn NodeBackend,
    config: &BidConfig,
    scenario: &Scenario,
    j: usize,
) -> Result<(), RunError> {
    let g = config.granularity_bytes.max(1);
    let vm = &scenario.vms[j];
    let give = node.free_bytes().min(vm.initial_bytes(&scenario.node));
    let mut allocations = node.allocations().to_vec();
    allocations[j] = give - give % g;
    if allocations[j] < vm.floor_bytes(&scenario.node) {
        let present: Vec<usize> = (0..allocations.len()).filter(|k| node.present()[*k]).collect();
        let terms: Vec<VmTerms> = present.iter().map(|k| scenario.vms[*k].terms).collect();
        let mut held: Vec<u64> = present.iter().map(|k| allocations[*k]).collect();
        let mut grants = vec![VmGrant::default(); held.len()];
        analyze_with_terms(config, &terms, &mut held, &vec![0.0; present.len()], &mut grants)
            .map_err(RunError::Bid)?;
        for (k, a) in present.iter().zip(held) {
            allocations[*k] = a;
        }
    }
    node.set_allocations(&allocations).map_err(RunError::Node)
}

/// The MDP inputs from the node's readings.
fn samples(readings: &[VmReading], bounds: &[f32]) -> Vec<VmSample> {
    readings
        .iter()
        .zip(bounds)
        .map(|(r, b)| VmSample {
            miss_rate_pages_per_s: r.miss_rate_pages_per_s as f32,
            allocation_bytes: r.allocation_bytes,
            msr_bound_pages_per_s: *b,
        })
        .collect()
}

/// Fresh agents for every VM of `spec`'s scenario, where `spec.agents_at` says. A run of
/// the limit has equal-split agents that are never asked to act (they keep the run loop's
/// shape; the limit decides).
///
/// # Errors
/// [`RunError::Agents`] when a firmware process cannot be found or started, or the limit
/// is asked to run in firmware.
pub fn make_agents(spec: &RunSpec) -> Result<Vec<Box<dyn SimAgent>>, RunError> {
    let n = spec.scenario.vms.len();
    let kind = spec.policy.kind().unwrap_or(PolicyKind::EqualSplit);
    if spec.agents_at == AgentsAt::Firmware {
        spec.policy
            .agents_for("--agents firmware")
            .map_err(RunError::Agents)?;
    }
    match spec.agents_at {
        AgentsAt::Inprocess => Ok((0..n)
            .map(|j| {
                let agent: Box<dyn SimAgent> = make_policy(kind, &spec.hyper, spec.seed, j, n);
                agent
            })
            .collect()),
        AgentsAt::Firmware => firmware_agents(spec, &firmware::locate()?),
    }
}

/// One `cavmem-fw` process per VM of `spec`'s scenario, configured as [`make_agents`]
/// configures in-process agents (same seeds, same ε schedule), so the runs are identical.
///
/// # Errors
/// [`RunError::Agents`] when a process cannot be started or configured.
pub fn firmware_agents(spec: &RunSpec, fw: &std::path::Path) -> Result<Vec<Box<dyn SimAgent>>, RunError> {
    let n = spec.scenario.vms.len();
    let kind = spec
        .policy
        .agents_for("--agents firmware")
        .map_err(RunError::Agents)?;
    let eps = spec.hyper.policy.ddpg.epsilon;
    (0..n)
        .map(|j| {
            let seed = derive_seed(spec.seed, 1000 + j as u64);
            let name = format!("{} ({})", crate::scenario::vm_label(j), fw.display());
            FirmwareAgent::start(
                fw,
                name,
                kind,
                seed,
                n as u32,
                eps.explore_steps,
                eps.anneal_steps,
            )
            .map(|a| Box::new(a) as Box<dyn SimAgent>)
            .map_err(RunError::from)
        })
        .collect()
}

/// A finished episode, as the run loop reports it to its caller.
#[derive(Clone, Copy, Debug)]
pub struct EpisodeDone<'a> {
    /// The episode, counted from 0.
    pub episode: u32,
    /// Its records, one per VM, in VM order.
    pub records: &'a [EpisodeRecord],
}

/// Runs `spec` to the end with fresh agents; `on_episode` is called after every episode.
///
/// # Errors
/// [`RunError`] when a component rejects its input (the simulator never produces such input).
pub fn run(spec: &RunSpec, on_episode: impl FnMut(EpisodeDone<'_>)) -> Result<RunResult, RunError> {
    let mut agents = make_agents(spec)?;
    run_agents(spec, &mut agents, on_episode)
}

/// Runs `spec` to the end with the given agents (one per VM, e.g. loaded from a snapshot);
/// they keep what they learned.
///
/// # Errors
/// [`RunError`] as for [`run`]; also when the number of agents differs from the VMs.
pub fn run_agents(
    spec: &RunSpec,
    agents: &mut [Box<dyn SimAgent>],
    on_episode: impl FnMut(EpisodeDone<'_>),
) -> Result<RunResult, RunError> {
    let mut node = Node::new(&spec.scenario, derive_seed(spec.seed, 1));
    run_on(spec, &mut node, agents, on_episode)
}

/// Runs `spec` on `node` (the simulator, or a real node) with the given agents.
///
/// # Errors
/// [`RunError`] as for [`run`]; also when the number of agents or the node's VMs differ
/// from the scenario's VMs.
pub fn run_on(
    spec: &RunSpec,
    node: &mut dyn NodeBackend,
    agents: &mut [Box<dyn SimAgent>],
    mut on_episode: impl FnMut(EpisodeDone<'_>),
) -> Result<RunResult, RunError> {
    let started = Instant::now();
    let n = spec.scenario.vms.len();
    if agents.len() != n || node.present().len() != n {
        return Err(RunError::Node(NodeError::BadAllocations(format!(
            "{} agents and a node of {} VMs for a scenario of {n} VMs",
            agents.len(),
            node.present().len()
        ))));
    }
    agents.iter_mut().for_each(|a| a.set_exploration(spec.learn));
    let mut run = RunLoop::new(spec, node.vcpus());
    let mut records = Vec::with_capacity(spec.episodes as usize * n);
    let mut trace = Vec::new();
    // The episode being recorded; its points are reused from episode to episode.
    let mut episode_trace: Vec<TracePoint> =
        Vec::with_capacity(spec.scenario.node.steps_per_episode as usize);
    let mut completed = 0;
    for episode in 0..spec.episodes {
        let Some(episode_records) = run.episode(episode, node, agents, &mut episode_trace)? else {
            break; // a real node interrupted: keep the episodes completed
        };
        let first = records.len();
        records.extend(episode_records);
        // Only a completed episode replaces the trace.
        trace.clone_from(&episode_trace);
        on_episode(EpisodeDone {
            episode,
            records: records.get(first..).unwrap_or_default(),
        });
        completed = episode + 1;
    }
    Ok(RunResult {
        scenario: spec.scenario.name.clone(),
        policy: spec.policy.name().to_string(),
        formulation: spec.formulation,
        seed: spec.seed,
        episodes: completed,
        records,
        trace,
        wall_s: started.elapsed().as_secs_f64(),
        interrupted: completed < spec.episodes,
    })
}

/// What the run loop keeps from step to step: the MDP, the Bid Analyzer's configuration,
/// the miss-rate bounds, and the buffers each step refills (no allocation per step).
struct RunLoop<'s> {
    spec: &'s RunSpec,
    bounds: Vec<f32>,
    mdp: NodeMdp,
    bid_config: BidConfig,
    /// The VMs on the node, in index order.
    active: Vec<usize>,
    obs: Vec<Observation>,
    next_obs: Vec<Observation>,
    bids: Vec<f32>,
    allocations: Vec<u64>,
    grants: Vec<VmGrant>,
    // The present VMs' allocations, bids and terms for the Bid Analyzer.
    active_allocations: Vec<u64>,
    active_bids: Vec<f32>,
    active_terms: Vec<VmTerms>,
}

impl<'s> RunLoop<'s> {
    fn new(spec: &'s RunSpec, vcpus: Vec<u32>) -> Self {
        let scenario = &spec.scenario;
        let n = scenario.vms.len();
        let bound = spec.formulation.msr_bound();
        let service_s = scenario.node.fault_service_time_s as f32;
        Self {
            spec,
            bounds: vcpus.iter().map(|v| bound.pages_per_s(service_s, *v)).collect(),
            mdp: NodeMdp::new(spec.formulation.mdp_params_with(&spec.hyper.reward)),
            bid_config: BidConfig {
                capacity_bytes: scenario.node.capacity_bytes,
                floor_bytes: scenario.node.floor_bytes,
                granularity_bytes: scenario.node.granularity_bytes,
                share: scenario.node.share,
            },
            active: Vec::with_capacity(n),
            obs: vec![Observation::default(); n],
            next_obs: vec![Observation::default(); n],
            bids: vec![0.0; n],
            allocations: vec![0; n],
            grants: vec![VmGrant::default(); n],
            active_allocations: Vec::with_capacity(n),
            active_bids: Vec::with_capacity(n),
            active_terms: Vec::with_capacity(n),
        }
    }

    /// One episode, its trace into `trace`; its records, or `None` when the node was
    /// interrupted before its end.
    fn episode(
        &mut self,
        episode: u32,
        node: &mut dyn NodeBackend,
        agents: &mut [Box<dyn SimAgent>],
        trace: &mut Vec<TracePoint>,
    ) -> Result<Option<Vec<EpisodeRecord>>, RunError> {
        node.start_episode().map_err(RunError::Node)?;
        self.mdp.reset();
        agents.iter_mut().for_each(|a| a.start_episode());
        self.refresh_active(node)?;
        let mut acc = EpisodeAccumulator::start(episode, agents);
        for step in 0..self.spec.scenario.node.steps_per_episode {
            // VMs that arrive or leave at this step (scenario `arrive`/`leave`), or that a
            // real node lost or regained since the last step.
            let node_moved = self.active.len() != node.present().iter().filter(|p| **p).count()
                || self.active.iter().any(|j| !node.present()[*j]);
            if update_presence(node, &self.spec.scenario, &self.bid_config, step, agents)? || node_moved {
                // Observed as the node is now: an arriving VM at its admitted memory.
                node.refresh_readings();
                self.refresh_active(node)?;
            }
            acc.count_waiting(&self.spec.scenario, step, node.present());
            if let RunPolicy::Oracle(limit) = self.spec.policy {
                self.plan(limit, node, &mut acc)?;
            } else {
                self.act(agents, &mut acc)?;
                self.allocate(node)?;
            }
            match node.step() {
                Ok(()) => {}
                Err(NodeError::Interrupted) => return Ok(None),
                Err(e) => return Err(RunError::Node(e)),
            }
            self.record(step, node, agents, &mut acc)?;
            if self.spec.learn {
                learn_all(agents, node.present(), acc.records_mut())?;
            }
            record_trace(trace, step, node.readings());
            std::mem::swap(&mut self.obs, &mut self.next_obs);
        }
        Ok(Some(acc.finish(agents)))
    }

    /// The VMs on the node now, and their observations.
    fn refresh_active(&mut self, node: &dyn NodeBackend) -> Result<(), RunError> {
        let n = node.present().len();
        self.active = (0..n).filter(|j| node.present()[*j]).collect();
        observe_active(&mut self.mdp, node, &self.bounds, &self.active, &mut self.obs)
            .map_err(RunError::Observe)?;
        Ok(())
    }

    /// Every present VM's agent bids on its observation (timed as its overhead).
    fn act(
        &mut self,
        agents: &mut [Box<dyn SimAgent>],
        acc: &mut EpisodeAccumulator,
    ) -> Result<(), RunError> {
        for &j in &self.active {
            let t0 = thread_cpu_s();
            self.bids[j] = agents[j].act(&self.obs[j]).map_err(RunError::Policy)?.bid;
            acc.add_overhead(j, thread_cpu_s() - t0);
        }
        Ok(())
    }

    /// The limit's allocations for the present VMs, which the node takes (no bids: they
    /// are within what bids can reach, [`oracle`]); its time is shared among their overheads.
    fn plan(
        &mut self,
        limit: oracle::Limit,
        node: &mut dyn NodeBackend,
        acc: &mut EpisodeAccumulator,
    ) -> Result<(), RunError> {
        let t0 = thread_cpu_s();
        self.active_allocations.clear();
        self.active_allocations
            .extend(self.active.iter().map(|j| node.allocations()[*j]));
        let curve = |j: usize, bytes: u64| match limit.sight {
            oracle::Sight::Now => node.true_miss_rate_pages_per_s(j, bytes),
            oracle::Sight::LastStep => node.last_step_true_miss_rate_pages_per_s(j, bytes),
        };
        if self.active.first().is_some_and(|j| curve(*j, 0).is_none()) {
            return Err(RunError::NoCurves(limit.name()));
        }
        self.gather_terms();
        let mut planned = vec![0; self.active.len()];
        let active = &self.active;
        let rate = |k: usize, bytes: u64| curve(active[k], bytes).unwrap_or(0.0);
        oracle::plan(
            limit.objective,
            &self.bid_config,
            &self.active_terms,
            &self.active_allocations,
            rate,
            &mut planned,
        );
        self.allocations.fill(0);
        for (j, a) in self.active.iter().zip(&planned) {
            self.allocations[*j] = *a;
            self.bids[*j] = 0.0;
        }
        let share = (thread_cpu_s() - t0) / self.active.len().max(1) as f64;
        for &j in &self.active {
            acc.add_overhead(j, share);
        }
        node.set_allocations(&self.allocations).map_err(RunError::Node)
    }

    /// The present VMs' terms (reservation, limit, weight), in index order.
    fn gather_terms(&mut self) {
        let vms = &self.spec.scenario.vms;
        self.active_terms.clear();
        self.active_terms
            .extend(self.active.iter().map(|j| vms[*j].terms));
    }

    /// The Bid Analyzer turns the present VMs' bids into allocations, which the node takes.
    fn allocate(&mut self, node: &mut dyn NodeBackend) -> Result<(), RunError> {
        self.active_allocations.clear();
        self.active_allocations
            .extend(self.active.iter().map(|j| node.allocations()[*j]));
        self.active_bids.clear();
        self.active_bids.extend(self.active.iter().map(|j| self.bids[*j]));
        self.grants.resize(self.active.len(), VmGrant::default());
        self.gather_terms();
        if !self.active.is_empty() {
            analyze_with_terms(
                &self.bid_config,
                &self.active_terms,
                &mut self.active_allocations,
                &self.active_bids,
                &mut self.grants,
            )
            .map_err(RunError::Bid)?;
        }
        self.allocations.fill(0);
        for (j, a) in self.active.iter().zip(&self.active_allocations) {
            self.allocations[*j] = *a;
        }
        node.set_allocations(&self.allocations).map_err(RunError::Node)
    }

    /// After the node's step: each present VM's reward, its transition recorded (when
    /// learning) and what the step measured added to the episode's sums.
    fn record(
        &mut self,
        step: u32,
        node: &dyn NodeBackend,
        agents: &mut [Box<dyn SimAgent>],
        acc: &mut EpisodeAccumulator,
    ) -> Result<(), RunError> {
        let node_step = observe_active(
            &mut self.mdp,
            node,
            &self.bounds,
            &self.active,
            &mut self.next_obs,
        )
        .map_err(RunError::Observe)?;
        let scenario = &self.spec.scenario;
        let steps = scenario.node.steps_per_episode;
        let mdp_params = self.mdp.params();
        for &j in &self.active {
            let reward = self.next_obs[j].reward(mdp_params);
            // The episode ends for a VM at its last step or when it leaves next step.
            let done = step + 1 == steps || !scenario.vms[j].present_at(step + 1);
            let t0 = thread_cpu_s();
            let transition = AgentTransition {
                state: self.obs[j],
                bid: self.bids[j],
                reward,
                next_state: self.next_obs[j],
                done,
            };
            if self.spec.learn {
                agents[j].record(&transition).map_err(RunError::Policy)?;
            }
            acc.add_overhead(j, thread_cpu_s() - t0);
            let target_pages_per_s = match self.spec.formulation {
                FormulationName::Raw => f64::from(node_step.target_pages_per_s),
                FormulationName::Paper => {
                    (f64::from(self.next_obs[j].msr_tgt) + 1.0) * 0.5 * f64::from(self.bounds[j])
                }
            };
            acc.add_step(
                j,
                &node.readings()[j],
                target_pages_per_s,
                reward,
                self.allocations[j] <= scenario.vms[j].floor_bytes(&scenario.node),
            );
        }
        Ok(())
    }
}

/// The per-VM sums of one episode, made into its [`EpisodeRecord`]s at its end: averages
/// over the steps each VM was on the node.
struct EpisodeAccumulator {
    records: Vec<EpisodeRecord>,
    present_steps: Vec<u32>,
    fallbacks_before: Vec<u64>,
}

impl EpisodeAccumulator {
    /// Counts the VMs that the scenario has on the node at `step` and that hold nothing:
    /// a waiting step, and part of the admission delay until the VM was first on the node.
    fn count_waiting(&mut self, scenario: &Scenario, step: u32, present: &[bool]) {
        for (j, vm) in scenario.vms.iter().enumerate() {
            if vm.present_at(step) && !present.get(j).copied().unwrap_or(false) {
                let r = &mut self.records[j];
                r.steps_waiting += 1;
                if self.present_steps[j] == 0 {
                    r.admission_delay_steps += 1;
                }
            }
        }
    }
}

impl EpisodeAccumulator {
    fn start(episode: u32, agents: &[Box<dyn SimAgent>]) -> Self {
        let n = agents.len();
        Self {
            records: (0..n)
                .map(|vm| EpisodeRecord {
                    episode,
                    vm,
                    ..zero_record()
                })
                .collect(),
            present_steps: vec![0; n],
            fallbacks_before: agents.iter().map(|a| a.stats().fallbacks).collect(),
        }
    }

    fn records_mut(&mut self) -> &mut [EpisodeRecord] {
        &mut self.records
    }

    fn add_overhead(&mut self, vm: usize, seconds: f64) {
        self.records[vm].overhead_s += seconds;
    }

    /// Adds what one step measured of VM `vm`.
    fn add_step(&mut self, vm: usize, r: &VmReading, target_pages_per_s: f64, reward: f32, at_floor: bool) {
        let a = &mut self.records[vm];
        a.avg_miss_rate_pages_per_s += r.miss_rate_pages_per_s;
        a.miss_rate_deviation_pages_per_s += (r.miss_rate_pages_per_s - target_pages_per_s).abs();
        a.avg_allocation_bytes += r.allocation_bytes as f64;
        a.avg_demand_bytes += r.demand_bytes as f64;
        a.reward += f64::from(reward);
        a.at_floor_fraction += f64::from(u8::from(at_floor));
        self.present_steps[vm] += 1;
    }

    /// The episode's records: sums made averages (over the steps the VM was on the node,
    /// all of them unless the scenario lets it arrive late or leave early), and the
    /// fallbacks each agent took during the episode.
    fn finish(self, agents: &[Box<dyn SimAgent>]) -> Vec<EpisodeRecord> {
        let Self {
            records,
            present_steps,
            fallbacks_before,
        } = self;
        records
            .into_iter()
            .zip(present_steps.iter().zip(&fallbacks_before))
            .zip(agents)
            .map(|((mut a, (steps, before)), agent)| {
                // A VM that waited the whole episode was not measured: NaN, not 0.
                let per_step = if *steps == 0 && a.steps_waiting > 0 {
                    f64::NAN
                } else {
                    1.0 / f64::from((*steps).max(1))
                };
                a.avg_miss_rate_pages_per_s *= per_step;
                a.miss_rate_deviation_pages_per_s *= per_step;
                a.avg_allocation_bytes *= per_step;
                a.avg_demand_bytes *= per_step;
                a.at_floor_fraction *= per_step;
                a.fallbacks = agent.stats().fallbacks - before;
                a
            })
            .collect()
    }
}

/// Records `readings` as point `step` of `trace`, reusing the point's vectors when the
/// trace already has it (no allocation per step after the first episode).
fn record_trace(trace: &mut Vec<TracePoint>, step: u32, readings: &[VmReading]) {
    let k = step as usize;
    if trace.len() <= k {
        trace.resize_with(k + 1, || TracePoint {
            step: 0,
            allocation_bytes: Vec::new(),
            miss_rate_pages_per_s: Vec::new(),
            demand_bytes: Vec::new(),
        });
    }
    let p = &mut trace[k];
    p.step = step;
    p.allocation_bytes.clear();
    p.allocation_bytes
        .extend(readings.iter().map(|r| r.allocation_bytes));
    p.miss_rate_pages_per_s.clear();
    p.miss_rate_pages_per_s
        .extend(readings.iter().map(|r| r.miss_rate_pages_per_s));
    p.demand_bytes.clear();
    p.demand_bytes.extend(readings.iter().map(|r| r.demand_bytes));
}

/// A record of every metric 0 (episode 0, VM 0), to fill in with `..zero_record()`.
pub(crate) fn zero_record() -> EpisodeRecord {
    EpisodeRecord {
        episode: 0,
        vm: 0,
        avg_miss_rate_pages_per_s: 0.0,
        miss_rate_deviation_pages_per_s: 0.0,
        avg_allocation_bytes: 0.0,
        avg_demand_bytes: 0.0,
        reward: 0.0,
        overhead_s: 0.0,
        at_floor_fraction: 0.0,
        fallbacks: 0,
        steps_waiting: 0,
        admission_delay_steps: 0,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Three VMs: VM 1 leaves at step 60, VM 2 arrives at step 30.
    fn churn_scenario() -> Scenario {
        let mut text = crate::scale::generate(3, 5, 0.0);
        text = text
            .replacen("[[vm]]", "[[vm]]\nleave = 60", 2)
            .replacen("[[vm]]\nleave = 60", "[[vm]]", 1);
        text.push_str("arrive = 30\n");
        Scenario::parse(Path::new("churn.toml"), &text).unwrap()
    }

    #[test]
    fn run_vms_arrive_and_leave_within_episodes() {
        let scenario = churn_scenario();
        assert_eq!(
            (scenario.vms[1].leave_step, scenario.vms[2].arrive_step),
            (Some(60), 30)
        );
        for policy in [
            RunPolicy::Agents(PolicyKind::EqualSplit),
            RunPolicy::Agents(PolicyKind::Ddpg),
            RunPolicy::Oracle(oracle::Limit::new(oracle::Objective::MinSum, oracle::Sight::Now)),
            RunPolicy::Oracle(oracle::Limit::new(
                oracle::Objective::MinMax,
                oracle::Sight::LastStep,
            )),
        ] {
            let spec = RunSpec {
                scenario: scenario.clone(),
                policy,
                formulation: FormulationName::Raw,
                episodes: 2,
                seed: 1,
                hyper: crate::agents::hyperparams_for_run(200),
                learn: true,
                agents_at: AgentsAt::Inprocess,
            };
            let result = std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || run(&spec, |_| {}).unwrap())
                .unwrap()
                .join()
                .unwrap();
            let floor = scenario.node.floor_bytes;
            for p in &result.trace {
                let total: u64 = p.allocation_bytes.iter().sum();
                assert!(total <= scenario.node.capacity_bytes);
                let on = |j: usize| p.allocation_bytes[j] >= floor;
                assert!(on(0), "VM 0 stays");
                assert_eq!(on(1), p.step < 60, "VM 1 leaves at 60 (step {})", p.step);
                assert_eq!(on(2), p.step >= 30, "VM 2 arrives at 30 (step {})", p.step);
                if !on(1) {
                    assert_eq!(p.allocation_bytes[1], 0, "a VM that left holds nothing");
                }
            }
            assert_eq!(result.records.len(), 2 * 3);
            for r in &result.records {
                assert!(
                    r.avg_allocation_bytes >= floor as f64,
                    "averages over the steps present: {r:?}"
                );
            }
        }
    }

    /// A simulated node that hides its curves, as a real node has none.
    struct Blind(Node);

    impl NodeBackend for Blind {
        fn capacity_bytes(&self) -> u64 {
            self.0.capacity_bytes()
        }
        fn allocations(&self) -> &[u64] {
            self.0.allocations()
        }
        fn present(&self) -> &[bool] {
            self.0.present()
        }
        fn set_present(&mut self, vm: usize, present: bool) -> Result<(), NodeError> {
            NodeBackend::set_present(&mut self.0, vm, present)
        }
        fn vcpus(&self) -> Vec<u32> {
            self.0.vcpus()
        }
        fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), NodeError> {
            NodeBackend::set_allocations(&mut self.0, allocations)
        }
        fn step(&mut self) -> Result<(), NodeError> {
            NodeBackend::step(&mut self.0)
        }
        fn readings(&self) -> &[VmReading] {
            self.0.readings()
        }
        fn start_episode(&mut self) -> Result<(), NodeError> {
            NodeBackend::start_episode(&mut self.0)
        }
    }

    /// A node full to the last byte still admits an arriving VM at the floor.
    #[test]
    fn run_admits_an_arriving_vm_at_the_floor_when_nothing_is_free() {
        let scenario = churn_scenario();
        let config = BidConfig {
            capacity_bytes: scenario.node.capacity_bytes,
            floor_bytes: scenario.node.floor_bytes,
            granularity_bytes: scenario.node.granularity_bytes,
            share: scenario.node.share,
        };
        let mut node = Node::new(&scenario, 1);
        // VMs 0 and 1 hold the whole node; VM 2 arrives at step 30.
        let half = scenario.node.capacity_bytes / 2;
        node.set_allocations(&[half, scenario.node.capacity_bytes - half, 0])
            .unwrap();
        assert_eq!(node.free_bytes(), 0);
        let mut agents: Vec<Box<dyn SimAgent>> = Vec::new();
        assert!(update_presence(&mut node, &scenario, &config, 30, &mut agents).unwrap());
        let a = node.allocations();
        assert!(node.present()[2] && a[2] >= config.floor_bytes, "{a:?}");
        assert!(a.iter().sum::<u64>() <= scenario.node.capacity_bytes);
        assert!(a[0] >= config.floor_bytes && a[1] >= config.floor_bytes, "{a:?}");
    }

    #[test]
    fn run_oracle_refuses_a_node_without_curves() {
        for limit in oracle::Limit::ALL {
            let scenario = churn_scenario();
            let spec = RunSpec {
                scenario: scenario.clone(),
                policy: RunPolicy::Oracle(limit),
                formulation: FormulationName::Raw,
                episodes: 1,
                seed: 1,
                hyper: crate::agents::hyperparams_for_run(100),
                learn: false,
                agents_at: AgentsAt::Inprocess,
            };
            // Agents are built on the stack before they are boxed: a run's thread is 64 MiB.
            let err = on_one_thread(move || {
                let mut agents = make_agents(&spec).unwrap();
                let mut node = Blind(Node::new(&scenario, 1));
                run_on(&spec, &mut node, &mut agents, |_| {}).unwrap_err()
            })
            .unwrap();
            assert!(
                matches!(err, RunError::NoCurves(name) if name == limit.name()),
                "{err}"
            );
            assert!(err.to_string().contains("a real node does not have"), "{err}");
        }
    }

    /// The late limit sees the curves the last step began with: at a run's first step
    /// those are the present ones (the same plan as the limit's), later they lag.
    #[test]
    fn run_late_limit_plans_with_the_last_steps_curves() {
        let scenario = crate::scenario::Scenario::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/s1.toml"),
        )
        .unwrap();
        let run_limit = |sight| {
            let spec = RunSpec {
                scenario: scenario.clone(),
                policy: RunPolicy::Oracle(oracle::Limit::new(oracle::Objective::MinSum, sight)),
                formulation: FormulationName::Raw,
                episodes: 3,
                seed: 0,
                hyper: crate::agents::hyperparams_for_run(100),
                learn: false,
                agents_at: AgentsAt::Inprocess,
            };
            on_one_thread(move || run(&spec, |_| {}).unwrap()).unwrap()
        };
        let (now, late) = (run_limit(oracle::Sight::Now), run_limit(oracle::Sight::LastStep));
        let allocations = |r: &RunResult| {
            r.trace
                .iter()
                .map(|p| p.allocation_bytes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            allocations(&late)[0],
            allocations(&now)[0],
            "the first step: the same curves"
        );
        assert_ne!(allocations(&late), allocations(&now));
    }
}

#[cfg(test)]
#[path = "run_terms_tests.rs"]
mod terms_tests;

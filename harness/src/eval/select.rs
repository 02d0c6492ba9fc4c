//! Multi-seed training with selection on validation scenarios (`cavmem train --seeds K
//! --validate DIR`): one training run per seed; each candidate's trained policy (VM 0's
//! snapshot, loaded into every VM) runs without learning on every validation scenario;
//! the candidate with the lowest score is kept.
//!
//! The score is the mean over the validation scenarios of `(r + 1) / (s + 1)`, with `r` the
//! candidate's miss rate and `s` the static split's on the same scenario and seed (mean
//! over the VMs of each VM's miss rate over the whole validation run, pages/s). The
//! offset of [`RATIO_OFFSET_PAGES_PER_S`] keeps a node where the static split has no
//! misses from dividing by zero. Ties go to the lower seed.

use rayon::prelude::*;
use serde::Serialize;

use cavmem_core::agent::PolicyKind;

use super::run::{RunError, RunResult, RunSpec, make_agents, run, run_agents};
use super::run_policy::RunPolicy;
use crate::report::{Aggregate, mean_and_worst};
use crate::scenario::Scenario;

/// Added to both miss rates of a validation ratio, pages/s.
pub const RATIO_OFFSET_PAGES_PER_S: f64 = 1.0;

/// The validation runs' seed: every candidate meets the same nodes.
pub const VALIDATION_SEED: u64 = 0;

/// Largest snapshot a policy writes (Q-learning's table), bytes.
const SNAPSHOT_BYTES: usize = cavmem_core::agent::QLearning::SNAPSHOT_BYTES;

/// What to train and where to validate.
#[derive(Clone, Debug)]
pub struct SelectSpec {
    /// The training run; its seed is the first candidate's, the others follow.
    pub train: RunSpec,
    /// Candidates (seeds `train.seed ..`).
    pub seeds: u64,
    /// Validation scenarios.
    pub validation: Vec<Scenario>,
    /// Episodes of each validation run.
    pub validation_episodes: u32,
    /// Episodes at the end of each training run over which its miss rate is taken (the
    /// validation runs are taken whole: their policy no longer changes).
    pub train_window: u32,
}

/// One trained candidate.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    /// Its training seed.
    pub seed: u64,
    /// Its training run's miss rate over the last `train_window` episodes, pages/s.
    pub train_miss_rate_pages_per_s: f64,
    /// Its miss rate on each validation scenario (in [`Selection::scenarios`]' order), pages/s.
    pub validation_miss_rate_pages_per_s: Vec<f64>,
    /// Its score (module docs); lower is better.
    pub score: f64,
    /// VM 0's trained policy (docs/snapshot.md).
    #[serde(skip)]
    pub snapshot: Vec<u8>,
}

/// A policy that does not learn, run on the validation scenarios for comparison.
#[derive(Clone, Debug, Serialize)]
pub struct Reference {
    /// Its name (`static`, `feedback`, `mom`).
    pub policy: &'static str,
    /// Its miss rate on each validation scenario, pages/s.
    pub validation_miss_rate_pages_per_s: Vec<f64>,
    /// Its score (the static split's is 1).
    pub score: f64,
}

/// The policies the candidates are shown against; the first, the static split, is the
/// score's yardstick.
pub const REFERENCES: [PolicyKind; 3] = [PolicyKind::EqualSplit, PolicyKind::Feedback, PolicyKind::Mom];

/// Every candidate, and the one kept.
#[derive(Clone, Debug, Serialize)]
pub struct Selection {
    /// Validation scenario names.
    pub scenarios: Vec<String>,
    /// The static split's miss rate on each, pages/s.
    pub static_miss_rate_pages_per_s: Vec<f64>,
    /// [`REFERENCES`] on the same scenarios.
    pub references: Vec<Reference>,
    /// In seed order.
    pub candidates: Vec<Candidate>,
    /// The kept candidate's seed.
    pub chosen_seed: u64,
}

impl Selection {
    /// The kept candidate.
    pub fn chosen(&self) -> Option<&Candidate> {
        self.candidates.iter().find(|c| c.seed == self.chosen_seed)
    }
}

/// Trains every candidate (in parallel, on a pool of this machine's cores with 64 MiB
/// stacks), validates each, and keeps the best.
///
/// # Errors
/// [`RunError`] of the first run that fails (a policy without snapshots, a bad scenario).
pub fn select(spec: &SelectSpec) -> Result<Selection, RunError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()
        .map_err(|e| RunError::Agents(format!("thread pool: {e}")))?;
    pool.install(|| select_here(spec))
}

fn select_here(spec: &SelectSpec) -> Result<Selection, RunError> {
    let reference_rates: Vec<Vec<f64>> = REFERENCES
        .par_iter()
        .map(|kind| {
            spec.validation
                .iter()
                .map(|s| validation_run(spec, s, RunPolicy::Agents(*kind), None))
                .collect::<Result<Vec<f64>, _>>()
        })
        .collect::<Result<_, _>>()?;
    let statics = reference_rates.first().cloned().unwrap_or_default();
    let references = REFERENCES
        .iter()
        .zip(reference_rates)
        .map(|(kind, rates)| Reference {
            policy: kind.name(),
            score: score(&rates, &statics),
            validation_miss_rate_pages_per_s: rates,
        })
        .collect();
    let seeds: Vec<u64> = (0..spec.seeds).map(|k| spec.train.seed + k).collect();
    let mut candidates: Vec<Candidate> = seeds
        .par_iter()
        .map(|seed| candidate(spec, *seed, &statics))
        .collect::<Result<_, _>>()?;
    candidates.sort_by_key(|c| c.seed);
    let chosen_seed = candidates
        .iter()
        .min_by(|a, b| a.score.total_cmp(&b.score).then(a.seed.cmp(&b.seed)))
        .map_or(spec.train.seed, |c| c.seed);
    Ok(Selection {
        scenarios: spec.validation.iter().map(|s| s.name.clone()).collect(),
        static_miss_rate_pages_per_s: statics,
        references,
        candidates,
        chosen_seed,
    })
}

/// Trains seed `seed`, then runs its policy on every validation scenario.
fn candidate(spec: &SelectSpec, seed: u64, statics: &[f64]) -> Result<Candidate, RunError> {
    let train = RunSpec {
        seed,
        ..spec.train.clone()
    };
    let mut agents = make_agents(&train)?;
    let result = run_agents(&train, &mut agents, |_| {})?;
    let mut buf = vec![0u8; SNAPSHOT_BYTES];
    let first = agents
        .first_mut()
        .ok_or_else(|| RunError::Agents(format!("{}: no VM to train", train.scenario.name)))?;
    let n = first
        .save_snapshot(&mut buf)
        .map_err(|e| RunError::Agents(e.to_string()))?;
    buf.truncate(n);
    let validation: Vec<f64> = spec
        .validation
        .iter()
        .map(|s| validation_run(spec, s, spec.train.policy, Some(&buf)))
        .collect::<Result<_, _>>()?;
    Ok(Candidate {
        seed,
        train_miss_rate_pages_per_s: mean_miss_rate(&result, spec.train_window),
        score: score(&validation, statics),
        validation_miss_rate_pages_per_s: validation,
        snapshot: buf,
    })
}

/// The mean over scenarios of `(r + 1) / (s + 1)` (module docs); NaN rates count as the
/// worst possible, infinity.
pub fn score(rates: &[f64], statics: &[f64]) -> f64 {
    let ratios: Vec<f64> = rates
        .iter()
        .zip(statics)
        .map(|(r, s)| (r + RATIO_OFFSET_PAGES_PER_S) / (s + RATIO_OFFSET_PAGES_PER_S))
        .map(|x| if x.is_nan() { f64::INFINITY } else { x })
        .collect();
    ratios.iter().sum::<f64>() / ratios.len().max(1) as f64
}

/// `policy` on `scenario` without learning, every VM starting from `snapshot` when given.
fn validation_run(
    spec: &SelectSpec,
    scenario: &Scenario,
    policy: RunPolicy,
    snapshot: Option<&[u8]>,
) -> Result<f64, RunError> {
    let run_spec = RunSpec {
        scenario: scenario.clone(),
        policy,
        episodes: spec.validation_episodes,
        seed: VALIDATION_SEED,
        learn: false,
        ..spec.train.clone()
    };
    let result = match snapshot {
        None => run(&run_spec, |_| {})?,
        Some(bytes) => {
            let mut agents = make_agents(&run_spec)?;
            for agent in &mut agents {
                agent
                    .load_snapshot(bytes)
                    .map_err(|e| RunError::Agents(format!("{}: {e}", scenario.name)))?;
            }
            run_agents(&run_spec, &mut agents, |_| {})?
        }
    };
    Ok(mean_miss_rate(&result, spec.validation_episodes))
}

/// The mean over the VMs of each VM's miss rate over the last `window` episodes
/// (VMs never measured left out; NaN when none was), pages/s.
pub fn mean_miss_rate(result: &RunResult, window: u32) -> f64 {
    let agg = Aggregate::new(
        std::slice::from_ref(result),
        window.clamp(1, result.episodes.max(1)),
    );
    let rates = agg
        .cells
        .values()
        .flat_map(|c| c.per_vm.iter().map(|v| v.miss.mean));
    mean_and_worst(rates).0.unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests;

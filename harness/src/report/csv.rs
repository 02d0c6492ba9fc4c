//! `episodes.csv`: one row per scenario, policy, formulation, seed, episode and VM.

use std::path::Path;

use serde::Serialize;

use crate::eval::run::RunResult;
use crate::output::{OutputError, write_atomic};

#[derive(Serialize)]
struct Row<'a> {
    scenario: &'a str,
    policy: &'a str,
    formulation: &'a str,
    seed: u64,
    episode: u32,
    vm: usize,
    avg_miss_rate_pages_per_s: f64,
    miss_rate_deviation_pages_per_s: f64,
    avg_allocation_bytes: f64,
    avg_demand_bytes: f64,
    reward: f64,
    overhead_s: f64,
    at_floor_fraction: f64,
    fallbacks: u64,
    steps_waiting: u32,
    admission_delay_steps: u32,
}

/// The CSV text of every episode of every run.
pub fn episodes_csv(runs: &[RunResult]) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    for run in runs {
        for r in &run.records {
            let row = Row {
                scenario: &run.scenario,
                policy: &run.policy,
                formulation: run.formulation.name(),
                seed: run.seed,
                episode: r.episode,
                vm: r.vm,
                avg_miss_rate_pages_per_s: r.avg_miss_rate_pages_per_s,
                miss_rate_deviation_pages_per_s: r.miss_rate_deviation_pages_per_s,
                avg_allocation_bytes: r.avg_allocation_bytes,
                avg_demand_bytes: r.avg_demand_bytes,
                reward: r.reward,
                overhead_s: r.overhead_s,
                at_floor_fraction: r.at_floor_fraction,
                fallbacks: r.fallbacks,
                steps_waiting: r.steps_waiting,
                admission_delay_steps: r.admission_delay_steps,
            };
            // Serializing plain numbers and names into memory cannot fail.
            let _ = w.serialize(row);
        }
    }
    w.into_inner().unwrap_or_default()
}

/// Writes `episodes.csv` into `dir`.
///
/// # Errors
/// [`OutputError`] naming the file.
pub fn write(dir: &Path, runs: &[RunResult]) -> Result<(), OutputError> {
    write_atomic(&dir.join("episodes.csv"), &episodes_csv(runs))
}

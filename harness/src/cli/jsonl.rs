//! `--progress jsonl`: one JSON object per line on stdout, for a tuner that watches a run
//! and stops a bad trial early (docs/search.md). Every finished episode gives an `episode`
//! line; the end of the run a `done` line with the metrics over the last episodes, as the
//! text output reports them. Numbers that were not measured (a VM that waited a whole
//! episode) are `null`.

use serde_json::{Value, json};

use crate::eval::run::{EpisodeDone, EpisodeRecord};
use crate::report::{Aggregate, mean_and_worst};

/// How a run reports its progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressFormat {
    /// A bar on a terminal, plain lines elsewhere, and the metrics as text (default).
    #[default]
    Human,
    /// JSON lines on stdout (the text goes to stderr).
    Jsonl,
}

/// Writes `line` and a newline to stdout. When stdout is closed (the reader, e.g. a tuner
/// that stopped the trial, is gone) the run has no one to report to: the process says so
/// on stderr and exits with status 1, writing nothing more.
pub fn emit(line: &Value) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        eprintln!("cavmem: stdout closed ({e}); stopping the run");
        std::process::exit(1);
    }
}

fn vm_line(r: &EpisodeRecord) -> Value {
    json!({
        "vm": r.vm,
        "avg_miss_rate_pages_per_s": r.avg_miss_rate_pages_per_s,
        "miss_rate_deviation_pages_per_s": r.miss_rate_deviation_pages_per_s,
        "avg_allocation_bytes": r.avg_allocation_bytes,
        "reward": r.reward,
        "steps_waiting": r.steps_waiting,
    })
}

/// The `episode` line of a finished episode.
pub fn episode_line(done: &EpisodeDone<'_>) -> Value {
    let (mean, worst) = mean_and_worst(done.records.iter().map(|r| r.avg_miss_rate_pages_per_s));
    json!({
        "event": "episode",
        "episode": done.episode,
        "mean_miss_rate_pages_per_s": mean,
        "worst_miss_rate_pages_per_s": worst,
        "vms": done.records.iter().map(vm_line).collect::<Vec<_>>(),
    })
}

/// The `done` line: the run's metrics over its last `agg.window` episodes.
pub fn done_line(agg: &Aggregate, episodes: u32, out: &std::path::Path) -> Value {
    let cell = agg.cells.values().next();
    let vms: Vec<Value> = cell
        .map(|c| {
            c.per_vm
                .iter()
                .enumerate()
                .map(|(vm, v)| {
                    json!({
                        "vm": vm,
                        "avg_miss_rate_pages_per_s": v.miss.mean,
                        "miss_rate_deviation_pages_per_s": v.deviation.mean,
                        "avg_allocation_bytes": v.allocation.mean,
                        "at_floor_fraction": v.at_floor.mean,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (mean, _) = mean_and_worst(
        cell.into_iter()
            .flat_map(|c| c.per_vm.iter().map(|v| v.miss.mean)),
    );
    json!({
        "event": "done",
        "episodes": episodes,
        "window_episodes": agg.window,
        "mean_miss_rate_pages_per_s": mean,
        "worst_miss_rate_pages_per_s": cell.map(|c| c.worst_miss.mean),
        "vms": vms,
        "out": out.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::run::{RunSpec, run};

    /// A short static-split run of s2 reports every episode, in order, with each VM's
    /// metrics, and a `done` line that agrees with the episodes' records.
    #[test]
    fn jsonl_lines_report_every_episode_and_the_window() {
        let spec = RunSpec {
            scenario: crate::eval::paper::shipped_scenarios().unwrap().remove(1),
            policy: cavmem_core::agent::PolicyKind::EqualSplit.into(),
            formulation: crate::eval::formulation::FormulationName::Raw,
            episodes: 4,
            seed: 2,
            hyper: crate::agents::hyperparams_for_run(400),
            learn: true,
            agents_at: crate::agents::AgentsAt::Inprocess,
        };
        let mut lines = Vec::new();
        let result = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                let r = run(&spec, |done| lines.push(episode_line(&done).to_string())).unwrap();
                (r, lines)
            })
            .unwrap()
            .join()
            .unwrap();
        let (result, lines) = result;
        assert_eq!(lines.len(), 4);
        for (k, line) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(
                (v["event"].as_str(), v["episode"].as_u64()),
                (Some("episode"), Some(k as u64))
            );
            let vms = v["vms"].as_array().unwrap();
            assert_eq!(vms.len(), 2);
            let rates: Vec<f64> = vms
                .iter()
                .map(|m| m["avg_miss_rate_pages_per_s"].as_f64().unwrap())
                .collect();
            assert_eq!(
                v["worst_miss_rate_pages_per_s"].as_f64(),
                rates.iter().copied().reduce(f64::max)
            );
            assert_eq!(rates[0], result.records[2 * k].avg_miss_rate_pages_per_s);
        }
        let agg = Aggregate::new(std::slice::from_ref(&result), 2);
        let done = done_line(&agg, 4, std::path::Path::new("out"));
        assert_eq!(done["event"], "done");
        assert_eq!(done["window_episodes"], 2);
        let last_two =
            (result.records[4].avg_miss_rate_pages_per_s + result.records[6].avg_miss_rate_pages_per_s) / 2.0;
        let vm0 = done["vms"][0]["avg_miss_rate_pages_per_s"].as_f64().unwrap();
        assert!(
            (vm0 - last_two).abs() <= 1e-9 * last_two.max(1.0),
            "{vm0} vs {last_two}"
        );
    }

    #[test]
    fn jsonl_unmeasured_rates_are_null() {
        assert_eq!(
            mean_and_worst([f64::NAN, 3.0, 1.0].into_iter()),
            (Some(2.0), Some(3.0))
        );
        assert_eq!(mean_and_worst([f64::NAN].into_iter()), (None, None));
        let record = EpisodeRecord {
            avg_miss_rate_pages_per_s: f64::NAN,
            ..serde_json::from_value(json!({
                "episode": 0, "vm": 0, "avg_miss_rate_pages_per_s": null, "miss_rate_deviation_pages_per_s": null,
                "avg_allocation_bytes": null, "avg_demand_bytes": null, "reward": 0.0, "overhead_s": 0.0,
                "at_floor_fraction": null, "fallbacks": 0, "steps_waiting": 100
            }))
            .unwrap()
        };
        let line = episode_line(&EpisodeDone {
            episode: 0,
            records: std::slice::from_ref(&record),
        });
        assert!(line["vms"][0]["avg_miss_rate_pages_per_s"].is_null(), "{line}");
        assert!(line["mean_miss_rate_pages_per_s"].is_null(), "{line}");
    }
}

//! `summary.json`: the run's parameters and one record per scenario, policy, formulation and VM.

use std::path::Path;

use serde_json::{Value, json};

use super::Aggregate;
use crate::agents::Hyperparams;
use crate::eval::metrics::Interval;
use crate::eval::paper::Protocol;
use crate::output::{OutputError, write_atomic};
use crate::scenario::Scenario;

fn ci(i: &Interval) -> Value {
    if i.n > 1 { json!([i.lo, i.hi]) } else { Value::Null }
}

/// An `f32` as the decimal it was written as (`1e-4` as 0.0001, not the nearest `f64`'s
/// 9.999999747378752e-05): the shortest text that reads back as the same `f32`.
fn f32_decimal(x: f32) -> Value {
    x.to_string().parse::<f64>().map_or(Value::Null, Value::from)
}

/// Every hyperparameter of every policy, as JSON.
pub fn hyperparameters(h: &Hyperparams) -> Value {
    let f = f32_decimal;
    let eps = |e: &cavmem_core::noise::EpsilonSchedule| json!({"start": f(e.start), "end": f(e.end), "explore_steps": e.explore_steps, "anneal_steps": e.anneal_steps, "anneal": format!("{:?}", e.anneal)});
    let d = &h.ddpg;
    let q = &h.dqn;
    let t = &h.ql;
    json!({
        "ddpg": {
            "actor_lr": f(d.actor_lr), "critic_lr": f(d.critic_lr), "gamma": f(d.gamma), "tau": f(d.tau),
            "ou": {"theta": f(d.ou.theta), "sigma": f(d.ou.sigma), "mu": f(d.ou.mu), "dt": f(d.ou.dt)},
            "epsilon": eps(&d.epsilon), "learn_starts": d.learn_starts, "critic_head": format!("{:?}", d.critic_head),
            "hidden": cavmem_core::agent::ddpg::HIDDEN, "batch": cavmem_core::agent::ddpg::BATCH,
            "replay_capacity": crate::agents::REPLAY_CAPACITY,
        },
        "dqn": {
            "lr": f(q.lr), "gamma": f(q.gamma), "tau": f(q.tau), "target_every": q.target_every, "action_bids": q.action_bids,
            "epsilon": eps(&q.epsilon), "learn_starts": q.learn_starts, "batch": cavmem_core::agent::ddpg::BATCH,
            "replay_capacity": crate::agents::REPLAY_CAPACITY,
        },
        "ql": {"alpha": f(t.alpha), "gamma": f(t.gamma), "action_bids": t.action_bids, "epsilon": eps(&t.epsilon), "bins": cavmem_core::agent::ql::BINS},
        "static": {"rule": "bid toward capacity / number of VMs"},
    })
}

/// The summary document.
pub fn summary(agg: &Aggregate, protocol: &Protocol, scenarios: &[Scenario], hyper: &Hyperparams) -> Value {
    let mut results = Vec::new();
    for ((scenario, formulation, policy), cell) in &agg.cells {
        for (vm, s) in cell.per_vm.iter().enumerate() {
            results.push(json!({
                "scenario": scenario, "policy": policy, "formulation": formulation.name(), "vm": vm, "seeds": cell.seeds,
                "avg_miss_rate_pages_per_s": s.miss.mean, "avg_miss_rate_pages_per_s_ci95": ci(&s.miss),
                "miss_rate_deviation_pages_per_s": s.deviation.mean, "miss_rate_deviation_pages_per_s_ci95": ci(&s.deviation),
                "overhead_s": s.overhead.mean, "overhead_s_ci95": ci(&s.overhead),
                "avg_allocation_bytes": s.allocation.mean, "avg_allocation_bytes_ci95": ci(&s.allocation),
                "at_floor_fraction": s.at_floor.mean,
                "jain_index": cell.jain.mean, "jain_index_ci95": ci(&cell.jain),
            }));
        }
    }
    let scenario_files: serde_json::Map<String, Value> = scenarios
        .iter()
        .map(|s| (s.name.clone(), Value::String(s.source.clone())))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": protocol,
        "seeds": (0..protocol.seeds).collect::<Vec<_>>(),
        "metric_window_episodes": agg.window,
        "definitions": {
            "avg_miss_rate_pages_per_s": "mean over the window's steps of the VM's measured major faults per second",
            "miss_rate_deviation_pages_per_s": "mean over the window's steps of |miss rate - target|, the target being the formulation's msrTgt in force at that step, in pages/s (raw: avgRate*sqrt(totalMemUse) of the previous step; paper: (msrTgt+1)/2 * the VM's bound)",
            "overhead_s": "wall seconds the VM's agent spent in act, record and learn over the window",
            "avg_allocation_bytes": "mean over the window's steps of the memory the Bid Analyzer granted the VM, bytes",
            "at_floor_fraction": "fraction of the window's steps at which the VM held only the node's floor",
            "jain_index": "Jain's fairness index of the VMs' average miss rates over the window, (sum x)^2 / (n * sum x^2), in [1/n, 1] (1 when all are equal, also when all are 0), per seed, then its mean over seeds; one value per scenario, policy and formulation, repeated on each VM's record",
            "vm": "the VM's index in the scenario file, counted from 0, as everywhere (the report's VM 0; the paper's VM1)",
            "seeds": "how many seeds the record's means and intervals are over",
            "ci95": "Student-t 95% interval of the mean over seeds (null for one seed)",
        },
        "scenarios": scenario_files,
        "hyperparameters": hyperparameters(hyper),
        "results": results,
    })
}

/// Writes `summary.json` into `dir`.
///
/// # Errors
/// [`OutputError`] naming the file.
pub fn write(dir: &Path, doc: &Value) -> Result<(), OutputError> {
    let text = serde_json::to_vec_pretty(doc).unwrap_or_default();
    write_atomic(&dir.join("summary.json"), &text)
}

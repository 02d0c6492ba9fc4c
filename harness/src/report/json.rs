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

/// An `f32` as the decimal it was written as ([`crate::params::shortest_f64`]).
fn f32_decimal(x: f32) -> Value {
    Value::from(crate::params::shortest_f64(x))
}

/// Every hyperparameter of every policy, as JSON.
pub fn hyperparameters(h: &Hyperparams) -> Value {
    let f = f32_decimal;
    let eps = |e: &cavmem_core::noise::EpsilonSchedule| json!({"start": f(e.start), "end": f(e.end), "explore_steps": e.explore_steps, "anneal_steps": e.anneal_steps, "anneal": format!("{:?}", e.anneal)});
    let (d, q, t) = (&h.policy.ddpg, &h.policy.dqn, &h.policy.ql);
    let (fb, mom) = (&h.policy.feedback, &h.policy.mom);
    let reward = |w: &crate::params::RewardWeights| json!({"deviation_weight": f(w.deviation_weight), "miss_weight": f(w.miss_weight)});
    let shield = |p: &cavmem_core::agent::ShieldParams| json!({"enabled": p.enabled, "period_steps": p.period_steps, "probe_steps": p.probe_steps, "patience": p.patience, "margin": f(p.margin)});
    json!({
        "ddpg": {
            "actor_lr": f(d.actor_lr), "critic_lr": f(d.critic_lr), "gamma": f(d.gamma), "tau": f(d.tau),
            "ou": {"theta": f(d.ou.theta), "sigma": f(d.ou.sigma), "mu": f(d.ou.mu), "dt": f(d.ou.dt)},
            "epsilon": eps(&d.epsilon), "learn_starts": d.learn_starts, "normalize_observations": d.normalize_observations, "critic_head": cavmem_core::agent::Ddpg::<{ crate::agents::REPLAY_CAPACITY }>::CRITIC_HEAD,
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
        "feedback": {"gain": f(fb.gain), "avg_floor": f(fb.avg_floor), "missing": f(fb.missing), "fill_to": f(fb.fill_to)},
        "mom": {"step": f(mom.step), "deadband": f(mom.deadband), "missing": f(mom.missing)},
        "residual": {"scale": f(h.policy.residual.scale), "correction_penalty": f(h.policy.residual.correction_penalty), "base": "feedback, with the feedback parameters above", "learner": "ddpg, with the ddpg parameters above", "shield": shield(&h.policy.residual.shield)},
        "td3": {"policy_delay": h.policy.td3.policy_delay, "target_noise": f(h.policy.td3.target_noise), "target_noise_clip": f(h.policy.td3.target_noise_clip), "critics": 2, "learner": "ddpg, with the ddpg parameters above"},
        "reward": {"raw": reward(&h.reward.raw), "paper": reward(&h.reward.paper)},
        "oracle-minmax": {"rule": "each step, the allocation reachable by bids that minimizes the largest true miss rate (exact at the granularity)"},
        "oracle-minsum": {"rule": "each step, the allocation reachable by bids that minimizes the sum of true miss rates (exact on at most 256 steps of the spare memory)", "grid_steps": crate::eval::oracle::MIN_SUM_UNITS},
        "oracle-minmax-late": {"rule": "oracle-minmax planned with every VM's true curve as the last step began (one step late)"},
        "oracle-minsum-late": {"rule": "oracle-minsum planned with every VM's true curve as the last step began (one step late)"},
    })
}

/// The summary document.
pub fn summary(agg: &Aggregate, protocol: &Protocol, scenarios: &[Scenario], hyper: &Hyperparams) -> Value {
    let mut results = Vec::new();
    for ((scenario, formulation, policy), cell) in &agg.cells {
        let [headroom_mean, headroom_worst] = agg.headrooms(scenario, *formulation, policy);
        for (vm, s) in cell.per_vm.iter().enumerate() {
            let seeds = |k: usize| -> Vec<f64> {
                cell.per_seed
                    .iter()
                    .filter_map(|seed| seed.get(vm).map(|v| v[k]))
                    .collect()
            };
            results.push(json!({
                "scenario": scenario, "policy": policy, "formulation": formulation.name(), "vm": vm, "seeds": cell.seeds,
                "avg_miss_rate_pages_per_s": s.miss.mean, "avg_miss_rate_pages_per_s_ci95": ci(&s.miss),
                "miss_rate_deviation_pages_per_s": s.deviation.mean, "miss_rate_deviation_pages_per_s_ci95": ci(&s.deviation),
                "overhead_s": s.overhead.mean, "overhead_s_ci95": ci(&s.overhead),
                "avg_allocation_bytes": s.allocation.mean, "avg_allocation_bytes_ci95": ci(&s.allocation),
                "at_floor_fraction": s.at_floor.mean,
                "jain_index": cell.jain.mean, "jain_index_ci95": ci(&cell.jain),
                "worst_miss_rate_pages_per_s": cell.worst_miss.mean, "worst_miss_rate_pages_per_s_ci95": ci(&cell.worst_miss),
                "headroom_mean_miss_rate": headroom_mean, "headroom_worst_miss_rate": headroom_worst,
                "steps_waiting_max": cell.waiting.max_steps, "steps_waiting_mean": cell.waiting.mean_steps,
                "admission_delay_steps_max": cell.waiting.max_admission_delay_steps,
                "admission_delay_steps_mean": cell.waiting.mean_admission_delay_steps,
                "per_seed": {
                    "avg_miss_rate_pages_per_s": seeds(0), "miss_rate_deviation_pages_per_s": seeds(1),
                    "overhead_s": seeds(2), "avg_allocation_bytes": seeds(3), "at_floor_fraction": seeds(4),
                },
            }));
        }
    }
    let scenario_files: serde_json::Map<String, Value> = scenarios
        .iter()
        .map(|s| (s.name.clone(), Value::String(s.source.clone())))
        .collect();
    let node_calibrations: serde_json::Map<String, Value> = scenarios
        .iter()
        .filter_map(|s| Some((s.name.clone(), Value::String(s.calibration_source.clone()?))))
        .collect();
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": protocol,
        "seeds": (0..protocol.seeds).collect::<Vec<_>>(),
        "metric_window_episodes": agg.window,
        "definitions": {
            "avg_miss_rate_pages_per_s": "mean over the window's steps of the VM's measured major faults per second (steps on the node; an episode it waited throughout is left out, null if every one was)",
            "miss_rate_deviation_pages_per_s": "mean over the window's steps of |miss rate - target|, the target being the formulation's msrTgt in force at that step, in pages/s (raw: avgRate*sqrt(totalMemUse) of the previous step; paper: (msrTgt+1)/2 * the VM's bound)",
            "overhead_s": "CPU seconds of the thread that ran the VM's agent's act, record and learn over the window (thread CPU time, not wall time; for the oracle its planning shared among the VMs; with --agents firmware only the harness side, the agent's own CPU being in cavmem-fw)",
            "avg_allocation_bytes": "mean over the window's steps of the memory the Bid Analyzer granted the VM, bytes",
            "at_floor_fraction": "fraction of the window's steps at which the VM held only its floor (the node's floor, or its reservation)",
            "steps_waiting_max": "the most steps any VM of the cell (any seed) waited in one window episode: steps at which the scenario had it on the node but it held nothing; repeated on each VM's record",
            "steps_waiting_mean": "mean steps waiting per VM and window episode, over all seeds and VMs of the cell",
            "admission_delay_steps_max": "the longest admission delay of any VM of the cell in one window episode: steps from its arrival (the episode's start or its arrive step) to the first step it held its floor, the rest of the episode if it never did",
            "admission_delay_steps_mean": "mean admission delay per VM and window episode, over all seeds and VMs of the cell",
            "worst_miss_rate_pages_per_s": "per seed the largest of the VMs' avg_miss_rate_pages_per_s, then its mean over seeds; repeated on each VM's record",
            "headroom_mean_miss_rate": "(static - policy) / (static - oracle-minsum) of the VMs' mean avg_miss_rate_pages_per_s (means over seeds): 1 at the one-step limit, 0 at the static split; null without those runs or when static is within 0.1% of the limit",
            "headroom_worst_miss_rate": "the same for worst_miss_rate_pages_per_s against oracle-minmax",
            "per_seed": "each metric of the VM per seed, in the order of seeds",
            "jain_index": "Jain's fairness index of the VMs' average miss rates over the window, (sum x)^2 / (n * sum x^2), in [1/n, 1] (1 when all are equal, also when all are 0), per seed, then its mean over seeds; one value per scenario, policy and formulation, repeated on each VM's record",
            "vm": "the VM's index in the scenario file, counted from 0, as everywhere (the report's VM 0; the paper's VM1)",
            "seeds": "how many seeds the record's means and intervals are over",
            "ci95": "percentile-bootstrap 95% interval of the mean over seeds (2000 resamples from a fixed seed; within the seeds' range, so within the metric's; null for one seed)",
        },
        "scenarios": scenario_files,
        "node_calibrations": node_calibrations,
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

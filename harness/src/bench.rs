//! `cavmem bench`: what the agent costs, measured with warm-up and repeated samples.
//!
//! Each figure is the median of [`SAMPLES`] samples, each timing a batch of calls after a
//! warm-up; the spread (min and max of the samples) is reported beside it. For
//! instruction counts that do not depend on the machine's load, run the same binary under
//! `valgrind --tool=callgrind` (docs/performance.md).

use std::hint::black_box;
use std::time::Instant;

use cavmem_core::agent::ddpg::BATCH;
use cavmem_core::agent::int8::FrozenInt8;
use cavmem_core::agent::{
    AgentTransition, Ddpg, DdpgParams, Dqn, DqnParams, FrozenActor, Policy, QLearning, QlParams,
    ResidualParams, Td3,
};
use cavmem_core::bid::{BidConfig, VmGrant, analyze};
use cavmem_core::mdp::Observation;
use cavmem_core::rng::Rng;
use cavmem_core::units::{GIB, MIB};
use serde::Serialize;

use crate::agents::{AgentsAt, REPLAY_CAPACITY};
use crate::eval::formulation::FormulationName;
use crate::eval::paper::{GridProgress, Protocol, run_grid, shipped_scenarios};
use crate::eval::run::{RunSpec, run};

/// Samples per figure.
pub const SAMPLES: usize = 15;

/// A median with its spread.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Figure {
    /// Median of the samples.
    pub median: f64,
    /// Smallest sample.
    pub min: f64,
    /// Largest sample.
    pub max: f64,
}

fn measure(per_sample_calls: u32, scale: f64, mut f: impl FnMut()) -> Figure {
    for _ in 0..per_sample_calls.max(1) {
        f();
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_sample_calls {
                f();
            }
            t.elapsed().as_secs_f64() / f64::from(per_sample_calls) * scale
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Figure {
        median: samples[SAMPLES / 2],
        min: samples[0],
        max: samples[SAMPLES - 1],
    }
}

fn filled<P: Policy>(mut p: P, transitions: usize) -> P {
    let mut rng = Rng::seed_from_u64(1);
    for _ in 0..transitions {
        let t = AgentTransition::random(&mut rng);
        let _ = p.record(&t);
    }
    p
}

/// Where the benchmarks ran.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPU model, from /proc/cpuinfo.
    pub cpu: String,
    /// Logical cores available.
    pub cores: usize,
    /// The network kernels in use (`generic` or `avx512`: `CAVMEM_KERNELS`, else the
    /// widest this CPU runs).
    pub kernel_path: &'static str,
    /// What those kernels are in this build, e.g. `avx512 (16 lanes, AVX-512F)`.
    pub kernels: &'static str,
}

fn machine() -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernel_path: cavmem_simd::active().name(),
        kernels: cavmem_simd::active().describe(),
    }
}

/// Every figure of `cavmem bench`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// One DDPG learning step (critic, actor, targets), minibatch 64, µs.
    pub ddpg_update_us: Figure,
    /// One learning step of the `residual` policy (DDPG plus the feedback controller's bid
    /// for every row), minibatch 64, µs.
    pub residual_update_us: Figure,
    /// One TD3 learning step (two critics; the actor and the targets every second step,
    /// so this is the mean of the two kinds of step), minibatch 64, µs.
    pub td3_update_us: Figure,
    /// One actor forward pass 5 → 64 → 64 → 1, µs.
    pub actor_infer_us: Figure,
    /// The same actor with its hidden layer in int8 ([`cavmem_core::agent::int8`]), µs.
    pub int8_actor_infer_us: Figure,
    /// One DQN learning step, minibatch 64, µs.
    pub dqn_update_us: Figure,
    /// One tabular Q-learning update, ns.
    pub ql_update_ns: Figure,
    /// Bid Analyzer time per VM at 2, 64 and 1024 VMs, ns.
    pub bid_analyzer_ns_per_vm: [(usize, Figure); 3],
    /// Node steps per second on one thread: the simulator and two DDPG agents acting and
    /// learning every step (scenario s2).
    pub env_steps_per_s: Figure,
    /// The full one-seed paper evaluation (both formulations), seconds, if asked for.
    pub paper_run_s: Option<f64>,
    /// The machine.
    pub machine: Machine,
}

/// The full one-seed paper evaluation of both formulations, seconds, run from scratch in a
/// temporary directory (removed afterwards: no finished cell is reused or replaced); `None`,
/// with the reason on stderr, when it fails.
fn time_paper_run() -> Option<f64> {
    let dir = tempfile::Builder::new()
        .prefix("cavmem-bench-paper")
        .tempdir()
        .map_err(|e| eprintln!("bench: paper run not timed: temporary directory: {e}"))
        .ok()?;
    let t = Instant::now();
    let done = shipped_scenarios()
        .map_err(|e| e.to_string())
        .and_then(|scenarios| {
            let protocol = Protocol::paper(1, FormulationName::ALL.to_vec());
            let runs = run_grid(
                &crate::eval::paper::cells(&scenarios, &protocol),
                &protocol,
                dir.path(),
                GridProgress::Lines,
                AgentsAt::Inprocess,
            )
            .map_err(|e| e.to_string())?;
            crate::report::write_paper(
                dir.path(),
                &runs,
                &protocol,
                &scenarios,
                "cavmem bench --paper",
                crate::report::PAPER_TITLE,
            )
            .map_err(|e| e.to_string())
        });
    let elapsed_s = t.elapsed().as_secs_f64();
    done.map_err(|e| eprintln!("bench: paper run failed: {e}")).ok()?;
    Some(elapsed_s)
}

/// Runs every benchmark; `with_paper` adds the full one-seed paper evaluation.
pub fn run_all(with_paper: bool) -> BenchReport {
    let mut rng = Rng::seed_from_u64(3);
    let mut ddpg = Box::new(filled(
        Ddpg::<REPLAY_CAPACITY, BATCH>::new(DdpgParams::default(), 1),
        4096,
    ));
    let ddpg_update_us = measure(100, 1e6, || {
        let _ = black_box(ddpg.learn());
    });
    let mut residual = Box::new(filled(
        Ddpg::<REPLAY_CAPACITY, BATCH>::new_residual(DdpgParams::default(), ResidualParams::default(), 1),
        4096,
    ));
    let residual_update_us = measure(100, 1e6, || {
        let _ = black_box(residual.learn());
    });
    drop(residual);
    let mut td3 = Box::new(filled(
        Td3::<REPLAY_CAPACITY, BATCH>::new(DdpgParams::td3(), 1),
        4096,
    ));
    // Two steps per sample: one with the actor update, one without.
    let td3_update_us = measure(50, 1e6 / 2.0, || {
        let _ = black_box(td3.learn());
        let _ = black_box(td3.learn());
    });
    drop(td3);
    let mut snapshot = vec![0u8; cavmem_core::agent::frozen::ACTOR_SNAPSHOT_BYTES];
    let mut actor = FrozenActor::zeroed();
    if let Ok(n) = ddpg.save_snapshot(&mut snapshot) {
        let _ = actor.load_snapshot(&snapshot[..n]);
    }
    let obs = Observation::random(&mut rng);
    let actor_infer_us = measure(100_000, 1e6, || {
        let _ = black_box(actor.act(black_box(&obs)));
    });
    let int8 = FrozenInt8::from_actor(&actor).unwrap_or(FrozenInt8::zeroed());
    let int8_actor_infer_us = measure(100_000, 1e6, || {
        let _ = black_box(int8.act(black_box(&obs)));
    });
    let mut dqn = Box::new(filled(
        Dqn::<REPLAY_CAPACITY, BATCH>::new(DqnParams::default(), 1),
        4096,
    ));
    let dqn_update_us = measure(200, 1e6, || {
        let _ = black_box(dqn.learn());
    });
    let mut ql = Box::new(QLearning::new(QlParams::default(), 1));
    let t = AgentTransition {
        state: obs,
        bid: 0.25,
        reward: -0.5,
        next_state: Observation::random(&mut rng),
        done: false,
    };
    let ql_update_ns = measure(100_000, 1e9, || {
        let _ = ql.record(black_box(&t));
        let _ = black_box(ql.learn());
    });
    let bid_analyzer_ns_per_vm = [2usize, 64, 1024].map(|n| {
        let config = BidConfig::new(n as u64 * 2 * GIB);
        let start: Vec<u64> = (0..n).map(|k| GIB + (k as u64 % 7) * 64 * MIB).collect();
        let bids: Vec<f32> = (0..n).map(|_| rng.uniform_range(-1.0, 1.0)).collect();
        let mut allocations = start.clone();
        let mut grants = vec![VmGrant::default(); n];
        let calls = (200_000 / n).max(10) as u32;
        let f = measure(calls, 1e9 / n as f64, || {
            allocations.copy_from_slice(&start);
            let _ = black_box(analyze(&config, &mut allocations, black_box(&bids), &mut grants));
        });
        (n, f)
    });
    let env_steps_per_s = env_steps();
    let paper_run_s = if with_paper { time_paper_run() } else { None };
    BenchReport {
        ddpg_update_us,
        residual_update_us,
        td3_update_us,
        actor_infer_us,
        int8_actor_infer_us,
        dqn_update_us,
        ql_update_ns,
        bid_analyzer_ns_per_vm,
        env_steps_per_s,
        paper_run_s,
        machine: machine(),
    }
}

/// Node steps per second of scenario s2 with two learning DDPG agents, one thread.
fn env_steps() -> Figure {
    let Ok(scenarios) = shipped_scenarios() else {
        return Figure {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        };
    };
    let Some(s2) = scenarios.into_iter().nth(1) else {
        return Figure {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        };
    };
    let episodes = 10;
    let steps = f64::from(episodes * s2.node.steps_per_episode);
    let spec = RunSpec {
        scenario: s2,
        policy: cavmem_core::agent::PolicyKind::Ddpg.into(),
        formulation: FormulationName::Raw,
        episodes,
        seed: 0,
        hyper: crate::agents::hyperparams_for_run(100_000),
        learn: true,
        agents_at: crate::agents::AgentsAt::Inprocess,
    };
    let mut samples: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let _ = black_box(crate::eval::run::on_one_thread(|| run(&spec, |_| {})));
            steps / t.elapsed().as_secs_f64()
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    Figure {
        median: samples[2],
        min: samples[0],
        max: samples[4],
    }
}

/// The JSON document: the medians at the top level, as numbers (the Bid Analyzer's as an
/// object keyed by VM count), `paper_run_s` when measured, and the `machine` object.
pub fn to_json(r: &BenchReport) -> serde_json::Value {
    let ba: serde_json::Map<String, serde_json::Value> = r
        .bid_analyzer_ns_per_vm
        .iter()
        .map(|(n, f)| (n.to_string(), serde_json::json!(f.median)))
        .collect();
    let mut doc = serde_json::json!({
        "ddpg_update_us": r.ddpg_update_us.median,
        "residual_update_us": r.residual_update_us.median,
        "td3_update_us": r.td3_update_us.median,
        "actor_infer_us": r.actor_infer_us.median,
        "int8_actor_infer_us": r.int8_actor_infer_us.median,
        "dqn_update_us": r.dqn_update_us.median,
        "ql_update_ns": r.ql_update_ns.median,
        "bid_analyzer_ns_per_vm": ba,
        "env_steps_per_s": r.env_steps_per_s.median,
        "machine": r.machine,
    });
    if let (Some(p), Some(obj)) = (r.paper_run_s, doc.as_object_mut()) {
        obj.insert("paper_run_s".into(), serde_json::json!(p));
    }
    doc
}

/// The human-readable table: median and spread of every figure.
pub fn to_text(r: &BenchReport) -> String {
    let row =
        |name: &str, f: &Figure| format!("{name:<32} {:>12.3}   [{:.3} .. {:.3}]\n", f.median, f.min, f.max);
    let mut out = format!(
        "{:<32} {:>12}   [min .. max of {SAMPLES} samples]\n",
        "figure", "median"
    );
    out += &row("ddpg_update_us", &r.ddpg_update_us);
    out += &row("residual_update_us", &r.residual_update_us);
    out += &row("td3_update_us", &r.td3_update_us);
    out += &row("actor_infer_us", &r.actor_infer_us);
    out += &row("int8_actor_infer_us", &r.int8_actor_infer_us);
    out += &row("dqn_update_us", &r.dqn_update_us);
    out += &row("ql_update_ns", &r.ql_update_ns);
    for (n, f) in &r.bid_analyzer_ns_per_vm {
        out += &row(&format!("bid_analyzer_ns_per_vm ({n} VMs)"), f);
    }
    out += &row("env_steps_per_s", &r.env_steps_per_s);
    if let Some(p) = r.paper_run_s {
        out += &format!("{:<32} {p:>12.1}\n", "paper_run_s");
    }
    out += &format!("machine: {} ({} cores)\n", r.machine.cpu, r.machine.cores);
    out += &format!("kernels: {}\n", r.machine.kernels);
    out
}

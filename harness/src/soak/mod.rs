//! `cavmem soak`: a long simulated run in which the node's measurements go bad at random,
//! VMs vanish mid-step, the node shrinks, and the agents' parameters suffer memory faults.
//! Every step checks that nothing panics, that the Bid Analyzer's invariants hold (memory
//! conserved, every VM at or above the floor, the sum within the capacity), that bids are
//! finite and in range, and that parameters stay finite (a diverged network is re-initialized
//! and counted). The run is split into shards that run in parallel; each finished shard is
//! written atomically, so an interrupted soak resumes where it stopped.

pub mod faults;
pub mod phased_node;
pub mod shard;

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use faults::FaultKind;
pub use shard::{ShardSpec, SoakCounts, SoakPolicy, run_shard};

use crate::agents::derive_seed;
use crate::output::{OutputError, create_dir, write_atomic};

/// What to soak.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SoakSpec {
    /// Agent steps to run in all (VMs × node steps), at least.
    pub agent_steps: u64,
    /// Shards (independent nodes with their own seeds), run in parallel.
    pub shards: u32,
    /// The shards' common settings; `agent_steps` and `seed` are per shard.
    pub shard: ShardSpec,
}

impl SoakSpec {
    /// The spec of shard `k`: its share of the steps and its own seed.
    pub fn shard_spec(&self, k: u32) -> ShardSpec {
        ShardSpec {
            agent_steps: self.agent_steps.div_ceil(u64::from(self.shards.max(1))),
            seed: derive_seed(self.shard.seed, u64::from(k)),
            ..self.shard.clone()
        }
    }
}

/// One finished shard, as written to `DIR/shards/NNN.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ShardResult {
    /// What ran.
    pub spec: ShardSpec,
    /// What happened.
    pub counts: SoakCounts,
    /// Wall time, s.
    pub wall_s: f64,
    /// A panic's message, if the shard panicked (a violation).
    pub panic: Option<String>,
}

/// The whole soak.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SoakReport {
    /// What ran.
    pub spec: SoakSpec,
    /// The shards' counters added up.
    pub counts: SoakCounts,
    /// Shards that panicked.
    pub panics: Vec<String>,
    /// Wall time of the shards run by this invocation, s.
    pub wall_s: f64,
    /// Shards loaded from an earlier, interrupted invocation.
    pub resumed_shards: u32,
}

impl SoakReport {
    /// Whether every invariant held and nothing panicked.
    pub fn passed(&self) -> bool {
        self.counts.violation_count() == 0 && self.panics.is_empty()
    }
}

/// Why a soak could not run or keep its results.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// A shard's result or the report could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A result could not be encoded.
    #[error("encoding a result: {0}")]
    Encode(#[from] serde_json::Error),
    /// The worker threads could not be started.
    #[error("thread pool: {0}")]
    Threads(#[from] rayon::ThreadPoolBuildError),
}

/// Runs (or resumes) the soak, writing each shard to `dir/shards/` and the report to
/// `dir/soak.json`.
///
/// # Errors
/// [`SoakError`]: the file that could not be written, or the thread pool.
pub fn run(
    spec: &SoakSpec,
    dir: &Path,
    threads: usize,
    progress: impl Fn(u32) + Sync,
) -> Result<SoakReport, SoakError> {
    let shard_dir = dir.join("shards");
    create_dir(&shard_dir)?;
    let started = std::time::Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .stack_size(64 << 20)
        .build()?;
    let results: Vec<Result<(ShardResult, bool), SoakError>> = pool.install(|| {
        (0..spec.shards)
            .into_par_iter()
            .map(|k| {
                let shard_spec = spec.shard_spec(k);
                let path = shard_path(&shard_dir, k);
                if let Some(done) = load_shard(&path, &shard_spec) {
                    progress(k);
                    return Ok((done, true));
                }
                let t = std::time::Instant::now();
                let outcome = std::panic::catch_unwind(|| run_shard(&shard_spec));
                let result = match outcome {
                    Ok(counts) => ShardResult {
                        spec: shard_spec,
                        counts,
                        wall_s: t.elapsed().as_secs_f64(),
                        panic: None,
                    },
                    Err(payload) => {
                        let message = payload
                            .downcast_ref::<&str>()
                            .map(ToString::to_string)
                            .or_else(|| payload.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "panic".to_string());
                        ShardResult {
                            spec: shard_spec,
                            counts: SoakCounts::default(),
                            wall_s: t.elapsed().as_secs_f64(),
                            panic: Some(format!("shard {k}: {message}")),
                        }
                    }
                };
                let text = serde_json::to_vec_pretty(&result)?;
                write_atomic(&path, &text)?;
                progress(k);
                Ok((result, false))
            })
            .collect()
    });
    let mut report = SoakReport {
        spec: spec.clone(),
        counts: SoakCounts::default(),
        panics: Vec::new(),
        wall_s: started.elapsed().as_secs_f64(),
        resumed_shards: 0,
    };
    for r in results {
        let (shard, resumed) = r?;
        report.counts.merge(&shard.counts);
        report.panics.extend(shard.panic);
        report.resumed_shards += u32::from(resumed);
    }
    let text = serde_json::to_vec_pretty(&report)?;
    write_atomic(&dir.join("soak.json"), &text)?;
    Ok(report)
}

fn shard_path(dir: &Path, k: u32) -> PathBuf {
    dir.join(format!("{k:03}.json"))
}

/// A finished shard of the same spec, if `path` holds one (anything else is run again).
fn load_shard(path: &Path, spec: &ShardSpec) -> Option<ShardResult> {
    let text = std::fs::read(path).ok()?;
    let done: ShardResult = serde_json::from_slice(&text).ok()?;
    (done.spec == *spec).then_some(done)
}

/// The report as text.
pub fn to_text(r: &SoakReport) -> String {
    let c = &r.counts;
    let mut out = format!(
        "soak: {} agent steps ({} node steps, {} shards{}), {:.1} s\n",
        c.agent_steps,
        c.node_steps,
        r.spec.shards,
        if r.resumed_shards > 0 {
            format!(", {} resumed", r.resumed_shards)
        } else {
            String::new()
        },
        r.wall_s
    );
    out += "faults injected:";
    for (k, v) in &c.injected {
        out += &format!(" {k} {v}");
    }
    out += &format!(
        "\nguards: {} readings held, {} lost ({} bids held at 0); MDP refusals {}\n",
        c.readings_held, c.readings_lost, c.bids_held, c.observations_refused
    );
    out += &format!(
        "node: {} VMs joined, {} evicted, {} bytes reclaimed; {} learning updates\n",
        c.vms_joined, c.vms_evicted, c.reclaimed_bytes, c.updates
    );
    out += &format!(
        "agents: {} fallbacks, {} divergences, {} parameter faults recovered ({} more left with their VM)\n",
        c.fallbacks, c.divergences, c.weight_faults_recovered, c.weight_faults_gone
    );
    if r.passed() {
        out += "invariants: all held (no panic; memory conserved; floors kept; bids and parameters finite)\n";
    } else {
        out += &format!("invariants BROKEN: {:?}; panics: {:?}\n", c.violations, r.panics);
        for e in &c.examples {
            out += &format!("  {e}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_resumes_finished_shards_and_reruns_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let spec = SoakSpec {
            agent_steps: 2_000,
            shards: 2,
            shard: ShardSpec {
                vms: 4,
                agent_steps: 0,
                policy: SoakPolicy::One(cavmem_core::agent::PolicyKind::QLearning),
                seed: 3,
                fault_rate: 0.05,
                faults: FaultKind::ALL.to_vec(),
            },
        };
        let first = run(&spec, dir.path(), 2, |_| {}).unwrap();
        assert!(first.passed(), "{}", to_text(&first));
        assert_eq!(first.resumed_shards, 0);
        assert!(first.counts.agent_steps >= 2_000);
        // Interrupted before shard 1 was written: it runs again, shard 0 is kept.
        std::fs::remove_file(shard_path(&dir.path().join("shards"), 1)).unwrap();
        let second = run(&spec, dir.path(), 2, |_| {}).unwrap();
        assert_eq!(second.resumed_shards, 1);
        assert_eq!(second.counts, first.counts, "the same soak, resumed");
        // A torn or foreign shard file is not trusted.
        std::fs::write(shard_path(&dir.path().join("shards"), 0), b"{\"spec\":").unwrap();
        assert_eq!(run(&spec, dir.path(), 1, |_| {}).unwrap().resumed_shards, 1);
    }
}

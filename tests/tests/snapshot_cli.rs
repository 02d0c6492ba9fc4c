//! `cavmem train --save` then `cavmem run --load --no-learn`, and refused snapshots.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::{Path, PathBuf};

use cavmem_core::agent::PolicyKind;
use cavmem_harness::agents::AgentsAt;
use cavmem_harness::cli::{AgentArgs, Command, RunArgs, RunArgsCore, SelectArgs, execute};
use cavmem_harness::eval::formulation::FormulationName;

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../harness/scenarios/s2.toml")
}

/// `policy` on s2 with the default formulation.
fn run_args(policy: PolicyKind, seed: u64, episodes: u32) -> RunArgs {
    RunArgs {
        core: RunArgsCore {
            scenario: scenario(),
            agent: AgentArgs {
                policy: policy.into(),
                seed,
                formulation: FormulationName::Raw,
                params: None,
            },
        },
        episodes,
        progress: Default::default(),
    }
}

/// `cavmem run --no-learn` (seed 2), from the snapshot `load` or from fresh agents.
fn evaluate(policy: PolicyKind, episodes: u32, load: Option<PathBuf>, out: PathBuf) -> Command {
    Command::Run {
        run: run_args(policy, 2, episodes),
        out,
        load,
        no_learn: true,
        int8: false,
        agents: AgentsAt::Inprocess,
    }
}

/// The `run.json` a run wrote to `out`.
fn run_json(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

#[test]
fn snapshot_train_save_then_run_load_no_learn() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            for policy in [
                PolicyKind::Ddpg,
                PolicyKind::Dqn,
                PolicyKind::QLearning,
                PolicyKind::EqualSplit,
            ] {
                let save = dir.path().join(format!("{}.cavm", policy.name()));
                let train = Command::Train {
                    // Enough for every policy's greedy choices to differ from a fresh
                    // agent's (two episodes left Q-learning's on s2 unchanged).
                    run: run_args(policy, 1, 4),
                    save: save.clone(),
                    out: dir.path().join("train"),
                    select: SelectArgs::default(),
                };
                execute(train).unwrap();
                let run = |load: PathBuf, out: &str| evaluate(policy, 2, Some(load), dir.path().join(out));
                execute(run(save.clone(), "a")).unwrap();
                execute(run(save.clone(), "b")).unwrap();
                // Evaluation without learning from the same snapshot is repeatable.
                let records = |out: &str| {
                    run_json(&dir.path().join(out))["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["avg_miss_rate_pages_per_s"].as_f64().unwrap())
                        .collect::<Vec<_>>()
                };
                assert_eq!(records("a"), records("b"), "{policy:?}");
                // The loaded policy is the one acting: fresh agents with the same seed differ.
                execute(evaluate(policy, 2, None, dir.path().join("fresh"))).unwrap();
                if policy != PolicyKind::EqualSplit {
                    assert_ne!(records("a"), records("fresh"), "{policy:?}: --load had no effect");
                }
                // A truncated snapshot is refused as bad input, naming the file.
                let bytes = std::fs::read(&save).unwrap();
                let cut = dir.path().join("cut.cavm");
                std::fs::write(&cut, &bytes[..bytes.len() - 1]).unwrap();
                let e = execute(run(cut.clone(), "c")).unwrap_err();
                assert!(
                    e.usage && e.message.contains("cut.cavm") && e.message.contains("truncated"),
                    "{}",
                    e.message
                );
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// `--save 'p-{vm}.cavm'` writes every VM's policy; `--load 'p-{vm}.cavm'` gives each VM its
/// own, and a missing file is an error naming the file and the VM.
#[test]
fn snapshot_one_file_per_vm_with_the_vm_placeholder() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let pattern = dir.path().join("ddpg-{vm}.cavm");
            execute(Command::Train {
                run: run_args(PolicyKind::Ddpg, 1, 2),
                save: pattern.clone(),
                out: dir.path().join("train"),
                select: SelectArgs::default(),
            })
            .unwrap();
            let (one, two) = (dir.path().join("ddpg-0.cavm"), dir.path().join("ddpg-1.cavm"));
            let (a, b) = (std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
            assert_ne!(a, b, "the two VMs' agents learned different policies");
            let run =
                |load: PathBuf, out: &str| evaluate(PolicyKind::Ddpg, 1, Some(load), dir.path().join(out));
            execute(run(pattern.clone(), "each")).unwrap();
            // Each VM acted with its own policy: not what VM 0's policy alone does.
            execute(run(one.clone(), "first")).unwrap();
            let trace = |out: &str| run_json(&dir.path().join(out))["trace"].to_string();
            assert_ne!(trace("each"), trace("first"));
            std::fs::remove_file(&two).unwrap();
            let err = execute(run(pattern, "missing")).unwrap_err();
            assert!(err.usage, "a missing snapshot is bad input");
            let err = err.message;
            assert!(err.contains("ddpg-1.cavm") && err.contains("VM 1"), "{err}");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// `--int8` runs a trained DDPG or residual snapshot with its hidden layer in int8: the
/// bids stay near the f32 policy's (DIR/int8.json), the run is repeatable, and a snapshot
/// of another kind, of another policy than `--policy`, or a learning run is refused.
#[test]
fn snapshot_int8_run_measures_its_distance_from_the_f32_policy() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let dir = tempfile::tempdir().unwrap();
            let int8 = |policy: PolicyKind, load: &Path, out: &str, no_learn: bool| Command::Run {
                run: run_args(policy, 2, 3),
                out: dir.path().join(out),
                load: Some(load.to_path_buf()),
                no_learn,
                int8: true,
                agents: AgentsAt::Inprocess,
            };
            for policy in [PolicyKind::Residual, PolicyKind::Ddpg] {
                let save = dir.path().join(format!("{}.cavm", policy.name()));
                execute(Command::Train {
                    run: run_args(policy, 1, 3),
                    save: save.clone(),
                    out: dir.path().join("train"),
                    select: SelectArgs::default(),
                })
                .unwrap();
                let name = policy.name();
                execute(int8(policy, &save, &format!("{name}-a"), true)).unwrap();
                execute(int8(policy, &save, &format!("{name}-b"), true)).unwrap();
                let tolerance: serde_json::Value = serde_json::from_slice(
                    &std::fs::read(dir.path().join(format!("{name}-a/int8.json"))).unwrap(),
                )
                .unwrap();
                // Two VMs, three episodes of 100 steps: every decision compared.
                assert_eq!(tolerance["decisions"], 600, "{name}");
                let max = tolerance["max_abs_bid_diff"].as_f64().unwrap();
                assert!(max < 0.05, "{name}: {max}");
                let trace = |out: String| run_json(&dir.path().join(out))["trace"].to_string();
                assert_eq!(trace(format!("{name}-a")), trace(format!("{name}-b")), "{name}");
            }
            let residual = dir.path().join("residual.cavm");
            let err = execute(int8(PolicyKind::Ddpg, &residual, "mismatch", true)).unwrap_err();
            assert!(
                err.message.contains("residual snapshot") && err.message.contains("VM 0"),
                "{}",
                err.message
            );
            let err = execute(int8(PolicyKind::Residual, &residual, "learning", false)).unwrap_err();
            assert!(err.message.contains("--no-learn"), "{}", err.message);
            let split = dir.path().join("split.cavm");
            execute(Command::Train {
                run: run_args(PolicyKind::EqualSplit, 1, 1),
                save: split.clone(),
                out: dir.path().join("train"),
                select: SelectArgs::default(),
            })
            .unwrap();
            let err = execute(int8(PolicyKind::Ddpg, &split, "split", true)).unwrap_err();
            assert!(err.usage && err.message.contains("split.cavm"), "{}", err.message);
        })
        .unwrap()
        .join()
        .unwrap();
}

//! `cavmem train --save` then `cavmem run --load --no-learn`, and refused snapshots.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::PathBuf;

use cavmem_core::agent::PolicyKind;
use cavmem_harness::backend::AgentsAt;
use cavmem_harness::cli::{Command, RunArgs, RunArgsCore, execute};
use cavmem_harness::eval::formulation::FormulationName;

fn scenario() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../harness/scenarios/s2.toml")
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
                    run: RunArgs {
                        core: RunArgsCore {
                            scenario: scenario(),
                            policy,
                            seed: 1,
                            formulation: FormulationName::Raw,
                        },
                        // Enough for every policy's greedy choices to differ from a
                        // fresh agent's (two episodes left Q-learning's on s2 unchanged).
                        episodes: 4,
                    },
                    save: save.clone(),
                    out: dir.path().join("train"),
                };
                execute(train).unwrap();
                let run = |load: PathBuf, out: &str| Command::Run {
                    run: RunArgs {
                        core: RunArgsCore {
                            scenario: scenario(),
                            policy,
                            seed: 2,
                            formulation: FormulationName::Raw,
                        },
                        episodes: 2,
                    },
                    out: dir.path().join(out),
                    load: Some(load),
                    no_learn: true,
                    agents: AgentsAt::Inprocess,
                };
                execute(run(save.clone(), "a")).unwrap();
                execute(run(save.clone(), "b")).unwrap();
                // Evaluation without learning from the same snapshot is repeatable.
                let records = |out: &str| {
                    let v: serde_json::Value = serde_json::from_slice(
                        &std::fs::read(dir.path().join(out).join("run.json")).unwrap(),
                    )
                    .unwrap();
                    v["records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["avg_miss_rate_pages_per_s"].as_f64().unwrap())
                        .collect::<Vec<_>>()
                };
                assert_eq!(records("a"), records("b"), "{policy:?}");
                // The loaded policy is the one acting: fresh agents with the same seed differ.
                let fresh = Command::Run {
                    run: RunArgs {
                        core: RunArgsCore {
                            scenario: scenario(),
                            policy,
                            seed: 2,
                            formulation: FormulationName::Raw,
                        },
                        episodes: 2,
                    },
                    out: dir.path().join("fresh"),
                    load: None,
                    no_learn: true,
                    agents: AgentsAt::Inprocess,
                };
                execute(fresh).unwrap();
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

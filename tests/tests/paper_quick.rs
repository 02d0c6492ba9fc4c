//! End to end: `cavmem paper --quick` writes every promised file, and a second run resumes.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::Path;

use cavmem_harness::cli::grid::GridArgs;
use cavmem_harness::cli::{PaperArgs, paper};
use cavmem_harness::eval::run_policy::RunPolicy;

fn run_in_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// `cavmem paper --quick --formulation raw --seeds SEEDS --out OUT [--replace]`.
fn quick_raw(out: &Path, seeds: u32, replace: bool) -> Result<(), cavmem_harness::cli::CliError> {
    quick_with(out, seeds, replace, None)
}

/// [`quick_raw`] with `--params FILE`.
fn quick_with(
    out: &Path,
    seeds: u32,
    replace: bool,
    params: Option<&Path>,
) -> Result<(), cavmem_harness::cli::CliError> {
    paper(&PaperArgs {
        grid: GridArgs {
            replace,
            params: params.map(Path::to_path_buf),
            ..GridArgs::default()
        },
        ..PaperArgs::new(out, seeds, true)
    })
}

#[test]
fn paper_quick_runs_end_to_end_and_resumes() {
    run_in_big_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        quick_raw(out, 1, false).unwrap();
        for file in ["summary.json", "episodes.csv", "report.md"] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        let results = summary["results"].as_array().unwrap();
        assert_eq!(
            results.len(),
            3 * RunPolicy::all().filter(|p| p.in_default_grid()).count() * 2,
            "scenario × policy × VM"
        );
        for r in results {
            for key in [
                "scenario",
                "policy",
                "formulation",
                "vm",
                "avg_miss_rate_pages_per_s",
                "miss_rate_deviation_pages_per_s",
                "overhead_s",
            ] {
                assert!(!r[key].is_null(), "{key} missing in {r}");
            }
            assert!(r["avg_miss_rate_pages_per_s"].as_f64().unwrap() >= 0.0);
        }
        let definitions = summary["definitions"].as_object().unwrap();
        for key in results[0].as_object().unwrap().keys() {
            let named =
                ["scenario", "policy", "formulation"].contains(&key.as_str()) || key.ends_with("_ci95");
            assert!(
                named || definitions.contains_key(key),
                "summary.json defines {key}"
            );
        }
        let mut floats = vec![summary["hyperparameters"].clone()];
        while let Some(value) = floats.pop() {
            match value {
                serde_json::Value::Object(map) => floats.extend(map.into_iter().map(|(_, v)| v)),
                serde_json::Value::Number(n) => {
                    assert!(
                        n.to_string().len() <= 10,
                        "a hyperparameter as written, not as f64: {n}"
                    )
                }
                _ => {}
            }
        }
        let policies: std::collections::BTreeSet<_> = results
            .iter()
            .map(|r| r["policy"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            policies.into_iter().collect::<Vec<_>>(),
            [
                "ddpg",
                "dqn",
                "feedback",
                "mom",
                "oracle-minmax",
                "oracle-minsum",
                "ql",
                "residual",
                "static"
            ]
        );
        let csv = std::fs::read_to_string(out.join("episodes.csv")).unwrap();
        assert_eq!(
            csv.lines().count(),
            1 + 3 * RunPolicy::all().filter(|p| p.in_default_grid()).count() * 20 * 2,
            "header + scenario × policy × episode × VM"
        );
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(report.contains("DDPG deviation 82.2% below static"));
        let plots = std::fs::read_dir(out.join("plots")).unwrap().count();
        assert_eq!(plots, 3 * 5);

        // Resume: finished cells are reused, not rerun (their files keep their mtime).
        let cell = out.join("cells").join("s1-ddpg-raw-seed0.json");
        let before = std::fs::metadata(&cell).unwrap().modified().unwrap();
        quick_raw(out, 1, false).unwrap();
        assert_eq!(std::fs::metadata(&cell).unwrap().modified().unwrap(), before);
        // A corrupted cell is rerun, not trusted.
        std::fs::write(&cell, b"{ torn").unwrap();
        quick_raw(out, 1, false).unwrap();
        let text = std::fs::read_to_string(&cell).unwrap();
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
        assert!(Path::new(out).join("summary.json").is_file());
    });
}

/// A run never silently replaces finished results of another protocol: it stops with the
/// file and the difference, and `--replace` discards them.
#[test]
fn paper_refuses_to_replace_results_of_another_protocol() {
    use cavmem_harness::cli::default_paper_dir;
    assert_ne!(
        default_paper_dir(true),
        default_paper_dir(false),
        "quick runs have their own directory"
    );
    run_in_big_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let quick = |seeds: u32, replace: bool| quick_raw(out, seeds, replace);
        quick(1, false).unwrap();
        // The same cell as a full run (1000 episodes) would have written it.
        let cell = out.join("cells").join("s2-dqn-raw-seed0.json");
        let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&cell).unwrap()).unwrap();
        file["episodes"] = 1000.into();
        let full = serde_json::to_vec(&file).unwrap();
        std::fs::write(&cell, &full).unwrap();
        let err = quick(1, false).unwrap_err();
        assert!(err.usage, "bad input, exit status 2: {}", err.message);
        for part in [
            "cells/s2-dqn-raw-seed0.json",
            "1000 episodes, this run 20",
            "--replace",
        ] {
            assert!(err.message.contains(part), "{part} in {}", err.message);
        }
        assert_eq!(std::fs::read(&cell).unwrap(), full, "left as it was");
        // With --replace the cell is run again under this protocol.
        quick(1, true).unwrap();
        let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&cell).unwrap()).unwrap();
        assert_eq!(file["episodes"], 20);
        // Another seed count would replace the one-seed summary.
        let summary = std::fs::read(out.join("summary.json")).unwrap();
        let err = quick(2, false).unwrap_err();
        assert!(
            err.message.contains("summary.json is of another protocol"),
            "{}",
            err.message
        );
        assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary);
        // Other hyperparameters would replace the cells: stopped, named.
        let params = out.join("p.toml");
        std::fs::write(&params, "[ddpg]\nactor_lr = 0.0003\n").unwrap();
        let err = quick_with(out, 1, false, Some(&params)).unwrap_err();
        assert!(
            err.message.contains("other hyperparameters (--params)"),
            "{}",
            err.message
        );
        assert_eq!(std::fs::read(out.join("summary.json")).unwrap(), summary);
    });
}

/// `--params` reaches the grid: the printed defaults reuse every finished cell (the same
/// bits), other values run in their own directory and are recorded in summary.json.
#[test]
fn paper_params_are_recorded_and_the_defaults_reuse_the_cells() {
    run_in_big_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("defaults");
        quick_raw(&out, 1, false).unwrap();
        let defaults = dir.path().join("defaults.toml");
        std::fs::write(&defaults, cavmem_harness::params::AgentParams::defaults_toml()).unwrap();
        let cell = out.join("cells").join("s1-ddpg-raw-seed0.json");
        let before = std::fs::metadata(&cell).unwrap().modified().unwrap();
        quick_with(&out, 1, false, Some(&defaults)).unwrap();
        assert_eq!(
            std::fs::metadata(&cell).unwrap().modified().unwrap(),
            before,
            "reused"
        );

        let tuned = dir.path().join("tuned.toml");
        std::fs::write(&tuned, "[ddpg]\nactor_lr = 0.0003\n[feedback]\ngain = 0.25\n").unwrap();
        let other = dir.path().join("tuned");
        quick_with(&other, 1, false, Some(&tuned)).unwrap();
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(other.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["protocol"]["params"]["ddpg"]["actor_lr"], 0.0003);
        assert_eq!(summary["hyperparameters"]["ddpg"]["actor_lr"], 0.0003);
        assert_eq!(summary["hyperparameters"]["feedback"]["gain"], 0.25);
        let report = std::fs::read_to_string(other.join("report.md")).unwrap();
        assert!(report.contains("--params"), "the report's command names the file");
    });
}

/// `cavmem paper --quick --seeds 2 --formulation raw` in four shards, each in its own
/// directory, then merged with `--from`: the same cells, summary and CSV as the run in one
/// process (timings aside), and a merge with a shard missing names what is missing.
#[test]
fn paper_sharded_and_merged_equals_one_process() {
    run_in_big_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let single = dir.path().join("single");
        quick_raw(&single, 2, false).unwrap();
        let shards: Vec<std::path::PathBuf> = (0..4).map(|i| dir.path().join(format!("shard{i}"))).collect();
        for (i, out) in shards.iter().enumerate() {
            let grid = GridArgs {
                shard: Some(format!("{i}/4").parse().unwrap()),
                ..GridArgs::default()
            };
            paper(&PaperArgs {
                grid,
                ..PaperArgs::new(out, 2, true)
            })
            .unwrap();
            assert!(!out.join("summary.json").exists(), "a shard writes no summary");
        }
        let merged = dir.path().join("merged");
        let merge = |from: &[std::path::PathBuf]| {
            paper(&PaperArgs {
                grid: GridArgs {
                    from: from.to_vec(),
                    ..GridArgs::default()
                },
                ..PaperArgs::new(&merged, 2, true)
            })
        };
        let err = merge(&shards[..3]).unwrap_err();
        assert!(err.message.contains("are not finished in"), "{}", err.message);
        merge(&shards).unwrap();
        let cells = |d: &Path| -> Vec<(String, cavmem_harness::eval::run::RunResult)> {
            let mut names: Vec<_> = std::fs::read_dir(d.join("cells"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
                .into_iter()
                .map(|n| {
                    let file: cavmem_harness::eval::paper::CellFile =
                        serde_json::from_slice(&std::fs::read(d.join("cells").join(&n)).unwrap()).unwrap();
                    (n, cavmem_tests::strip_timing(file.result))
                })
                .collect()
        };
        assert_eq!(cells(&merged), cells(&single));
        let results = |d: &Path| -> serde_json::Value {
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(d.join("summary.json")).unwrap()).unwrap();
            for r in v["results"].as_array_mut().unwrap() {
                let r = r.as_object_mut().unwrap();
                r.retain(|k, _| !k.starts_with("overhead_s"));
                r["per_seed"].as_object_mut().unwrap().remove("overhead_s");
            }
            v["results"].take()
        };
        assert_eq!(results(&merged), results(&single));
        let csv = |d: &Path| -> Vec<String> {
            let text = std::fs::read_to_string(d.join("episodes.csv")).unwrap();
            let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
            let overhead = header.iter().position(|c| *c == "overhead_s").unwrap();
            text.lines()
                .map(|l| {
                    let mut cols: Vec<&str> = l.split(',').collect();
                    cols.remove(overhead);
                    cols.join(",")
                })
                .collect()
        };
        assert_eq!(csv(&merged), csv(&single));
    });
}

/// `--policy` runs only the deciders named: their cells, a summary and report of them.
#[test]
fn paper_runs_only_the_policies_named() {
    run_in_big_stack(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let policies =
            ["ddpg", "static"].map(|n| cavmem_harness::eval::run_policy::RunPolicy::from_name(n).unwrap());
        paper(&PaperArgs {
            grid: GridArgs {
                policies: policies.to_vec(),
                ..GridArgs::default()
            },
            ..PaperArgs::new(out, 1, true)
        })
        .unwrap();
        let cells = std::fs::read_dir(out.join("cells")).unwrap().count();
        assert_eq!(cells, 3 * 2, "3 scenarios x 2 policies");
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(
            summary["protocol"]["policies"],
            serde_json::json!(["ddpg", "static"])
        );
        assert!(out.join("report.md").is_file());
    });
}

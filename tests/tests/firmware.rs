//! In-process agents and `cavmem-fw` processes give bit-identical trajectories.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cavmem_core::agent::PolicyKind;
use cavmem_harness::backend::AgentsAt;
use cavmem_harness::eval::formulation::FormulationName;
use cavmem_harness::eval::paper::shipped_scenarios;
use cavmem_harness::eval::run::{Hyperparams, RunResult, RunSpec, firmware_agents, make_agents, run_agents};

/// Builds `cavmem-fw` with the toolchain running this test, in a target directory of its
/// own (so it does not wait on the one `cargo test` holds), and returns its path.
fn build_firmware() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target").join("fw-test");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--profile",
            "firmware",
            "-p",
            "cavmem-firmware-sim",
            "--features",
            "fw",
            "--bin",
            "cavmem-fw",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "building cavmem-fw failed");
    target.join("firmware").join("cavmem-fw")
}

fn strip_timing(mut r: RunResult) -> RunResult {
    r.wall_s = 0.0;
    for rec in &mut r.records {
        rec.overhead_s = 0.0;
    }
    r
}

#[test]
fn firmware_trajectories_equal_in_process() {
    let fw = build_firmware();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let scenario = shipped_scenarios().unwrap().remove(1);
            for policy in PolicyKind::ALL {
                let spec = RunSpec {
                    scenario: scenario.clone(),
                    policy,
                    formulation: FormulationName::Raw,
                    episodes: 1,
                    seed: 11,
                    hyper: Hyperparams::for_run(100),
                    learn: true,
                    agents_at: AgentsAt::Inprocess,
                };
                let mut local = make_agents(&spec).unwrap();
                let mut remote = firmware_agents(&spec, &fw).unwrap();
                let a = strip_timing(run_agents(&spec, &mut local, |_| {}).unwrap());
                let b = strip_timing(run_agents(&spec, &mut remote, |_| {}).unwrap());
                assert_eq!(a, b, "{policy:?}: firmware and in-process runs differ");
                assert!(a.records.iter().any(|r| r.avg_miss_rate_pages_per_s > 0.0));
                // One episode: the trace holds every step's allocations and miss rates.
                assert_eq!(a.trace.len(), 100);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

//! Failure drills: results written to a full disk, and runs that are the same bits in every
//! build (debug, optimized test build, release with LTO) and in process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cavmem_core::agent::PolicyKind;
use cavmem_harness::backend::AgentsAt;
use cavmem_harness::cli::paper;
use cavmem_harness::eval::formulation::FormulationName;
use cavmem_harness::eval::paper::shipped_scenarios;
use cavmem_harness::eval::run::{Hyperparams, RunResult, RunSpec, run};
use cavmem_tests::strip_timing;

fn in_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn drill_full_disk_keeps_every_written_file_and_the_run_resumes() {
    let scratch = tempfile::tempdir().unwrap();
    let first = scratch.path().join("first");
    let out = first.clone();
    in_big_stack(move || paper(&out, 1, vec![FormulationName::Raw], true, AgentsAt::Inprocess).unwrap());
    let written = tree(&first);
    let bytes: u64 = written.values().map(|v| v.len() as u64).sum();

    // The same results on a small file system, which is then filled to the last byte.
    let mount = scratch.path().join("disk");
    let Some(_disk) = Tmpfs::mount(&mount, bytes + (2 << 20)) else {
        assert!(
            std::env::var_os("CAVMEM_REQUIRE_ALL_TESTS").is_none(),
            "drill_full_disk cannot mount a tmpfs here"
        );
        println!("drill_full_disk: SKIPPED — mounting a tmpfs needs root (CI runs as root)");
        return;
    };
    let out = mount.join("results");
    for (rel, data) in &written {
        let path = out.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
    }
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }

    // The run resumes every cell, then cannot write its report: a clear error naming the
    // file, and nothing already written is changed or left half-written.
    let again = out.clone();
    let err = in_big_stack(move || paper(&again, 1, vec![FormulationName::Raw], true, AgentsAt::Inprocess))
        .expect_err("a full disk is an error");
    assert!(!err.usage, "a failure, not bad input");
    assert!(
        err.message.contains(&out.display().to_string()) && err.message.contains("No space left on device"),
        "the error names the file and the cause: {}",
        err.message
    );
    assert_eq!(
        tree(&out),
        written,
        "every file as it was, no temporary file left"
    );

    // With space again, the same command finishes and gives the same results.
    std::fs::remove_file(&filler).unwrap();
    let again = out.clone();
    in_big_stack(move || paper(&again, 1, vec![FormulationName::Raw], true, AgentsAt::Inprocess).unwrap());
    let cells = |t: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<PathBuf> {
        t.keys().filter(|p| p.starts_with("cells")).cloned().collect()
    };
    let resumed = tree(&out);
    assert_eq!(cells(&resumed), cells(&written));
    for cell in cells(&written) {
        assert_eq!(resumed[&cell], written[&cell], "{} kept", cell.display());
    }
    assert!(resumed.contains_key(Path::new("summary.json")));
}

/// Builds `cavmem` with `profile` in the workspace's target directory; returns its path.
fn build_cavmem(profile: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--profile",
            profile,
            "-p",
            "cavmem-harness",
            "--bin",
            "cavmem",
        ])
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "building cavmem ({profile}) failed");
    let dir = if profile == "dev" { "debug" } else { profile };
    root.join("target").join(dir).join("cavmem")
}

#[test]
fn determinism_debug_release_and_in_process_runs_are_identical() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binaries = [build_cavmem("dev"), build_cavmem("release")];
    let dir = tempfile::tempdir().unwrap();
    for policy in [
        PolicyKind::Ddpg,
        PolicyKind::Dqn,
        PolicyKind::QLearning,
        PolicyKind::EqualSplit,
    ] {
        let (episodes, seed) = (2, 9);
        let spec = RunSpec {
            scenario: shipped_scenarios().unwrap().remove(0),
            policy,
            formulation: FormulationName::Raw,
            episodes,
            seed,
            hyper: Hyperparams::for_run(u64::from(episodes) * 100),
            learn: true,
            agents_at: AgentsAt::Inprocess,
        };
        let here = strip_timing(in_big_stack(move || run(&spec, |_| {}).unwrap()));
        for (k, cavmem) in binaries.iter().enumerate() {
            let out = dir.path().join(format!("{}-{k}", policy.name()));
            let status = Command::new(cavmem)
                .arg("run")
                .arg(root.join("harness/scenarios/s1.toml"))
                .args([
                    "--policy",
                    policy.name(),
                    "--episodes",
                    "2",
                    "--seed",
                    "9",
                    "--out",
                ])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            let theirs: RunResult =
                serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
            assert_eq!(
                strip_timing(theirs),
                here,
                "{}: {} differs from the in-process run",
                policy.name(),
                cavmem.display()
            );
        }
    }
}

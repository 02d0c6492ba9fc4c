//! Cross-crate tests for CAVMem live in `tests/tests/`. This library holds the checks that
//! the fuzz targets (`fuzz/`, nightly, cargo-fuzz) run on arbitrary input, so the stable
//! test suite can replay the fuzz corpora and every crash reproducer through the same code
//! (`tests/tests/fuzz_corpus.rs`), and the real guests of the QMP tests (`guest`, with the
//! kernel-module load order of `kmod`).

pub mod fuzz_checks;
pub mod guest;
pub mod kmod;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cavmem_harness::eval::run::RunResult;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's target directory as cargo resolves it (`CARGO_TARGET_DIR`,
/// `build.target-dir`, else `<workspace>/target`), from `cargo metadata`.
///
/// # Errors
/// `cargo metadata` failing, or its output without `target_directory`.
pub fn target_dir() -> Result<PathBuf, String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo metadata: {e}"))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata gave no target_directory".to_string())
}

/// Runs `cargo build <args>` in the workspace (with the cargo running the tests) and returns
/// the path of the executable `bin` it built, as cargo reports it (wherever the target
/// directory is).
///
/// # Errors
/// The build failing (its messages go to stderr), or no executable `bin` among its
/// artifacts.
pub fn cargo_build_executable(args: &[&str], bin: &str) -> Result<PathBuf, String> {
    let out = Command::new(env!("CARGO"))
        .arg("build")
        .args(args)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo build {}: {e}", args.join(" ")))?;
    if !out.status.success() {
        return Err(format!("cargo build {} failed ({})", args.join(" "), out.status));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo build {} built no executable {bin}", args.join(" ")))
}

/// `r` without its timings (wall time, per-episode overhead), which differ between runs that
/// are otherwise identical bit for bit.
pub fn strip_timing(mut r: RunResult) -> RunResult {
    r.wall_s = 0.0;
    for rec in &mut r.records {
        rec.overhead_s = 0.0;
    }
    r
}

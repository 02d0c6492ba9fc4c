//! Cross-crate tests for CAVMem live in `tests/tests/`. This library holds the checks that
//! the fuzz targets (`fuzz/`, nightly, cargo-fuzz) run on arbitrary input, so the stable
//! test suite can replay the fuzz corpora and every crash reproducer through the same code
//! (`tests/tests/fuzz_corpus.rs`), and the real guests of the QMP tests (`guest`, with the
//! kernel-module load order of `kmod`).

pub mod fuzz_checks;
pub mod guest;
pub mod kmod;

use cavmem_harness::eval::run::RunResult;

/// `r` without its timings (wall time, per-episode overhead), which differ between runs that
/// are otherwise identical bit for bit.
pub fn strip_timing(mut r: RunResult) -> RunResult {
    r.wall_s = 0.0;
    for rec in &mut r.records {
        rec.overhead_s = 0.0;
    }
    r
}

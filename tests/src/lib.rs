//! Cross-crate tests for CAVMem live in `tests/tests/`. This library holds the checks that
//! the fuzz targets (`fuzz/`, nightly, cargo-fuzz) run on arbitrary input, so the stable
//! test suite can replay the fuzz corpora and every crash reproducer through the same code
//! (`tests/tests/fuzz_corpus.rs`).

pub mod fuzz_checks;

#![no_main]
//! Fuzz target: see `cavmem_tests::fuzz_checks::snapshot_bytes`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cavmem_tests::fuzz_checks::snapshot_bytes(data));

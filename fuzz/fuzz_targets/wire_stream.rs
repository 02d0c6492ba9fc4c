#![no_main]
//! Fuzz target: see `cavmem_tests::fuzz_checks::wire_stream`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cavmem_tests::fuzz_checks::wire_stream(data));

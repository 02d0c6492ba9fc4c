#![no_main]
//! Fuzz target: see `cavmem_tests::fuzz_checks::sensors_and_bids`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cavmem_tests::fuzz_checks::sensors_and_bids(data));

#![no_main]
//! Fuzz target: see `cavmem_tests::fuzz_checks::c_abi`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| cavmem_tests::fuzz_checks::c_abi(data));

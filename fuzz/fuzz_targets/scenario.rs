#![no_main]
//! Fuzz target: see `cavmem_tests::fuzz_checks::scenario_text`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        cavmem_tests::fuzz_checks::scenario_text(text);
    }
});

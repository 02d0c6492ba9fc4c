//! Replays the fuzz corpora and crash reproducers (`fuzz/corpus/<target>/`,
//! `fuzz/artifacts/<target>/`) through the same checks the fuzz targets run, on stable.

#![allow(clippy::unwrap_used, reason = "a test: a failed unwrap is a failed test")]

use std::path::Path;

use cavmem_tests::fuzz_checks;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("artifacts").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_file() {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

#[test]
fn fuzz_corpora_replay() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let mut total = 0;
            for data in inputs("wire_stream") {
                fuzz_checks::wire_stream(&data);
                total += 1;
            }
            for data in inputs("snapshot") {
                fuzz_checks::snapshot_bytes(&data);
                total += 1;
            }
            for data in inputs("scenario") {
                if let Ok(text) = std::str::from_utf8(&data) {
                    fuzz_checks::scenario_text(text);
                }
                total += 1;
            }
            for data in inputs("sensors_and_bids") {
                fuzz_checks::sensors_and_bids(&data);
                total += 1;
            }
            for data in inputs("c_abi") {
                fuzz_checks::c_abi(&data);
                total += 1;
            }
            // Seeds written by hand, so the checks run even before a campaign.
            fuzz_checks::wire_stream(&[0xC5, 0xA7, 1, 0x01, 0, 0, 0, 0, 0, 0]);
            fuzz_checks::snapshot_bytes(b"CAVM");
            fuzz_checks::scenario_text("name = 1");
            fuzz_checks::sensors_and_bids(&[0xff; 256]);
            fuzz_checks::c_abi(&[
                0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ]);
            println!("replayed {total} fuzz inputs");
        })
        .unwrap()
        .join()
        .unwrap();
}

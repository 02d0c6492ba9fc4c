//! Prints the self-test digest of this build's arithmetic: `cargo run -p cavmem-core
//! --example selftest` builds the core alone, without the `fma` feature (the unfused
//! arithmetic of the Cortex-M4F images, which CI compares with this); add
//! `--features fma` for the fused one.

use std::process::ExitCode;

fn main() -> ExitCode {
    // The agent and the script's frames are large for a main thread's default stack.
    let run = std::thread::Builder::new().stack_size(16 << 20).spawn(|| {
        let mut agent = Box::new(cavmem_core::selftest::selftest_agent());
        cavmem_core::selftest::run_selftest(&mut agent)
    });
    match run.map(std::thread::JoinHandle::join) {
        Ok(Ok(digest)) => {
            println!("cavmem selftest digest {digest:016x}");
            ExitCode::SUCCESS
        }
        Ok(Err(_)) => {
            eprintln!("selftest: the self-test thread panicked");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("selftest: cannot start a thread for the self-test: {e}");
            ExitCode::FAILURE
        }
    }
}

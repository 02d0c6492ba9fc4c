//! `cavmem`: the CAVMem research harness command line. Parsing only; the commands live in
//! `cavmem_harness::cli`.

use std::process::ExitCode;

use cavmem_harness::cli::{Cli, execute};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // CAVMEM_KERNELS (auto, generic, avx512) chooses the network kernels; results are the
    // same bits on every path.
    if let Err(e) = cavmem_simd::select_from_env() {
        eprintln!("cavmem: {e}");
        return ExitCode::from(2);
    }
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cavmem: {}", e.message);
            ExitCode::from(if e.usage { 2 } else { 1 })
        }
    }
}

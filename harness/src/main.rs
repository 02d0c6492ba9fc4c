//! `cavmem`: the CAVMem research harness command line. Parsing only; the commands live in
//! `cavmem_harness::cli`.

use std::process::ExitCode;

use cavmem_harness::cli::{Cli, execute};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cavmem: {}", e.message);
            ExitCode::from(if e.usage { 2 } else { 1 })
        }
    }
}

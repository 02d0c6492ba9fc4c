//! `cavmem`: the CAVMem research harness command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// CAVMem: per-VM learning agents that balance a virtualized node's RAM.
#[derive(Debug, Parser)]
#[command(name = "cavmem", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The paper's evaluation (Table 2 scenarios × DDPG, DQN, Q-learning, static).
    ///
    /// Not implemented yet: this command prints the protocol it will run and exits with
    /// status 2, so nobody mistakes it for results.
    Paper {
        /// A short version for smoke runs.
        #[arg(long)]
        quick: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Paper { quick } => {
            println!(
                "cavmem paper{}: not implemented yet; nothing was run.",
                if quick { " --quick" } else { "" }
            );
            println!("It will run: scenarios s1 (perlbench+perlbench), s2 (perlbench+gcc), s3 (gcc+bzip2)");
            println!("  x policies ddpg, dqn, ql, static x 1000 episodes x 100 steps x 3 seeds,");
            println!("  and write results/paper/{{summary.json, episodes.csv, report.md, *.svg}}.");
            ExitCode::from(2)
        }
    }
}

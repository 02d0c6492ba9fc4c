//! What `paper` and `suite` share: running a grid of cells with resume, one shard of it
//! (`--shard`), or merging cells written elsewhere (`--from`).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::{CliError, say_on_signal};
use crate::agents::AgentsAt;
use crate::eval::paper::{GridProgress, Protocol, cells, check_replaces_nothing, run_grid};
use crate::eval::run::RunResult;
use crate::eval::run_policy::RunPolicy;
use crate::eval::shard::{ShardArg, gather};
use crate::scenario::Scenario;

/// The flags `paper` and `suite` share: where agents run, hyperparameters, replacing
/// results, `--shard` and `--from`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GridArgs {
    /// Where the agents run: in this process, or one `cavmem-fw` process per VM.
    #[arg(long, value_enum, default_value_t = AgentsAt::Inprocess)]
    pub agents: AgentsAt,
    /// Replace finished results of another protocol in DIR (other episodes, seeds,
    /// formulations, scenario files, hyperparameters or harness version); without it
    /// such a run stops.
    #[arg(long)]
    pub replace: bool,
    /// Agent hyperparameters from a TOML file (`cavmem params` prints the defaults).
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Only these deciders (comma-separated or repeated; default: every one but `td3` and
    /// the late limits, `oracle-minmax-late` and `oracle-minsum-late`). Headroom needs `static`
    /// and the limits (`oracle-minsum`, `oracle-minmax`) among them.
    #[arg(long = "policy", value_parser = super::POLICY_PARSER, value_delimiter = ',')]
    pub policies: Vec<RunPolicy>,
    /// Run only slice I of N of the grid (I counted from 0: cells I, I+N, I+2N, … in the
    /// grid's fixed order), or `auto`: I and N from a Slurm job array
    /// (SLURM_ARRAY_TASK_ID/_MIN/_COUNT) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX
    /// and CAVMEM_SHARD_COUNT). Writes the slice's cells into DIR/cells/, no summary.
    #[arg(long, conflicts_with = "from")]
    pub shard: Option<ShardArg>,
    /// Run nothing: build the summary, report and figures from the finished cells in
    /// these directories (shards' outputs; repeat the flag or list several), copying them
    /// into DIR/cells/. Every cell of the grid must be there.
    #[arg(long, num_args = 1..)]
    pub from: Vec<PathBuf>,
}

impl GridArgs {
    /// ` --policy a,b,…` when deciders were chosen, for the report's command line; empty
    /// for the default grid.
    pub fn policy_flag(&self) -> String {
        if self.policies.is_empty() {
            String::new()
        } else {
            format!(" --policy {}", self.policy_names().join(","))
        }
    }

    /// The names of the deciders to run: those given, or the default grid's.
    pub fn policy_names(&self) -> Vec<String> {
        if self.policies.is_empty() {
            crate::eval::paper::all_policy_names()
        } else {
            self.policies.iter().map(|p| p.name().to_string()).collect()
        }
    }
}

/// A grid to run: its scenarios and protocol, and where results go.
#[derive(Debug)]
pub struct Grid<'a> {
    /// The scenarios.
    pub scenarios: &'a [Scenario],
    /// The protocol.
    pub protocol: &'a Protocol,
    /// The output directory.
    pub out: &'a Path,
}

/// Runs the grid, a shard of it, or merges it, as `args` say. Returns the whole grid's
/// results (for the summary and report), or `None` after a shard, which writes only cells.
///
/// # Errors
/// [`CliError`]: a bad `--shard auto` environment, results it would replace, missing cells
/// in a merge, or a failed run.
pub fn run_or_merge(grid: &Grid<'_>, args: &GridArgs) -> Result<Option<Vec<RunResult>>, CliError> {
    let all = cells(grid.scenarios, grid.protocol);
    if !args.replace && !args.from.is_empty() {
        check_replaces_nothing(grid.out, &all, grid.protocol).map_err(CliError::input)?;
    }
    if !args.from.is_empty() {
        println!(
            "merging {} cells from {} director(y/ies)",
            all.len(),
            args.from.len()
        );
        let runs = gather(&args.from, &all, grid.protocol, grid.out).map_err(CliError::input)?;
        return Ok(Some(runs));
    }
    let shard = args
        .shard
        .map(ShardArg::resolve)
        .transpose()
        .map_err(CliError::input)?;
    let cells = match shard {
        Some(s) => s.select(all),
        None => all,
    };
    if !args.replace {
        check_replaces_nothing(grid.out, &cells, grid.protocol).map_err(CliError::input)?;
    }
    say_on_signal(&format!(
        "finished runs are kept in {}; the same command resumes",
        grid.out.join("cells").display()
    ));
    let progress = if std::io::stderr().is_terminal() {
        GridProgress::Bar
    } else {
        GridProgress::Lines
    };
    let runs = run_grid(&cells, grid.protocol, grid.out, progress, args.agents).map_err(CliError::failure)?;
    match shard {
        Some(s) => {
            println!(
                "shard {s}: {} cells in {}; when every shard is done, merge with --from (the directories of all shards)",
                runs.len(),
                grid.out.join("cells").display()
            );
            Ok(None)
        }
        None => Ok(Some(runs)),
    }
}

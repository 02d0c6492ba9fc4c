//! The `cavmem` commands, as library functions so tests can run them end to end.
//! `main.rs` only parses arguments (clap) and maps errors to exit codes.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::agents::{AgentsAt, SimAgent};
use crate::eval::formulation::FormulationName;
use crate::eval::paper::{Protocol, shipped_scenarios};
use crate::eval::run::{RunSpec, make_agents, run_agents};
use crate::eval::run_policy::RunPolicy;
use crate::output::{create_dir, write_atomic};
use crate::params::AgentParams;
use crate::progress::Progress;
use crate::report::{self, Aggregate};
use crate::scenario::Scenario;
use crate::sim::workload::Benchmark;
use grid::{Grid, GridArgs};
use jsonl::ProgressFormat;

pub mod grid;
pub mod int8;
pub mod jsonl;
pub mod randomized;
pub mod realnode;
pub mod selection;
pub mod suite;

/// CAVMem: per-VM learning agents that balance a virtualized node's RAM.
///
/// Each VM's agent bids for memory every step; a Bid Analyzer turns the bids into
/// allocations. `cavmem paper` reproduces the paper's evaluation on the built-in simulator.
#[derive(Debug, Parser)]
#[command(name = "cavmem", version, disable_help_subcommand = true)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Which agents: policy, seed, formulation and hyperparameters (`run`, `train`, `live`,
/// `train-randomized`).
#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// Policy of every VM (default `residual`, the shipped agent: docs/agents.md);
    /// `oracle-minmax` and `oracle-minsum` are the simulator's one-step limit, `-late` after
    /// them the same one step late (no agents; `cavmem run` only).
    #[arg(long, value_parser = POLICY_PARSER, default_value = "residual")]
    pub policy: RunPolicy,
    /// Seed: places the workloads and seeds the agents.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// MDP formulation: `raw` (default) or the paper's literal `paper`.
    #[arg(long, value_enum, default_value_t = FormulationName::Raw)]
    pub formulation: FormulationName,
    /// Agent hyperparameters from a TOML file (`cavmem params` prints the defaults).
    #[arg(long)]
    pub params: Option<PathBuf>,
}

/// What `run`, `train` and `live` share: which scenario, and [`AgentArgs`].
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgsCore {
    /// Scenario file (TOML), e.g. harness/scenarios/s1.toml.
    pub scenario: PathBuf,
    /// Policy, seed, formulation, hyperparameters.
    #[command(flatten)]
    pub agent: AgentArgs,
}

/// What `run` and `train` share: [`RunArgsCore`] and the run's length.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Scenario, policy, seed, formulation.
    #[command(flatten)]
    pub core: RunArgsCore,
    /// Episodes (of the scenario's steps_per_episode steps).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub episodes: u32,
    /// `human` (a bar, then the metrics as text) or `jsonl`: one JSON object per finished
    /// episode on stdout and a final `done` one with the metrics (the text goes to stderr).
    #[arg(long, value_enum, default_value_t = ProgressFormat::Human)]
    pub progress: ProgressFormat,
}

/// `cavmem train`'s multi-seed selection (docs/agents.md, "Choosing among seeds").
#[derive(Debug, Clone, clap::Args)]
pub struct SelectArgs {
    /// Train K candidates, seeds `--seed` to `--seed`+K−1, and save the one whose policy does
    /// best on `--validate`'s scenarios (1: train one seed, as without this flag).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub seeds: u64,
    /// Validation scenarios: files, or directories of `*.toml` files. Each candidate's policy
    /// (VM 0's, in every VM) runs there without learning, seed 0; needed with `--seeds`
    /// above 1. The suite's validation-only scenarios (docs/suite.md) are refused.
    #[arg(long, num_args = 1..)]
    pub validate: Vec<PathBuf>,
    /// Episodes of each validation run (its miss rate is taken over all of them).
    #[arg(long, default_value_t = SelectArgs::VALIDATE_EPISODES, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub validate_episodes: u32,
}

impl SelectArgs {
    /// `--validate-episodes`' default.
    pub const VALIDATE_EPISODES: u32 = 20;
}

/// One seed, no validation: plain `cavmem train`.
impl Default for SelectArgs {
    fn default() -> Self {
        Self {
            seeds: 1,
            validate: Vec::new(),
            validate_episodes: Self::VALIDATE_EPISODES,
        }
    }
}

/// What `paper` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct PaperArgs {
    /// Output directory [default: results/paper, with --quick results/paper-quick].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Number of seeds (0..K).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub seeds: u32,
    /// Formulations to evaluate (repeat the flag for several; default: both).
    #[arg(long, value_enum)]
    pub formulation: Vec<FormulationName>,
    /// A short version for smoke runs: 20 episodes, metrics over the last 5.
    #[arg(long)]
    pub quick: bool,
    /// Agents, hyperparameters, replacing, shards and merges.
    #[command(flatten)]
    pub grid: GridArgs,
}

impl PaperArgs {
    /// `seeds` seeds of the raw formulation, `quick` or not, into `out`, defaults otherwise.
    pub fn new(out: &Path, seeds: u32, quick: bool) -> Self {
        Self {
            out: Some(out.to_path_buf()),
            seeds,
            formulation: vec![FormulationName::Raw],
            quick,
            grid: GridArgs::default(),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one policy on one scenario and write its episodes.
    ///
    /// Writes DIR/run.json (every episode and the last episode's trace) and
    /// DIR/episodes.csv, and prints the metrics over the last 100 episodes.
    Run {
        /// Scenario, policy, episodes, seed, formulation.
        #[command(flatten)]
        run: RunArgs,
        /// Output directory.
        #[arg(long, default_value = "results/run")]
        out: PathBuf,
        /// Start every VM's agent from this policy snapshot (from `cavmem train --save`);
        /// with `{vm}` in the path, VM n loads its own file (`{vm}` → n, counted from 0).
        #[arg(long)]
        load: Option<PathBuf>,
        /// Evaluate only: no learning and no exploration.
        #[arg(long)]
        no_learn: bool,
        /// With --load and --no-learn: act with the actor's hidden layer in int8 (a DDPG,
        /// TD3 or residual snapshot); also measures each bid's distance from the f32
        /// policy's and writes it to DIR/int8.json.
        #[arg(long)]
        int8: bool,
        /// Where the agents run: in this process, or one `cavmem-fw` process per VM.
        #[arg(long, value_enum, default_value_t = AgentsAt::Inprocess)]
        agents: AgentsAt,
    },
    /// Train one policy on one scenario and save VM 0's trained policy as a snapshot.
    ///
    /// The snapshot (docs/snapshot.md) holds what acting needs; `cavmem run --load` starts
    /// every VM's agent from it. With `{vm}` in the path (`--save 'policy-{vm}.cavm'`),
    /// every VM's policy is saved, VM n's to the path with `{vm}` → n (from 0), and `--load` with
    /// the same pattern gives each VM its own. Also writes what `run` writes.
    Train {
        /// Scenario, policy, episodes, seed, formulation.
        #[command(flatten)]
        run: RunArgs,
        /// Where to write the snapshot, e.g. policy.cavm (VM 0's), or policy-{vm}.cavm (every VM's).
        #[arg(long)]
        save: PathBuf,
        /// Output directory for the run's episodes (with `--seeds`/`--validate`: every
        /// candidate's snapshot, seed-N.cavm, and selection.json).
        #[arg(long, default_value = "results/train")]
        out: PathBuf,
        /// Candidates chosen on validation scenarios.
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Train one policy on many randomized nodes and save it as one snapshot for any node.
    ///
    /// Draws `--nodes` nodes (VM counts, memory, workloads, copies, arrivals, noise, and
    /// some at the live node's scale running the stand-ins) and trains a pool of agents on
    /// each in turn, `--episodes-per-node` episodes each: slot n is VM n of every node and
    /// keeps what it learned. Saves slot 0's policy (on every node) to `--save`; `cavmem run
    /// --load` starts every VM of any node from it. Writes every node drawn and
    /// training.json to `--out`. docs/agents.md, "Training on randomized nodes".
    TrainRandomized(crate::cli::randomized::RandomizedArgs),
    /// Measure what the agent costs: update and inference latency, Bid Analyzer, node steps.
    ///
    /// Prints the median and spread of each figure; `--json FILE` also writes the medians.
    Bench {
        /// Write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also time the full one-seed paper evaluation (minutes), from scratch in a temporary directory.
        #[arg(long)]
        paper: bool,
    },
    /// What an agent costs in a foreign host: ELF sizes of cavmem-fw and of the Cortex-M4
    /// image, cavmem-fw's stack high-water mark per policy, and instructions per act and per
    /// learn (callgrind; needs valgrind).
    Footprint {
        /// Write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Skip the callgrind counts (they take a minute).
        #[arg(long)]
        no_callgrind: bool,
    },
    /// Print this help, or a command's (`cavmem help paper` = `cavmem paper --help`).
    Help {
        /// The command to describe.
        command: Option<String>,
    },
    /// Run the core's self-test script and print its digest (the Cortex-M4 image prints the
    /// same one: firmware-sim/cortex-m4).
    Selftest {
        /// Also write the trained self-test agent's actor snapshot here (the inference-only
        /// Cortex-M4 image embeds it).
        #[arg(long)]
        save_actor: Option<PathBuf>,
    },
    /// Write a scenario of N VMs: a seeded mix of perlbench, gcc and bzip2, 3 GiB of node
    /// memory per VM, and a fraction of the VMs arriving late or leaving early in every
    /// episode (`arrive`/`leave`).
    Generate {
        /// VMs.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
        vms: u64,
        /// Seed of the mix.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Fraction of the VMs that arrive late or leave early.
        #[arg(long, default_value = "0.25", value_parser = parse_probability)]
        churn: f64,
        /// The scenario file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Per-VM cost of one node step (simulator, MDP, DDPG acting and learning on every VM,
    /// Bid Analyzer) as the node grows: generated nodes of each size, one thread.
    Scale {
        /// Node sizes, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2,8,64,256,1024", value_parser = clap::value_parser!(u64).range(1..=4096))]
        vms: Vec<u64>,
        /// Timed episodes of 100 steps per size (after one warm-up episode).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        episodes: u32,
        /// Write the figures as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// A long simulated run with faults injected — bad sensor readings (NaN, ±∞, negative,
    /// stuck, zeros, spikes), VMs vanishing mid-step, a shrinking node, memory faults in the
    /// agents' parameters — checking every invariant at every step.
    ///
    /// Writes DIR/soak.json and DIR/shards/ (running the same command again resumes); exits
    /// with status 1 if an invariant broke.
    Soak(SoakArgs),
    /// Measure the stand-in workloads on this machine's memory cgroups (root): each alone,
    /// without a limit (its footprint) and at limits of 100/80/60/40% of it, counting major
    /// faults and user CPU time. Writes the calibration the simulator's default curves use
    /// and a report of simulated vs measured miss rates (OUT with .md).
    Calibrate {
        /// Workloads, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "perlbench,gcc,bzip2", value_parser = parse_benchmark)]
        workloads: Vec<Benchmark>,
        /// Limits in percent of the footprint, comma-separated, measured in this order.
        #[arg(long, value_delimiter = ',', default_value = "100,80,60,40", value_parser = clap::value_parser!(u32).range(5..=200))]
        levels: Vec<u32>,
        /// Measurement window at each limit.
        #[arg(long, default_value = "20 s", value_parser = realnode::parse_duration)]
        window: std::time::Duration,
        /// Wait after each limit change before measuring.
        #[arg(long, default_value = "5 s", value_parser = realnode::parse_duration)]
        settle: std::time::Duration,
        /// Scale of the stand-ins' sizes (1 = their defaults).
        #[arg(long, default_value = "1.0", value_parser = parse_scale)]
        size_scale: f64,
        /// The calibration file to write (workloads not measured now are kept from it).
        #[arg(long, default_value = "harness/data/calibration/standins.toml")]
        out: PathBuf,
        /// Swap for the run.
        #[command(flatten)]
        swap: realnode::SwapArgs,
    },
    /// Measure the VMs of a live scenario together on this machine's memory cgroups (root),
    /// for a simulated twin of that node: all without a limit (footprints, CPU rates), then
    /// one VM at a time at each level while the others run without a limit. A VM with
    /// `curve = "node"` in a scenario whose `[node] calibration` names the file is that twin
    /// (docs/real-node.md).
    CalibrateNode(realnode::CalibrateNodeArgs),
    /// Run the agents against a real node. By default each VM is a memory cgroup running
    /// copies of its workload's stand-in program, its allocation the cgroup's limit, its miss
    /// rate the major faults per second of its processes (root; docs/real-node.md); with
    /// `--backend qmp` each VM is a QEMU process driven through its virtio balloon
    /// (docs/live.md). Writes what `run` writes.
    Live(realnode::LiveArgs),
    /// Evaluate every policy and the one-step limit over a scenario suite.
    ///
    /// Runs each scenario of the directory (default: harness/scenarios/suite, docs/suite.md)
    /// with every policy, oracle-minmax and oracle-minsum for seeds 0..K, the raw
    /// formulation, and writes what `paper` writes (summary.json, episodes.csv, report.md
    /// with the headroom taken, figures). Finished runs are kept in DIR/cells and reused.
    Suite(suite::SuiteArgs),
    /// The paper's evaluation: scenarios s1–s3 × every policy (ddpg, dqn, ql, static, feedback, mom, residual; td3 when asked for) × 1000 episodes.
    ///
    /// Runs every cell for K seeds and each formulation in parallel, writes
    /// DIR/summary.json, DIR/episodes.csv, DIR/report.md and DIR/plots/*.svg. Finished
    /// runs are kept in DIR/cells/; running the same command again resumes. `--shard`
    /// runs a slice of the cells (on another machine), `--from` merges them.
    Paper(PaperArgs),
    /// Two runs of one node side by side, VM by VM: demand, allocation and miss rate of
    /// each (means over their episodes), as a Markdown table on stdout; e.g. a `live` run and
    /// a `run` of its simulated twin (docs/real-node.md).
    Compare {
        /// The first run: its output directory, or its run.json.
        first: PathBuf,
        /// The second run, likewise.
        second: PathBuf,
        /// How the table names the two runs.
        #[arg(long, num_args = 2, value_names = ["FIRST", "SECOND"], default_values = ["first", "second"])]
        labels: Vec<String>,
        /// Only each run's last N episodes.
        #[arg(long, value_name = "N")]
        last: Option<u32>,
    },
    /// Print the agents' default hyperparameters as a params file (for `--params`).
    ///
    /// Every key of docs/agents.md with its default and, as a comment, the range
    /// `--params` accepts.
    Params {
        /// Write the file here instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Makes Ctrl-C (or SIGTERM, SIGHUP) say what an interruption leaves behind before the
/// process exits with status 130.
fn say_on_signal(leaves: &str) {
    if let Err(e) = crate::interrupt::exit_on_signal(leaves) {
        eprintln!("cavmem: {e}");
    }
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{text:?} is not a probability in [0, 1]")),
    }
}

fn parse_benchmark(name: &str) -> Result<Benchmark, String> {
    Benchmark::from_name(name).ok_or_else(|| format!("{name:?} is not one of: perlbench, gcc, bzip2"))
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if (0.01..=16.0).contains(&x) => Ok(x),
        _ => Err(format!("{text:?} is not a scale in [0.01, 16]")),
    }
}

/// Parses one of a closed set of names into its value; `--help` and errors list the names.
#[derive(Clone, Copy, Debug)]
struct NameParser<T: 'static> {
    choices: fn() -> Vec<(&'static str, T)>,
}

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for NameParser<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let choices = (self.choices)();
        let names = clap::builder::PossibleValuesParser::new(choices.iter().map(|(name, _)| *name));
        let name = names.parse_ref(cmd, arg, value)?;
        choices
            .into_iter()
            .find_map(|(n, v)| (n == name).then_some(v))
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            (self.choices)()
                .into_iter()
                .map(|(name, _)| clap::builder::PossibleValue::new(name)),
        ))
    }
}

/// `--policy`: [`RunPolicy::all`]'s names.
const POLICY_PARSER: NameParser<RunPolicy> = NameParser {
    choices: || RunPolicy::all().map(|p| (p.name(), p)).collect(),
};

/// `cavmem soak --policy`: `mix` or a policy's name.
const SOAK_POLICY_PARSER: NameParser<crate::soak::SoakPolicy> = NameParser {
    choices: || crate::soak::SoakPolicy::all().map(|p| (p.name(), p)).collect(),
};

/// `cavmem help [COMMAND]`: the program's long help, or the command's.
fn print_help(command: Option<&str>) -> Result<(), CliError> {
    let mut cli = <Cli as clap::CommandFactory>::command();
    let help = match command {
        None => cli.render_long_help(),
        Some(name) => cli
            .find_subcommand_mut(name)
            .ok_or_else(|| CliError::input(format!("{name:?} is no command; `cavmem help` lists them")))?
            .render_long_help(),
    };
    print!("{help}");
    Ok(())
}

/// A command's failure: its message, and whether it was the user's input (exit 2) or not (1).
#[derive(Debug)]
pub struct CliError {
    /// What went wrong, naming the file or argument.
    pub message: String,
    /// Bad input (exit status 2) rather than a failure while running (1).
    pub usage: bool,
}

impl CliError {
    fn input(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            usage: true,
        }
    }
    fn failure(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            usage: false,
        }
    }
}

/// `cavmem soak`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct SoakArgs {
    /// Agent steps in all (VMs × node steps).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub steps: u64,
    /// VM slots per node.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub vms: u64,
    /// Policies on the node.
    #[arg(long, value_parser = SOAK_POLICY_PARSER, default_value = "mix")]
    pub policy: crate::soak::SoakPolicy,
    /// Faults to inject, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<crate::soak::FaultKind>,
    /// Probability per VM and step that its sensor goes bad; VMs vanish, the node
    /// shrinks and parameters are hit at a tenth of it.
    #[arg(long, default_value = "0.01", value_parser = parse_probability)]
    pub fault_rate: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Independent nodes (each with its share of the steps and its own seed); the unit
    /// of parallelism and of resuming.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub shards: u32,
    /// Output directory.
    #[arg(long, default_value = "results/soak")]
    pub out: PathBuf,
}

impl SoakArgs {
    /// The soak these flags ask for (every fault kind when none is named).
    fn spec(&self) -> crate::soak::SoakSpec {
        let faults = if self.faults.is_empty() {
            crate::soak::FaultKind::ALL.to_vec()
        } else {
            self.faults.clone()
        };
        crate::soak::SoakSpec {
            agent_steps: self.steps,
            shards: self.shards,
            shard: crate::soak::ShardSpec {
                vms: self.vms as usize,
                agent_steps: 0,
                policy: self.policy,
                seed: self.seed,
                fault_rate: self.fault_rate,
                faults,
            },
        }
    }
}

/// Runs a parsed command.
///
/// # Errors
/// [`CliError`] with a message that names what is wrong.
pub fn execute(command: Command) -> Result<(), CliError> {
    match command {
        Command::Run {
            run,
            out,
            load,
            no_learn,
            int8,
            agents,
        } => run_command(&run, &out, load.as_deref(), no_learn, int8, agents),
        Command::Train {
            run,
            save,
            out,
            select,
        } => train_command(&run, &save, &out, &select),
        Command::TrainRandomized(args) => {
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            crate::cli::randomized::train_randomized(&args, command)
        }
        Command::Footprint { json, no_callgrind } => footprint(json.as_deref(), no_callgrind),
        Command::Generate {
            vms,
            seed,
            churn,
            out,
        } => generate(vms, seed, churn, &out),
        Command::Scale { vms, episodes, json } => scale(&vms, episodes, json.as_deref()),
        Command::Soak(args) => soak(&args.spec(), &args.out),
        Command::Help { command } => print_help(command.as_deref()),
        Command::Selftest { save_actor } => selftest(save_actor.as_deref()),
        Command::Bench { json, paper } => {
            let report = crate::bench::run_all(paper);
            print!("{}", crate::bench::to_text(&report));
            write_json(json.as_deref(), &crate::bench::to_json(&report))
        }
        Command::Calibrate {
            workloads,
            levels,
            window,
            settle,
            size_scale,
            out,
            swap,
        } => {
            let spec = crate::calibrate::CalibrateSpec {
                benchmarks: workloads,
                levels_percent: levels,
                window,
                settle,
                size_scale,
            };
            realnode::calibrate(&spec, &out, &swap, &calibrate_command_line(&spec))
        }
        Command::CalibrateNode(args) => realnode::calibrate_node(&args),
        Command::Live(args) => realnode::live(&args),
        Command::Suite(args) => suite::suite(&args),
        Command::Params { out } => params_command(out.as_deref()),
        Command::Paper(args) => paper(&args),
        Command::Compare {
            first,
            second,
            labels,
            last,
        } => compare_command(&first, &second, &labels, last),
    }
}

/// `cavmem run`: one policy on one scenario; with `--load`, every VM's agent from a
/// snapshot; with `--int8`, the int8 path measured against the f32 policy.
fn run_command(
    run: &RunArgs,
    out: &Path,
    load: Option<&Path>,
    no_learn: bool,
    int8: bool,
    agents: AgentsAt,
) -> Result<(), CliError> {
    let spec = run_spec(run, !no_learn, agents)?;
    if int8 {
        let path = load.ok_or_else(|| CliError::input("--int8 needs --load FILE"))?;
        return int8::run_int8(&spec, path, out, run.progress);
    }
    let mut agents = make_agents(&spec).map_err(CliError::input)?;
    if let Some(path) = load {
        spec.policy.agents_for("--load").map_err(CliError::input)?;
        load_all(&mut agents, path)?;
    }
    run_one(&spec, &mut agents, out, run.progress)
}

/// `cavmem train`: one seed, or the best of `--seeds K` on `--validate` scenarios.
fn train_command(run: &RunArgs, save: &Path, out: &Path, select: &SelectArgs) -> Result<(), CliError> {
    if !select.validate.is_empty() {
        crate::cli::selection::train_selected(run, select, save, out)
    } else if select.seeds > 1 {
        Err(CliError::input(
            "--seeds above 1 needs --validate: the candidates are compared on its scenarios",
        ))
    } else {
        train(run, save, out)
    }
}

/// `cavmem generate`: writes a generated scenario of `vms` VMs.
fn generate(vms: u64, seed: u64, churn: f64, out: &Path) -> Result<(), CliError> {
    let text = crate::scale::generate(vms as usize, seed, churn);
    write_atomic(out, text.as_bytes()).map_err(CliError::failure)?;
    println!("wrote {} ({vms} VMs)", out.display());
    Ok(())
}

/// `cavmem params`: the default hyperparameters as a params file, to `out` or stdout.
fn params_command(out: Option<&Path>) -> Result<(), CliError> {
    let text = AgentParams::defaults_toml();
    match out {
        Some(path) => {
            write_atomic(path, text.as_bytes()).map_err(CliError::failure)?;
            println!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// `cavmem compare`: two runs of one node side by side, as a Markdown table.
fn compare_command(
    first: &Path,
    second: &Path,
    labels: &[String],
    last: Option<u32>,
) -> Result<(), CliError> {
    use crate::report::compare;
    let (path_a, a) = compare::read_run(first).map_err(CliError::input)?;
    let (path_b, b) = compare::read_run(second).map_err(CliError::input)?;
    let name = |i: usize| labels.get(i).map_or("", String::as_str);
    let table =
        compare::table((&path_a, &a), (&path_b, &b), [name(0), name(1)], last).map_err(CliError::input)?;
    print!("{table}");
    Ok(())
}

/// Writes `value` as pretty JSON to `path`, atomically, when a path is given.
fn write_json(path: Option<&Path>, value: &impl serde::Serialize) -> Result<(), CliError> {
    let Some(path) = path else {
        return Ok(());
    };
    let text = serde_json::to_vec_pretty(value).map_err(CliError::failure)?;
    write_atomic(path, &text).map_err(CliError::failure)
}

/// `cavmem train`: runs the scenario with learning, then saves VM 0's policy (every VM's
/// with [`VM_PLACEHOLDER`] in `save`).
fn train(run: &RunArgs, save: &Path, out: &Path) -> Result<(), CliError> {
    let policy = run
        .core
        .agent
        .policy
        .agents_for("cavmem train")
        .map_err(CliError::input)?;
    let spec = run_spec(run, true, AgentsAt::Inprocess)?;
    let mut agents = make_agents(&spec).map_err(CliError::failure)?;
    run_one(&spec, &mut agents, out, run.progress)?;
    if agents.is_empty() {
        return Err(CliError::failure("the scenario has no VM"));
    }
    let each = save.to_string_lossy().contains(VM_PLACEHOLDER);
    let mut bytes = vec![0u8; SNAPSHOT_BUFFER_BYTES];
    for (index, agent) in agents
        .iter_mut()
        .enumerate()
        .take(if each { usize::MAX } else { 1 })
    {
        let file = snapshot_path_for_vm(save, index);
        let n = agent.save_snapshot(&mut bytes).map_err(CliError::failure)?;
        write_atomic(&file, bytes.get(..n).unwrap_or_default()).map_err(CliError::failure)?;
        say(
            run.progress,
            &format!(
                "saved {}'s {} policy to {} ({n} bytes)",
                crate::scenario::vm_label(index),
                policy.name(),
                file.display()
            ),
        );
    }
    Ok(())
}

/// `cavmem footprint`: cavmem-fw and the two Cortex-M4 images, as built.
fn footprint(json: Option<&Path>, no_callgrind: bool) -> Result<(), CliError> {
    let fw = crate::agents::firmware::locate().map_err(CliError::failure)?;
    let m4 = Path::new("firmware-sim/cortex-m4/target/thumbv7em-none-eabihf/release/cavmem-m4");
    let m4_inference =
        Path::new("firmware-sim/cortex-m4-infer/target/thumbv7em-none-eabihf/release/cavmem-m4-infer");
    for image in [fw.as_path(), m4, m4_inference] {
        if let Some(warning) = crate::footprint::staleness_warning(image) {
            eprintln!("{warning}");
        }
    }
    let f = crate::footprint::measure(&fw, Some(m4), Some(m4_inference), !no_callgrind)
        .map_err(CliError::failure)?;
    print!("{}", crate::footprint::to_text(&f));
    write_json(json, &f)
}

/// `cavmem scale`: the run loop's cost per VM and step at each node size.
fn scale(vms: &[u64], episodes: u32, json: Option<&Path>) -> Result<(), CliError> {
    let sizes: Vec<usize> = vms.iter().map(|v| *v as usize).collect();
    say_on_signal("nothing was written");
    let bar = Progress::new(sizes.len() as u64, "node sizes");
    let points = crate::scale::measure(&sizes, episodes, |_| bar.inc(1)).map_err(CliError::failure)?;
    bar.finish();
    print!("{}", crate::scale::to_text(&points));
    write_json(json, &points)
}

/// `cavmem soak`: its shards on every core, resumable in `out`; fails when an invariant broke.
fn soak(spec: &crate::soak::SoakSpec, out: &Path) -> Result<(), CliError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    say_on_signal(&format!(
        "finished shards are kept in {}; the same command resumes",
        out.join("shards").display()
    ));
    let bar = Progress::new(u64::from(spec.shards), "shards");
    let report = crate::soak::run(spec, out, threads, |_| bar.inc(1)).map_err(CliError::failure)?;
    bar.finish();
    print!("{}", crate::soak::to_text(&report));
    println!("wrote {}", out.join("soak.json").display());
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::failure("the soak broke invariants (see above)"))
    }
}

/// `cavmem selftest`: the self-test digest; the trained actor's snapshot to `save_actor`.
fn selftest(save_actor: Option<&Path>) -> Result<(), CliError> {
    let mut agent = Box::new(cavmem_core::selftest::selftest_agent());
    let digest = cavmem_core::selftest::run_selftest(&mut agent);
    println!("cavmem selftest digest {digest:016x}");
    if let Some(path) = save_actor {
        let mut bytes = vec![0u8; cavmem_core::agent::frozen::ACTOR_SNAPSHOT_BYTES];
        let n = agent.save_snapshot(&mut bytes).map_err(CliError::failure)?;
        write_atomic(path, bytes.get(..n).unwrap_or_default()).map_err(CliError::failure)?;
    }
    Ok(())
}

/// The command line that reproduces a calibration, for its report.
fn calibrate_command_line(spec: &crate::calibrate::CalibrateSpec) -> String {
    format!(
        "cavmem calibrate --workloads {} --levels {} --window '{} s' --settle '{} s' --size-scale {}",
        spec.benchmarks
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(","),
        spec.levels_percent
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
        spec.window.as_secs_f64(),
        spec.settle.as_secs_f64(),
        spec.size_scale,
    )
}

/// Room for the largest snapshot (the Q-table's).
const SNAPSHOT_BUFFER_BYTES: usize = cavmem_core::agent::QLearning::SNAPSHOT_BYTES;

/// The placeholder in a snapshot path that stands for the VM's number (1, 2, …): with it,
/// `train --save` writes one snapshot per VM and `--load` gives each VM its own.
pub const VM_PLACEHOLDER: &str = "{vm}";

/// The snapshot path of VM `index` (0-based, [`crate::scenario::vm_label`]): `path` with
/// [`VM_PLACEHOLDER`] replaced by `index`, or `path` itself when it has no placeholder
/// (every VM shares it).
pub fn snapshot_path_for_vm(path: &Path, index: usize) -> PathBuf {
    let text = path.to_string_lossy();
    if text.contains(VM_PLACEHOLDER) {
        PathBuf::from(text.replace(VM_PLACEHOLDER, &index.to_string()))
    } else {
        path.to_path_buf()
    }
}

/// Loads the policy snapshot at `path` into every agent (each VM's own with [`VM_PLACEHOLDER`]).
fn load_all(agents: &mut [Box<dyn SimAgent>], path: &Path) -> Result<(), CliError> {
    let mut each = agents.iter_mut();
    for_each_snapshot(path, each.len(), |bytes| match each.next() {
        Some(agent) => agent.load_snapshot(bytes).map_err(|e| e.to_string()),
        None => Ok(()),
    })
}

/// Reads the snapshot of each of `vms` VMs at `path` (each VM's own with
/// [`VM_PLACEHOLDER`]) and hands its bytes to `use_it`, in VM order; an error names the
/// file and the VM.
fn for_each_snapshot(
    path: &Path,
    vms: usize,
    mut use_it: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<(), CliError> {
    for index in 0..vms {
        let file = snapshot_path_for_vm(path, index);
        let named = |e: &dyn std::fmt::Display| {
            CliError::input(format!(
                "{} ({}): {e}",
                file.display(),
                crate::scenario::vm_label(index)
            ))
        };
        let bytes = std::fs::read(&file).map_err(|e| named(&e))?;
        use_it(&bytes).map_err(|e| named(&e))?;
    }
    Ok(())
}

/// The hyperparameters of `--params FILE` (the defaults without it).
///
/// # Errors
/// [`CliError`] naming the file and key of a bad value, or when `cavmem-fw` agents (which
/// take only the ε schedule over the wire) would be given other values.
pub fn load_params(path: Option<&Path>, agents: AgentsAt) -> Result<AgentParams, CliError> {
    let Some(path) = path else {
        return Ok(AgentParams::default());
    };
    let params = AgentParams::load(path).map_err(CliError::input)?;
    if agents == AgentsAt::Firmware && params != AgentParams::default() {
        return Err(CliError::input(format!(
            "{}: cavmem-fw agents use the default hyperparameters (the wire protocol's Configure carries only the ε schedule); run with --agents inprocess",
            path.display()
        )));
    }
    Ok(params)
}

fn run_spec(args: &RunArgs, learn: bool, agents_at: AgentsAt) -> Result<RunSpec, CliError> {
    let params = load_params(args.core.agent.params.as_deref(), agents_at)?;
    let scenario = Scenario::load(&args.core.scenario).map_err(CliError::input)?;
    let total = u64::from(args.episodes) * u64::from(scenario.node.steps_per_episode);
    Ok(RunSpec {
        scenario,
        policy: args.core.agent.policy,
        formulation: args.core.agent.formulation,
        episodes: args.episodes,
        seed: args.core.agent.seed,
        hyper: params.hyperparams(total),
        learn,
        agents_at,
    })
}

/// A line of text for the user: on stdout, or on stderr when stdout carries JSON lines.
fn say(format: ProgressFormat, line: &str) {
    match format {
        ProgressFormat::Human => println!("{line}"),
        ProgressFormat::Jsonl => eprintln!("{line}"),
    }
}

fn run_one(
    spec: &RunSpec,
    agents: &mut [Box<dyn SimAgent>],
    out: &Path,
    format: ProgressFormat,
) -> Result<(), CliError> {
    create_dir(out).map_err(CliError::failure)?;
    say_on_signal("nothing was written");
    let result = match format {
        ProgressFormat::Human => {
            let bar = Progress::new(u64::from(spec.episodes), "episodes");
            let result = run_agents(spec, agents, |_| bar.inc(1));
            bar.finish();
            result
        }
        ProgressFormat::Jsonl => run_agents(spec, agents, |done| {
            jsonl::emit(&jsonl::episode_line(&done));
        }),
    };
    let result = result.map_err(CliError::failure)?;
    write_run(spec, &result, out, format)
}

/// Writes a run's outputs (DIR/run.json, DIR/episodes.csv) and prints its metrics over the
/// last 100 episodes (as text, and as the `done` line with `--progress jsonl`).
fn write_run(
    spec: &RunSpec,
    result: &crate::eval::run::RunResult,
    out: &Path,
    format: ProgressFormat,
) -> Result<(), CliError> {
    create_dir(out).map_err(CliError::failure)?;
    let (episodes, policy, formulation) = (result.episodes, spec.policy, spec.formulation);
    let mut json = serde_json::to_value(result).map_err(CliError::failure)?;
    if let Some(fields) = json.as_object_mut() {
        fields.insert(
            "hyperparameters".into(),
            report::json::hyperparameters(&spec.hyper),
        );
    }
    let json = serde_json::to_vec(&json).map_err(CliError::failure)?;
    write_atomic(&out.join("run.json"), &json).map_err(CliError::failure)?;
    report::csv::write(out, std::slice::from_ref(result)).map_err(CliError::failure)?;
    let window = episodes.clamp(1, 100);
    let agg = Aggregate::new(std::slice::from_ref(result), window);
    for cell in agg.cells.values() {
        for (vm, v) in cell.per_vm.iter().enumerate() {
            say(
                format,
                &format!(
                    "{}: miss rate {:.0} pages/s, deviation {:.0} pages/s, allocation {:.2} GiB, overhead {:.3} s, at floor {:.0}% (last {window} episodes)",
                    crate::scenario::vm_label(vm),
                    v.miss.mean,
                    v.deviation.mean,
                    v.allocation.mean / (1u64 << 30) as f64,
                    v.overhead.mean,
                    v.at_floor.mean * 100.0
                ),
            );
        }
    }
    say(
        format,
        &format!(
            "{} {} on {}: {:.1} s; wrote {}",
            policy.name(),
            formulation,
            spec.scenario.name,
            result.wall_s,
            out.display()
        ),
    );
    if format == ProgressFormat::Jsonl {
        jsonl::emit(&jsonl::done_line(&agg, episodes, out));
    }
    Ok(())
}

/// `paper`'s output directory when `--out` is not given: the full and the quick protocol
/// each have their own, so a smoke run never touches the full run's results.
pub fn default_paper_dir(quick: bool) -> &'static str {
    if quick {
        "results/paper-quick"
    } else {
        "results/paper"
    }
}

/// The `paper` command. Finished cells of the same protocol in `out` are reused; results of
/// another protocol there stop the run unless `replace`.
///
/// # Errors
/// [`CliError`]: results of another protocol in `out` (usage), a result that cannot be
/// written or a run that fails.
pub fn paper(args: &PaperArgs) -> Result<(), CliError> {
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_paper_dir(args.quick)));
    let formulations = if args.formulation.is_empty() {
        FormulationName::ALL.to_vec()
    } else {
        args.formulation.clone()
    };
    let scenarios = shipped_scenarios().map_err(CliError::failure)?;
    let protocol = Protocol {
        params: load_params(args.grid.params.as_deref(), args.grid.agents)?,
        policies: args.grid.policy_names(),
        ..if args.quick {
            Protocol::quick(args.seeds, formulations)
        } else {
            Protocol::paper(args.seeds, formulations)
        }
    };
    println!(
        "cavmem paper: {} scenarios x {} policies x {} formulation(s) x {} seed(s), {} episodes each -> {}",
        scenarios.len(),
        protocol.policies.len(),
        protocol.formulations.len(),
        protocol.seeds,
        protocol.episodes,
        out.display()
    );
    let grid = Grid {
        scenarios: &scenarios,
        protocol: &protocol,
        out: &out,
    };
    let Some(runs) = grid::run_or_merge(&grid, &args.grid)? else {
        return Ok(());
    };
    let command = command_line(args.seeds, &protocol, args.quick, &out)
        + &args.grid.policy_flag()
        + &params_flag(args.grid.params.as_deref());
    let plots = report::write_paper(&out, &runs, &protocol, &scenarios, &command, report::PAPER_TITLE)
        .map_err(CliError::failure)?;
    println!(
        "wrote {0}/summary.json, {0}/episodes.csv, {0}/report.md and {plots} plots in {0}/plots/",
        out.display()
    );
    Ok(())
}

/// ` --params FILE` for a run given one, else nothing.
pub fn params_flag(params_file: Option<&Path>) -> String {
    params_file.map_or_else(String::new, |p| format!(" --params {}", p.display()))
}

fn command_line(seeds: u32, protocol: &Protocol, quick: bool, out: &Path) -> String {
    let mut c = format!("cavmem paper --seeds {seeds} --out {}", out.display());
    if protocol.formulations.len() < FormulationName::ALL.len() {
        for f in &protocol.formulations {
            c.push_str(&format!(" --formulation {f}"));
        }
    }
    if quick {
        c.push_str(" --quick");
    }
    c
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, Parser as _};

    use super::*;

    #[test]
    fn cli_short_and_long_help_open_with_the_same_sentence() {
        let short = Cli::command().render_help().to_string();
        let long = Cli::command().render_long_help().to_string();
        // Clap drops the summary's closing period in the short form.
        let first = |text: &str| text.lines().next().map(|l| l.trim_end_matches('.').to_string());
        assert_eq!(first(&short), first(&long));
        assert!(short.starts_with("CAVMem: per-VM learning agents"), "{short}");
    }

    #[test]
    fn cli_policy_help_lists_every_policy() {
        let mut cli = Cli::command();
        for command in ["run", "train", "live"] {
            let help = cli
                .find_subcommand_mut(command)
                .unwrap()
                .render_long_help()
                .to_string();
            let names: Vec<&str> = RunPolicy::all().map(RunPolicy::name).collect();
            assert!(
                help.contains(&format!("[possible values: {}]", names.join(", "))),
                "{command}: {help}"
            );
        }
        for policy in RunPolicy::all() {
            let cli = Cli::try_parse_from(["cavmem", "run", "s.toml", "--policy", policy.name()]).unwrap();
            let Command::Run { run, .. } = cli.command else {
                panic!("not run")
            };
            assert_eq!(run.core.agent.policy, policy);
        }
        let Command::Run { run, .. } = Cli::try_parse_from(["cavmem", "run", "s.toml"]).unwrap().command
        else {
            panic!("not run")
        };
        assert_eq!(
            run.core.agent.policy.name(),
            "residual",
            "the shipped default agent (docs/agents.md)"
        );
        let err = Cli::try_parse_from(["cavmem", "run", "s.toml", "--policy", "sac"]).unwrap_err();
        assert!(
            err.to_string().contains(
                "possible values: ddpg, dqn, ql, static, feedback, mom, residual, td3, oracle-minmax, oracle-minsum, oracle-minmax-late, oracle-minsum-late"
            ),
            "{err}"
        );
    }

    #[test]
    fn cli_help_command_has_help_and_names_unknown_commands() {
        let err = Cli::try_parse_from(["cavmem", "help", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(print_help(Some("paper")).is_ok());
        let err = print_help(Some("papr")).unwrap_err();
        assert!(
            err.usage && err.message.contains("\"papr\" is no command"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cli_paper_shard_and_from_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["cavmem", "paper"], args].concat());
        let Command::Paper(a) = parse(&["--shard", "1/4"]).unwrap().command else {
            panic!("not paper")
        };
        let shard = crate::eval::shard::Shard::new(1, 4).unwrap();
        assert_eq!(a.grid.shard, Some(crate::eval::shard::ShardArg::Fixed(shard)));
        let Command::Paper(a) = parse(&["--from", "a", "b"]).unwrap().command else {
            panic!("not paper")
        };
        assert_eq!(a.grid.from, [PathBuf::from("a"), PathBuf::from("b")]);
        for bad in [
            &["--shard", "4/4"][..],
            &["--shard", "x"],
            &["--shard", "0/2", "--from", "a"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    /// The report's command line names the deciders when they were chosen, and the
    /// default grid leaves the late limits and TD3 out.
    #[test]
    fn cli_paper_policies_default_to_the_grid_and_are_named_when_chosen() {
        let parse = |args: &[&str]| Cli::try_parse_from([&["cavmem", "paper"], args].concat());
        let Command::Paper(a) = parse(&["--policy", "static,oracle-minsum-late"]).unwrap().command else {
            panic!("not paper")
        };
        assert_eq!(a.grid.policy_flag(), " --policy static,oracle-minsum-late");
        let Command::Paper(a) = parse(&[]).unwrap().command else {
            panic!("not paper")
        };
        assert_eq!(a.grid.policy_flag(), "");
        let names = a.grid.policy_names();
        assert!(names.contains(&"oracle-minsum".to_string()));
        assert!(
            !names.iter().any(|n| n.ends_with("-late") || n == "td3"),
            "{names:?}"
        );
    }

    #[test]
    fn cli_paper_out_defaults_by_protocol() {
        let cli = Cli::try_parse_from(["cavmem", "paper", "--quick"]).unwrap();
        let Command::Paper(args) = cli.command else {
            panic!("not paper")
        };
        assert!(args.out.is_none() && args.quick);
        assert_eq!(default_paper_dir(true), "results/paper-quick");
        assert_eq!(default_paper_dir(false), "results/paper");
    }

    /// `--params` files load with their key errors; cavmem-fw agents take only the defaults.
    #[test]
    fn cli_params_files_load_and_firmware_agents_refuse_others() {
        let dir = tempfile::tempdir().unwrap();
        let (defaults, tuned, bad) = (
            dir.path().join("d.toml"),
            dir.path().join("t.toml"),
            dir.path().join("b.toml"),
        );
        std::fs::write(&defaults, AgentParams::defaults_toml()).unwrap();
        std::fs::write(&tuned, "[dqn]\nlr = 0.01\n").unwrap();
        std::fs::write(&bad, "[dqn]\nlr = 2\n").unwrap();
        assert_eq!(
            load_params(None, AgentsAt::Firmware).unwrap(),
            AgentParams::default()
        );
        assert_eq!(
            load_params(Some(&defaults), AgentsAt::Firmware).unwrap(),
            AgentParams::default()
        );
        assert_eq!(
            load_params(Some(&tuned), AgentsAt::Inprocess).unwrap().dqn.lr,
            0.01
        );
        let err = load_params(Some(&tuned), AgentsAt::Firmware).unwrap_err();
        assert!(
            err.usage && err.message.contains("--agents inprocess"),
            "{}",
            err.message
        );
        let err = load_params(Some(&bad), AgentsAt::Inprocess).unwrap_err();
        assert!(
            err.message.contains("b.toml: dqn.lr: 2 is outside (0, 1]"),
            "{}",
            err.message
        );
    }
}

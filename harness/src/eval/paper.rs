//! The paper's evaluation (section 4): Table 2's three scenarios × four policies ×
//! 1000 episodes of 100 steps, for several seeds and both formulations, in parallel, with
//! resume: every finished run is a file in `DIR/cells/`, written atomically, and a new
//! `paper` run with the same protocol skips it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cavmem_core::agent::PolicyKind;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::formulation::FormulationName;
use super::run::{RunResult, RunSpec, run};
use super::run_policy::RunPolicy;
use crate::agents::AgentsAt;
use crate::output::{OutputError, create_dir, write_atomic};
use crate::params::AgentParams;
use crate::scenario::{Scenario, ScenarioError};

/// The shipped scenario files, embedded so `cavmem paper` runs from any directory.
pub const SHIPPED_SCENARIOS: [(&str, &str); 3] = [
    (
        "harness/scenarios/s1.toml",
        include_str!("../../scenarios/s1.toml"),
    ),
    (
        "harness/scenarios/s2.toml",
        include_str!("../../scenarios/s2.toml"),
    ),
    (
        "harness/scenarios/s3.toml",
        include_str!("../../scenarios/s3.toml"),
    ),
];

/// Loads the shipped scenarios.
///
/// # Errors
/// [`ScenarioError`] if an embedded file is broken (a build defect; tests catch it).
pub fn shipped_scenarios() -> Result<Vec<Scenario>, ScenarioError> {
    SHIPPED_SCENARIOS
        .iter()
        .map(|(path, text)| Scenario::parse(Path::new(path), text))
        .collect()
}

/// Stack size of the grid's worker threads.
pub const WORKER_STACK_BYTES: usize = 64 << 20;

/// The protocol of a `paper` run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    /// Episodes per run (paper: 1000).
    pub episodes: u32,
    /// Episodes at the end over which metrics are taken (paper: 100).
    pub window: u32,
    /// Seeds 0..seeds.
    pub seeds: u32,
    /// Formulations evaluated.
    pub formulations: Vec<FormulationName>,
    /// Policies evaluated, by name.
    pub policies: Vec<String>,
    /// The agents' hyperparameters (`--params`; absent in files of earlier versions: the defaults).
    #[serde(default)]
    pub params: AgentParams,
}

impl Protocol {
    /// The paper's protocol for `seeds` seeds.
    pub fn paper(seeds: u32, formulations: Vec<FormulationName>) -> Self {
        Self {
            episodes: 1000,
            window: 100,
            seeds,
            formulations,
            policies: all_policy_names(),
            params: AgentParams::default(),
        }
    }

    /// A short version for smoke runs: 20 episodes, metrics over the last 5.
    pub fn quick(seeds: u32, formulations: Vec<FormulationName>) -> Self {
        Self {
            episodes: 20,
            window: 5,
            seeds,
            formulations,
            policies: all_policy_names(),
            params: AgentParams::default(),
        }
    }
}

/// What `paper` and `suite` evaluate without `--policy`: every decider
/// ([`RunPolicy::all`]) but the late limits, which only diagnose the limit's lead
/// ([`RunPolicy::in_default_grid`]).
pub fn all_policy_names() -> Vec<String> {
    RunPolicy::all()
        .filter(|p| p.in_default_grid())
        .map(|p| p.name().to_string())
        .collect()
}

/// One cell of the grid.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The scenario.
    pub scenario: Scenario,
    /// The policy (or the limit).
    pub policy: RunPolicy,
    /// The formulation.
    pub formulation: FormulationName,
    /// The seed.
    pub seed: u64,
}

impl Cell {
    /// The cell's file name in `DIR/cells/`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}-seed{}.json",
            self.scenario.name,
            self.policy.name(),
            self.formulation.name(),
            self.seed
        )
    }
}

/// A finished cell as stored on disk: the result and what produced it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CellFile {
    /// Episodes of the protocol (a file from another protocol is not reused).
    pub episodes: u32,
    /// The scenario file's text (a changed scenario is rerun).
    pub scenario_source: String,
    /// The text of the node calibration the scenario names, if any (a changed one is rerun;
    /// absent in files of earlier versions: none).
    #[serde(default)]
    pub calibration_source: Option<String>,
    /// The harness version.
    pub version: String,
    /// The agents' hyperparameters (absent in files of earlier versions: the defaults).
    #[serde(default)]
    pub params: AgentParams,
    /// The run.
    pub result: RunResult,
}

/// Errors of the grid.
#[derive(Debug, thiserror::Error)]
pub enum PaperError {
    /// Writing results failed.
    #[error("writing results: {0}")]
    Output(#[source] OutputError),
    /// The output directory holds finished results of another protocol, which this run
    /// would replace (allowed with `replace`).
    #[error("{}: {what}; choose another --out, or pass --replace to overwrite", dir.display())]
    Foreign {
        /// The directory.
        dir: PathBuf,
        /// What is there and how it differs.
        what: String,
    },
    /// A merge (`--from`) did not find every cell of the grid.
    #[error("{0}")]
    Incomplete(String),
    /// A run failed.
    #[error("run {cell}: {reason}")]
    Run {
        /// The cell.
        cell: String,
        /// Why.
        reason: String,
    },
}

impl From<OutputError> for PaperError {
    fn from(e: OutputError) -> Self {
        Self::Output(e)
    }
}

/// Every cell of the grid, in a fixed order.
pub fn cells(scenarios: &[Scenario], protocol: &Protocol) -> Vec<Cell> {
    let mut out = Vec::new();
    for formulation in &protocol.formulations {
        for scenario in scenarios {
            for policy in protocol.policies.iter().filter_map(|p| RunPolicy::from_name(p)) {
                for seed in 0..u64::from(protocol.seeds) {
                    out.push(Cell {
                        scenario: scenario.clone(),
                        policy,
                        formulation: *formulation,
                        seed,
                    });
                }
            }
        }
    }
    out
}

/// `20 episodes, 2 seed(s), raw+paper, ddpg+dqn+ql+static`.
fn describe(protocol: &Protocol) -> String {
    let formulations: Vec<&str> = protocol.formulations.iter().map(|f| f.name()).collect();
    let params = if protocol.params == AgentParams::default() {
        ""
    } else {
        ", other hyperparameters (--params)"
    };
    format!(
        "{} episodes, {} seed(s), {}, {}{params}",
        protocol.episodes,
        protocol.seeds,
        formulations.join("+"),
        protocol.policies.join("+")
    )
}

/// A cell's file as found on disk.
pub(crate) enum Stored {
    /// None, or not a whole cell file (a torn write): the cell runs.
    Missing,
    /// A finished run of this protocol and scenario: reused.
    Reusable(RunResult),
    /// A finished run of another protocol, scenario file or harness version.
    Foreign(String),
}

/// What `path` holds for `cell` under `protocol`.
pub(crate) fn stored_cell(path: &Path, cell: &Cell, protocol: &Protocol) -> Stored {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Stored::Missing;
    };
    let Ok(file) = serde_json::from_str::<CellFile>(&text) else {
        return Stored::Missing;
    };
    let version = env!("CARGO_PKG_VERSION");
    if file.episodes != protocol.episodes {
        Stored::Foreign(format!(
            "{} episodes, this run {}",
            file.episodes, protocol.episodes
        ))
    } else if file.scenario_source != cell.scenario.source {
        Stored::Foreign("another version of the scenario file".into())
    } else if file.calibration_source != cell.scenario.calibration_source {
        Stored::Foreign("another version of the scenario's node calibration".into())
    } else if file.version != version {
        Stored::Foreign(format!("harness {}, this one {version}", file.version))
    } else if file.params != protocol.params {
        Stored::Foreign("other hyperparameters (--params)".into())
    } else if file.result.records.len() != protocol.episodes as usize * cell.scenario.vms.len() {
        Stored::Missing
    } else {
        Stored::Reusable(file.result)
    }
}

/// Fails with [`PaperError::Foreign`] when `out_dir` holds finished results this run would
/// replace: a cell of the grid from another protocol, or a summary of another protocol.
///
/// # Errors
/// [`PaperError::Foreign`], naming the first such file.
pub fn check_replaces_nothing(out_dir: &Path, grid: &[Cell], protocol: &Protocol) -> Result<(), PaperError> {
    let foreign = |what: String| PaperError::Foreign {
        dir: out_dir.to_path_buf(),
        what,
    };
    let cell_dir = out_dir.join("cells");
    let mut others =
        grid.iter().filter_map(
            |cell| match stored_cell(&cell_dir.join(cell.file_name()), cell, protocol) {
                Stored::Foreign(why) => Some((cell.file_name(), why)),
                Stored::Missing | Stored::Reusable(_) => None,
            },
        );
    if let Some((name, why)) = others.next() {
        let what = match others.count() {
            0 => format!("cells/{name} is a finished run of another protocol ({why})"),
            more => format!("cells/{name} and {more} more are finished runs of another protocol ({why})"),
        };
        return Err(foreign(what));
    }
    let summary = out_dir.join("summary.json");
    let Ok(text) = std::fs::read_to_string(&summary) else {
        return Ok(());
    };
    let theirs = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| serde_json::from_value::<Protocol>(v["protocol"].clone()).ok());
    match theirs {
        Some(theirs) if theirs == *protocol => Ok(()),
        Some(theirs) => Err(foreign(format!(
            "summary.json is of another protocol ({}; this run {})",
            describe(&theirs),
            describe(protocol)
        ))),
        None => Err(foreign("summary.json is not a summary of `cavmem paper`".into())),
    }
}

/// How a grid run reports progress.
#[derive(Clone, Copy, Debug)]
pub enum GridProgress {
    /// A progress bar on the terminal.
    Bar,
    /// One plain line per finished cell (for logs and CI).
    Lines,
}

/// Runs every cell of `grid` (all of [`cells`], or a [`super::shard::Shard`]'s) not
/// already in `out_dir/cells/` and returns their results in grid order.
///
/// # Errors
/// [`PaperError`] when a result cannot be written or a run fails; finished cells stay on disk.
pub fn run_grid(
    grid: &[Cell],
    protocol: &Protocol,
    out_dir: &Path,
    progress: GridProgress,
    agents_at: AgentsAt,
) -> Result<Vec<RunResult>, PaperError> {
    let cell_dir = out_dir.join("cells");
    create_dir(&cell_dir)?;
    let total_episodes = grid.len() as u64 * u64::from(protocol.episodes);
    let bar = match progress {
        GridProgress::Bar => {
            ProgressBar::with_draw_target(Some(total_episodes), ProgressDrawTarget::stderr())
        }
        GridProgress::Lines => ProgressBar::hidden(),
    };
    if let Ok(style) = ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {percent}% ETA {eta} {msg}")
    {
        bar.set_style(style);
    }
    let done_cells = Mutex::new(0usize);
    // Agents are built by value before they are boxed (the core has no heap): a Q-learning
    // table is 1.2 MB, so workers get stacks far above the 2 MiB default.
    let pool = rayon::ThreadPoolBuilder::new()
        .stack_size(WORKER_STACK_BYTES)
        .build()
        .map_err(|e| PaperError::Run {
            cell: "(thread pool)".into(),
            reason: e.to_string(),
        })?;
    // The longest cells first, each taken by the next free worker (`par_bridge` hands the
    // items out in order): the grid's wall time comes close to its CPU time divided by the
    // workers, instead of ending on one long cell.
    let mut order: Vec<usize> = (0..grid.len()).collect();
    order.sort_by_key(|k| std::cmp::Reverse(expected_cost(&grid[*k])));
    let results: Vec<Result<(usize, RunResult), PaperError>> = pool.install(|| {
        order
            .iter()
            .par_bridge()
            .map(|&k| {
                let cell = &grid[k];
                let path: PathBuf = cell_dir.join(cell.file_name());
                let stored = stored_cell(&path, cell, protocol);
                let reused = matches!(stored, Stored::Reusable(_));
                let result = if let Stored::Reusable(r) = stored {
                    bar.inc(u64::from(protocol.episodes));
                    r
                } else {
                    let total_steps =
                        u64::from(protocol.episodes) * u64::from(cell.scenario.node.steps_per_episode);
                    let spec = RunSpec {
                        scenario: cell.scenario.clone(),
                        policy: cell.policy,
                        formulation: cell.formulation,
                        episodes: protocol.episodes,
                        seed: cell.seed,
                        hyper: protocol.params.hyperparams(total_steps),
                        learn: true,
                        // The limit has no agents to place: it runs here.
                        agents_at: if cell.policy.kind().is_some() {
                            agents_at
                        } else {
                            AgentsAt::Inprocess
                        },
                    };
                    let r = run(&spec, |_| bar.inc(1)).map_err(|e| PaperError::Run {
                        cell: cell.file_name(),
                        reason: e.to_string(),
                    })?;
                    let file = CellFile {
                        episodes: protocol.episodes,
                        scenario_source: cell.scenario.source.clone(),
                        calibration_source: cell.scenario.calibration_source.clone(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        params: protocol.params,
                        result: r.clone(),
                    };
                    let json = serde_json::to_vec(&file).map_err(|e| PaperError::Run {
                        cell: cell.file_name(),
                        reason: e.to_string(),
                    })?;
                    write_atomic(&path, &json)?;
                    r
                };
                if matches!(progress, GridProgress::Lines) {
                    let mut n = done_cells.lock().unwrap_or_else(|p| p.into_inner());
                    *n += 1;
                    let how = if reused {
                        "reused".to_string()
                    } else {
                        format!("{:.1} s", result.wall_s)
                    };
                    println!("[{}/{}] {} ({how})", *n, grid.len(), cell.file_name());
                }
                Ok((k, result))
            })
            .collect()
    });
    bar.finish_and_clear();
    let mut done = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    done.sort_by_key(|(k, _)| *k);
    Ok(done.into_iter().map(|(_, r)| r).collect())
}

/// A cell's relative cost, for ordering the work: the policy's learning step (measured with
/// `cavmem bench`: DDPG about twice DQN; the limit's planning a few times the controllers,
/// tabular Q-learning and the equal split, which cost next to nothing) times the VMs.
fn expected_cost(cell: &Cell) -> usize {
    let per_vm = match cell.policy {
        RunPolicy::Agents(PolicyKind::Td3) => 30,
        RunPolicy::Agents(PolicyKind::Ddpg | PolicyKind::Residual) => 20,
        RunPolicy::Agents(PolicyKind::Dqn) => 10,
        RunPolicy::Oracle(_) => 3,
        RunPolicy::Agents(
            PolicyKind::QLearning | PolicyKind::EqualSplit | PolicyKind::Feedback | PolicyKind::Mom,
        ) => 1,
    };
    per_vm * cell.scenario.vms.len()
}

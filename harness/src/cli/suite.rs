//! `cavmem suite`: every policy and the limit over a directory of scenarios (by default the
//! suite, `harness/scenarios/suite/`, docs/suite.md), with the paper run's summary, report,
//! figures, headroom and resume.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::eval::formulation::FormulationName;
use crate::eval::paper::Protocol;
use crate::report;
use crate::scenario::Scenario;

/// Suite scenarios kept out of every tuning (docs/suite.md): they judge what was tuned on
/// the others.
pub const VALIDATION_ONLY: &[&str] = &["u4-tight", "u8-churn-noisy", "u16-large"];

/// What `suite` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteArgs {
    /// Directory of scenario files (every `*.toml` in it, in name order).
    #[arg(long, default_value = "harness/scenarios/suite")]
    pub scenarios: PathBuf,
    /// Number of seeds (0..K).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub seeds: u32,
    /// Episodes per run (ε is laid over the run as in the paper's protocol).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub episodes: u32,
    /// Episodes at the end over which metrics are taken (at most --episodes).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub window: u32,
    /// Output directory.
    #[arg(long, default_value = "results/suite")]
    pub out: PathBuf,
    /// Agents, hyperparameters, replacing, shards and merges.
    #[command(flatten)]
    pub grid: super::grid::GridArgs,
}

/// Every `*.toml` scenario in `dir`, in file-name order.
///
/// # Errors
/// [`CliError`] naming the directory (unreadable, no scenario) or the file (does not
/// parse, or repeats another file's scenario name).
pub fn load_scenarios(dir: &Path) -> Result<Vec<Scenario>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::input(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(CliError::input(format!(
            "{}: no scenario files (*.toml)",
            dir.display()
        )));
    }
    let mut scenarios: Vec<Scenario> = Vec::with_capacity(files.len());
    for file in &files {
        let s = Scenario::load(file).map_err(CliError::input)?;
        if let Some(k) = scenarios.iter().position(|o| o.name == s.name) {
            return Err(CliError::input(format!(
                "{}: scenario name {:?} is also the name in {}; results are kept by name",
                file.display(),
                s.name,
                files[k].display()
            )));
        }
        scenarios.push(s);
    }
    Ok(scenarios)
}

/// The protocol `args` ask for: the raw formulation, every policy and the limit.
///
/// # Errors
/// [`CliError`] when the window is longer than the run.
pub fn protocol(args: &SuiteArgs) -> Result<Protocol, CliError> {
    if args.window > args.episodes {
        return Err(CliError::input(format!(
            "--window {} is longer than the run's --episodes {}",
            args.window, args.episodes
        )));
    }
    Ok(Protocol {
        episodes: args.episodes,
        window: args.window,
        seeds: args.seeds,
        formulations: vec![FormulationName::Raw],
        policies: args.grid.policy_names(),
        params: super::load_params(args.grid.params.as_deref(), args.grid.agents)?,
    })
}

/// `cavmem suite`.
///
/// # Errors
/// [`CliError`] for bad scenarios or arguments, results it would replace, or a failed run.
pub fn suite(args: &SuiteArgs) -> Result<(), CliError> {
    let scenarios = load_scenarios(&args.scenarios)?;
    let protocol = protocol(args)?;
    println!(
        "cavmem suite: {} scenarios x {} policies x {} seed(s), {} episodes each -> {}",
        scenarios.len(),
        protocol.policies.len(),
        protocol.seeds,
        protocol.episodes,
        args.out.display()
    );
    let grid = super::grid::Grid {
        scenarios: &scenarios,
        protocol: &protocol,
        out: &args.out,
    };
    let Some(runs) = super::grid::run_or_merge(&grid, &args.grid)? else {
        return Ok(());
    };
    let command = format!(
        "cavmem suite --scenarios {} --seeds {} --episodes {} --window {} --out {}",
        args.scenarios.display(),
        args.seeds,
        args.episodes,
        args.window,
        args.out.display()
    ) + &args.grid.policy_flag()
        + &super::params_flag(args.grid.params.as_deref());
    let plots = report::write_paper(
        &args.out,
        &runs,
        &protocol,
        &scenarios,
        &command,
        report::SUITE_TITLE,
    )
    .map_err(CliError::failure)?;
    println!(
        "wrote {0}/summary.json, {0}/episodes.csv, {0}/report.md and {plots} plots in {0}/plots/",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_scenarios_load_and_cover_what_the_suite_promises() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/suite");
        let suite = load_scenarios(&dir).unwrap();
        assert!(suite.len() >= 12, "{} scenarios", suite.len());
        let vms: Vec<usize> = suite.iter().map(|s| s.vms.len()).collect();
        assert!(
            vms.iter().all(|n| (3..=16).contains(n)) && vms.contains(&3) && vms.contains(&16),
            "{vms:?}"
        );
        let gib = |s: &Scenario| s.node.capacity_bytes >> 30;
        assert!(suite.iter().all(|s| (4..=64).contains(&gib(s))));
        assert!(suite.iter().any(|s| gib(s) == 4) && suite.iter().any(|s| gib(s) == 64));
        assert!(
            suite.iter().any(|s| s.vms.iter().any(|v| v.arrive_step > 0)),
            "arrivals"
        );
        assert!(
            suite.iter().any(|s| s.vms.iter().any(|v| v.leave_step.is_some())),
            "departures"
        );
        for name in VALIDATION_ONLY {
            assert!(suite.iter().any(|s| s.name == *name), "{name} is in the suite");
        }
    }

    #[test]
    fn suite_refuses_bad_directories_and_windows() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_scenarios(dir.path()).unwrap_err();
        assert!(err.message.contains("no scenario files"), "{}", err.message);
        let s1 = include_str!("../../scenarios/s1.toml");
        std::fs::write(dir.path().join("a.toml"), s1).unwrap();
        std::fs::write(dir.path().join("b.toml"), s1).unwrap();
        let err = load_scenarios(dir.path()).unwrap_err();
        assert!(
            err.message.contains("b.toml") && err.message.contains("a.toml"),
            "{}",
            err.message
        );
        let args = SuiteArgs {
            scenarios: dir.path().to_path_buf(),
            seeds: 1,
            episodes: 10,
            window: 20,
            out: dir.path().join("out"),
            grid: Default::default(),
        };
        assert!(protocol(&args).unwrap_err().message.contains("--window 20"));
    }

    /// A scenario's node calibration is part of its node: the summary records it, and
    /// finished cells of another calibration are not reused silently.
    #[test]
    fn suite_keeps_a_node_calibration_with_its_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("scenarios");
        std::fs::create_dir(&scenarios).unwrap();
        // The calibration beside the scenario directory (a file in it would be read as a scenario).
        let live = include_str!("../../scenarios/live/perlbench-gcc-node.toml")
            .replace("../../data/calibration/node-perlbench-gcc.toml", "../node.toml");
        std::fs::write(scenarios.join("live.toml"), live).unwrap();
        let calibration = include_str!("../../data/calibration/node-perlbench-gcc.toml");
        std::fs::write(dir.path().join("node.toml"), calibration).unwrap();
        let args = SuiteArgs {
            scenarios,
            seeds: 1,
            episodes: 2,
            window: 1,
            out: dir.path().join("out"),
            grid: super::super::grid::GridArgs {
                policies: vec![crate::eval::run_policy::RunPolicy::from_name("static").unwrap()],
                ..Default::default()
            },
        };
        suite(&args).unwrap();
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(args.out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(
            summary["node_calibrations"]["live-perlbench-gcc-node"],
            calibration
        );
        let changed = calibration.replacen("major_faults = ", "major_faults = 1", 2);
        std::fs::write(dir.path().join("node.toml"), changed).unwrap();
        let err = suite(&args).unwrap_err();
        assert!(
            err.message
                .contains("another version of the scenario's node calibration"),
            "{}",
            err.message
        );
    }
}

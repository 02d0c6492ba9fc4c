//! `cavmem train --seeds K --validate PATH…`: trains K candidates, keeps the one whose policy
//! does best on the validation scenarios ([`crate::eval::select`]).

use std::path::{Path, PathBuf};

use super::{CliError, RunArgs, SelectArgs, VM_PLACEHOLDER, run_spec, say, say_on_signal, write_json};
use crate::agents::AgentsAt;
use crate::eval::select::{SelectSpec, Selection, select};
use crate::output::{create_dir, write_atomic};
use crate::scenario::Scenario;

/// Trains the candidates, writes each one's snapshot (`out/seed-N.cavm`) and
/// `out/selection.json`, and saves the kept one's to `save`.
///
/// # Errors
/// [`CliError`] for bad arguments (a `{vm}` pattern, a missing or empty validation
/// directory, a policy without agents) and failed runs or writes.
pub fn train_selected(run: &RunArgs, args: &SelectArgs, save: &Path, out: &Path) -> Result<(), CliError> {
    if save.to_string_lossy().contains(VM_PLACEHOLDER) {
        return Err(CliError::input(format!(
            "--save {}: a selection keeps VM 0's policy only; give a path without {VM_PLACEHOLDER}",
            save.display()
        )));
    }
    run.core
        .agent
        .policy
        .agents_for("cavmem train")
        .map_err(CliError::input)?;
    let spec = SelectSpec {
        train: run_spec(run, true, AgentsAt::Inprocess)?,
        seeds: args.seeds,
        validation: validation_scenarios(&args.validate)?,
        validation_episodes: args.validate_episodes,
        train_window: run.episodes.clamp(1, 100),
    };
    create_dir(out).map_err(CliError::failure)?;
    say_on_signal("nothing was written");
    say(
        run.progress,
        &format!(
            "training {} candidates (seeds {}..={}); validation scenarios: {}",
            spec.seeds,
            spec.train.seed,
            spec.train.seed + spec.seeds - 1,
            spec.validation.len(),
        ),
    );
    let selection = select(&spec).map_err(CliError::failure)?;
    for c in &selection.candidates {
        let file = out.join(format!("seed-{}.cavm", c.seed));
        write_atomic(&file, &c.snapshot).map_err(CliError::failure)?;
    }
    write_json(Some(&out.join("selection.json")), &selection)?;
    let chosen = selection
        .chosen()
        .ok_or_else(|| CliError::failure("no candidate was trained"))?;
    write_atomic(save, &chosen.snapshot).map_err(CliError::failure)?;
    say(run.progress, &table(&selection));
    say(
        run.progress,
        &format!(
            "kept seed {} (score {:.3}); saved its policy to {}; every candidate and selection.json in {}",
            chosen.seed,
            chosen.score,
            save.display(),
            out.display()
        ),
    );
    Ok(())
}

/// The scenarios of `paths` (files, and every `*.toml` of directories), in the order given.
///
/// # Errors
/// [`CliError`] naming a file that does not load, a name given twice, or a validation-only
/// suite scenario ([`super::suite::VALIDATION_ONLY`]).
fn validation_scenarios(paths: &[PathBuf]) -> Result<Vec<Scenario>, CliError> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for path in paths {
        let found = if path.is_dir() {
            super::suite::load_scenarios(path)?
        } else {
            vec![Scenario::load(path).map_err(CliError::input)?]
        };
        for s in found {
            if super::suite::VALIDATION_ONLY.contains(&s.name.as_str()) {
                return Err(CliError::input(format!(
                    "{}: scenario {:?} is validation-only (docs/suite.md): it judges what was chosen, it never chooses",
                    path.display(),
                    s.name
                )));
            }
            if scenarios.iter().any(|o| o.name == s.name) {
                return Err(CliError::input(format!(
                    "{}: scenario {:?} is given twice",
                    path.display(),
                    s.name
                )));
            }
            scenarios.push(s);
        }
    }
    Ok(scenarios)
}

/// One line per reference policy and per candidate (the kept one starred): training miss
/// rate, score, each validation miss rate.
fn table(s: &Selection) -> String {
    let mut text = format!("{:>8} {:>14} {:>8}", "seed", "train (pg/s)", "score");
    for name in &s.scenarios {
        text += &format!(" {name:>14}");
    }
    for r in &s.references {
        text += &format!("\n{:>8} {:>14} {:>8.3}", r.policy, "", r.score);
        for rate in &r.validation_miss_rate_pages_per_s {
            text += &format!(" {rate:>14.0}");
        }
    }
    for c in &s.candidates {
        let mark = if c.seed == s.chosen_seed { "*" } else { " " };
        text += &format!(
            "\n{:>7}{mark} {:>14.0} {:>8.3}",
            c.seed, c.train_miss_rate_pages_per_s, c.score
        );
        for r in &c.validation_miss_rate_pages_per_s {
            text += &format!(" {r:>14.0}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, execute};
    use clap::Parser;

    /// A path under harness/scenarios.
    fn scenarios(rest: &str) -> String {
        format!("{}/scenarios/{rest}", env!("CARGO_MANIFEST_DIR"))
    }

    fn refusal(args: &[&str]) -> String {
        let s1 = scenarios("s1.toml");
        let cli = Cli::try_parse_from([&["cavmem", "train", s1.as_str()], args].concat()).unwrap();
        let err = execute(cli.command).unwrap_err();
        assert!(err.usage, "{}", err.message);
        err.message
    }

    #[test]
    fn selection_refuses_what_it_cannot_do() {
        let dir = tempfile::tempdir().unwrap();
        let save = dir.path().join("p.cavm");
        let save = save.to_str().unwrap();
        assert!(refusal(&["--seeds", "3", "--save", save]).contains("needs --validate"));
        let suite = scenarios("suite");
        let held_out = refusal(&["--seeds", "2", "--validate", &suite, "--save", save]);
        assert!(
            held_out.contains("\"u16-large\" is validation-only"),
            "{held_out}"
        );
        let s2 = scenarios("s2.toml");
        let twice = ["--validate", &s2, &s2, "--save", save];
        assert!(refusal(&twice).contains("\"s2\" is given twice"));
        let each = refusal(&["--validate", &s2, "--save", "p-{vm}.cavm"]);
        assert!(each.contains("VM 0's policy only"), "{each}");
        assert!(
            !dir.path().join("p.cavm").exists(),
            "nothing is written when refused"
        );
    }
}

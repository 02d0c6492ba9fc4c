//! `cavmem run --load FILE --no-learn --int8`: the loaded policy acts with its actor's hidden
//! layer in int8 ([`crate::agents::int8`]); the run also measures how far each int8 bid is
//! from the `f32` policy's, prints it and writes it to DIR/int8.json.

use std::path::Path;
use std::sync::{Arc, Mutex};

use cavmem_core::agent::PolicyKind;
use cavmem_core::snapshot::SnapshotError;

use super::jsonl::ProgressFormat;
use super::{CliError, for_each_snapshot, run_one, say};
use crate::agents::int8::{Int8Agent, Int8Tolerance};
use crate::agents::{AgentsAt, SimAgent};
use crate::eval::run::RunSpec;
use crate::output::write_atomic;

/// Runs `spec` with int8 agents made from the snapshots at `path` (each VM's own with
/// `{vm}`), then reports the bids' distance from the `f32` policy's.
///
/// # Errors
/// [`CliError`] when the run is not an evaluation in this process, a snapshot is not the
/// `--policy`'s actor, or the run fails.
pub fn run_int8(spec: &RunSpec, path: &Path, out: &Path, format: ProgressFormat) -> Result<(), CliError> {
    if spec.learn || spec.agents_at != AgentsAt::Inprocess {
        return Err(CliError::input(
            "--int8 evaluates a trained policy: it needs --no-learn and agents in this process",
        ));
    }
    let residual = match spec.policy.kind() {
        Some(PolicyKind::Residual) => true,
        Some(PolicyKind::Ddpg | PolicyKind::Td3) => false,
        _ => {
            return Err(CliError::input(format!(
                "--int8 runs an actor: --policy residual, ddpg or td3, not {}",
                spec.policy.name()
            )));
        }
    };
    let tolerance = Arc::new(Mutex::new(Int8Tolerance::default()));
    let mut agents: Vec<Box<dyn SimAgent>> = Vec::new();
    for_each_snapshot(path, spec.scenario.vms.len(), |bytes| {
        let agent = Int8Agent::from_snapshot(bytes, Arc::clone(&tolerance)).map_err(|e| match e {
            SnapshotError::WrongKind { found } => format!(
                "a snapshot of policy kind {found}; --int8 takes a DDPG or TD3 actor (kind 0) or a residual one (kind 6)"
            ),
            other => other.to_string(),
        })?;
        if agent.is_residual() != residual {
            return Err(format!(
                "a {} snapshot, not --policy {}'s",
                if agent.is_residual() {
                    "residual"
                } else {
                    "DDPG or TD3"
                },
                spec.policy.name()
            ));
        }
        agents.push(Box::new(agent));
        Ok(())
    })?;
    run_one(spec, &mut agents, out, format)?;
    let t = tolerance.lock().map_or_else(|e| *e.into_inner(), |t| *t);
    let json = serde_json::json!({
        "decisions": t.decisions,
        "max_abs_bid_diff": t.max_abs_diff,
        "mean_abs_bid_diff": t.mean_abs_diff(),
    });
    let file = out.join("int8.json");
    write_atomic(&file, json.to_string().as_bytes()).map_err(CliError::failure)?;
    say(
        format,
        &format!(
            "int8 against f32: {} decisions, |bid difference| max {:.6}, mean {:.6} (wrote {})",
            t.decisions,
            t.max_abs_diff,
            t.mean_abs_diff(),
            file.display()
        ),
    );
    Ok(())
}

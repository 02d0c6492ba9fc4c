//! `cavmem train-randomized`: one policy trained on many randomized nodes
//! ([`crate::randomized`]), saved as one snapshot for any node.
//!
//! Slot n of a pool of agents is VM n of every node drawn (a node of k VMs uses slots
//! 0..k), and every agent keeps what it learned from node to node; slot 0 is on every
//! node, and its policy is the one saved.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{CliError, SNAPSHOT_BUFFER_BYTES, load_params, say_on_signal};
use crate::agents::{AgentsAt, SimAgent, derive_seed, make_policy};
use crate::eval::run::{RunSpec, run_agents};
use crate::output::{create_dir, write_atomic};
use crate::progress::Progress;
use crate::randomized::{NodeDistribution, STEPS_PER_EPISODE, Span, parse_bytes_span, parse_count_span};
use crate::scenario::Scenario;

/// Seed purpose of node i's draw (`derive_seed(seed, NODE_DRAW + i)`), apart from the
/// agents' (1000 + VM) and the node's own run (i).
const NODE_DRAW: u64 = 1 << 32;

/// What `cavmem train-randomized` takes.
#[derive(Debug, Clone, clap::Args)]
pub struct RandomizedArgs {
    /// Policy (a learning one), seed (it also draws the nodes), formulation, hyperparameters.
    #[command(flatten)]
    pub agent: super::AgentArgs,
    /// Nodes drawn, one after another.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub nodes: u32,
    /// Episodes (of 100 steps) on each node.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub episodes_per_node: u32,
    /// VMs per node, `LO..HI` (at most 64).
    #[arg(long, default_value = "2..8", value_parser = parse_count_span)]
    pub vms: Span<u32>,
    /// Node memory per VM on a SPEC-scale node, `LO..HI` (draws below the 384 MiB floor
    /// give the floor).
    #[arg(long, default_value = "768 MiB..5 GiB", value_parser = parse_bytes_span)]
    pub memory_per_vm: Span<u64>,
    /// Copies of the workload per VM (and its vCPUs), `LO..HI`.
    #[arg(long, default_value = "1..6", value_parser = parse_count_span)]
    pub copies: Span<u32>,
    /// Chance that a VM arrives late or leaves early in every episode.
    #[arg(long, default_value = "0.25", value_parser = super::parse_probability)]
    pub churn: f64,
    /// Chance that a node measures miss rates with 10% noise.
    #[arg(long, default_value = "0.25", value_parser = super::parse_probability)]
    pub noisy: f64,
    /// Chance that a node is at the live node's scale, running the stand-in programs
    /// (64 MiB floor, memory drawn per copy).
    #[arg(long, default_value = "0.25", value_parser = super::parse_probability)]
    pub standin: f64,
    /// Node memory per copy on a stand-in-scale node, `LO..HI`.
    #[arg(long, default_value = "50 MiB..140 MiB", value_parser = parse_bytes_span)]
    pub standin_memory_per_copy: Span<u64>,
    /// Where to write the trained snapshot (slot 0's policy).
    #[arg(long)]
    pub save: PathBuf,
    /// Output directory: every node drawn (nodes/node-NNNN.toml) and training.json.
    #[arg(long, default_value = "results/train-randomized")]
    pub out: PathBuf,
}

impl RandomizedArgs {
    /// The distribution the flags describe.
    ///
    /// # Errors
    /// A message naming the flag: a VM count outside 1..=64, no copies, a size below 1 MiB.
    pub fn distribution(&self) -> Result<NodeDistribution, String> {
        if self.vms.lo == 0 || self.vms.hi > MAX_VMS {
            return Err(format!("--vms: each node has 1 to {MAX_VMS} VMs"));
        }
        if self.copies.lo == 0 {
            return Err("--copies: a VM runs at least one copy".into());
        }
        for (flag, span) in [
            ("--memory-per-vm", self.memory_per_vm),
            ("--standin-memory-per-copy", self.standin_memory_per_copy),
        ] {
            if span.lo < cavmem_core::units::MIB {
                return Err(format!("{flag}: at least 1 MiB"));
            }
        }
        Ok(NodeDistribution {
            vms: self.vms,
            memory_per_vm_bytes: self.memory_per_vm,
            copies: self.copies,
            churn: self.churn,
            noisy: self.noisy,
            standin: self.standin,
            standin_memory_per_copy_bytes: self.standin_memory_per_copy,
        })
    }
}

/// The most VMs a drawn node may have (each one an agent kept in memory).
const MAX_VMS: u32 = 64;

/// One node of the training, as training.json lists it.
#[derive(Debug, Serialize)]
struct NodeTrained {
    /// Its file under nodes/.
    file: String,
    vms: usize,
    capacity_bytes: u64,
    /// Slot 0's mean miss rate in the node's last episode, pages/s (null: absent throughout).
    slot0_last_episode_miss_rate_pages_per_s: Option<f64>,
    /// All VMs' mean miss rate in the node's last episode, pages/s.
    node_last_episode_miss_rate_pages_per_s: Option<f64>,
}

/// training.json.
#[derive(Debug, Serialize)]
struct Training {
    command: String,
    policy: String,
    seed: u64,
    episodes_per_node: u32,
    nodes: Vec<NodeTrained>,
}

/// Draws the nodes, trains the pool on each in turn, saves slot 0's snapshot to `--save`
/// and the nodes and training.json to `--out`; nothing is written before the end.
///
/// # Errors
/// [`CliError`] for bad flags or params, a policy that does not learn, a failed run or write.
pub fn train_randomized(args: &RandomizedArgs, command: String) -> Result<(), CliError> {
    let kind = args
        .agent
        .policy
        .agents_for("cavmem train-randomized")
        .map_err(CliError::input)?;
    if !kind.learns() {
        return Err(CliError::input(format!(
            "--policy {}: cavmem train-randomized trains a learning policy",
            kind.name()
        )));
    }
    let distribution = args.distribution().map_err(CliError::input)?;
    let params = load_params(args.agent.params.as_deref(), AgentsAt::Inprocess)?;
    // Agents are built and run on 64 MiB stacks, as every run's workers are.
    let threads = rayon::ThreadPoolBuilder::new()
        .stack_size(64 << 20)
        .build()
        .map_err(|e| CliError::failure(format!("thread pool: {e}")))?;
    threads.install(|| train_on_nodes(args, command, kind, &distribution, &params))
}

/// [`train_randomized`] after its checks.
fn train_on_nodes(
    args: &RandomizedArgs,
    command: String,
    kind: cavmem_core::agent::PolicyKind,
    distribution: &NodeDistribution,
    params: &crate::params::AgentParams,
) -> Result<(), CliError> {
    let steps_per_node = u64::from(args.episodes_per_node) * u64::from(STEPS_PER_EPISODE);
    let hyper = params.hyperparams(u64::from(args.nodes) * steps_per_node);
    let slots = distribution.vms.hi as usize;
    let mut pool: Vec<Box<dyn SimAgent>> = (0..slots)
        .map(|j| make_policy(kind, &hyper, args.agent.seed, j, slots) as Box<dyn SimAgent>)
        .collect();
    say_on_signal("nothing was written");
    let bar = Progress::new(
        u64::from(args.nodes) * u64::from(args.episodes_per_node),
        "episodes",
    );
    let mut files = Vec::with_capacity(args.nodes as usize);
    let mut trained = Vec::with_capacity(args.nodes as usize);
    for i in 0..args.nodes {
        let index = u64::from(i);
        let text = distribution.node(index, derive_seed(args.agent.seed, NODE_DRAW + index));
        let file = format!("node-{i:04}.toml");
        let scenario = Scenario::parse(Path::new(&file), &text).map_err(CliError::failure)?;
        let vms = scenario.vms.len();
        let capacity_bytes = scenario.node.capacity_bytes;
        let spec = RunSpec {
            scenario,
            policy: args.agent.policy,
            formulation: args.agent.formulation,
            episodes: args.episodes_per_node,
            seed: derive_seed(args.agent.seed, index),
            hyper,
            learn: true,
            agents_at: AgentsAt::Inprocess,
        };
        let result = run_agents(&spec, &mut pool[..vms], |_| bar.inc(1)).map_err(CliError::failure)?;
        let last: Vec<f64> = result
            .records
            .iter()
            .filter(|r| r.episode + 1 == result.episodes)
            .map(|r| r.avg_miss_rate_pages_per_s)
            .collect();
        trained.push(NodeTrained {
            file: format!("nodes/{file}"),
            vms,
            capacity_bytes,
            slot0_last_episode_miss_rate_pages_per_s: last.first().copied().filter(|x| x.is_finite()),
            node_last_episode_miss_rate_pages_per_s: mean_finite(&last),
        });
        files.push((file, text));
    }
    bar.finish();
    write_outputs(args, command, &mut pool, files, trained)
}

/// The nodes, training.json, then the snapshot (each written atomically).
fn write_outputs(
    args: &RandomizedArgs,
    command: String,
    pool: &mut [Box<dyn SimAgent>],
    files: Vec<(String, String)>,
    nodes: Vec<NodeTrained>,
) -> Result<(), CliError> {
    let dir = args.out.join("nodes");
    create_dir(&dir).map_err(CliError::failure)?;
    for (file, text) in files {
        write_atomic(&dir.join(file), text.as_bytes()).map_err(CliError::failure)?;
    }
    let training = Training {
        command,
        policy: args.agent.policy.name().to_string(),
        seed: args.agent.seed,
        episodes_per_node: args.episodes_per_node,
        nodes,
    };
    let json = serde_json::to_vec_pretty(&training).map_err(CliError::failure)?;
    write_atomic(&args.out.join("training.json"), &json).map_err(CliError::failure)?;
    let mut bytes = vec![0u8; SNAPSHOT_BUFFER_BYTES];
    let slot0 = pool
        .first_mut()
        .ok_or_else(|| CliError::failure("no agent was trained"))?;
    let n = slot0.save_snapshot(&mut bytes).map_err(CliError::failure)?;
    write_atomic(&args.save, bytes.get(..n).unwrap_or_default()).map_err(CliError::failure)?;
    println!(
        "trained on {} nodes; saved slot 0's {} policy to {} ({n} bytes); nodes and training.json in {}",
        training.nodes.len(),
        args.agent.policy.name(),
        args.save.display(),
        args.out.display()
    );
    Ok(())
}

fn mean_finite(values: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, execute};
    use clap::Parser;

    fn train(dir: &std::path::Path, extra: &[&str]) -> Result<(), super::CliError> {
        let save = dir.join("p.cavm");
        let out = dir.join("out");
        let args = [
            "cavmem",
            "train-randomized",
            "--nodes",
            "3",
            "--episodes-per-node",
            "1",
            "--save",
            save.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        let vms: &[&str] = if extra.contains(&"--vms") {
            &[]
        } else {
            &["--vms", "2..3"]
        };
        execute(
            Cli::try_parse_from([&args[..], vms, extra].concat())
                .unwrap()
                .command,
        )
    }

    /// Three nodes: each written and parseable, listed in training.json; the snapshot is
    /// the same for the same seed and starts every VM of another node.
    #[test]
    fn train_randomized_writes_its_nodes_and_one_snapshot_for_any_node() {
        // `cavmem run` builds its agents on the calling thread: give it the binary's room.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(writes_its_nodes_and_one_snapshot)
            .unwrap()
            .join()
            .unwrap();
    }

    fn writes_its_nodes_and_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        train(dir.path(), &[]).unwrap();
        for i in 0..3 {
            let file = dir.path().join(format!("out/nodes/node-000{i}.toml"));
            let node = crate::scenario::Scenario::load(&file).unwrap();
            assert!((2..=3).contains(&node.vms.len()));
        }
        let training: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("out/training.json")).unwrap()).unwrap();
        assert_eq!(training["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(training["policy"], "residual");
        let first = std::fs::read(dir.path().join("p.cavm")).unwrap();
        let again = tempfile::tempdir().unwrap();
        train(again.path(), &[]).unwrap();
        assert_eq!(
            std::fs::read(again.path().join("p.cavm")).unwrap(),
            first,
            "seeded"
        );
        let other = tempfile::tempdir().unwrap();
        train(other.path(), &["--seed", "1"]).unwrap();
        assert_ne!(std::fs::read(other.path().join("p.cavm")).unwrap(), first);
        let u4 = format!("{}/scenarios/suite/u4-pairs.toml", env!("CARGO_MANIFEST_DIR"));
        let save = dir.path().join("p.cavm");
        let out = dir.path().join("run");
        let run = [
            "cavmem",
            "run",
            &u4,
            "--load",
            save.to_str().unwrap(),
            "--no-learn",
            "--episodes",
            "1",
            "--out",
            out.to_str().unwrap(),
        ];
        execute(Cli::try_parse_from(run).unwrap().command).unwrap();
        assert!(out.join("run.json").exists());
    }

    #[test]
    fn train_randomized_refuses_what_it_cannot_do_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for (flags, says) in [
            (&["--policy", "feedback"][..], "trains a learning policy"),
            (&["--vms", "0..3"], "--vms: each node has 1 to 64 VMs"),
            (&["--vms", "2..65"], "--vms: each node has 1 to 64 VMs"),
            (&["--copies", "0..2"], "--copies"),
            (
                &["--memory-per-vm", "1 KiB..1 GiB"],
                "--memory-per-vm: at least 1 MiB",
            ),
        ] {
            let err = train(dir.path(), flags).unwrap_err();
            assert!(
                err.usage && err.message.contains(says),
                "{flags:?}: {}",
                err.message
            );
        }
        assert!(Cli::try_parse_from(["cavmem", "train-randomized", "--vms", "8..2", "--save", "p"]).is_err());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing written"
        );
    }
}

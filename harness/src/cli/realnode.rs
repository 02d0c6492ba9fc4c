//! `cavmem calibrate` and `cavmem live`: the commands that run on a real node — this
//! machine's memory cgroups (root), or for `live --backend qmp` QEMU VMs. On cgroups both
//! clean up what crashed runs left, use swap that exists or a swap file made for the run;
//! all stop cleanly on Ctrl-C (removing cgroups, processes and the swap file) and keep the
//! results they have.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{CliError, RunArgsCore, load_all, write_run};
use crate::agents::AgentsAt;
use crate::backend::cgroup::{self, CgroupVersion, SwapFile};
use crate::backend::cgroup_backend::{self, CgroupBackend};
use crate::calibrate::node::NodeCalibrateSpec;
use crate::calibrate::{self, CalibrateSpec};
use crate::eval::run::{RunSpec, make_agents, run_on};
use crate::scenario::Scenario;
use crate::sim::calibration::{self as calibration_data, Calibration};
use crate::sim::node_calibration::{NodeCalibration, VmCalibration};
use crate::sim::workload::Benchmark;

/// Swap for a run: what `--swap-file`/`--swap-size` ask for.
#[derive(Debug, Clone, clap::Args)]
pub struct SwapArgs {
    /// Create a swap file here for the run (removed at the end, on error and on Ctrl-C).
    /// Without it, the machine must already have swap: without swap a cgroup over its
    /// limit has its processes killed instead of faulting.
    #[arg(long)]
    pub swap_file: Option<PathBuf>,
    /// Size of that swap file, e.g. "2 GiB".
    #[arg(long, default_value = "2 GiB", value_parser = crate::quantity::parse_bytes)]
    pub swap_size: u64,
}

/// The memory controller (after removing what crashed runs left) and the run's swap.
fn prepare_node(swap: &SwapArgs) -> Result<(PathBuf, CgroupVersion, Option<SwapFile>), CliError> {
    crate::interrupt::install().map_err(CliError::failure)?;
    let (root, version) = cgroup::detect(Path::new("/sys/fs/cgroup")).map_err(CliError::failure)?;
    for dir in cgroup::clean_stale(&root) {
        println!("removed {} (left by a run that is gone)", dir.display());
    }
    let swap_file = match &swap.swap_file {
        Some(path) => Some(SwapFile::create(path, swap.swap_size).map_err(CliError::failure)?),
        None if cgroup::swap_total_bytes() == 0 => {
            return Err(CliError::input(
                "this machine has no swap: squeezed workloads would be killed instead of faulting; \
                 pass --swap-file PATH (and --swap-size) to make one for the run",
            ));
        }
        None => None,
    };
    Ok((root, version, swap_file))
}

/// The `calibrate` command.
///
/// # Errors
/// [`CliError`] naming what failed; the workloads finished before it are kept in `out`.
pub fn calibrate(spec: &CalibrateSpec, out: &Path, swap: &SwapArgs, command: &str) -> Result<(), CliError> {
    // Workloads measured earlier and not measured now are kept; a file that is there but
    // does not parse is refused rather than overwritten.
    let mut calibration = match std::fs::read_to_string(out) {
        Ok(text) => calibration_data::parse(&text, &out.display().to_string()).map_err(|e| {
            CliError::input(format!(
                "{e} (fix or remove it: calibrate keeps the workloads it does not measure)"
            ))
        })?,
        Err(_) => Calibration {
            machine: String::new(),
            date: String::new(),
            command: String::new(),
            workload: Vec::new(),
        },
    };
    let (root, version, _swap_file) = prepare_node(swap)?;
    let scratch = cgroup_backend::work_dir(&cgroup_backend::default_scratch()).map_err(CliError::failure)?;
    calibration.machine = calibrate::machine_description();
    calibration.date = calibrate::today();
    calibration.command = command.to_string();
    for &benchmark in &spec.benchmarks {
        println!(
            "{benchmark}: measuring ({} s per level)",
            spec.window.as_secs_f64()
        );
        let w = calibrate::measure_one(spec, benchmark, &root, version, scratch.path(), |p| {
            println!(
                "  limit {:>5.1} MiB: {:>8.0} major faults/s, {:.2} CPU/s",
                p.limit_bytes as f64 / f64::from(1 << 20),
                p.faults_per_s(),
                p.progress()
            );
        })
        .map_err(|e| CliError::failure(format!("{benchmark}: {e}")))?;
        calibration.workload.retain(|x| x.name != w.name);
        calibration.workload.push(w);
        calibration
            .workload
            .sort_by_key(|x| Benchmark::from_name(&x.name));
        calibrate::write(out, &calibration).map_err(CliError::failure)?;
    }
    let report = calibrate::report::markdown(&calibration);
    let report_path = out.with_extension("md");
    crate::output::write_atomic(&report_path, report.as_bytes()).map_err(CliError::failure)?;
    print!("{report}");
    println!("wrote {} and {}", out.display(), report_path.display());
    Ok(())
}

/// What `calibrate-node` measures.
#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateNodeArgs {
    /// The live scenario whose node to measure (its VMs: workloads and copies).
    pub scenario: PathBuf,
    /// Limits in percent of each VM's footprint, comma-separated, measured in this order.
    #[arg(long, value_delimiter = ',', default_value = "100,95,90,85,80,70,60,50,40,30", value_parser = clap::value_parser!(u32).range(5..=200))]
    pub levels: Vec<u32>,
    /// Measurement window at each limit.
    #[arg(long, default_value = "20 s", value_parser = parse_duration)]
    pub window: Duration,
    /// Wait after each limit change before measuring.
    #[arg(long, default_value = "5 s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Scale of the stand-ins' sizes (1 = their defaults, as `cavmem live` runs them).
    #[arg(long, default_value = "1.0", value_parser = super::parse_scale)]
    pub size_scale: f64,
    /// The node calibration file to write (after each VM, atomically).
    #[arg(long)]
    pub out: PathBuf,
    /// Measure again and replace OUT if it exists (without it, an existing OUT is an error).
    #[arg(long)]
    pub replace: bool,
    /// Swap for the run.
    #[command(flatten)]
    pub swap: SwapArgs,
}

impl CalibrateNodeArgs {
    /// The command line that reproduces this measurement, for the file.
    fn command_line(&self) -> String {
        let levels: Vec<String> = self.levels.iter().map(u32::to_string).collect();
        format!(
            "cavmem calibrate-node {} --levels {} --window '{} s' --settle '{} s' --size-scale {} --out {}",
            self.scenario.display(),
            levels.join(","),
            self.window.as_secs_f64(),
            self.settle.as_secs_f64(),
            self.size_scale,
            self.out.display()
        )
    }
}

/// The `calibrate-node` command.
///
/// # Errors
/// [`CliError`] for a bad scenario, an OUT that exists without `--replace`, or a failed
/// measurement (the VMs measured before it stay in OUT).
pub fn calibrate_node(args: &CalibrateNodeArgs) -> Result<(), CliError> {
    let scenario = Scenario::load(&args.scenario).map_err(CliError::input)?;
    if args.out.exists() && !args.replace {
        return Err(CliError::input(format!(
            "{} exists: pass --replace to measure the node again and replace it",
            args.out.display()
        )));
    }
    let (root, version, _swap_file) = prepare_node(&args.swap)?;
    let scratch = cgroup_backend::work_dir(&cgroup_backend::default_scratch()).map_err(CliError::failure)?;
    let spec = NodeCalibrateSpec {
        levels_percent: args.levels.clone(),
        window: args.window,
        settle: args.settle,
        size_scale: args.size_scale,
    };
    let mut file = NodeCalibration {
        machine: calibrate::machine_description(),
        date: calibrate::today(),
        command: args.command_line(),
        scenario: scenario.name.clone(),
        vm: Vec::new(),
    };
    println!(
        "{}: {} VMs, {} levels each, {} s per level",
        scenario.name,
        scenario.vms.len(),
        spec.levels_percent.len(),
        (spec.window + spec.settle).as_secs_f64()
    );
    let print_point = |vm: usize, p: &calibration_data::Point| {
        println!(
            "  VM {vm}: limit {:>7.1} MiB: {:>8.0} major faults/s, {:.2} CPU/s",
            p.limit_bytes as f64 / f64::from(1 << 20),
            p.faults_per_s(),
            p.progress()
        );
    };
    let write_so_far = |vms: &[VmCalibration]| {
        file.vm = vms.to_vec();
        calibrate::write_node(&args.out, &file)
            .map_err(|e| crate::backend::node_backend::NodeError::Backend(e.to_string()))
    };
    calibrate::node::measure_node(
        &spec,
        &scenario,
        &root,
        version,
        scratch.path(),
        print_point,
        write_so_far,
    )
    .map_err(|e| CliError::failure(format!("{}: {e}", scenario.name)))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// What `live` runs.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Scenario, policy, seed, formulation.
    #[command(flatten)]
    pub run: RunArgsCore,
    /// How long to run, e.g. "300 s" (whole episodes of the scenario's steps; at least one).
    #[arg(long, default_value = "300 s", value_parser = crate::quantity::parse_seconds)]
    pub duration: f64,
    /// Start every VM's agent from this policy snapshot (from `cavmem train --save`); with
    /// `{vm}` in the path, VM n loads its own file (`{vm}` → n, counted from 0).
    #[arg(long)]
    pub load: Option<PathBuf>,
    /// Evaluate only: no learning and no exploration.
    #[arg(long)]
    pub no_learn: bool,
    /// Output directory.
    #[arg(long, default_value = "results/live")]
    pub out: PathBuf,
    /// Scale of the stand-ins' sizes (1 = their defaults, whose footprints the calibration
    /// measured; the footprints reported as demand are scaled alike).
    #[arg(long, default_value = "1.0", value_parser = super::parse_scale)]
    pub size_scale: f64,
    /// Swap for the run.
    #[command(flatten)]
    pub swap: SwapArgs,
    /// The node: this machine's memory cgroups running stand-ins, or QEMU VMs over QMP.
    #[arg(long, value_enum, default_value_t = LiveBackend::Cgroup)]
    pub backend: LiveBackend,
    /// With `--backend qmp`: each VM's QMP socket, in the scenario's VM order (repeat the
    /// flag). QEMU needs `-device virtio-balloon-pci` and `-qmp unix:PATH,server=on,wait=off`.
    #[arg(long = "qmp")]
    pub qmp_sockets: Vec<PathBuf>,
    /// With `--backend qmp`: decide and log every balloon change without applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// With `--backend qmp`: the largest change of one VM's balloon per step.
    #[arg(long, default_value = "256 MiB", value_parser = crate::quantity::parse_bytes)]
    pub max_change: u64,
    /// With `--backend qmp`: no VM gets more than this (default: the node's capacity) or its
    /// scenario `max`; no VM gets less than its floor (`node.floor`, or its `min` if larger).
    #[arg(long, value_parser = crate::quantity::parse_bytes)]
    pub vm_max: Option<u64>,
}

/// Which real node `live` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LiveBackend {
    /// Memory cgroups on this machine, running the stand-in workloads (root).
    Cgroup,
    /// QEMU VMs with virtio balloons, over their QMP sockets.
    Qmp,
}

/// The `live` command.
///
/// # Errors
/// [`CliError`] naming what failed; an interrupted run writes the episodes it completed.
pub fn live(args: &LiveArgs) -> Result<(), CliError> {
    if args.backend == LiveBackend::Cgroup && (!args.qmp_sockets.is_empty() || args.dry_run) {
        return Err(CliError::input("--qmp and --dry-run apply to --backend qmp"));
    }
    let scenario = Scenario::load(&args.run.scenario).map_err(CliError::input)?;
    let step_s = scenario.node.step_s;
    let steps = (args.duration / step_s).ceil().max(1.0);
    let episodes = (steps / f64::from(scenario.node.steps_per_episode))
        .ceil()
        .max(1.0) as u32;
    if args.backend == LiveBackend::Cgroup
        && let Some(available) = cgroup_backend::available_bytes()
        && scenario.node.capacity_bytes > available
    {
        return Err(CliError::input(format!(
            "{}: node.capacity is {} MiB but this machine has {} MiB available",
            args.run.scenario.display(),
            scenario.node.capacity_bytes >> 20,
            available >> 20
        )));
    }
    args.run
        .agent
        .policy
        .agents_for("a real node")
        .map_err(CliError::input)?;
    let total = u64::from(episodes) * u64::from(scenario.node.steps_per_episode);
    let spec = RunSpec {
        scenario,
        policy: args.run.agent.policy,
        formulation: args.run.agent.formulation,
        episodes,
        seed: args.run.agent.seed,
        hyper: super::load_params(args.run.agent.params.as_deref(), AgentsAt::Inprocess)?.hyperparams(total),
        learn: !args.no_learn,
        agents_at: AgentsAt::Inprocess,
    };
    let mut agents = make_agents(&spec).map_err(CliError::failure)?;
    if let Some(path) = &args.load {
        load_all(&mut agents, path)?;
    }
    if args.backend == LiveBackend::Qmp {
        return live_qmp(args, &spec, &mut agents);
    }
    let (root, version, _swap_file) = prepare_node(&args.swap)?;
    let scratch = cgroup_backend::work_dir(&cgroup_backend::default_scratch()).map_err(CliError::failure)?;
    let footprints = calibration_data::parse(calibration_data::BUILTIN_TEXT, calibration_data::BUILTIN_PATH)
        .map(|c| c.workload)
        .unwrap_or_default();
    println!(
        "cavmem live: {} VMs in {} cgroups, starting the stand-ins…",
        spec.scenario.vms.len(),
        match version {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        }
    );
    let scale = args.size_scale;
    let mut node = CgroupBackend::create_sized(&spec.scenario, &root, version, scratch.path(), scale, |b| {
        footprints
            .iter()
            .find(|w| w.name == b.name())
            .map(|w| (w.footprint_bytes as f64 * scale) as u64)
    })
    .map_err(CliError::failure)?;
    println!(
        "running {} {} for {episodes} episode(s) of {} steps of {step_s} s in {}",
        spec.policy.name(),
        spec.formulation,
        spec.scenario.node.steps_per_episode,
        node.dir().display()
    );
    let result = run_on(&spec, &mut node, &mut agents, |e| {
        println!("episode {} of {episodes} done", e.episode + 1);
    })
    .map_err(CliError::failure)?;
    for (j, &restarts) in node.oom_restarts().iter().enumerate() {
        if restarts > 0 {
            println!(
                "{}: {restarts} copy restart(s) after the OOM killer took them",
                crate::scenario::vm_label(j)
            );
        }
    }
    drop(node);
    if result.interrupted {
        println!(
            "interrupted: keeping the {} episode(s) completed",
            result.episodes
        );
    }
    write_run(&spec, &result, &args.out, super::jsonl::ProgressFormat::Human)
}

/// `live --backend qmp`: the scenario's VMs are the QEMU processes behind `--qmp`.
fn live_qmp(
    args: &LiveArgs,
    spec: &RunSpec,
    agents: &mut [Box<dyn crate::agents::SimAgent>],
) -> Result<(), CliError> {
    use crate::backend::node_backend::NodeBackend;
    use crate::backend::qmp::backend::{QmpBackend, QmpOptions, QmpVmSpec};
    crate::interrupt::install().map_err(CliError::failure)?;
    let n = spec.scenario.vms.len();
    if args.qmp_sockets.len() != n {
        return Err(CliError::input(format!(
            "--qmp: {} socket(s) for the {n} VMs of {}",
            args.qmp_sockets.len(),
            args.run.scenario.display()
        )));
    }
    let node_spec = &spec.scenario.node;
    let specs = args
        .qmp_sockets
        .iter()
        .zip(&spec.scenario.vms)
        .map(|(socket, vm)| QmpVmSpec {
            socket: socket.clone(),
            min_bytes: vm.floor_bytes(node_spec),
            max_bytes: args
                .vm_max
                .unwrap_or(node_spec.capacity_bytes)
                .min(vm.terms.max_bytes),
            vcpus: vm.vcpus,
        })
        .collect();
    let mut node = QmpBackend::new(
        specs,
        QmpOptions {
            capacity_bytes: node_spec.capacity_bytes,
            step: Duration::from_secs_f64(node_spec.step_s),
            dry_run: args.dry_run,
            max_change_bytes: args.max_change,
            stats_interval_s: node_spec.step_s.ceil().max(1.0) as u32,
            timeout: crate::backend::qmp::client::DEFAULT_TIMEOUT,
            echo: true,
        },
    );
    for j in 0..n {
        node.set_present(j, true).map_err(CliError::failure)?;
        if !node.present()[j] {
            return Err(CliError::failure(format!(
                "{}: {} did not answer as a QEMU with a virtio balloon, or does not fit the node",
                crate::scenario::vm_label(j),
                args.qmp_sockets[j].display()
            )));
        }
    }
    let episodes = spec.episodes;
    let result = run_on(spec, &mut node, agents, |e| {
        println!("episode {} of {episodes} done", e.episode + 1);
    })
    .map_err(CliError::failure)?;
    if result.interrupted {
        println!(
            "interrupted: keeping the {} episode(s) completed",
            result.episodes
        );
    }
    write_run(spec, &result, &args.out, super::jsonl::ProgressFormat::Human)
}

/// A duration flag: seconds with a unit ("20 s", "500 ms").
///
/// # Errors
/// The parser's message.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = crate::quantity::parse_seconds(text).map_err(|e| e.to_string())?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(format!("{text:?} is not within a day"));
    }
    Ok(Duration::from_secs_f64(s))
}

//! A real node: each VM of a scenario is a memory cgroup ([`super::cgroup`]) running
//! `copies` copies of its workload's stand-in program ([`super::standin`]); its allocation
//! is the cgroup's limit, its miss rate the major faults of its processes per second of
//! wall time over each step.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::cgroup::{CgroupError, CgroupNode, CgroupVersion};
use super::node_backend::{NodeBackend, NodeError, check_allocations};
use super::standin::{StandIn, StandInCommand};
use crate::output::OutputError;
use crate::scenario::Scenario;
use crate::sim::VmReading;
use crate::sim::workload::Benchmark;

/// Why copies of a stand-in could not be kept running.
#[derive(Debug, thiserror::Error)]
pub enum CopiesError {
    /// A copy could not be started in its cgroup.
    #[error(transparent)]
    Start(#[from] CgroupError),
    /// A copy exited, and not because the OOM killer took it.
    #[error("{what} copy {copy} exited ({status}){}", if *killed { "; killed by signal 9, not by the OOM killer" } else { "" })]
    Exited {
        /// The copies' name.
        what: String,
        /// Which copy, counted from 1.
        copy: usize,
        /// How it exited.
        status: std::process::ExitStatus,
        /// Killed by signal 9 (by someone other than the OOM killer).
        killed: bool,
    },
}

impl From<CopiesError> for NodeError {
    fn from(e: CopiesError) -> Self {
        Self::Backend(e.to_string())
    }
}

/// Copies of a stand-in running in one cgroup, and their progress (`tick` lines). A copy
/// the kernel's OOM killer takes (a cgroup over its limit whose swap-out cannot keep up)
/// is started again by [`RunningCopies::revive`], as a crashed service would be.
#[derive(Debug)]
pub struct RunningCopies {
    vm: usize,
    command: StandInCommand,
    children: Vec<Child>,
    /// Per copy: whether it has built its data (its `ready` line).
    ready: Vec<Arc<AtomicBool>>,
    ticks: Arc<AtomicU64>,
    /// The cgroup's OOM kills already explained by a copy's exit.
    oom_kills_seen: u64,
    what: String,
}

impl RunningCopies {
    /// Starts `copies` copies of `command` in VM `vm`'s cgroup of `node`; `what` names
    /// them in errors.
    ///
    /// # Errors
    /// [`CopiesError::Start`] naming the cgroup or program that failed.
    pub fn start(
        node: &CgroupNode,
        vm: usize,
        command: &StandInCommand,
        copies: u32,
        what: String,
    ) -> Result<Self, CopiesError> {
        let mut running = Self {
            vm,
            command: command.clone(),
            children: Vec::new(),
            ready: Vec::new(),
            ticks: Arc::new(AtomicU64::new(0)),
            oom_kills_seen: node.oom_kills(vm).unwrap_or(0),
            what,
        };
        for _ in 0..copies {
            let (child, ready) = running.spawn(node)?;
            running.children.push(child);
            running.ready.push(ready);
        }
        Ok(running)
    }

    /// One copy, its output read by a thread that counts its ticks and flags its `ready`.
    fn spawn(&self, node: &CgroupNode) -> Result<(Child, Arc<AtomicBool>), CopiesError> {
        let mut child = node.spawn(self.vm, &self.command.program, &self.command.args, Stdio::piped())?;
        let ready = Arc::new(AtomicBool::new(false));
        if let Some(out) = child.stdout.take() {
            let (ticks, ready) = (Arc::clone(&self.ticks), Arc::clone(&ready));
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if line == "tick" {
                        ticks.fetch_add(1, Ordering::Relaxed);
                    } else if line.starts_with("ready") {
                        ready.store(true, Ordering::Relaxed);
                    }
                }
            });
        }
        Ok((child, ready))
    }

    /// Units of work done so far by all copies.
    pub fn ticks(&self) -> u64 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Copies that have built their data and started working.
    pub fn ready(&self) -> u32 {
        self.ready.iter().filter(|r| r.load(Ordering::Relaxed)).count() as u32
    }

    /// Starts again every copy that exited because the OOM killer took it or one of its
    /// processes (the cgroup's OOM-kill counter rose; on kernels without the counter, a
    /// copy killed by signal 9) and returns how many were restarted.
    ///
    /// # Errors
    /// [`CopiesError::Exited`] naming a copy that exited for any other reason, and how;
    /// [`CopiesError::Start`] when one could not be started again.
    pub fn revive(&mut self, node: &CgroupNode) -> Result<u32, CopiesError> {
        let mut restarted = 0;
        for k in 0..self.children.len() {
            let Ok(Some(status)) = self.children[k].try_wait() else {
                continue;
            };
            let killed = std::os::unix::process::ExitStatusExt::signal(&status) == Some(9);
            let oom = match node.oom_kills(self.vm) {
                Ok(kills) if kills > self.oom_kills_seen => {
                    self.oom_kills_seen += 1;
                    true
                }
                Ok(_) => false,
                Err(_) => killed,
            };
            if !oom {
                return Err(CopiesError::Exited {
                    what: self.what.clone(),
                    copy: k + 1,
                    status,
                    killed,
                });
            }
            let (child, ready) = self.spawn(node)?;
            self.children[k] = child;
            self.ready[k] = ready;
            restarted += 1;
        }
        Ok(restarted)
    }

    /// Waits until every copy is ready, at most `timeout`, restarting copies the OOM
    /// killer takes meanwhile ([`RunningCopies::revive`]).
    ///
    /// # Errors
    /// A message when a copy exits otherwise or the time runs out; [`NodeError::Interrupted`]
    /// on Ctrl-C.
    pub fn wait_ready(&mut self, node: &CgroupNode, timeout: Duration) -> Result<(), NodeError> {
        let end = Instant::now() + timeout;
        while self.ready() < self.children.len() as u32 {
            self.revive(node)?;
            if Instant::now() > end {
                return Err(NodeError::Backend(format!(
                    "{}: not ready after {} s",
                    self.what,
                    timeout.as_secs()
                )));
            }
            if !crate::interrupt::sleep(Duration::from_millis(50)) {
                return Err(NodeError::Interrupted);
            }
        }
        Ok(())
    }

    /// Kills the copies and waits for them (the processes they started are killed with
    /// their cgroup: [`CgroupNode::kill_all`]).
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
        self.ready.clear();
    }
}

impl Drop for RunningCopies {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long the copies may take to build their data.
pub const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// The node of a scenario on this machine's cgroups.
#[derive(Debug)]
pub struct CgroupBackend {
    node: CgroupNode,
    capacity_bytes: u64,
    step: Duration,
    names: Vec<String>,
    commands: Vec<StandInCommand>,
    copies: Vec<u32>,
    vcpus: Vec<u32>,
    demand_bytes: Vec<u64>,
    running: Vec<Option<RunningCopies>>,
    /// Per VM: copies started again after the OOM killer took them.
    oom_restarts: Vec<u64>,
    present: Vec<bool>,
    allocations: Vec<u64>,
    readings: Vec<VmReading>,
    faults_then: Vec<u64>,
    /// User CPU-seconds of each VM's processes at the start of the step.
    cpu_then: Vec<f64>,
    last: Instant,
}

impl CgroupBackend {
    /// Creates one cgroup per VM of `scenario` under `root`, prepares the stand-ins in
    /// `work_dir`, gives the VMs present at step 0 the initial allocation and starts their
    /// workloads (waiting until they have built their data). `footprint_bytes` is one
    /// copy's measured footprint per benchmark (reported as the VMs' demand).
    ///
    /// # Errors
    /// [`NodeError::Backend`] naming the cgroup, file or program that failed.
    pub fn create(
        scenario: &Scenario,
        root: &Path,
        version: CgroupVersion,
        work_dir: &Path,
        footprint_bytes: impl Fn(Benchmark) -> Option<u64>,
    ) -> Result<Self, NodeError> {
        Self::create_sized(scenario, root, version, work_dir, 1.0, footprint_bytes)
    }

    /// [`CgroupBackend::create`] with the stand-ins' sizes scaled by `size_scale` (1: their
    /// defaults; `footprint_bytes` should then give the scaled footprints).
    ///
    /// # Errors
    /// As [`CgroupBackend::create`].
    pub fn create_sized(
        scenario: &Scenario,
        root: &Path,
        version: CgroupVersion,
        work_dir: &Path,
        size_scale: f64,
        footprint_bytes: impl Fn(Benchmark) -> Option<u64>,
    ) -> Result<Self, NodeError> {
        let backend_err = |e: &dyn std::fmt::Display| NodeError::Backend(e.to_string());
        let n = scenario.vms.len();
        let names: Vec<String> = (1..=n).map(|k| format!("vm{k}")).collect();
        let node = CgroupNode::create(root, version, &names).map_err(|e| backend_err(&e))?;
        let mut commands = Vec::with_capacity(n);
        for vm in &scenario.vms {
            let dir = work_dir.join(vm.benchmark.name());
            commands.push(
                StandIn::default_for(vm.benchmark)
                    .scaled(size_scale)
                    .prepare(&dir)
                    .map_err(|e| NodeError::Backend(e.to_string()))?,
            );
        }
        let mut backend = Self {
            node,
            capacity_bytes: scenario.node.capacity_bytes,
            step: Duration::from_secs_f64(scenario.node.step_s),
            commands,
            copies: scenario.vms.iter().map(|v| v.copies).collect(),
            vcpus: scenario.vms.iter().map(|v| v.vcpus).collect(),
            demand_bytes: scenario
                .vms
                .iter()
                .map(|v| footprint_bytes(v.benchmark).unwrap_or(0) * u64::from(v.copies))
                .collect(),
            names,
            running: (0..n).map(|_| None).collect(),
            oom_restarts: vec![0; n],
            present: vec![false; n],
            allocations: vec![0; n],
            readings: vec![VmReading::default(); n],
            faults_then: vec![0; n],
            cpu_then: vec![0.0; n],
            last: Instant::now(),
        };
        let mut allocations = vec![0; n];
        for (j, vm) in scenario.vms.iter().enumerate() {
            if vm.present_at(0) {
                backend.set_present(j, true)?;
                allocations[j] = vm.initial_bytes(&scenario.node);
            }
        }
        backend.set_allocations(&allocations)?;
        for running in backend.running.iter_mut().flatten() {
            running.wait_ready(&backend.node, READY_TIMEOUT)?;
        }
        backend.mark();
        Ok(backend)
    }

    /// The node's cgroup directory.
    pub fn dir(&self) -> &Path {
        self.node.dir()
    }

    /// Per VM: how many of its workload's copies were started again after the kernel's OOM
    /// killer took them (each restart loses that copy's progress and rebuilds its data).
    pub fn oom_restarts(&self) -> &[u64] {
        &self.oom_restarts
    }

    /// Starts a new measurement interval now.
    fn mark(&mut self) {
        for j in 0..self.present.len() {
            self.faults_then[j] = self.node.major_faults(j).unwrap_or(0);
            self.cpu_then[j] = self.node.user_cpu_s(j).unwrap_or(0.0);
        }
        self.last = Instant::now();
    }
}

impl NodeBackend for CgroupBackend {
    fn capacity_bytes(&self) -> u64 {
        self.capacity_bytes
    }
    fn allocations(&self) -> &[u64] {
        &self.allocations
    }
    fn present(&self) -> &[bool] {
        &self.present
    }
    fn set_present(&mut self, vm: usize, present: bool) -> Result<(), NodeError> {
        let (Some(p), Some(slot)) = (self.present.get_mut(vm), self.running.get_mut(vm)) else {
            return Err(NodeError::BadAllocations(format!("no VM {vm}")));
        };
        *p = present;
        if present {
            let what = format!("{} ({})", self.names[vm], self.commands[vm].program);
            *slot = Some(RunningCopies::start(
                &self.node,
                vm,
                &self.commands[vm],
                self.copies[vm],
                what,
            )?);
            self.faults_then[vm] = self.node.major_faults(vm).unwrap_or(0);
            self.cpu_then[vm] = self.node.user_cpu_s(vm).unwrap_or(0.0);
        } else {
            *slot = None; // kills the copies; the limit stays until memory is given again
            self.node.kill_all(vm); // and what they started (a compiler of the gcc loop)
            self.allocations[vm] = 0;
            self.readings[vm] = VmReading::default();
        }
        Ok(())
    }
    fn vcpus(&self) -> Vec<u32> {
        self.vcpus.clone()
    }
    /// Shrinks first, then grows, so the limits never add up to more than the node has.
    /// A shrink the kernel cannot finish in time ([`CgroupNode::set_limit`]) leaves that VM
    /// with more than it was given; the growth of the others is then cut by as much, and
    /// [`NodeBackend::allocations`] reports the limits in effect.
    fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), NodeError> {
        check_allocations(allocations, &self.present, self.capacity_bytes)
            .map_err(NodeError::BadAllocations)?;
        let named = |names: &[String], j: usize, e: &dyn std::fmt::Display| {
            NodeError::Backend(format!("{}: {e}", names[j]))
        };
        for (j, &wanted) in allocations.iter().enumerate() {
            if wanted < self.allocations[j] {
                self.allocations[j] = if wanted == 0 {
                    0 // the VM left: its processes are gone, its memory is free
                } else {
                    self.node
                        .set_limit(j, wanted)
                        .map_err(|e| named(&self.names, j, &e))?
                        .min(self.allocations[j])
                };
            }
        }
        for (j, &wanted) in allocations.iter().enumerate() {
            if wanted > self.allocations[j] {
                let free = self.capacity_bytes.saturating_sub(self.allocations.iter().sum());
                let grant = wanted.min(self.allocations[j] + free);
                self.allocations[j] = self
                    .node
                    .set_limit(j, grant)
                    .map_err(|e| named(&self.names, j, &e))?;
            }
        }
        Ok(())
    }
    fn step(&mut self) -> Result<(), NodeError> {
        let wait = self.step.saturating_sub(self.last.elapsed());
        if !crate::interrupt::sleep(wait) {
            return Err(NodeError::Interrupted);
        }
        let seconds = self.last.elapsed().as_secs_f64().max(1e-3);
        for j in 0..self.present.len() {
            let Some(running) = self.running[j].as_mut().filter(|_| self.present[j]) else {
                self.readings[j] = VmReading::default();
                continue;
            };
            let restarted = running.revive(&self.node)?;
            if restarted > 0 {
                self.oom_restarts[j] += u64::from(restarted);
                eprintln!(
                    "warning: {}: the OOM killer took {restarted} copy(ies) of its workload at a limit of {} MiB (is there swap?); started again ({} restart(s) so far)",
                    self.names[j],
                    self.allocations[j] >> 20,
                    self.oom_restarts[j]
                );
            }
            let faults = self
                .node
                .major_faults(j)
                .map_err(|e| NodeError::Backend(e.to_string()))?;
            let rate = faults.saturating_sub(self.faults_then[j]) as f64 / seconds;
            let cpu = self.node.user_cpu_s(j).unwrap_or(self.cpu_then[j]);
            self.readings[j] = VmReading {
                miss_rate_pages_per_s: rate,
                true_miss_rate_pages_per_s: rate,
                allocation_bytes: self.allocations[j],
                demand_bytes: self.demand_bytes[j],
                progress_cpu_s: (cpu - self.cpu_then[j]).max(0.0),
            };
        }
        self.mark();
        Ok(())
    }
    fn readings(&self) -> &[VmReading] {
        &self.readings
    }
    fn start_episode(&mut self) -> Result<(), NodeError> {
        Ok(()) // a real node keeps its allocations: episodes are reporting windows
    }
}

/// Memory this machine can still give, bytes (`MemAvailable` in `/proc/meminfo`).
pub fn available_bytes() -> Option<u64> {
    super::cgroup::meminfo_bytes("MemAvailable")
}

/// A directory for the stand-ins' generated inputs under `parent`, removed on drop.
///
/// # Errors
/// [`OutputError`] naming the directory.
pub fn work_dir(parent: &Path) -> Result<tempfile::TempDir, OutputError> {
    let named = |source| OutputError {
        path: parent.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(parent).map_err(named)?;
    tempfile::Builder::new()
        .prefix("cavmem-standins-")
        .tempdir_in(parent)
        .map_err(named)
}

/// The default place for stand-in inputs and swap files: `results/live-tmp`.
pub fn default_scratch() -> PathBuf {
    PathBuf::from("results/live-tmp")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::backend::cgroup::tests_support::{controller, swap};
    use crate::backend::cgroup::{CgroupNode, CgroupVersion};
    use crate::backend::node_backend::NodeBackend;

    /// A copy the OOM killer takes is started again and counted; a copy that exits by
    /// itself is an error naming it and its exit status (root with cgroups). The cgroup may
    /// not swap, so a program touching 64 MiB under a 16 MiB limit is always killed.
    #[test]
    #[ignore = "needs root and a cgroup memory controller (CI runs it)"]
    fn running_copies_restart_what_the_oom_killer_took_and_report_other_exits() {
        let (root, version) = controller();
        let node = CgroupNode::create(&root, version, &["oom".to_string(), "exits".to_string()]).unwrap();
        let (file, no_swap) = match version {
            CgroupVersion::V1 => ("memory.swappiness", "0"),
            CgroupVersion::V2 => ("memory.swap.max", "0"),
        };
        std::fs::write(node.group(0).unwrap().join(file), no_swap).unwrap();
        node.set_limit(0, 16 << 20).unwrap();
        let hog = StandInCommand {
            program: "perl".into(),
            args: vec![
                "-e".into(),
                "$| = 1; print \"ready\\n\"; my $x = \"a\" x (64 << 20); sleep 60".into(),
            ],
        };
        let mut running = RunningCopies::start(&node, 0, &hog, 1, "hog".into()).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        let mut restarted = 0;
        while restarted < 2 && Instant::now() < end {
            restarted += running.revive(&node).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            restarted >= 2,
            "the OOM killer took the hog and it was started again: {restarted}"
        );
        assert!(node.oom_kills(0).unwrap() >= 2);

        let quitter = StandInCommand {
            program: "sh".into(),
            args: vec!["-c".into(), "echo ready; exit 3".into()],
        };
        let mut running = RunningCopies::start(&node, 1, &quitter, 1, "vm2 (sh)".into()).unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        let err = loop {
            match running.revive(&node) {
                Err(e) => break e,
                Ok(n) => assert_eq!(n, 0, "not the OOM killer: nothing to restart"),
            }
            assert!(Instant::now() < end, "the exit was not seen");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            matches!(
                &err,
                CopiesError::Exited {
                    copy: 1,
                    killed: false,
                    ..
                }
            ),
            "{err}"
        );
        let err = err.to_string();
        assert!(
            err.contains("vm2 (sh) copy 1 exited") && err.contains('3'),
            "{err}"
        );
    }

    /// Two VMs of one small perlbench stand-in each on this machine's cgroups (root, swap):
    /// limits follow the allocations, the starved VM faults and the
    /// roomy one does not, and dropping the backend removes the cgroups and processes.
    #[test]
    #[ignore = "needs root, a cgroup memory controller and a swap file (CI runs it)"]
    fn live_backend_applies_allocations_and_measures_faults() {
        let (root, version) = controller();
        let _one_at_a_time = crate::backend::cgroup::tests_support::exclusive();
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _swap = swap(dir.path());
        let text = "name = \"t\"\n[node]\ncapacity = \"200 MiB\"\nfloor = \"16 MiB\"\ninitial_allocation = \"100 MiB\"\nstep = \"1 s\"\nsteps_per_episode = 5\n[[vm]]\nworkload = \"perlbench\"\ncopies = 1\n[[vm]]\nworkload = \"perlbench\"\ncopies = 1\n";
        let scenario = Scenario::parse(Path::new("t.toml"), text).unwrap();
        let small = |_: Benchmark| Some(50 << 20);
        let mut node =
            CgroupBackend::create_sized(&scenario, &root, version, dir.path(), 0.5, small).unwrap();
        let cgroup_dir = node.dir().to_path_buf();
        assert_eq!(node.present(), &[true, true]);
        assert_eq!(node.allocations(), &[100 << 20, 100 << 20]);
        node.set_allocations(&[32 << 20, 168 << 20]).unwrap();
        assert!(
            node.set_allocations(&[100 << 20, 101 << 20]).is_err(),
            "over capacity"
        );
        node.step().unwrap();
        // A step in which the squeezed copy ran throughout: the OOM killer can take a
        // thrashing copy even with swap (docs/real-node.md), and the copy started again
        // rebuilds its data before it faults again.
        let mut r = Vec::new();
        for _ in 0..15 {
            let restarts = node.oom_restarts()[0];
            node.step().unwrap();
            r = node.readings().to_vec();
            if node.oom_restarts()[0] == restarts && r[0].miss_rate_pages_per_s > 100.0 {
                break;
            }
        }
        assert_eq!(r[0].allocation_bytes, 32 << 20);
        assert_eq!(r[0].demand_bytes, 50 << 20);
        assert!(
            r[0].miss_rate_pages_per_s > 100.0
                && r[1].miss_rate_pages_per_s < r[0].miss_rate_pages_per_s / 10.0,
            "the squeezed VM faults, the roomy one hardly: {r:?}"
        );
        assert!(
            r[1].progress_cpu_s > r[0].progress_cpu_s,
            "the roomy VM progresses faster (user CPU-s per step): {r:?}"
        );
        node.set_present(0, false).unwrap();
        node.step().unwrap();
        assert_eq!(
            node.readings()[0],
            VmReading::default(),
            "a VM that left reads nothing"
        );
        drop(node);
        assert!(!cgroup_dir.exists(), "cgroups removed");
    }
}

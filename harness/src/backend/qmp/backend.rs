//! A node of QEMU VMs: each VM's allocation is its virtio-balloon target (QMP `balloon`),
//! the size in effect is what `query-balloon` reports, and its miss rate is the per-step
//! difference of the guest's `stat-major-faults` (QOM `guest-stats` of the balloon device,
//! polled by QEMU every `stats_interval_s`).
//!
//! Memory in flight is accounted for: a VM counts as holding the larger of its target and
//! its size in effect, so memory a shrinking VM has not yet released is not given to
//! another. Safety for real hosts: per-VM minimum and maximum, a limit on the change per
//! step, and a dry run that decides and logs without applying.
//!
//! A VM whose QEMU goes away leaves the node (its memory returns to the pool); when its
//! socket answers again it rejoins.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::{QmpClient, QmpError};
use crate::backend::node_backend::{NodeBackend, NodeError, check_allocations};
use crate::scenario::vm_label;
use crate::sim::VmReading;

/// One VM of the node.
#[derive(Clone, Debug, PartialEq)]
pub struct QmpVmSpec {
    /// Its QMP socket (`-qmp unix:PATH,server=on,wait=off`).
    pub socket: PathBuf,
    /// Never less than this, bytes.
    pub min_bytes: u64,
    /// Never more than this, bytes (the VM's `-m`, or less).
    pub max_bytes: u64,
    /// Its virtual CPUs (they scale the miss-rate bound).
    pub vcpus: u32,
}

/// How the node is driven.
#[derive(Clone, Debug, PartialEq)]
pub struct QmpOptions {
    /// Memory the VMs share, bytes.
    pub capacity_bytes: u64,
    /// Wall time per step.
    pub step: Duration,
    /// Decide and log, but never send `balloon`.
    pub dry_run: bool,
    /// Largest change of one VM's target per step, bytes.
    pub max_change_bytes: u64,
    /// How often QEMU polls the guest's statistics, seconds.
    pub stats_interval_s: u32,
    /// How long to wait for QEMU's replies.
    pub timeout: Duration,
    /// Also print each log line to stderr as it happens.
    pub echo: bool,
}

/// A connected VM.
#[derive(Debug)]
struct Connected {
    client: QmpClient<std::os::unix::net::UnixStream>,
    /// QOM path of its balloon device.
    balloon: String,
    /// `stat-major-faults` at the start of the step (`None`: not reported yet).
    faults_then: Option<u64>,
}

/// The node.
#[derive(Debug)]
pub struct QmpBackend {
    specs: Vec<QmpVmSpec>,
    options: QmpOptions,
    vms: Vec<Option<Connected>>,
    present: Vec<bool>,
    /// Targets asked for, bytes.
    targets: Vec<u64>,
    /// Sizes in effect (`query-balloon`'s `actual`), bytes.
    actual: Vec<u64>,
    /// What each VM counts as holding: max(target, actual).
    held: Vec<u64>,
    readings: Vec<VmReading>,
    last: Instant,
    /// What the node did that the user should know (dry-run decisions, VMs leaving).
    log: Vec<String>,
    /// Why each VM could not join last time, if it could not.
    last_refusal: Vec<Option<String>>,
}

impl QmpBackend {
    /// A node of `specs`; no VM is connected until it joins ([`NodeBackend::set_present`]).
    pub fn new(specs: Vec<QmpVmSpec>, options: QmpOptions) -> Self {
        let n = specs.len();
        Self {
            specs,
            options,
            vms: (0..n).map(|_| None).collect(),
            present: vec![false; n],
            targets: vec![0; n],
            actual: vec![0; n],
            held: vec![0; n],
            readings: vec![VmReading::default(); n],
            last: Instant::now(),
            log: Vec::new(),
            last_refusal: vec![None; n],
        }
    }

    fn note(&mut self, line: String) {
        if self.options.echo {
            eprintln!("{line}");
        }
        self.log.push(line);
    }

    /// Lines logged since the last call (dry-run decisions, VMs leaving or joining).
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// Sizes in effect, bytes.
    pub fn actual_bytes(&self) -> &[u64] {
        &self.actual
    }

    fn connect(&self, vm: usize) -> Result<Connected, QmpError> {
        let spec = &self.specs[vm];
        let mut client = QmpClient::connect(&spec.socket, self.options.timeout)?;
        let balloon = find_balloon(&mut client)?;
        client.execute(
            "qom-set",
            Some(json!({
                "path": balloon,
                "property": "guest-stats-polling-interval",
                "value": self.options.stats_interval_s,
            })),
        )?;
        Ok(Connected {
            client,
            balloon,
            faults_then: None,
        })
    }

    /// VM `vm` left (its QEMU went away): its memory returns to the pool.
    fn lose(&mut self, vm: usize, why: &QmpError) {
        self.note(format!("{} left the node: {why}", vm_label(vm)));
        self.vms[vm] = None;
        self.present[vm] = false;
        self.targets[vm] = 0;
        self.actual[vm] = 0;
        self.held[vm] = 0;
        self.readings[vm] = VmReading::default();
    }

    /// Asks VM `vm`'s balloon for `bytes` (or logs it, in a dry run).
    fn ask(&mut self, vm: usize, bytes: u64) {
        if bytes == self.targets[vm] {
            return; // asked already; the balloon is on its way
        }
        self.targets[vm] = bytes;
        self.held[vm] = bytes.max(self.actual[vm]);
        if self.options.dry_run {
            self.note(format!("dry run: {} balloon {bytes} B", vm_label(vm)));
            return;
        }
        let Some(c) = self.vms[vm].as_mut() else { return };
        if let Err(e) = c.client.execute("balloon", Some(json!({ "value": bytes }))) {
            self.lose(vm, &e);
        }
    }

    /// Reads VM `vm`'s size in effect and fault counter; returns the faults since the
    /// last call.
    fn measure(&mut self, vm: usize) -> Result<u64, QmpError> {
        let Some(c) = self.vms[vm].as_mut() else {
            return Ok(0);
        };
        let balloon = c.client.execute("query-balloon", None)?;
        let stats = c.client.execute(
            "qom-get",
            Some(json!({ "path": c.balloon, "property": "guest-stats" })),
        )?;
        for event in c.client.take_events() {
            if event.name == "SHUTDOWN" {
                return Err(QmpError {
                    peer: self.specs[vm].socket.display().to_string(),
                    during: "measure".into(),
                    kind: super::client::QmpErrorKind::Disconnected,
                });
            }
        }
        let actual = balloon
            .get("actual")
            .and_then(Value::as_u64)
            .unwrap_or(self.actual[vm]);
        // QEMU reports -1 for a statistic the guest has not given (yet).
        let faults = stats["stats"]["stat-major-faults"].as_u64();
        let delta = match (c.faults_then, faults) {
            (Some(then), Some(now)) => now.saturating_sub(then),
            _ => 0,
        };
        if faults.is_some() {
            c.faults_then = faults;
        }
        self.actual[vm] = actual;
        self.held[vm] = self.targets[vm].max(actual);
        Ok(delta)
    }
}

/// The QOM path of the VM's virtio-balloon device: the first child of
/// `/machine/peripheral` (devices with an `id`) or `/machine/peripheral-anon` whose type is
/// a virtio balloon.
fn find_balloon(client: &mut QmpClient<std::os::unix::net::UnixStream>) -> Result<String, QmpError> {
    for parent in ["/machine/peripheral", "/machine/peripheral-anon"] {
        let children = client.execute("qom-list", Some(json!({ "path": parent })))?;
        for child in children.as_array().into_iter().flatten() {
            let ty = child["type"].as_str().unwrap_or("");
            if ty.starts_with("child<virtio-balloon") {
                return Ok(format!("{parent}/{}", child["name"].as_str().unwrap_or("")));
            }
        }
    }
    Err(QmpError {
        peer: String::new(),
        during: "qom-list".into(),
        kind: super::client::QmpErrorKind::Protocol(
            "no virtio-balloon device (start QEMU with -device virtio-balloon-pci,id=balloon0)".into(),
        ),
    })
}

impl NodeBackend for QmpBackend {
    fn capacity_bytes(&self) -> u64 {
        self.options.capacity_bytes
    }
    fn allocations(&self) -> &[u64] {
        &self.held
    }
    fn present(&self) -> &[bool] {
        &self.present
    }
    fn set_present(&mut self, vm: usize, present: bool) -> Result<(), NodeError> {
        if vm >= self.specs.len() {
            return Err(NodeError::BadAllocations(format!("no VM {vm}")));
        }
        if !present {
            self.vms[vm] = None;
            self.present[vm] = false;
            self.targets[vm] = 0;
            self.actual[vm] = 0;
            self.held[vm] = 0;
            return Ok(());
        }
        // Not there (yet): it stays off the node and is tried again later (the reason is
        // logged when it changes, not at every retry).
        let c = match self.connect(vm) {
            Ok(c) => c,
            Err(e) => {
                let why = format!("{} not on the node: {e}", vm_label(vm));
                if self.last_refusal[vm].as_deref() != Some(why.as_str()) {
                    self.last_refusal[vm] = Some(why.clone());
                    self.note(why);
                }
                return Ok(());
            }
        };
        self.last_refusal[vm] = None;
        self.vms[vm] = Some(c);
        if let Err(e) = self.measure(vm) {
            self.lose(vm, &e);
            return Ok(());
        }
        // It joins with the memory it has, if that fits; otherwise it waits.
        let actual = self.actual[vm];
        self.held[vm] = 0;
        let free = self.options.capacity_bytes.saturating_sub(self.held.iter().sum());
        if actual > free {
            self.actual[vm] = 0;
            self.note(format!(
                "{} holds {actual} B but only {free} B are free: it joins when it fits",
                vm_label(vm)
            ));
            self.vms[vm] = None;
            return Ok(());
        }
        self.present[vm] = true;
        self.targets[vm] = actual;
        self.held[vm] = actual;
        self.note(format!(
            "{} joined with {actual} B ({})",
            vm_label(vm),
            self.specs[vm].socket.display()
        ));
        Ok(())
    }
    fn vcpus(&self) -> Vec<u32> {
        self.specs.iter().map(|s| s.vcpus).collect()
    }
    /// Shrinks first, then grows by what is free counting memory still in flight; each
    /// target clamped to the VM's minimum and maximum and to the change limit per step.
    fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), NodeError> {
        check_allocations(allocations, &self.present, self.options.capacity_bytes)
            .map_err(NodeError::BadAllocations)?;
        let step = self.options.max_change_bytes.max(1);
        for (j, &wanted) in allocations.iter().enumerate() {
            if self.present[j] && wanted < self.held[j] {
                let spec = &self.specs[j];
                let target = wanted.max(self.held[j].saturating_sub(step)).max(spec.min_bytes);
                self.ask(j, target.min(self.held[j]));
            }
        }
        for (j, &wanted) in allocations.iter().enumerate() {
            if self.present[j] && wanted > self.held[j] {
                let free = self.options.capacity_bytes.saturating_sub(self.held.iter().sum());
                let spec = &self.specs[j];
                let target = wanted
                    .min(self.held[j] + step)
                    .min(spec.max_bytes)
                    .min(self.held[j] + free);
                if target > self.held[j] {
                    self.ask(j, target);
                }
            }
        }
        Ok(())
    }
    fn step(&mut self) -> Result<(), NodeError> {
        let wait = self.options.step.saturating_sub(self.last.elapsed());
        if !crate::interrupt::sleep(wait) {
            return Err(NodeError::Interrupted);
        }
        let seconds = self.last.elapsed().as_secs_f64().max(1e-3);
        self.last = Instant::now();
        for j in 0..self.specs.len() {
            if !self.present[j] {
                self.readings[j] = VmReading::default();
                continue;
            }
            match self.measure(j) {
                Ok(faults) => {
                    let rate = faults as f64 / seconds;
                    self.readings[j] = VmReading {
                        miss_rate_pages_per_s: rate,
                        true_miss_rate_pages_per_s: rate,
                        allocation_bytes: self.actual[j],
                        demand_bytes: 0,
                        progress_cpu_s: 0.0,
                    };
                }
                Err(e) => self.lose(j, &e),
            }
        }
        Ok(())
    }
    fn readings(&self) -> &[VmReading] {
        &self.readings
    }
    fn start_episode(&mut self) -> Result<(), NodeError> {
        Ok(()) // a real node keeps its allocations: episodes are reporting windows
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{FakeGuest, FakeQemu};
    use super::*;

    const MIB: u64 = 1 << 20;

    fn options(dry_run: bool) -> QmpOptions {
        QmpOptions {
            capacity_bytes: 2048 * MIB,
            step: Duration::from_millis(1),
            dry_run,
            max_change_bytes: 512 * MIB,
            stats_interval_s: 1,
            timeout: Duration::from_secs(5),
            echo: false,
        }
    }

    fn spec(socket: &std::path::Path) -> QmpVmSpec {
        QmpVmSpec {
            socket: socket.to_path_buf(),
            min_bytes: 256 * MIB,
            max_bytes: 1536 * MIB,
            vcpus: 2,
        }
    }

    fn guest() -> FakeGuest {
        FakeGuest {
            actual_bytes: 1024 * MIB,
            speed_bytes: 128 * MIB,
            working_set_bytes: 900 * MIB,
            faults_per_query: 500,
        }
    }

    /// A node of two fake VMs, A with [`guest`] and B with `b`, both asked to join (B
    /// joins if it fits). The directory outlives the fakes when the tuple is bound in order.
    fn two_vm_node(b: FakeGuest) -> (tempfile::TempDir, FakeQemu, FakeQemu, QmpBackend) {
        let dir = tempfile::tempdir().unwrap();
        let a = FakeQemu::start(&dir.path().join("a.sock"), guest());
        let b = FakeQemu::start(&dir.path().join("b.sock"), b);
        let mut node = QmpBackend::new(vec![spec(&a.socket), spec(&b.socket)], options(false));
        node.set_present(0, true).unwrap();
        node.set_present(1, true).unwrap();
        (dir, a, b, node)
    }

    #[test]
    fn qmp_node_moves_memory_only_once_it_is_released() {
        let (_dir, a, b, mut node) = two_vm_node(guest());
        assert_eq!(node.present(), &[true, true]);
        assert_eq!(
            node.allocations(),
            &[1024 * MIB, 1024 * MIB],
            "they join with what they have"
        );
        // A gives 512 MiB to B: B may grow only as A's balloon really releases it.
        node.set_allocations(&[512 * MIB, 1536 * MIB]).unwrap();
        assert_eq!(a.state.lock().unwrap().balloon_commands, vec![512 * MIB]);
        assert!(
            b.state.lock().unwrap().balloon_commands.is_empty(),
            "nothing free yet"
        );
        for _ in 0..4 {
            node.step().unwrap();
            let held: u64 = node.allocations().iter().sum();
            assert!(held <= 2048 * MIB, "never more than the node has: {held}");
            node.set_allocations(&[512 * MIB, 1536 * MIB]).unwrap();
        }
        assert_eq!(node.actual_bytes()[0], 512 * MIB, "A released it");
        assert_eq!(
            b.state.lock().unwrap().balloon_commands.last(),
            Some(&(1536 * MIB))
        );
        // A below its working set faults; the rate is per second of the step.
        node.step().unwrap();
        assert!(node.readings()[0].miss_rate_pages_per_s > 0.0);
        assert_eq!(node.readings()[1].miss_rate_pages_per_s, 0.0);
        assert_eq!(node.readings()[0].allocation_bytes, 512 * MIB);
    }

    #[test]
    fn qmp_node_keeps_each_vm_within_its_bounds_and_the_change_limit() {
        let (_dir, a, b, mut node) = two_vm_node(FakeGuest {
            speed_bytes: 4096 * MIB,
            ..guest()
        });
        // Below A's minimum, in more than one change limit.
        node.set_allocations(&[100 * MIB, 1024 * MIB]).unwrap();
        assert_eq!(
            a.state.lock().unwrap().balloon_commands,
            vec![512 * MIB],
            "one step of at most 512 MiB"
        );
        for _ in 0..4 {
            node.step().unwrap();
        }
        node.set_allocations(&[100 * MIB, 1024 * MIB]).unwrap();
        assert_eq!(
            a.state.lock().unwrap().balloon_commands.last(),
            Some(&(256 * MIB)),
            "the minimum"
        );
        node.step().unwrap();
        node.step().unwrap();
        // Above B's maximum.
        node.set_allocations(&[256 * MIB, 1792 * MIB]).unwrap();
        assert_eq!(
            b.state.lock().unwrap().balloon_commands,
            vec![1536 * MIB],
            "the maximum"
        );
        assert!(
            node.set_allocations(&[2048 * MIB, 1024 * MIB]).is_err(),
            "over capacity"
        );
    }

    #[test]
    fn qmp_node_dry_run_decides_without_applying() {
        let dir = tempfile::tempdir().unwrap();
        let a = FakeQemu::start(&dir.path().join("a.sock"), guest());
        let mut node = QmpBackend::new(vec![spec(&a.socket)], options(true));
        node.set_present(0, true).unwrap();
        node.set_allocations(&[768 * MIB]).unwrap();
        node.step().unwrap();
        assert!(a.state.lock().unwrap().balloon_commands.is_empty());
        assert_eq!(node.actual_bytes()[0], 1024 * MIB);
        assert!(
            node.take_log()
                .iter()
                .any(|l| l == &format!("dry run: VM 0 balloon {} B", 768 * MIB)),
            "the decision is logged"
        );
    }

    #[test]
    fn qmp_node_vms_leave_when_qemu_goes_and_rejoin_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("a.sock");
        let a = FakeQemu::start(&socket, guest());
        let mut node = QmpBackend::new(vec![spec(&socket)], options(false));
        node.set_present(0, true).unwrap();
        assert_eq!(node.present(), &[true]);
        drop(a);
        node.step().unwrap();
        assert_eq!(node.present(), &[false], "gone");
        assert_eq!(node.allocations(), &[0], "its memory is back in the pool");
        assert!(
            node.take_log()
                .iter()
                .any(|l| l.starts_with("VM 0 left the node"))
        );
        node.set_present(0, true).unwrap();
        assert_eq!(node.present(), &[false], "no socket: still away");
        node.set_present(0, true).unwrap();
        let refusals: Vec<String> = node
            .take_log()
            .into_iter()
            .filter(|l| l.contains("not on the node"))
            .collect();
        assert_eq!(
            refusals.len(),
            1,
            "the reason is logged once, not at every retry: {refusals:?}"
        );
        let _back = FakeQemu::start(&socket, guest());
        node.set_present(0, true).unwrap();
        assert_eq!(node.present(), &[true], "a new socket joins");
    }

    #[test]
    fn qmp_node_too_big_to_fit_waits() {
        let (_dir, _a, _b, node) = two_vm_node(FakeGuest {
            actual_bytes: 1536 * MIB,
            ..guest()
        });
        assert_eq!(node.present(), &[true, false]);
        assert_eq!(node.allocations(), &[1024 * MIB, 0]);
    }

    /// The run loop on fake QEMU VMs: agents act, the node keeps within its capacity, and
    /// the run writes its records.
    #[test]
    fn qmp_node_runs_the_agents_loop() {
        use crate::eval::formulation::FormulationName;
        use crate::eval::run::{RunSpec, make_agents, run_on};
        let dir = tempfile::tempdir().unwrap();
        let a = FakeQemu::start(&dir.path().join("a.sock"), guest());
        let b = FakeQemu::start(
            &dir.path().join("b.sock"),
            FakeGuest {
                working_set_bytes: 0,
                ..guest()
            },
        );
        let text = "name = \"q\"\n[node]\ncapacity = \"2 GiB\"\nfloor = \"256 MiB\"\nstep = \"10 ms\"\nsteps_per_episode = 10\n[[vm]]\nworkload = \"perlbench\"\ncopies = 1\n[[vm]]\nworkload = \"gcc\"\ncopies = 1\n";
        let scenario = crate::scenario::Scenario::parse(std::path::Path::new("q.toml"), text).unwrap();
        for policy in [
            cavmem_core::agent::PolicyKind::EqualSplit,
            cavmem_core::agent::PolicyKind::Ddpg,
        ] {
            let run_spec = RunSpec {
                scenario: scenario.clone(),
                policy: policy.into(),
                formulation: FormulationName::Raw,
                episodes: 2,
                seed: 3,
                hyper: crate::agents::hyperparams_for_run(20),
                learn: true,
                agents_at: crate::agents::AgentsAt::Inprocess,
            };
            let mut node = QmpBackend::new(
                vec![spec(&a.socket), spec(&b.socket)],
                QmpOptions {
                    step: Duration::from_millis(10),
                    ..options(false)
                },
            );
            let result = std::thread::Builder::new()
                .stack_size(64 << 20)
                .spawn(move || {
                    let mut agents = make_agents(&run_spec).unwrap();
                    run_on(&run_spec, &mut node, &mut agents, |_| {}).unwrap()
                })
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(result.records.len(), 4, "{policy:?}");
            assert!(!result.interrupted);
            for p in &result.trace {
                assert!(p.allocation_bytes.iter().sum::<u64>() <= 2048 * MIB, "{p:?}");
                assert!(p.allocation_bytes.iter().all(|x| *x >= 256 * MIB), "{p:?}");
            }
        }
    }
}

//! Scenario files: a node and its VMs, in TOML, every value with its unit.
//!
//! ```toml
//! name = "s1"
//! description = "VM 0, VM 1: perlbench"
//! [node]
//! capacity = "6 GiB"            # memory the VMs share
//! floor = "384 MiB"             # Bid Analyzer floor (paper, section 3.2)
//! granularity = "1 MiB"         # allocation changes are multiples of this
//! initial_allocation = "1 GiB"  # per VM at the start of every episode (paper, section 4)
//! step = "1 s"                  # simulated time per step
//! steps_per_episode = 100       # paper, section 4
//! fault_service_time = "100 us" # one major fault (NVMe/SATA SSD: 80–200 µs)
//! measurement_noise = 0.0       # relative σ of multiplicative noise on miss rates
//! share = "proportional"        # Bid Analyzer sharing rule: proportional | equal
//! # calibration = "node.toml"   # a node calibration (`cavmem calibrate-node`), relative to this file
//! [[vm]]
//! workload = "perlbench"        # perlbench | gcc | bzip2
//! copies = 6                    # SPECrate-style copies in the VM
//! vcpus = 6                     # virtual CPUs (scales the miss-rate bound)
//! copy_start = "in_step"        # in_step | staggered
//! start = "random"              # random (seeded) | beginning
//! curve = "calibrated"          # calibrated (measured) | node (node.calibration's VM of this index) | assumed | power_law | step
//! inputs = "spec"               # spec (SPEC's inputs) | standin (the live stand-in's footprint; with curve = "node" the default)
//! # fault_service_time = "measured"  # this VM's: a duration, or its stand-in's measured stall (node's with curve = "node")
//! # alpha = 0.5                 # power-law exponent (assumed curves only)
//! # intensity_pages_per_s = 50000.0  # their scale (assumed curves only)
//! arrive = 0                    # step of each episode at which the VM joins the node
//! # leave = 80                  # step at which it leaves (default: it stays)
//! # min = "1 GiB"               # reservation: never below it (default: node.floor)
//! # max = "4 GiB"               # limit: never above it (default: none)
//! # weight = 2                  # share of contended memory (default 1)
//! ```
//!
//! Unknown keys, values without or with wrong units, and impossible values are errors
//! that name the file, the key and the reason.

use std::path::{Path, PathBuf};

use cavmem_core::bid::{ShareRule, VmTerms};
use serde::Deserialize;

use crate::quantity::{parse_bytes, parse_seconds};
use crate::sim::calibration;
use crate::sim::node_calibration::{self, TwinVm};
use crate::sim::workload::{Benchmark, Curve, CurveKind, InputSet, InputSpec};

/// An error in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {key}: {reason}", file.display())]
pub struct ScenarioError {
    /// The file.
    pub file: PathBuf,
    /// The key, as a TOML path (`node.capacity`, `vm[1].copies`), or `(file)`/`(syntax)`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// How the copies inside one VM are placed in their phase sequence (`copy_start`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyStart {
    /// All copies start together, as SPECrate runs them (default).
    #[default]
    InStep,
    /// Copies spread evenly over the sequence.
    Staggered,
}

/// Where a VM starts in its phase sequence (`start`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// A seeded uniform position (default).
    #[default]
    Random,
    /// The first input.
    Beginning,
}

/// The node of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSpec {
    /// Memory shared by the VMs, bytes.
    pub capacity_bytes: u64,
    /// Minimum allocation per VM, bytes.
    pub floor_bytes: u64,
    /// Allocation granularity, bytes.
    pub granularity_bytes: u64,
    /// Allocation of each VM at the start of an episode, bytes.
    pub initial_allocation_bytes: u64,
    /// Simulated time per step, seconds.
    pub step_s: f64,
    /// Steps per episode.
    pub steps_per_episode: u32,
    /// Service time of one major fault, seconds.
    pub fault_service_time_s: f64,
    /// Relative standard deviation of multiplicative measurement noise on miss rates.
    pub measurement_noise: f64,
    /// Bid Analyzer sharing rule.
    pub share: ShareRule,
}

/// One VM of a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct VmSpec {
    /// The benchmark it runs repeatedly.
    pub benchmark: Benchmark,
    /// Copies running at once.
    pub copies: u32,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Placement of the copies.
    pub copy_start: CopyStart,
    /// Start position in the sequence.
    pub start: StartPosition,
    /// Miss-rate curve.
    pub curve: Curve,
    /// Which input sequence the copies run (`inputs`).
    pub input_set: InputSet,
    /// That sequence: SPEC's inputs, or the stand-in's one input.
    pub inputs: &'static [InputSpec],
    /// How long one major fault stalls a copy, seconds (`fault_service_time`: the VM's own,
    /// else the node's).
    pub fault_service_time_s: f64,
    /// CPU-seconds per second a copy runs when it does not fault: 1, or with `curve =
    /// "node"` what a copy got on the measured node beside the other VMs.
    pub cpu_per_copy: f64,
    /// Step of each episode at which the VM joins the node (0: present from the start).
    pub arrive_step: u32,
    /// Step of each episode at which it leaves, if it does; its memory returns to the pool.
    pub leave_step: Option<u32>,
    /// Reservation, limit and weight (`min`, `max`, `weight`; [`VmTerms::DEFAULT`] when
    /// none is given).
    pub terms: VmTerms,
}

impl VmSpec {
    /// The least the VM ever holds while present: its reservation, or the node's floor
    /// where that is larger.
    pub fn floor_bytes(&self, node: &NodeSpec) -> u64 {
        self.terms.floor_bytes(node.floor_bytes)
    }

    /// What the VM holds when an episode starts with it: the node's initial allocation,
    /// raised to its floor and capped at its limit.
    pub fn initial_bytes(&self, node: &NodeSpec) -> u64 {
        node.initial_allocation_bytes
            .max(self.floor_bytes(node))
            .min(self.terms.max_bytes)
    }

    /// Whether the VM is on the node at `step` of an episode (`arrive ≤ step < leave`).
    pub fn present_at(&self, step: u32) -> bool {
        step >= self.arrive_step && self.leave_step.is_none_or(|leave| step < leave)
    }
}

/// How every output names the VM at `index` of a scenario's `[[vm]]` list: `VM 0`, `VM 1`, …
/// Counted from 0 like the `vm` column of episodes.csv and summary.json and the C ABI's
/// indices (the paper's VM1 and VM2 are `VM 0` and `VM 1`).
///
/// ```
/// assert_eq!(cavmem_harness::scenario::vm_label(0), "VM 0");
/// ```
pub fn vm_label(index: usize) -> String {
    format!("VM {index}")
}

/// A parsed, checked scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Short name (`s1`).
    pub name: String,
    /// One line of description.
    pub description: String,
    /// The node.
    pub node: NodeSpec,
    /// The VMs.
    pub vms: Vec<VmSpec>,
    /// The file's text, for reports.
    pub source: String,
    /// The node calibration's text when `[node] calibration` names one (part of what the
    /// scenario simulates: a changed calibration is a changed node).
    pub calibration_source: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    description: Option<String>,
    node: RawNode,
    vm: Vec<RawVm>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    capacity: String,
    floor: Option<String>,
    granularity: Option<String>,
    initial_allocation: Option<String>,
    step: Option<String>,
    steps_per_episode: Option<u32>,
    fault_service_time: Option<String>,
    measurement_noise: Option<f64>,
    share: Option<ShareName>,
    calibration: Option<String>,
}

/// `node.share`: the Bid Analyzer's sharing rule.
#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ShareName {
    #[default]
    Proportional,
    Equal,
}

/// `vm.curve`: the miss-rate curve.
#[derive(Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CurveName {
    #[default]
    Calibrated,
    Assumed,
    PowerLaw,
    Step,
    Node,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVm {
    workload: Benchmark,
    copies: Option<u32>,
    vcpus: Option<u32>,
    copy_start: Option<CopyStart>,
    start: Option<StartPosition>,
    curve: Option<CurveName>,
    inputs: Option<InputSet>,
    fault_service_time: Option<String>,
    alpha: Option<f64>,
    intensity_pages_per_s: Option<f64>,
    arrive: Option<u32>,
    leave: Option<u32>,
    min: Option<String>,
    max: Option<String>,
    weight: Option<u32>,
}

/// Default Bid Analyzer floor per VM: 384 MiB (paper, section 3.2).
pub const DEFAULT_FLOOR_BYTES: u64 = cavmem_core::units::DEFAULT_FLOOR_BYTES;
/// Default allocation granularity: 1 MiB.
pub const DEFAULT_GRANULARITY_BYTES: u64 = cavmem_core::units::MIB;
/// Default allocation of every VM at the start of an episode: 1 GiB (paper, section 4).
pub const DEFAULT_INITIAL_ALLOCATION_BYTES: u64 = cavmem_core::units::GIB;
/// Default simulated time per step: 1 s.
pub const DEFAULT_STEP_S: f64 = 1.0;
/// Default steps per episode: 100 (paper, section 4).
pub const DEFAULT_STEPS_PER_EPISODE: u32 = 100;
/// Default fault service time: 100 µs, inside the 80–200 µs of NVMe/SATA SSDs (workloads.md).
pub const DEFAULT_FAULT_SERVICE_TIME_S: f64 = 100e-6;
/// Default copies per VM: six, so an equal split of 6 GiB falls short of the larger inputs
/// (six copies of gcc's s04 need 5.2 GiB).
pub const DEFAULT_COPIES: u32 = 6;
/// Default power-law exponent: 0.5, the √2 rule (Hartstein et al.).
pub const DEFAULT_ALPHA: f64 = 0.5;
/// Default curve scale, pages per CPU-second (an assumption; docs/simulator.md).
pub const DEFAULT_INTENSITY_PAGES_PER_S: f64 = 50_000.0;

impl Scenario {
    /// Reads and checks a scenario file.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, the key and the reason.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_path_buf(),
            key: "(file)".into(),
            reason: format!("cannot read: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks scenario text; `path` is used in errors.
    ///
    /// # Errors
    /// [`ScenarioError`] naming the file, the key and the reason.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ScenarioError> {
        let err = |key: &str, reason: String| ScenarioError {
            file: path.to_path_buf(),
            key: key.to_string(),
            reason,
        };
        let raw: RawScenario = toml::from_str(text).map_err(|e| {
            let key = e
                .span()
                .map(|s| key_at(text, s.start))
                .unwrap_or_else(|| "(syntax)".into());
            err(&key, e.message().to_string())
        })?;
        let bytes = |key: &str, value: &Option<String>, default: u64| -> Result<u64, ScenarioError> {
            value.as_deref().map_or(Ok(default), |v| {
                parse_bytes(v).map_err(|r| err(key, r.to_string()))
            })
        };
        let seconds = |key: &str, value: &Option<String>, default: f64| -> Result<f64, ScenarioError> {
            value.as_deref().map_or(Ok(default), |v| {
                parse_seconds(v).map_err(|r| err(key, r.to_string()))
            })
        };
        let n = &raw.node;
        let node = NodeSpec {
            capacity_bytes: parse_bytes(&n.capacity).map_err(|r| err("node.capacity", r.to_string()))?,
            floor_bytes: bytes("node.floor", &n.floor, DEFAULT_FLOOR_BYTES)?,
            granularity_bytes: bytes("node.granularity", &n.granularity, DEFAULT_GRANULARITY_BYTES)?,
            initial_allocation_bytes: bytes(
                "node.initial_allocation",
                &n.initial_allocation,
                DEFAULT_INITIAL_ALLOCATION_BYTES,
            )?,
            step_s: seconds("node.step", &n.step, DEFAULT_STEP_S)?,
            steps_per_episode: n.steps_per_episode.unwrap_or(DEFAULT_STEPS_PER_EPISODE),
            fault_service_time_s: seconds(
                "node.fault_service_time",
                &n.fault_service_time,
                DEFAULT_FAULT_SERVICE_TIME_S,
            )?,
            measurement_noise: n.measurement_noise.unwrap_or(0.0),
            share: match n.share.unwrap_or_default() {
                ShareName::Proportional => ShareRule::Proportional,
                ShareName::Equal => ShareRule::Equal,
            },
        };
        let (twins, calibration_source) = match &n.calibration {
            None => (None, None),
            Some(file) => {
                let at = path.parent().unwrap_or(Path::new("")).join(file);
                let (twins, text) =
                    node_calibration::load(&at).map_err(|e| err("node.calibration", e.to_string()))?;
                (Some(twins), Some(text))
            }
        };
        let mut vms = Vec::new();
        for (j, v) in raw.vm.iter().enumerate() {
            let vm = parse_vm(j, v, &node, twins).map_err(|(k, r)| err(&format!("vm[{j}].{k}"), r))?;
            vms.push(vm);
        }
        let scenario = Self {
            name: raw.name,
            description: raw.description.unwrap_or_default(),
            node,
            vms,
            source: text.to_string(),
            calibration_source,
        };
        scenario.check_node().map_err(|(k, r)| err(k, r))?;
        Ok(scenario)
    }

    /// Checks the node's values against each other and the VMs.
    fn check_node(&self) -> Result<(), (&'static str, String)> {
        let n = &self.node;
        let vms = self.vms.len() as u64;
        if self.vms.is_empty() {
            return Err(("vm", "a scenario needs at least one [[vm]]".into()));
        }
        if n.capacity_bytes == 0 {
            return Err(("node.capacity", "must be positive".into()));
        }
        if n.granularity_bytes == 0 {
            return Err(("node.granularity", "must be positive".into()));
        }
        if u128::from(n.floor_bytes) * u128::from(vms) > u128::from(n.capacity_bytes) {
            return Err((
                "node.capacity",
                format!(
                    "{} B cannot hold {vms} VMs at the floor of {} B",
                    n.capacity_bytes, n.floor_bytes
                ),
            ));
        }
        // The VMs on the node from the start must fit; one that arrives later waits (and is
        // counted as waiting) while its reservation does not fit beside the others'.
        let at_start = || self.vms.iter().filter(|v| v.present_at(0));
        let reserved: u128 = at_start().map(|v| u128::from(v.floor_bytes(n))).sum();
        if reserved > u128::from(n.capacity_bytes) {
            return Err((
                "vm.min",
                format!(
                    "the reservations of the VMs present from step 0 ({reserved} B, the node's floor where larger) exceed node.capacity ({} B)",
                    n.capacity_bytes
                ),
            ));
        }
        if n.initial_allocation_bytes < n.floor_bytes {
            return Err(("node.initial_allocation", "is below node.floor".into()));
        }
        let initial: u128 = at_start().map(|v| u128::from(v.initial_bytes(n))).sum();
        if initial > u128::from(n.capacity_bytes) {
            return Err((
                "node.initial_allocation",
                format!(
                    "the initial allocations of the VMs present from step 0 ({initial} B: node.initial_allocation, raised to reservations and capped at limits) exceed node.capacity ({} B)",
                    n.capacity_bytes
                ),
            ));
        }
        if !(n.step_s > 0.0 && n.step_s <= 3600.0) {
            return Err(("node.step", "must be in (0, 1 h]".into()));
        }
        if n.steps_per_episode == 0 {
            return Err(("node.steps_per_episode", "must be at least 1".into()));
        }
        if !(n.fault_service_time_s > 0.0 && n.fault_service_time_s < 1.0) {
            return Err(("node.fault_service_time", "must be in (0, 1 s)".into()));
        }
        if !(n.measurement_noise.is_finite() && (0.0..=1.0).contains(&n.measurement_noise)) {
            return Err(("node.measurement_noise", "must be in [0, 1]".into()));
        }
        Ok(())
    }
}

/// A key of a `[[vm]]` table and what is wrong with its value.
type VmFault = (&'static str, String);

/// Parses and checks one `[[vm]]` table (index `j`); `twins` are the node calibration's VMs
/// when the node names one.
fn parse_vm(
    j: usize,
    v: &RawVm,
    node: &NodeSpec,
    twins: Option<&'static [TwinVm]>,
) -> Result<VmSpec, VmFault> {
    let benchmark = v.workload;
    let copies = v.copies.unwrap_or(DEFAULT_COPIES);
    let twin = match v.curve.unwrap_or_default() {
        CurveName::Node => Some(node_twin(j, v, benchmark, copies, twins)?),
        _ => None,
    };
    let kind = curve_kind(v, benchmark, twin)?;
    let input_set = v.inputs.unwrap_or(if twin.is_some() {
        InputSet::Standin
    } else {
        InputSet::Spec
    });
    let inputs = match (input_set, twin) {
        (InputSet::Spec, Some(_)) => {
            return Err((
                "inputs",
                "curve = \"node\" runs the stand-in measured on the node: inputs must be \"standin\"".into(),
            ));
        }
        (InputSet::Spec, None) => benchmark.inputs(),
        (InputSet::Standin, Some(t)) => t.inputs.as_slice(),
        (InputSet::Standin, None) => {
            calibration::standin_inputs(benchmark).map_err(|e| ("inputs", e.to_string()))?
        }
    };
    let bytes = |key: &'static str, value: &Option<String>, default: u64| -> Result<u64, VmFault> {
        value.as_deref().map_or(Ok(default), |text| {
            parse_bytes(text).map_err(|r| (key, r.to_string()))
        })
    };
    let vm = VmSpec {
        benchmark,
        copies,
        vcpus: v.vcpus.unwrap_or(copies),
        copy_start: v.copy_start.unwrap_or_default(),
        start: v.start.unwrap_or_default(),
        curve: Curve {
            kind,
            alpha: v.alpha.unwrap_or(DEFAULT_ALPHA),
            intensity_pages_per_s: v.intensity_pages_per_s.unwrap_or(DEFAULT_INTENSITY_PAGES_PER_S),
        },
        input_set,
        inputs,
        fault_service_time_s: vm_fault_service_time(v, node, benchmark, twin)?,
        cpu_per_copy: twin.map_or(1.0, |t| t.cpu_per_copy),
        arrive_step: v.arrive.unwrap_or(0),
        leave_step: v.leave,
        terms: VmTerms {
            min_bytes: bytes("min", &v.min, 0)?,
            max_bytes: bytes("max", &v.max, u64::MAX)?,
            weight: v.weight.unwrap_or(1),
        },
    };
    check_vm(&vm)?;
    check_terms(&vm.terms, node)?;
    check_presence(&vm, node)?;
    Ok(vm)
}

/// The node calibration's VM `j`, which must run `copies` copies of `benchmark`.
fn node_twin(
    j: usize,
    v: &RawVm,
    benchmark: Benchmark,
    copies: u32,
    twins: Option<&'static [TwinVm]>,
) -> Result<&'static TwinVm, VmFault> {
    let Some(twins) = twins else {
        return Err((
            "curve",
            "\"node\" needs node.calibration: a file written by `cavmem calibrate-node`".into(),
        ));
    };
    let twin = twins.get(j).ok_or_else(|| {
        (
            "curve",
            format!(
                "node.calibration measured {} VMs, none at this index",
                twins.len()
            ),
        )
    })?;
    if twin.benchmark != benchmark || twin.copies != copies {
        return Err((
            "curve",
            format!(
                "node.calibration measured {} copies of {} here, not {copies} of {}",
                twin.copies, twin.benchmark, v.workload
            ),
        ));
    }
    Ok(twin)
}

/// The VM's curve shape; `alpha` and the intensity only with the assumed shapes.
fn curve_kind(v: &RawVm, benchmark: Benchmark, twin: Option<&'static TwinVm>) -> Result<CurveKind, VmFault> {
    let kind = match (v.curve.unwrap_or_default(), twin) {
        (CurveName::Node, Some(t)) => CurveKind::Node(&t.curve),
        (CurveName::Calibrated | CurveName::Node, _) => CurveKind::Calibrated(benchmark),
        (CurveName::Assumed, _) => benchmark.assumed_curve(),
        (CurveName::PowerLaw, _) => CurveKind::PowerLaw,
        (CurveName::Step, _) => CurveKind::Step,
    };
    if let CurveKind::Calibrated(b) = kind {
        calibration::builtin_curve(b).map_err(|e| ("curve", e.to_string()))?;
    }
    if matches!(kind, CurveKind::Calibrated(_) | CurveKind::Node(_)) {
        for (name, given) in [
            ("alpha", v.alpha.is_some()),
            ("intensity_pages_per_s", v.intensity_pages_per_s.is_some()),
        ] {
            if given {
                return Err((
                    name,
                    "applies to the assumed curves (power_law, step), not to measured ones".into(),
                ));
            }
        }
    }
    Ok(kind)
}

/// The VM's stall per fault: its own duration, its stand-in's measured stall (from the
/// node calibration with `curve = "node"`), or the node's.
fn vm_fault_service_time(
    v: &RawVm,
    node: &NodeSpec,
    benchmark: Benchmark,
    twin: Option<&'static TwinVm>,
) -> Result<f64, VmFault> {
    match (v.fault_service_time.as_deref(), twin) {
        (None, _) => Ok(node.fault_service_time_s),
        (Some("measured"), Some(t)) => t.fault_service_time_s.ok_or_else(|| {
            (
                "fault_service_time",
                "no point of this VM in node.calibration faulted, so no stall per fault is known".into(),
            )
        }),
        (Some("measured"), None) => calibration::measured_fault_service_time_s(benchmark)
            .map_err(|e| ("fault_service_time", e.to_string())),
        (Some(text), _) => {
            parse_seconds(text).map_err(|r| ("fault_service_time", format!("{r} (or \"measured\")")))
        }
    }
}

/// Checks that the VM arrives inside an episode and leaves after it arrives.
fn check_presence(vm: &VmSpec, node: &NodeSpec) -> Result<(), VmFault> {
    // (An episode of no steps is reported by the node's own check.)
    if node.steps_per_episode > 0 && vm.arrive_step >= node.steps_per_episode {
        return Err((
            "arrive",
            format!(
                "step {} is not inside an episode of {} steps",
                vm.arrive_step, node.steps_per_episode
            ),
        ));
    }
    if vm
        .leave_step
        .is_some_and(|leave| leave <= vm.arrive_step || leave > node.steps_per_episode)
    {
        return Err((
            "leave",
            format!(
                "must be after arrive and at most {} (the episode's steps)",
                node.steps_per_episode
            ),
        ));
    }
    Ok(())
}

/// Checks one VM's terms against the node's floor.
fn check_terms(terms: &VmTerms, node: &NodeSpec) -> Result<(), VmFault> {
    if terms.weight == 0 {
        return Err(("weight", "must be at least 1".into()));
    }
    let floor = terms.floor_bytes(node.floor_bytes);
    if terms.max_bytes < floor {
        return Err((
            "max",
            format!(
                "{} B is below the VM's floor ({floor} B: min, or node.floor where larger)",
                terms.max_bytes
            ),
        ));
    }
    Ok(())
}

/// Checks one VM's values.
fn check_vm(vm: &VmSpec) -> Result<(), VmFault> {
    if !(1..=256).contains(&vm.copies) {
        return Err(("copies", format!("{} is not in 1..=256", vm.copies)));
    }
    if !(1..=1024).contains(&vm.vcpus) {
        return Err(("vcpus", format!("{} is not in 1..=1024", vm.vcpus)));
    }
    if !(vm.curve.alpha.is_finite() && vm.curve.alpha > 0.0 && vm.curve.alpha <= 4.0) {
        return Err(("alpha", format!("{} is not in (0, 4]", vm.curve.alpha)));
    }
    if !(vm.fault_service_time_s > 0.0 && vm.fault_service_time_s < 1.0) {
        return Err(("fault_service_time", "must be in (0, 1 s)".into()));
    }
    if !(vm.curve.intensity_pages_per_s.is_finite() && vm.curve.intensity_pages_per_s >= 0.0) {
        return Err(("intensity_pages_per_s", "must be finite and non-negative".into()));
    }
    Ok(())
}

/// The dotted key whose value starts near byte `offset` of a TOML text (best effort: the
/// table header above the offset and the key on its line).
fn key_at(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text.get(line_start..).unwrap_or("").lines().next().unwrap_or("");
    let mut table = String::new();
    let mut vm_index: Option<usize> = None;
    for l in before.lines() {
        let t = l.trim();
        if t == "[[vm]]" {
            vm_index = Some(vm_index.map_or(0, |i| i + 1));
            table = format!("vm[{}]", vm_index.unwrap_or(0));
        } else if t.starts_with('[') {
            table = t.trim_matches(|c| c == '[' || c == ']').to_string();
        }
    }
    let key = line.split('=').next().unwrap_or("").trim();
    match (table.is_empty(), key.is_empty() || key.starts_with('[')) {
        (true, true) => "(syntax)".into(),
        (true, false) => key.to_string(),
        (false, true) => table,
        (false, false) => format!("{table}.{key}"),
    }
}

#[cfg(test)]
mod tests;

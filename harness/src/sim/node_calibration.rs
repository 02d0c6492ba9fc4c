//! A node calibration (`cavmem calibrate-node`): every VM of a live scenario measured on
//! the node itself — all of its copies in its cgroup, the other VMs running beside it
//! without a limit — first with no limit (its footprint, its CPU rate), then at limits
//! stepped through fractions of its footprint, counting major faults and user CPU time.
//!
//! A scenario VM with `curve = "node"` is the twin of what was measured for the VM of the
//! same index ([`TwinVm`]): each copy holds `footprint / copies`, faults per CPU-second as
//! the VM did at the same fraction ([`MeasuredCurve`]), stalls per fault as it did (the
//! median over its points) and runs at most the CPU-seconds per second a copy got beside
//! the other VMs. So at every measured point the twin faults as the VM did (test
//! `node_twin_reproduces_each_measured_point`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use cavmem_core::units::MIB;

use super::calibration::{
    CalibrationError, MeasuredCurve, Point, STANDIN_INPUT_CPU_S, check_points, median_stall_s,
};
use super::workload::{Benchmark, InputSpec};

/// A node calibration file: where and how it was measured, and one entry per VM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeCalibration {
    /// The machine (CPU model, cores, kernel, swap device).
    pub machine: String,
    /// When it was measured (UTC date).
    pub date: String,
    /// The command that measured it.
    pub command: String,
    /// The `name` of the scenario whose node was measured.
    pub scenario: String,
    /// One entry per VM, in the scenario's order.
    pub vm: Vec<VmCalibration>,
}

/// The measurements of one VM.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmCalibration {
    /// Its workload (`perlbench`, `gcc`, `bzip2`).
    pub workload: String,
    /// Copies of the stand-in in its cgroup.
    pub copies: u32,
    /// The command line each copy ran.
    pub standin: String,
    /// Peak memory of its cgroup (all copies) without a limit, bytes.
    pub footprint_bytes: u64,
    /// Measured without a limit, the other VMs running.
    pub unconstrained: Point,
    /// Measured at each limit, in the order measured.
    pub point: Vec<Point>,
}

/// Reads a node calibration; `origin` names it in errors.
///
/// # Errors
/// [`CalibrationError`]: the syntax, or which VM's values are impossible.
pub fn parse(text: &str, origin: &str) -> Result<NodeCalibration, CalibrationError> {
    let c: NodeCalibration = toml::from_str(text).map_err(|e| CalibrationError::Syntax {
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    if c.vm.is_empty() {
        return Err(CalibrationError::Syntax {
            origin: origin.to_string(),
            reason: "no [[vm]] measured".into(),
        });
    }
    for (j, v) in c.vm.iter().enumerate() {
        let at = |reason: &str| CalibrationError::Vm {
            origin: origin.to_string(),
            vm: j,
            reason: reason.to_string(),
        };
        if Benchmark::from_name(&v.workload).is_none() {
            return Err(at("workload: not one of perlbench, gcc, bzip2"));
        }
        if v.copies == 0 || v.footprint_bytes == 0 {
            return Err(at("copies and footprint_bytes must be positive"));
        }
        check_points(&v.point, &v.unconstrained).map_err(at)?;
        if v.unconstrained.user_cpu_s <= 0.0 {
            return Err(at(
                "the unconstrained point ran no CPU time, so its CPU rate is unknown",
            ));
        }
    }
    Ok(c)
}

/// What the simulator takes from one VM's measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct TwinVm {
    /// The workload.
    pub benchmark: Benchmark,
    /// Copies measured.
    pub copies: u32,
    /// Faults per CPU-second at the fraction `memory / footprint`.
    pub curve: MeasuredCurve,
    /// One copy's stand-in as a one-input sequence at `footprint / copies`.
    pub inputs: [InputSpec; 1],
    /// The median stall per fault over the points, seconds (`None` when none faulted).
    pub fault_service_time_s: Option<f64>,
    /// CPU-seconds per second one copy ran without a limit, beside the other VMs.
    pub cpu_per_copy: f64,
}

impl TwinVm {
    /// The twin of one VM's measurements (checked by [`parse`]).
    pub fn new(v: &VmCalibration) -> Option<Self> {
        let copies = f64::from(v.copies.max(1));
        Some(Self {
            benchmark: Benchmark::from_name(&v.workload)?,
            copies: v.copies,
            curve: MeasuredCurve::measured(&v.point, &v.unconstrained),
            inputs: [InputSpec {
                name: "stand-in",
                footprint_mib: v.footprint_bytes as f64 / MIB as f64 / copies,
                duration_s: STANDIN_INPUT_CPU_S,
                active_set_mib: None,
            }],
            fault_service_time_s: median_stall_s(&v.point, &v.unconstrained),
            cpu_per_copy: v.unconstrained.progress() / copies,
        })
    }
}

/// Node calibrations read so far, each kept for the life of the process (scenarios hold
/// `&'static` curves and inputs): the file, its text and its twins.
type Loaded = Vec<(PathBuf, String, &'static [TwinVm])>;
static LOADED: Mutex<Loaded> = Mutex::new(Vec::new());

/// The twins of the VMs in the node calibration at `path`, one per VM in its order, and
/// the file's text. A file read before with the same text is not parsed again (nor kept
/// twice).
///
/// # Errors
/// [`CalibrationError`] naming the file: unreadable, or what [`parse`] refuses.
pub fn load(path: &Path) -> Result<(&'static [TwinVm], String), CalibrationError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CalibrationError::Read {
        origin: origin.clone(),
        reason: e.to_string(),
    })?;
    let mut loaded = LOADED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, _, twins)) = loaded.iter().find(|(p, t, _)| p == path && *t == text) {
        return Ok((twins, text));
    }
    let c = parse(&text, &origin)?;
    let twins: Vec<TwinVm> = c.vm.iter().filter_map(TwinVm::new).collect();
    let twins: &'static [TwinVm] = Box::leak(twins.into_boxed_slice());
    loaded.push((path.to_path_buf(), text.clone(), twins));
    Ok((twins, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A two-VM file: perlbench (2 copies, 200 MiB) and gcc (2 copies, 260 MiB).
    const EXAMPLE: &str = r#"
machine = "test"
date = "2026-12-07"
command = "cavmem calibrate-node x.toml"
scenario = "x"

[[vm]]
workload = "perlbench"
copies = 2
standin = "perl perlbench.pl 128"
footprint_bytes = 209715200
unconstrained = { limit_bytes = 0, fraction = 0.0, window_s = 10.0, major_faults = 0, user_cpu_s = 10.0 }
point = [
  { limit_bytes = 188743680, fraction = 0.9, window_s = 10.0, major_faults = 20000, user_cpu_s = 8.0 },
  { limit_bytes = 125829120, fraction = 0.6, window_s = 10.0, major_faults = 60000, user_cpu_s = 4.0 },
]

[[vm]]
workload = "gcc"
copies = 2
standin = "gcc-standin"
footprint_bytes = 272629760
unconstrained = { limit_bytes = 0, fraction = 0.0, window_s = 10.0, major_faults = 0, user_cpu_s = 8.0 }
point = [
  { limit_bytes = 136314880, fraction = 0.5, window_s = 10.0, major_faults = 3000, user_cpu_s = 6.0 },
  { limit_bytes = 81788928, fraction = 0.3, window_s = 10.0, major_faults = 6000, user_cpu_s = 4.0 },
]
"#;

    #[test]
    fn node_calibration_twin_takes_the_vm_measurements() {
        let c = parse(EXAMPLE, "x").unwrap();
        let p = TwinVm::new(&c.vm[0]).unwrap();
        assert_eq!(p.benchmark, Benchmark::Perlbench);
        assert!((p.inputs[0].footprint_mib - 100.0).abs() < 1e-9, "per copy");
        assert!(
            (p.cpu_per_copy - 0.5).abs() < 1e-12,
            "10 CPU-s in 10 s over 2 copies"
        );
        // Stalls: 0.9: (1/0.8 − 1)/2,500 = 100 µs; 0.6: (1/0.4 − 1)/15,000 = 100 µs.
        assert!((p.fault_service_time_s.unwrap() - 100e-6).abs() < 1e-12);
        assert!((p.curve.faults_per_cpu_s(0.6) - 15_000.0).abs() < 1e-9);
    }

    #[test]
    fn node_calibration_bad_files_name_the_vm() {
        let e = parse(
            &EXAMPLE.replace("copies = 2\nstandin = \"gcc", "copies = 0\nstandin = \"gcc"),
            "f.toml",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.toml: vm[1]: copies and footprint_bytes must be positive"
        );
        let e = parse(&EXAMPLE.replace("\"gcc\"", "\"mcf\""), "f.toml").unwrap_err();
        assert!(e.to_string().starts_with("f.toml: vm[1]: workload"), "{e}");
        let e = parse(
            &EXAMPLE.replace("user_cpu_s = 10.0 }", "user_cpu_s = 0.0 }"),
            "f.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("vm[0]: the unconstrained point"), "{e}");
        let e = parse(
            "machine = \"m\"\ndate = \"d\"\ncommand = \"c\"\nscenario = \"s\"\nvm = []",
            "f.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("no [[vm]]"), "{e}");
        let e = load(Path::new("/nonexistent/node.toml")).unwrap_err();
        assert!(
            e.to_string().starts_with("/nonexistent/node.toml: cannot read: "),
            "{e}"
        );
    }

    #[test]
    fn node_calibration_is_loaded_once_per_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let (a, text) = load(&path).unwrap();
        let (b, _) = load(&path).unwrap();
        assert!(std::ptr::eq(a, b));
        assert_eq!(text, EXAMPLE);
        std::fs::write(
            &path,
            EXAMPLE.replace("footprint_bytes = 209715200", "footprint_bytes = 104857600"),
        )
        .unwrap();
        let (c, _) = load(&path).unwrap();
        assert!(
            (c[0].inputs[0].footprint_mib - 50.0).abs() < 1e-9,
            "a changed file is read anew"
        );
    }

    #[test]
    fn node_twin_reproduces_each_measured_point() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.toml"), EXAMPLE).unwrap();
        let vm = |w: &str| {
            format!(
                "[[vm]]\nworkload = \"{w}\"\ncopies = 2\ncurve = \"node\"\nfault_service_time = \"measured\"\n"
            )
        };
        let text = format!(
            "name = \"twin\"\n[node]\ncapacity = \"1 GiB\"\nfloor = \"1 MiB\"\ninitial_allocation = \"1 MiB\"\n\
             calibration = \"node.toml\"\n{}{}",
            vm("perlbench"),
            vm("gcc")
        );
        let s = crate::scenario::Scenario::parse(&dir.path().join("twin.toml"), &text).unwrap();
        let c = parse(EXAMPLE, "x").unwrap();
        for (j, v) in c.vm.iter().enumerate() {
            for p in &v.point {
                let mut allocations = c.vm.iter().map(|o| o.footprint_bytes).collect::<Vec<_>>();
                allocations[j] = p.limit_bytes;
                let mut node = crate::sim::Node::new(&s, 1);
                node.set_allocations(&allocations).unwrap();
                let simulated = node.step()[j].miss_rate_pages_per_s;
                let measured = p.faults_per_s();
                assert!(
                    (simulated / measured - 1.0).abs() < 1e-6,
                    "vm {j} at {}: simulated {simulated}/s, measured {measured}/s",
                    p.fraction
                );
            }
        }
    }

    #[test]
    fn node_curve_in_a_scenario_needs_a_matching_calibration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.toml"), EXAMPLE).unwrap();
        let parse = |calibration: &str, vm: &str| {
            let text = format!(
                "name = \"t\"\n[node]\ncapacity = \"1 GiB\"\nfloor = \"1 MiB\"\ninitial_allocation = \"1 MiB\"\n{calibration}[[vm]]\n{vm}"
            );
            crate::scenario::Scenario::parse(&dir.path().join("t.toml"), &text)
                .unwrap_err()
                .to_string()
        };
        let e = parse("", "workload = \"perlbench\"\ncurve = \"node\"\n");
        assert!(
            e.ends_with(
                "vm[0].curve: \"node\" needs node.calibration: a file written by `cavmem calibrate-node`"
            ),
            "{e}"
        );
        let e = parse(
            "calibration = \"node.toml\"\n",
            "workload = \"gcc\"\ncopies = 2\ncurve = \"node\"\n",
        );
        assert!(
            e.ends_with("vm[0].curve: node.calibration measured 2 copies of perlbench here, not 2 of gcc"),
            "{e}"
        );
        let e = parse(
            "calibration = \"node.toml\"\n",
            "workload = \"perlbench\"\ncopies = 2\ncurve = \"node\"\ninputs = \"spec\"\n",
        );
        assert!(
            e.contains("vm[0].inputs: curve = \"node\" runs the stand-in"),
            "{e}"
        );
        let e = parse("calibration = \"missing.toml\"\n", "workload = \"perlbench\"\n");
        assert!(
            e.contains("node.calibration: ") && e.contains("missing.toml: cannot read"),
            "{e}"
        );
    }
}

//! `cavmem calibrate`: each stand-in program ([`crate::backend::standin`]) alone in a
//! memory cgroup, first without a limit (its footprint: the cgroup's peak; its progress:
//! user CPU per second), then at limits of 100/80/60/40% of that footprint, counting major
//! faults and user CPU time over a window at each (a window in which the OOM killer took the
//! stand-in is measured again once it has restarted, [`WINDOW_TRIES`] in all). The points are written (atomically,
//! after each workload) to a calibration file that the simulator's `calibrated` curve uses
//! ([`crate::sim::calibration`]); [`report`] compares the simulator with them.

pub mod node;
pub mod report;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::backend::cgroup::{CgroupNode, CgroupVersion};
use crate::backend::cgroup_backend::RunningCopies;
use crate::backend::node_backend::NodeError;
use crate::backend::standin::StandIn;
use crate::output::write_atomic;
use crate::sim::calibration::{Calibration, Point, WorkloadCalibration};
use crate::sim::node_calibration::NodeCalibration;
use crate::sim::workload::Benchmark;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibrateSpec {
    /// The workloads.
    pub benchmarks: Vec<Benchmark>,
    /// Limits in percent of the footprint, measured in this order.
    pub levels_percent: Vec<u32>,
    /// Measurement window at each level.
    pub window: Duration,
    /// Time after each limit change before the window starts.
    pub settle: Duration,
    /// Scale the stand-ins' sizes by this factor (1: the defaults; tests use small ones).
    pub size_scale: f64,
}

impl CalibrateSpec {
    /// The stand-in of `benchmark` at this spec's size.
    pub fn standin(&self, benchmark: Benchmark) -> StandIn {
        StandIn::default_for(benchmark).scaled(self.size_scale)
    }
}

/// Windows measured at one level before giving up when the OOM killer keeps taking the
/// stand-in (each time it is started again and the window measured anew). A cgroup squeezed
/// below its working set is OOM-killed now and then even with free swap: the perlbench
/// stand-in lost 10 of 34 two-second windows at 90/80/60% (8 runs, 2 GiB of swap, about
/// 10 MiB of it used; docs/real-node.md); at that rate eight tries all fail about once in
/// 18,000 levels, three about once in 40.
pub const WINDOW_TRIES: u32 = 8;

/// One window's counters: faults and user CPU of each VM's cgroup (`running[k]` runs in
/// VM `k`), and the wall time; `None` when the OOM killer took a copy during the window
/// (it is started again).
fn window(
    node: &CgroupNode,
    running: &mut [RunningCopies],
    length: Duration,
) -> Result<Option<Vec<Point>>, NodeError> {
    let backend = |e: &dyn std::fmt::Display| NodeError::Backend(e.to_string());
    let counters = |vm: usize| -> Result<(u64, f64), NodeError> {
        Ok((
            node.major_faults(vm).map_err(|e| backend(&e))?,
            node.user_cpu_s(vm).map_err(|e| backend(&e))?,
        ))
    };
    let before = (0..running.len()).map(counters).collect::<Result<Vec<_>, _>>()?;
    let t0 = Instant::now();
    if !crate::interrupt::sleep(length) {
        return Err(NodeError::Interrupted);
    }
    let mut revived = 0;
    for copies in running.iter_mut() {
        revived += copies.revive(node)?;
    }
    if revived > 0 {
        return Ok(None);
    }
    let window_s = t0.elapsed().as_secs_f64();
    let mut points = Vec::with_capacity(running.len());
    for (vm, (f0, c0)) in before.into_iter().enumerate() {
        let (f1, c1) = counters(vm)?;
        points.push(Point {
            limit_bytes: 0,
            fraction: 0.0,
            window_s,
            major_faults: f1.saturating_sub(f0),
            user_cpu_s: (c1 - c0).max(0.0),
        });
    }
    Ok(Some(points))
}

/// A window of `length` at the limits in effect, after `settle`, one point per VM; a window
/// the OOM killer spoiled is measured again once the restarted copies are ready, at most
/// [`WINDOW_TRIES`] in all. `level` names the level in messages.
pub(crate) fn measure_level(
    node: &CgroupNode,
    running: &mut [RunningCopies],
    length: Duration,
    settle: Duration,
    level: &str,
) -> Result<Vec<Point>, NodeError> {
    for attempt in 1..=WINDOW_TRIES {
        for copies in running.iter_mut() {
            copies.wait_ready(node, crate::backend::cgroup_backend::READY_TIMEOUT)?;
        }
        if !crate::interrupt::sleep(settle) {
            return Err(NodeError::Interrupted);
        }
        if let Some(points) = window(node, running, length)? {
            return Ok(points);
        }
        eprintln!(
            "warning: {level}: the OOM killer took a stand-in (window {attempt} of at most {WINDOW_TRIES}); started again"
        );
    }
    let swap_mib = crate::backend::cgroup::swap_total_bytes() >> 20;
    Err(NodeError::Backend(format!(
        "{level}: the OOM killer took a stand-in in each of {WINDOW_TRIES} windows \
         (the machine has {swap_mib} MiB of swap); the workload thrashes at this limit: \
         leave the level out or give the machine more swap (docs/real-node.md)"
    )))
}

/// VM `vm` of `node` at each of `levels_percent` in turn (a limit of that percent of its
/// `footprint_bytes`), one point per level, the others' limits as they are; `name` names
/// the VM in messages, `on_point` is told each point.
///
/// # Errors
/// As [`measure_level`]; [`NodeError::Backend`] when a limit cannot be set.
#[allow(
    clippy::too_many_arguments,
    reason = "the node, its copies, the VM and the protocol"
)]
pub(crate) fn measure_levels(
    node: &CgroupNode,
    running: &mut [RunningCopies],
    vm: usize,
    footprint_bytes: u64,
    (levels_percent, window, settle): (&[u32], Duration, Duration),
    name: &str,
    mut on_point: impl FnMut(&Point),
) -> Result<Vec<Point>, NodeError> {
    let mut points = Vec::with_capacity(levels_percent.len());
    for &percent in levels_percent {
        let limit = node
            .set_limit(vm, limit_at(footprint_bytes, percent))
            .map_err(|e| NodeError::Backend(e.to_string()))?;
        let level = format!("{name} at {percent}% ({} MiB)", limit >> 20);
        let mut p = point_of(&measure_level(node, running, window, settle, &level)?, vm, &level)?;
        p.limit_bytes = limit;
        p.fraction = limit as f64 / footprint_bytes as f64;
        on_point(&p);
        points.push(p);
    }
    Ok(points)
}

/// VM `vm`'s point of a window's `points`.
fn point_of(points: &[Point], vm: usize, level: &str) -> Result<Point, NodeError> {
    points
        .get(vm)
        .copied()
        .ok_or_else(|| NodeError::Backend(format!("{level}: nothing measured")))
}

/// The limit `percent`% of `footprint_bytes`, rounded down to whole pages.
fn limit_at(footprint_bytes: u64, percent: u32) -> u64 {
    const PAGE: u64 = 4096;
    (footprint_bytes * u64::from(percent) / 100) / PAGE * PAGE
}

/// Measures one workload (see the module docs); `on_level` is told each level measured.
///
/// # Errors
/// [`NodeError::Backend`] naming the cgroup, file or program; [`NodeError::Interrupted`].
pub fn measure_one(
    spec: &CalibrateSpec,
    benchmark: Benchmark,
    root: &Path,
    version: CgroupVersion,
    work_dir: &Path,
    mut on_level: impl FnMut(&Point),
) -> Result<WorkloadCalibration, NodeError> {
    let backend = |e: &dyn std::fmt::Display| NodeError::Backend(e.to_string());
    let standin = spec.standin(benchmark);
    let command = standin
        .prepare(&work_dir.join(benchmark.name()))
        .map_err(|e| backend(&e))?;
    let node =
        CgroupNode::create(root, version, &[format!("calibrate-{benchmark}")]).map_err(|e| backend(&e))?;
    let what = format!("{benchmark} stand-in");
    let mut running = [RunningCopies::start(&node, 0, &command, 1, what)?];
    let without_limit = format!("{benchmark} without a limit");
    let all = measure_level(&node, &mut running, spec.window, Duration::ZERO, &without_limit)?;
    let unconstrained = point_of(&all, 0, &without_limit)?;
    let footprint_bytes = node.peak_usage_bytes(0).map_err(|e| backend(&e))?;
    on_level(&unconstrained);
    let protocol = (spec.levels_percent.as_slice(), spec.window, spec.settle);
    let name = benchmark.to_string();
    let points = measure_levels(&node, &mut running, 0, footprint_bytes, protocol, &name, on_level)?;
    running[0].stop();
    Ok(WorkloadCalibration {
        name: benchmark.name().to_string(),
        standin: standin.label(),
        footprint_bytes,
        unconstrained,
        point: points,
    })
}

/// This machine, for the calibration file: CPU model, cores, kernel, swap.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let swap = swaps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{cpu}, {cores} cores, Linux {}, swap: {swap}", kernel.trim())
}

/// Today's UTC date, `YYYY-MM-DD`.
pub fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Why a calibration file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The calibration could not be encoded as TOML.
    #[error("{}: {source}", path.display())]
    Encode {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: toml::ser::Error,
    },
    /// The file could not be written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// Writes `calibration` to `path` as TOML, atomically.
///
/// # Errors
/// [`WriteError`] naming the file.
pub fn write(path: &Path, calibration: &Calibration) -> Result<(), WriteError> {
    let header = "# Written by `cavmem calibrate`: the stand-ins' major faults and user CPU time under\n\
                  # cgroup limits (docs/real-node.md). The simulator's `calibrated` curve reads this file.\n";
    write_toml(path, header, calibration)
}

/// Writes a node calibration to `path` as TOML, atomically.
///
/// # Errors
/// [`WriteError`] naming the file.
pub fn write_node(path: &Path, calibration: &NodeCalibration) -> Result<(), WriteError> {
    let header = "# Written by `cavmem calibrate-node`: each VM's major faults and user CPU time under\n\
                  # cgroup limits, the other VMs running beside it (docs/real-node.md). A scenario VM\n\
                  # with `curve = \"node\"` whose [node] calibration names this file is its twin.\n";
    write_toml(path, header, calibration)
}

/// `header` and `value` as TOML, written to `path` atomically.
fn write_toml(path: &Path, header: &str, value: &impl serde::Serialize) -> Result<(), WriteError> {
    let text = toml::to_string(value).map_err(|source| WriteError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(write_atomic(path, format!("{header}{text}").as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibrate_today_is_a_date() {
        let d = today();
        assert_eq!(d.len(), 10);
        assert!(d.starts_with("20"), "{d}");
        assert_eq!(&d[4..5], "-");
    }

    /// A short calibration of the perlbench stand-in, as root with cgroups and swap:
    /// squeezed to 80% it takes major faults and progresses more
    /// slowly than with its whole footprint.
    #[test]
    #[ignore = "needs root, a cgroup memory controller and a swap file (CI runs it)"]
    fn calibrate_measures_faults_rising_as_the_limit_falls() {
        let (root, version) = crate::backend::cgroup::tests_support::controller();
        let _one_at_a_time = crate::backend::cgroup::tests_support::exclusive();
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _swap = crate::backend::cgroup::tests_support::swap(dir.path());
        let spec = CalibrateSpec {
            benchmarks: vec![Benchmark::Perlbench],
            levels_percent: vec![100, 80],
            window: Duration::from_secs(2),
            settle: Duration::from_millis(500),
            // Full size, as `cavmem calibrate` runs it (about 99 MiB); 80% gave 6,600
            // faults/s in the calibration.
            size_scale: 1.0,
        };
        let w = measure_one(&spec, Benchmark::Perlbench, &root, version, dir.path(), |_| {}).unwrap();
        assert!(w.footprint_bytes > 32 << 20, "{w:?}");
        let (full, squeezed) = (w.point[0], w.point[1]);
        assert!((squeezed.fraction - 0.8).abs() < 0.01);
        assert!(
            squeezed.faults_per_s() > 100.0 && squeezed.faults_per_s() > 10.0 * full.faults_per_s().max(1.0),
            "{w:?}"
        );
        assert!(squeezed.progress() < full.progress(), "{w:?}");
        // A busy program, not a sleeping one: on an idle machine it takes a whole core
        // (0.98 CPU-s per s); other load on the machine's two cores (a CI run once read
        // 0.49) is not what this checks.
        assert!(w.unconstrained.progress() > 0.25, "a busy program: {w:?}");
    }
}

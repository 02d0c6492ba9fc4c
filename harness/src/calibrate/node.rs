//! `cavmem calibrate-node`: the VMs of a live scenario measured together on this machine's
//! memory cgroups, for a simulated twin of that node ([`crate::sim::node_calibration`]
//! has the file and the twin it makes). Every VM runs its copies of its stand-in in its own
//! cgroup, as `cavmem live` runs them: first all without a limit (each VM's footprint is
//! its cgroup's peak, its CPU rate what its copies got beside the others), then one VM at
//! a time at each level (percent of its footprint) while the others run without a limit.

use std::path::Path;
use std::time::Duration;

use super::{measure_level, measure_levels};
use crate::backend::cgroup::{CgroupNode, CgroupVersion, meminfo_bytes};
use crate::backend::cgroup_backend::RunningCopies;
use crate::backend::node_backend::NodeError;
use crate::backend::standin::StandIn;
use crate::scenario::Scenario;
use crate::sim::calibration::Point;
use crate::sim::node_calibration::VmCalibration;

/// What to measure.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCalibrateSpec {
    /// Limits in percent of each VM's footprint, measured in this order.
    pub levels_percent: Vec<u32>,
    /// Measurement window at each level.
    pub window: Duration,
    /// Time after each limit change before the window starts.
    pub settle: Duration,
    /// Scale of the stand-ins' sizes (1: their defaults, as `cavmem live` runs them).
    pub size_scale: f64,
}

/// A limit that does not bind: the machine's memory (1 TiB when it cannot be read).
fn no_limit_bytes() -> u64 {
    meminfo_bytes("MemTotal").unwrap_or(1 << 40)
}

/// Measures every VM of `scenario` (see the module docs); `on_point` is told each VM's
/// point as it is measured (the VM's index, its point), `on_vm` each VM's measurements
/// once they are complete (the VMs so far, in order).
///
/// # Errors
/// [`NodeError::Backend`] naming the cgroup, file, program or level that failed;
/// [`NodeError::Interrupted`] on Ctrl-C.
pub fn measure_node(
    spec: &NodeCalibrateSpec,
    scenario: &Scenario,
    root: &Path,
    version: CgroupVersion,
    work_dir: &Path,
    mut on_point: impl FnMut(usize, &Point),
    mut on_vm: impl FnMut(&[VmCalibration]) -> Result<(), NodeError>,
) -> Result<Vec<VmCalibration>, NodeError> {
    let backend = |e: &dyn std::fmt::Display| NodeError::Backend(e.to_string());
    let names: Vec<String> = (1..=scenario.vms.len()).map(|k| format!("vm{k}")).collect();
    let node = CgroupNode::create(root, version, &names).map_err(|e| backend(&e))?;
    let mut running = Vec::with_capacity(scenario.vms.len());
    let mut labels = Vec::with_capacity(scenario.vms.len());
    for (j, vm) in scenario.vms.iter().enumerate() {
        let standin = StandIn::default_for(vm.benchmark).scaled(spec.size_scale);
        let command = standin
            .prepare(&work_dir.join(vm.benchmark.name()))
            .map_err(|e| backend(&e))?;
        let what = format!("VM {j}'s {} stand-in", vm.benchmark);
        running.push(RunningCopies::start(&node, j, &command, vm.copies, what)?);
        labels.push(standin.label());
    }
    let unconstrained = measure_level(
        &node,
        &mut running,
        spec.window,
        spec.settle,
        "every VM without a limit",
    )?;
    let mut measured: Vec<VmCalibration> = Vec::with_capacity(scenario.vms.len());
    for (j, (vm, (standin, &unconstrained))) in scenario
        .vms
        .iter()
        .zip(labels.into_iter().zip(&unconstrained))
        .enumerate()
    {
        let footprint_bytes = node.peak_usage_bytes(j).map_err(|e| backend(&e))?;
        on_point(j, &unconstrained);
        let protocol = (spec.levels_percent.as_slice(), spec.window, spec.settle);
        let name = format!("VM {j} ({})", vm.benchmark);
        let points = measure_levels(&node, &mut running, j, footprint_bytes, protocol, &name, |p| {
            on_point(j, p);
        })?;
        node.set_limit(j, no_limit_bytes()).map_err(|e| backend(&e))?;
        measured.push(VmCalibration {
            workload: vm.benchmark.name().to_string(),
            copies: vm.copies,
            standin,
            footprint_bytes,
            unconstrained,
            point: points,
        });
        on_vm(&measured)?;
    }
    for copies in &mut running {
        copies.stop();
    }
    Ok(measured)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cgroup::tests_support;

    /// Two VMs of one perlbench stand-in each (half size), as root with cgroups and swap:
    /// each VM squeezed to half its footprint beside the other takes major faults and
    /// progresses more slowly, and the file written from it is a node calibration.
    #[test]
    #[ignore = "needs root, a cgroup memory controller and a swap file (CI runs it)"]
    fn calibrate_node_measures_each_vm_beside_the_others() {
        let (root, version) = tests_support::controller();
        let _one_at_a_time = tests_support::exclusive();
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let _swap = tests_support::swap(dir.path());
        let text = "name = \"two\"\n[node]\ncapacity = \"256 MiB\"\nfloor = \"16 MiB\"\ninitial_allocation = \"64 MiB\"\n\
                    [[vm]]\nworkload = \"perlbench\"\ncopies = 1\n[[vm]]\nworkload = \"perlbench\"\ncopies = 1\n";
        let scenario = Scenario::parse(&dir.path().join("two.toml"), text).unwrap();
        let spec = NodeCalibrateSpec {
            levels_percent: vec![100, 50],
            window: Duration::from_secs(2),
            settle: Duration::from_millis(500),
            size_scale: 0.5,
        };
        let mut written = 0;
        let vms = measure_node(
            &spec,
            &scenario,
            &root,
            version,
            dir.path(),
            |_, _| {},
            |so_far| {
                written = so_far.len();
                Ok(())
            },
        )
        .unwrap();
        assert_eq!((vms.len(), written), (2, 2));
        for v in &vms {
            assert!(v.footprint_bytes > 16 << 20, "{v:?}");
            let (full, half) = (v.point[0], v.point[1]);
            assert!((half.fraction - 0.5).abs() < 0.01, "{v:?}");
            assert!(
                half.faults_per_s() > 100.0 && half.faults_per_s() > 10.0 * full.faults_per_s().max(1.0),
                "{v:?}"
            );
            assert!(half.progress() < full.progress(), "{v:?}");
        }
        let file = crate::sim::node_calibration::NodeCalibration {
            machine: "m".into(),
            date: "d".into(),
            command: "c".into(),
            scenario: scenario.name.clone(),
            vm: vms,
        };
        let path = dir.path().join("node.toml");
        crate::calibrate::write_node(&path, &file).unwrap();
        let (twins, _) = crate::sim::node_calibration::load(&path).unwrap();
        assert_eq!(twins.len(), 2);
        assert!(
            twins
                .iter()
                .all(|t| t.fault_service_time_s.is_some() && t.cpu_per_copy > 0.0)
        );
    }
}

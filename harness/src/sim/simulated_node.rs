//! The simulated node: capacity, VMs and their allocations, and what a real node would
//! measure each step (allocations, major-fault rates, free memory).

use cavmem_core::rng::Rng;

use super::vm::SimVm;
use crate::scenario::Scenario;

/// What the node measured for one VM over the last step.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct VmReading {
    /// Measured major faults per second (with measurement noise, if any).
    pub miss_rate_pages_per_s: f64,
    /// Faults per second without measurement noise (for reports only).
    pub true_miss_rate_pages_per_s: f64,
    /// The VM's allocation during the step, bytes.
    pub allocation_bytes: u64,
    /// Memory its workload needed at the start of the step, bytes (for reports only).
    pub demand_bytes: u64,
    /// CPU-seconds of progress over the step, summed over copies (for reports only).
    pub progress_cpu_s: f64,
}

/// Errors of the simulator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The new allocations do not fit the node or do not match its VMs.
    #[error("rejected allocations: {0}")]
    BadAllocations(String),
}

/// A node hosting the VMs of a scenario.
#[derive(Clone, Debug)]
pub struct Node {
    scenario: Scenario,
    vms: Vec<SimVm>,
    allocations: Vec<u64>,
    readings: Vec<VmReading>,
    /// Which VMs are on the node now (scenario `arrive`/`leave`); absent VMs hold no
    /// memory, make no progress and read all zeros.
    present: Vec<bool>,
    noise_rng: Rng,
}

impl Node {
    /// The scenario's node with every VM at its initial allocation; `seed` places the VMs in
    /// their sequences and drives measurement noise.
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        let mut rng = Rng::seed_from_u64(seed);
        let vms: Vec<SimVm> = scenario
            .vms
            .iter()
            .map(|spec| SimVm::new(spec, &mut rng))
            .collect();
        let n = vms.len();
        let mut node = Self {
            scenario: scenario.clone(),
            vms,
            allocations: vec![0; n],
            readings: vec![VmReading::default(); n],
            present: vec![false; n],
            noise_rng: Rng::seed_from_u64(seed ^ 0x6e6f_6973_6500_0001),
        };
        node.reset_allocations();
        node
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// Node capacity, bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.scenario.node.capacity_bytes
    }

    /// Current allocations, bytes, one per VM.
    pub fn allocations(&self) -> &[u64] {
        &self.allocations
    }

    /// Unallocated memory, bytes.
    pub fn free_bytes(&self) -> u64 {
        self.capacity_bytes()
            .saturating_sub(self.allocations.iter().sum())
    }

    /// The VMs' bounds for rescaling, as `vcpus` per VM.
    pub fn vcpus(&self) -> Vec<u32> {
        self.vms.iter().map(|v| v.spec().vcpus).collect()
    }

    /// The latest readings.
    pub fn readings(&self) -> &[VmReading] {
        &self.readings
    }

    /// Puts every VM present at step 0 back at its initial allocation and the others off
    /// the node (start of an episode), and refreshes the readings without advancing time.
    /// The workloads keep their positions.
    pub fn reset_allocations(&mut self) {
        let node = &self.scenario.node;
        for ((a, p), vm) in self.allocations.iter_mut().zip(&mut self.present).zip(&self.vms) {
            *p = vm.spec().present_at(0);
            *a = if *p { vm.spec().initial_bytes(node) } else { 0 };
        }
        self.peek();
    }

    /// Readings of the VMs as they are now, without advancing time (after arrivals or
    /// departures: an arriving VM is read at the memory it was admitted with).
    pub fn refresh_readings(&mut self) {
        self.peek();
    }

    /// Which VMs are on the node.
    pub fn present(&self) -> &[bool] {
        &self.present
    }

    /// VM `vm` joins (`true`) or leaves the node. A VM that leaves gives its memory back
    /// (its allocation becomes 0); one that joins holds nothing until
    /// [`Node::set_allocations`] gives it memory.
    pub fn set_present(&mut self, vm: usize, present: bool) {
        if let (Some(p), Some(a)) = (self.present.get_mut(vm), self.allocations.get_mut(vm)) {
            *p = present;
            if !present {
                *a = 0;
            }
        }
    }

    /// Sets new allocations.
    ///
    /// # Errors
    /// [`SimError::BadAllocations`] when the count differs from the VMs or the sum exceeds capacity.
    pub fn set_allocations(&mut self, allocations: &[u64]) -> Result<(), SimError> {
        crate::backend::node_backend::check_allocations(allocations, &self.present, self.capacity_bytes())
            .map_err(SimError::BadAllocations)?;
        self.allocations.copy_from_slice(allocations);
        Ok(())
    }

    /// VM `vm`'s miss rate now (no noise), pages/s, if it held `allocation_bytes`; `Some(0.0)`
    /// for a VM not on the node, `None` for no such VM.
    pub fn true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        self.present_vm_rate(vm, |v| v.fault_rate_now(allocation_bytes))
    }

    /// VM `vm`'s true miss rate (no noise), pages/s, had it held `allocation_bytes` when
    /// the last step it ran began: [`Node::true_miss_rate_pages_per_s`] one step late.
    /// `Some(0.0)` for a VM not on the node, `None` for no such VM.
    pub fn last_step_true_miss_rate_pages_per_s(&self, vm: usize, allocation_bytes: u64) -> Option<f64> {
        self.present_vm_rate(vm, |v| v.fault_rate_before_last_step(allocation_bytes))
    }

    /// `rate` of VM `vm` if it is on the node, 0 if it is not, `None` for no such VM.
    fn present_vm_rate(&self, vm: usize, rate: impl FnOnce(&SimVm) -> f64) -> Option<f64> {
        let present = *self.present.get(vm)?;
        Some(if present { rate(self.vms.get(vm)?) } else { 0.0 })
    }

    /// Runs one step of simulated time and measures it.
    pub fn step(&mut self) -> &[VmReading] {
        let dt = self.scenario.node.step_s;
        self.measure(|vm, alloc| {
            let s = vm.advance(alloc, dt);
            (s.faults / dt, s.demand_bytes, s.progress_cpu_s)
        });
        &self.readings
    }

    /// Refreshes the readings for the current allocations without advancing time.
    fn peek(&mut self) {
        self.measure(|vm, alloc| {
            let demand_bytes = (vm.demand_mib() * cavmem_core::units::MIB as f64) as u64;
            (vm.fault_rate_now(alloc), demand_bytes, 0.0)
        });
    }

    /// Each present VM's reading from `vm_reading(vm, allocation)` = (miss rate in pages/s,
    /// demand in bytes, CPU progress in s); absent VMs read zero; then the measurement noise.
    fn measure(&mut self, mut vm_reading: impl FnMut(&mut SimVm, u64) -> (f64, u64, f64)) {
        for (((vm, alloc), reading), present) in self
            .vms
            .iter_mut()
            .zip(&self.allocations)
            .zip(&mut self.readings)
            .zip(&self.present)
        {
            if !*present {
                *reading = VmReading::default();
                continue;
            }
            let (rate, demand_bytes, progress_cpu_s) = vm_reading(vm, *alloc);
            *reading = VmReading {
                miss_rate_pages_per_s: rate,
                true_miss_rate_pages_per_s: rate,
                allocation_bytes: *alloc,
                demand_bytes,
                progress_cpu_s,
            };
        }
        self.apply_noise();
    }

    /// Multiplicative log-normal noise with relative σ from the scenario, mean preserved.
    fn apply_noise(&mut self) {
        let sigma = self.scenario.node.measurement_noise;
        if sigma <= 0.0 {
            return;
        }
        for r in &mut self.readings {
            let z = f64::from(self.noise_rng.standard_normal());
            r.miss_rate_pages_per_s = r.true_miss_rate_pages_per_s * (sigma * z - 0.5 * sigma * sigma).exp();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::Scenario;

    fn scenario(name: &str) -> Scenario {
        Scenario::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios")
                .join(format!("{name}.toml")),
        )
        .unwrap()
    }

    #[test]
    fn sim_is_deterministic_per_seed() {
        let s = scenario("s3");
        let run = |seed| {
            let mut node = Node::new(&s, seed);
            (0..300)
                .flat_map(|_| {
                    node.step()
                        .iter()
                        .map(|r| r.miss_rate_pages_per_s.to_bits())
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(5), run(5));
        assert_ne!(run(5), run(6));
    }

    /// One copy of a stand-in held at each limit `cavmem calibrate` measured faults the
    /// measured number of times per second of wall time (within 10%: the stall per fault is
    /// the median over the points, not each point's own).
    #[test]
    fn sim_last_step_curves_are_the_curves_the_step_began_with() {
        let s = scenario("s3");
        let mut node = Node::new(&s, 4);
        let sizes = [256u64 << 20, 1 << 30, 3 << 30, 6 << 30];
        let curves = |node: &Node, late: bool| -> Vec<u64> {
            (0..2)
                .flat_map(|vm| sizes.map(|b| (vm, b)))
                .map(|(vm, b)| {
                    let r = if late {
                        node.last_step_true_miss_rate_pages_per_s(vm, b)
                    } else {
                        node.true_miss_rate_pages_per_s(vm, b)
                    };
                    r.unwrap().to_bits()
                })
                .collect()
        };
        // Before the first step both are the present curves.
        assert_eq!(curves(&node, true), curves(&node, false));
        let mut changed = 0;
        for _ in 0..400 {
            let before = curves(&node, false);
            node.step();
            assert_eq!(
                curves(&node, true),
                before,
                "one step late: the curves the step began with"
            );
            changed += usize::from(curves(&node, false) != before);
        }
        // gcc and bzip2 change inputs within 400 s, so the two differ at those steps.
        assert!(changed > 0, "no input changed in 400 steps");
        assert_eq!(node.last_step_true_miss_rate_pages_per_s(9, 0), None);
    }

    #[test]
    fn sim_standin_twin_reproduces_the_calibration() {
        let calibration =
            crate::sim::calibration::parse(crate::sim::calibration::BUILTIN_TEXT, "builtin").unwrap();
        for w in &calibration.workload {
            let text = format!(
                "name = \"twin\"\n[node]\ncapacity = \"4 GiB\"\nfloor = \"1 MiB\"\ninitial_allocation = \"1 MiB\"\n\
                 [[vm]]\nworkload = \"{}\"\ncopies = 1\ninputs = \"standin\"\nfault_service_time = \"measured\"\n",
                w.name
            );
            let s = Scenario::parse(Path::new("twin.toml"), &text).unwrap();
            assert_eq!(
                s.vms[0].inputs[0].footprint_mib * (1 << 20) as f64,
                w.footprint_bytes as f64
            );
            for p in w.point.iter().filter(|p| p.major_faults > 0) {
                let mut node = Node::new(&s, 1);
                node.set_allocations(&[p.limit_bytes]).unwrap();
                let simulated = node.step()[0].miss_rate_pages_per_s;
                let measured = p.faults_per_s();
                assert!(
                    (simulated / measured - 1.0).abs() < 0.1,
                    "{} at {:.0}%: simulated {simulated:.0}/s, measured {measured:.0}/s",
                    w.name,
                    p.fraction * 100.0
                );
            }
        }
    }

    #[test]
    fn sim_starving_a_vm_raises_its_miss_rate() {
        let s = scenario("s2");
        let gib = 1u64 << 30;
        let mut total = [0.0f64; 3];
        for (k, alloc) in [gib / 2, gib, 2 * gib].into_iter().enumerate() {
            for seed in 0..5 {
                let mut node = Node::new(&s, seed);
                node.set_allocations(&[alloc, gib]).unwrap();
                for _ in 0..200 {
                    total[k] += node.step()[0].miss_rate_pages_per_s;
                }
            }
        }
        assert!(total[0] > total[1] && total[1] > total[2], "{total:?}");
        assert!(total[2] >= 0.0);
    }

    #[test]
    fn sim_starved_vm_falls_behind() {
        let s = scenario("s1");
        let gib = 1u64 << 30;
        let mut rich = Node::new(&s, 3);
        let mut poor = Node::new(&s, 3);
        rich.set_allocations(&[5 * gib + gib / 2, gib / 2]).unwrap();
        poor.set_allocations(&[gib / 2, gib / 2]).unwrap();
        let (mut p_rich, mut p_poor) = (0.0, 0.0);
        for _ in 0..100 {
            p_rich += rich.step()[0].progress_cpu_s;
            p_poor += poor.step()[0].progress_cpu_s;
        }
        assert!(
            (p_rich - 600.0).abs() < 1e-6,
            "six copies of at most 664 MiB in 5.5 GiB: no faults, 600 CPU-s in 100 s: {p_rich}"
        );
        assert!(p_poor < p_rich * 0.8, "{p_poor} vs {p_rich}");
    }

    #[test]
    fn sim_rejects_allocations_that_do_not_fit() {
        let s = scenario("s1");
        let mut node = Node::new(&s, 0);
        assert!(node.set_allocations(&[4 << 30, 3 << 30]).is_err());
        assert!(node.set_allocations(&[1 << 30]).is_err());
        assert_eq!(node.allocations(), &[1 << 30, 1 << 30]);
        assert_eq!(node.free_bytes(), 4 << 30);
    }

    #[test]
    fn sim_equal_split_falls_short_for_part_of_each_sequence() {
        // The scenarios are contended: at 3 GiB each, demand exceeds the allocation at times.
        for name in ["s1", "s2", "s3"] {
            let s = scenario(name);
            let mut node = Node::new(&s, 1);
            node.set_allocations(&[3 << 30, 3 << 30]).unwrap();
            let (mut short, mut fine) = (0, 0);
            for _ in 0..600 {
                for r in node.step() {
                    if r.demand_bytes > r.allocation_bytes {
                        short += 1
                    } else {
                        fine += 1
                    }
                }
            }
            assert!(short > 0 && fine > 0, "{name}: short {short}, fine {fine}");
        }
    }

    #[test]
    fn sim_measurement_noise_is_seeded_and_unbiased() {
        let mut s = scenario("s1");
        s.node.measurement_noise = 0.2;
        let mut node = Node::new(&s, 4);
        node.set_allocations(&[gib_half(), gib_half()]).unwrap();
        let (mut measured, mut truth) = (0.0, 0.0);
        for _ in 0..2000 {
            let r = node.step()[0];
            measured += r.miss_rate_pages_per_s;
            truth += r.true_miss_rate_pages_per_s;
        }
        assert!(truth > 0.0);
        assert!((measured / truth - 1.0).abs() < 0.05, "{measured} vs {truth}");
    }

    fn gib_half() -> u64 {
        1 << 29
    }
}

#[cfg(test)]
mod conservation_tests {
    use std::path::Path;

    use cavmem_core::bid::{BidConfig, VmGrant, analyze};
    use cavmem_core::rng::Rng;
    use proptest::prelude::{ProptestConfig, any};
    use proptest::{prop_assert, prop_assert_eq, proptest};

    use super::Node;
    use crate::scenario::Scenario;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Random bids through the Bid Analyzer into the simulator: the node never holds more
        /// than its capacity, never loses memory, and keeps every VM at or above the floor.
        #[test]
        fn sim_conserves_memory_under_random_bids(seed in any::<u64>(), scenario_index in 0usize..3) {
            let name = ["s1", "s2", "s3"][scenario_index];
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios").join(format!("{name}.toml"));
            let s = Scenario::load(&path).unwrap();
            let mut node = Node::new(&s, seed);
            let config = BidConfig { capacity_bytes: s.node.capacity_bytes, floor_bytes: s.node.floor_bytes, granularity_bytes: s.node.granularity_bytes, share: s.node.share };
            let mut rng = Rng::seed_from_u64(seed);
            let mut grants = vec![VmGrant::default(); 2];
            for _ in 0..300 {
                let bids = [rng.uniform_range(-1.0, 1.0), rng.uniform_range(-1.0, 1.0)];
                let mut allocations = node.allocations().to_vec();
                let summary = analyze(&config, &mut allocations, &bids, &mut grants).unwrap();
                node.set_allocations(&allocations).unwrap();
                let readings = node.step().to_vec();
                let total: u64 = readings.iter().map(|r| r.allocation_bytes).sum();
                prop_assert_eq!(total + node.free_bytes(), s.node.capacity_bytes);
                prop_assert_eq!(summary.free_bytes, node.free_bytes());
                prop_assert!(readings.iter().all(|r| r.allocation_bytes >= s.node.floor_bytes));
                prop_assert!(readings.iter().all(|r| r.miss_rate_pages_per_s.is_finite() && r.miss_rate_pages_per_s >= 0.0));
            }
        }
    }
}

//! The soak's node: VMs whose memory demand jumps between phases, and whose true miss rate
//! grows as their allocation falls short of their demand. It is a stress model for the
//! control loop (faults, VMs coming and going, a shrinking node), not the evaluation's
//! simulator (`crate::sim`), whose workloads are modeled on SPEC CPU2006.

use cavmem_core::rng::Rng;
use cavmem_core::units::{GIB, MIB};

/// Miss rate of a VM with no memory at all, pages/s (also the MSR bound the soak uses).
pub const BOUND_PAGES_PER_S: f64 = 20_000.0;

/// One VM.
#[derive(Clone, Debug)]
pub struct SoakVm {
    /// Memory the VM would use, bytes.
    pub demand_bytes: u64,
    /// Steps left in the current demand phase.
    phase_left: u32,
}

impl SoakVm {
    /// A new VM with a random demand.
    pub fn new(rng: &mut Rng) -> Self {
        let mut vm = Self {
            demand_bytes: 0,
            phase_left: 0,
        };
        vm.advance(rng);
        vm
    }

    /// One step: a new demand phase (0.5–3 GiB, 20–200 steps) when the current one ends.
    pub fn advance(&mut self, rng: &mut Rng) {
        if self.phase_left == 0 {
            self.demand_bytes = 512 * MIB + u64::from(rng.below(2560)) * MIB;
            self.phase_left = 20 + rng.below(181);
        }
        self.phase_left -= 1;
    }

    /// The true miss rate with `allocation_bytes`, pages/s: `bound × shortfall^0.7` with
    /// ±5% noise.
    pub fn miss_rate(&self, allocation_bytes: u64, rng: &mut Rng) -> f64 {
        let shortfall = 1.0 - (allocation_bytes as f64 / self.demand_bytes.max(1) as f64).min(1.0);
        let noise = 1.0 + 0.05 * f64::from(rng.uniform_range(-1.0, 1.0));
        BOUND_PAGES_PER_S * shortfall.powf(0.7) * noise
    }
}

/// Nominal capacity of a soak node with `vms` VM slots: 1.5 GiB per slot (the mean demand
/// is 1.75 GiB, so the node is contended).
pub fn nominal_capacity_bytes(vms: usize) -> u64 {
    vms as u64 * (3 * GIB / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_vm_misses_more_when_starved() {
        let mut rng = Rng::seed_from_u64(5);
        let vm = SoakVm::new(&mut rng);
        let full = vm.miss_rate(vm.demand_bytes, &mut rng);
        let half = vm.miss_rate(vm.demand_bytes / 2, &mut rng);
        let none = vm.miss_rate(0, &mut rng);
        assert_eq!(full, 0.0);
        assert!(half > 1000.0 && half < none, "{half} {none}");
        assert!(none <= BOUND_PAGES_PER_S * 1.05);
    }
}

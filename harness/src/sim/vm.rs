//! A simulated VM: `copies` copies of one benchmark, each looping over its inputs.
//!
//! Memory is shared among the copies in proportion to their current footprints (what an
//! LRU-managed guest gives processes with equal access intensity). A copy holding `m` MiB
//! of an input incurs `f(m)` faults per CPU-second (its [`Curve`](super::workload::Curve)); each fault blocks it
//! for the fault service time `t`, so it progresses `c / (1 + f·t)` CPU-seconds per
//! second and faults `f·c / (1 + f·t)` times per second, `c` the CPU-seconds per second a
//! copy gets (1, or as measured on a live node; docs/simulator.md). A starved copy thus falls
//! behind in its sequence.

use cavmem_core::rng::Rng;
use cavmem_core::units::MIB;

use super::workload::InputSpec;
use crate::scenario::{CopyStart, StartPosition, VmSpec};

/// Position of one copy in its input sequence.
#[derive(Clone, Copy, Debug, PartialEq)]
struct CopyState {
    input: usize,
    done_cpu_s: f64,
}

/// What one VM did during a step.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct VmStep {
    /// Major faults during the step.
    pub faults: f64,
    /// CPU-seconds of progress summed over copies.
    pub progress_cpu_s: f64,
    /// Memory the copies' current inputs need, bytes (at the start of the step).
    pub demand_bytes: u64,
}

/// A VM in the simulator.
#[derive(Clone, Debug)]
pub struct SimVm {
    spec: VmSpec,
    copies: Vec<CopyState>,
    /// The copies as they were when the last step the VM ran began (as `copies` before
    /// its first).
    copies_before_last_step: Vec<CopyState>,
}

impl SimVm {
    /// A VM placed in its sequence as the spec says; `rng` draws the random start.
    pub fn new(spec: &VmSpec, rng: &mut Rng) -> Self {
        let inputs = spec.inputs;
        let total: f64 = inputs.iter().map(|i| i.duration_s).sum();
        let offset = match spec.start {
            StartPosition::Random => f64::from(rng.uniform_f32()) * total,
            StartPosition::Beginning => 0.0,
        };
        let copies = (0..spec.copies)
            .map(|k| {
                let shift = match spec.copy_start {
                    CopyStart::InStep => 0.0,
                    CopyStart::Staggered => total * f64::from(k) / f64::from(spec.copies),
                };
                position_at(inputs, (offset + shift) % total)
            })
            .collect::<Vec<_>>();
        Self {
            spec: spec.clone(),
            copies_before_last_step: copies.clone(),
            copies,
        }
    }

    /// The VM's spec.
    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    fn input(&self, copy: &CopyState) -> &'static InputSpec {
        let inputs = self.spec.inputs;
        &inputs[copy.input % inputs.len()]
    }

    /// Memory the copies' current inputs need, MiB.
    pub fn demand_mib(&self) -> f64 {
        self.demand_of(&self.copies)
    }

    /// Memory the inputs of `copies` need, MiB.
    fn demand_of(&self, copies: &[CopyState]) -> f64 {
        copies.iter().map(|c| self.input(c).footprint_mib).sum()
    }

    /// The share of `memory_mib` held by a copy with `footprint_mib` when the copies need
    /// `demand_mib` in all: its footprint if everything fits, else a proportional part.
    fn share_mib(memory_mib: f64, footprint_mib: f64, demand_mib: f64) -> f64 {
        if demand_mib <= memory_mib {
            footprint_mib
        } else {
            memory_mib * footprint_mib / demand_mib
        }
    }

    /// The fault rate now, pages/s, without advancing time.
    pub fn fault_rate_now(&self, allocation_bytes: u64) -> f64 {
        self.fault_rate_of(&self.copies, allocation_bytes)
    }

    /// The fault rate, pages/s, the VM would have had with `allocation_bytes` when the
    /// last step it ran began (its inputs then); before its first, [`SimVm::fault_rate_now`].
    pub fn fault_rate_before_last_step(&self, allocation_bytes: u64) -> f64 {
        self.fault_rate_of(&self.copies_before_last_step, allocation_bytes)
    }

    /// The fault rate, pages/s, of `copies` holding `allocation_bytes` between them.
    fn fault_rate_of(&self, copies: &[CopyState], allocation_bytes: u64) -> f64 {
        let memory_mib = allocation_bytes as f64 / MIB as f64;
        let demand = self.demand_of(copies);
        copies
            .iter()
            .map(|c| {
                let input = self.input(c);
                let f = self
                    .spec
                    .curve
                    .faults_per_cpu_s(input, Self::share_mib(memory_mib, input.footprint_mib, demand));
                f / self.slowdown(f)
            })
            .sum()
    }

    /// Wall seconds per CPU-second of a copy faulting `f` times per CPU-second: each fault
    /// stalls it for the fault service time, and it runs at most `cpu_per_copy`
    /// CPU-seconds per second.
    fn slowdown(&self, f: f64) -> f64 {
        (1.0 + f * self.spec.fault_service_time_s) / self.spec.cpu_per_copy
    }

    /// Runs `dt_s` seconds with `allocation_bytes`. The step is cut at every moment a copy
    /// finishes an input, and the shares are recomputed for the new footprints.
    pub fn advance(&mut self, allocation_bytes: u64, dt_s: f64) -> VmStep {
        let memory_mib = allocation_bytes as f64 / MIB as f64;
        let inputs = self.spec.inputs;
        let curve = self.spec.curve;
        let mut step = VmStep {
            demand_bytes: (self.demand_mib() * MIB as f64) as u64,
            ..VmStep::default()
        };
        self.copies_before_last_step.clone_from(&self.copies);
        let mut wall_left = dt_s;
        // Bounded: every pass ends the step or finishes at least one input (durations > 0).
        for _ in 0..100_000 {
            if wall_left <= 0.0 {
                break;
            }
            let demand = self.demand_mib();
            let rate = |c: &CopyState| {
                let input = &inputs[c.input % inputs.len()];
                let f =
                    curve.faults_per_cpu_s(input, Self::share_mib(memory_mib, input.footprint_mib, demand));
                (input, f, self.slowdown(f))
            };
            let mut span = wall_left;
            for c in &self.copies {
                let (input, _, slowdown) = rate(c);
                span = span.min((input.duration_s - c.done_cpu_s).max(0.0) * slowdown);
            }
            let rates: Vec<_> = self.copies.iter().map(rate).collect();
            for (c, (input, f, slowdown)) in self.copies.iter_mut().zip(rates) {
                let cpu = (span / slowdown).min(input.duration_s - c.done_cpu_s).max(0.0);
                step.faults += f * cpu;
                step.progress_cpu_s += cpu;
                c.done_cpu_s += cpu;
                if c.done_cpu_s >= input.duration_s * (1.0 - 1e-12) {
                    c.input = (c.input + 1) % inputs.len();
                    c.done_cpu_s = 0.0;
                }
            }
            wall_left -= span;
        }
        step
    }
}

/// The copy state `offset_s` CPU-seconds into the sequence.
fn position_at(inputs: &[InputSpec], mut offset_s: f64) -> CopyState {
    for (k, input) in inputs.iter().enumerate() {
        if offset_s < input.duration_s {
            return CopyState {
                input: k,
                done_cpu_s: offset_s,
            };
        }
        offset_s -= input.duration_s;
    }
    CopyState {
        input: 0,
        done_cpu_s: 0.0,
    }
}

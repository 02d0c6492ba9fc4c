//! Randomized nodes: the distribution `cavmem train-randomized` draws its training nodes
//! from, so that one policy learns on many nodes instead of one (docs/agents.md,
//! "Training on randomized nodes").
//!
//! A node is a scenario file's text (it goes through the scenario parser like any file):
//! a VM count, memory per VM, each VM's workload (perlbench, gcc or bzip2) and copies
//! (one vCPU per copy), a share of the VMs arriving late or leaving early, measurement
//! noise on some nodes, and some nodes at the live node's scale, running the stand-in
//! programs (`inputs = "standin"`, `fault_service_time = "measured"`, a 64 MiB floor and
//! memory drawn per copy). Every draw is seeded: the same seed gives the same node.

use std::fmt::Write as _;

use cavmem_core::rng::Rng;
use cavmem_core::units::MIB;

use crate::quantity::parse_bytes;

/// A closed range `lo..=hi` of a draw, written `LO..HI` on the command line (or one value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span<T> {
    /// Smallest value.
    pub lo: T,
    /// Largest value.
    pub hi: T,
}

impl<T: Copy + PartialOrd + std::fmt::Display> Span<T> {
    fn from_parts(lo: T, hi: T, text: &str) -> Result<Self, String> {
        if lo > hi {
            return Err(format!(
                "{text:?}: the first value ({lo}) is above the second ({hi})"
            ));
        }
        Ok(Self { lo, hi })
    }
}

/// Parses `"A..B"` or `"A"` (counts).
///
/// # Errors
/// A message quoting the text: not a whole number, or A above B.
pub fn parse_count_span(text: &str) -> Result<Span<u32>, String> {
    let (a, b) = text.split_once("..").unwrap_or((text, text));
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|e| format!("{text:?}: {s:?} is not a whole number ({e})"))
    };
    Span::from_parts(number(a)?, number(b)?, text)
}

/// Parses `"A..B"` or `"A"` (memory sizes with units, e.g. `"768 MiB..5 GiB"`).
///
/// # Errors
/// A message quoting the text: a size without a unit or with a wrong one, or A above B.
pub fn parse_bytes_span(text: &str) -> Result<Span<u64>, String> {
    let (a, b) = text.split_once("..").unwrap_or((text, text));
    let size = |s: &str| parse_bytes(s.trim()).map_err(|e| format!("{text:?}: {e}"));
    Span::from_parts(size(a)?, size(b)?, text)
}

/// The distribution of training nodes (defaults: the values `cavmem train-randomized
/// --help` shows, chosen to cover the shipped scenarios' ranges without being them).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeDistribution {
    /// VMs per node.
    pub vms: Span<u32>,
    /// Node memory per VM of a SPEC-scale node, bytes (the node's capacity is the VM count
    /// times a draw from this, in whole MiB, at least the 384 MiB floor).
    pub memory_per_vm_bytes: Span<u64>,
    /// Copies of the workload in a VM (its vCPUs too).
    pub copies: Span<u32>,
    /// Chance that a VM arrives late or leaves early in every episode (or both).
    pub churn: f64,
    /// Chance that a node measures miss rates with 10% noise.
    pub noisy: f64,
    /// Chance that a node is at the live node's scale, running the stand-in programs.
    pub standin: f64,
    /// Node memory per copy of a stand-in-scale node, bytes.
    pub standin_memory_per_copy_bytes: Span<u64>,
}

impl Default for NodeDistribution {
    fn default() -> Self {
        Self {
            vms: Span { lo: 2, hi: 8 },
            memory_per_vm_bytes: Span {
                lo: 768 * MIB,
                hi: 5 * 1024 * MIB,
            },
            copies: Span { lo: 1, hi: 6 },
            churn: 0.25,
            noisy: 0.25,
            standin: 0.25,
            standin_memory_per_copy_bytes: Span {
                lo: 50 * MIB,
                hi: 140 * MIB,
            },
        }
    }
}

/// Steps of every drawn node's episodes (the shipped scenarios').
pub const STEPS_PER_EPISODE: u32 = 100;
/// The three workloads, in draw order.
pub(crate) const WORKLOADS: [&str; 3] = ["perlbench", "gcc", "bzip2"];
/// A SPEC-scale node's floor and largest starting allocation (the shipped scenarios').
const SPEC_FLOOR_MIB: u64 = 384;
const SPEC_INITIAL_MAX_MIB: u64 = 1024;
/// A stand-in-scale node's floor (harness/scenarios/live/perlbench-gcc.toml's).
const STANDIN_FLOOR_MIB: u64 = 64;
/// Relative σ of the noise on a noisy node (u8-churn-noisy's).
const NOISE: f64 = 0.1;

/// The `[[vm]]` keys of a VM at the live node's scale.
const STANDIN_KEYS: &str = "inputs = \"standin\"\nfault_service_time = \"measured\"\n";

/// One drawn VM.
struct DrawnVm {
    workload: &'static str,
    copies: u32,
    stay: Stay,
}

/// When a VM is on the node in each episode: the step it arrives at (`None`: from the
/// start) and the one it leaves at (`None`: to the end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stay {
    arrive: Option<u32>,
    leave: Option<u32>,
}

impl Stay {
    /// A late arrival and/or an early leave within a 100-step episode, at least 20 steps
    /// apart (the draw `cavmem generate` and `cavmem train-randomized` share).
    pub(crate) fn draw(rng: &mut Rng) -> Self {
        let arrive = rng.below(50);
        let leave = arrive + 20 + rng.below(81 - arrive.min(80));
        Self {
            arrive: (arrive > 0).then_some(arrive),
            leave: (leave < 100).then_some(leave),
        }
    }
}

/// Appends a generated scenario's `[node]` table: the given capacity, floor, first
/// allocation (quantities with units) and noise; 1 MiB granularity, 1 s steps,
/// [`STEPS_PER_EPISODE`] steps, a 100 µs stall and proportional sharing (the shipped
/// scenarios').
pub(crate) fn write_node_table(out: &mut String, capacity: &str, floor: &str, initial: &str, noise: f64) {
    let _ = writeln!(out, "[node]\ncapacity = \"{capacity}\"\nfloor = \"{floor}\"");
    let _ = writeln!(out, "granularity = \"1 MiB\"\ninitial_allocation = \"{initial}\"");
    let _ = writeln!(out, "step = \"1 s\"\nsteps_per_episode = {STEPS_PER_EPISODE}");
    let _ = writeln!(out, "fault_service_time = \"100 us\"");
    let _ = writeln!(out, "measurement_noise = {noise:?}\nshare = \"proportional\"");
}

/// Appends a `[[vm]]` table: the workload, its copies (one vCPU each) from a random point
/// of its inputs, the `extra` key lines, then its stay.
pub(crate) fn write_vm_table(out: &mut String, workload: &str, copies: u32, extra: &str, stay: Stay) {
    let _ = write!(
        out,
        "\n[[vm]]\nworkload = \"{workload}\"\ncopies = {copies}\nvcpus = {copies}\nstart = \"random\"\n{extra}"
    );
    if let Some(step) = stay.arrive {
        let _ = writeln!(out, "arrive = {step}");
    }
    if let Some(step) = stay.leave {
        let _ = writeln!(out, "leave = {step}");
    }
}

impl NodeDistribution {
    /// Node `index` of the distribution as scenario text, drawn from `seed`.
    ///
    /// # Examples
    /// ```
    /// use cavmem_harness::randomized::NodeDistribution;
    /// let text = NodeDistribution::default().node(3, 42);
    /// let node = cavmem_harness::scenario::Scenario::parse("node.toml".as_ref(), &text).unwrap();
    /// assert!((2..=8).contains(&node.vms.len()));
    /// ```
    pub fn node(&self, index: u64, seed: u64) -> String {
        let mut rng = Rng::seed_from_u64(seed);
        let vms = draw_count(&mut rng, self.vms);
        let standin = chance(&mut rng, self.standin);
        let noise = if chance(&mut rng, self.noisy) { NOISE } else { 0.0 };
        let drawn: Vec<DrawnVm> = (0..vms).map(|_| self.draw_vm(&mut rng)).collect();
        let (capacity_mib, floor_mib) = if standin {
            let copies: u64 = drawn.iter().map(|v| u64::from(v.copies)).sum();
            let per_copy = draw_mib(&mut rng, self.standin_memory_per_copy_bytes);
            (
                (copies * per_copy).max(u64::from(vms) * 2 * STANDIN_FLOOR_MIB),
                STANDIN_FLOOR_MIB,
            )
        } else {
            let per_vm = draw_mib(&mut rng, self.memory_per_vm_bytes).max(SPEC_FLOOR_MIB);
            (u64::from(vms) * per_vm, SPEC_FLOOR_MIB)
        };
        let initial_mib = (capacity_mib / u64::from(vms)).min(SPEC_INITIAL_MAX_MIB);
        let scale = if standin { "stand-in" } else { "SPEC" };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Drawn by `cavmem train-randomized` (node {index}, seed {seed})."
        );
        let _ = writeln!(out, "name = \"randomized-{index}\"");
        let _ = writeln!(
            out,
            "description = \"{vms} VMs at {scale} scale, {capacity_mib} MiB\"\n"
        );
        write_node_table(
            &mut out,
            &format!("{capacity_mib} MiB"),
            &format!("{floor_mib} MiB"),
            &format!("{initial_mib} MiB"),
            noise,
        );
        let inputs = if standin { STANDIN_KEYS } else { "" };
        for vm in &drawn {
            write_vm_table(&mut out, vm.workload, vm.copies, inputs, vm.stay);
        }
        out
    }

    /// A VM: its workload, copies, and (with chance `churn`) a late arrival and/or an early
    /// leave, at least 20 steps apart, within a 100-step episode.
    fn draw_vm(&self, rng: &mut Rng) -> DrawnVm {
        let workload = WORKLOADS[rng.below(WORKLOADS.len() as u32) as usize];
        let copies = draw_count(rng, self.copies);
        let stay = if chance(rng, self.churn) {
            Stay::draw(rng)
        } else {
            Stay::default()
        };
        DrawnVm {
            workload,
            copies,
            stay,
        }
    }
}

fn chance(rng: &mut Rng, p: f64) -> bool {
    f64::from(rng.uniform_f32()) < p
}

fn draw_count(rng: &mut Rng, span: Span<u32>) -> u32 {
    span.lo + rng.below(span.hi - span.lo + 1)
}

/// A size in whole MiB within `span` (at least 1 MiB).
fn draw_mib(rng: &mut Rng, span: Span<u64>) -> u64 {
    let (lo, hi) = ((span.lo / MIB).max(1), (span.hi / MIB).max(1));
    let width = u32::try_from(hi.saturating_sub(lo) + 1).unwrap_or(u32::MAX);
    lo + u64::from(rng.below(width))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::Scenario;
    use crate::sim::workload::InputSet;

    fn parsed(d: &NodeDistribution, index: u64) -> Scenario {
        let text = d.node(index, 1000 + index);
        Scenario::parse(Path::new("node.toml"), &text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    /// Every draw is a valid scenario within the ranges, and together they cover them.
    #[test]
    fn randomized_nodes_parse_within_their_ranges_and_cover_them() {
        let d = NodeDistribution::default();
        let nodes: Vec<Scenario> = (0..300).map(|i| parsed(&d, i)).collect();
        let mut counts = std::collections::BTreeSet::new();
        let (mut standin, mut noisy, mut late) = (0, 0, 0);
        for s in &nodes {
            let n = s.vms.len() as u64;
            counts.insert(n);
            assert!((2..=8).contains(&n));
            assert!(
                s.vms
                    .iter()
                    .all(|v| (1..=6).contains(&v.copies) && v.vcpus == v.copies)
            );
            if s.vms[0].input_set == InputSet::Standin {
                standin += 1;
                assert_eq!(s.node.floor_bytes, 64 * MIB);
                let copies: u64 = s.vms.iter().map(|v| u64::from(v.copies)).sum();
                let per_copy = s.node.capacity_bytes / copies;
                assert!(per_copy >= 50 * MIB || s.node.capacity_bytes == n * 128 * MIB);
                assert!(per_copy <= 140 * MIB || s.node.capacity_bytes == n * 128 * MIB);
            } else {
                let per_vm = s.node.capacity_bytes / n;
                assert!((768 * MIB..=5 * 1024 * MIB).contains(&per_vm), "{per_vm}");
            }
            assert!(s.node.initial_allocation_bytes * n <= s.node.capacity_bytes);
            noisy += usize::from(s.node.measurement_noise > 0.0);
            late += s
                .vms
                .iter()
                .filter(|v| v.arrive_step > 0 || v.leave_step.is_some())
                .count();
        }
        assert_eq!(counts.len(), 7, "every VM count 2..=8: {counts:?}");
        assert!(
            (40..=110).contains(&standin),
            "{standin} of 300 at stand-in scale"
        );
        assert!((40..=110).contains(&noisy), "{noisy} of 300 noisy");
        assert!(late > 100, "{late} VMs arrive late or leave early");
        assert_eq!(d.node(7, 9), d.node(7, 9), "seeded");
        assert_ne!(d.node(7, 9), d.node(7, 10));
    }

    #[test]
    fn randomized_spans_parse_and_refuse_with_the_text() {
        assert_eq!(parse_count_span("2..8"), Ok(Span { lo: 2, hi: 8 }));
        assert_eq!(parse_count_span("3"), Ok(Span { lo: 3, hi: 3 }));
        assert!(parse_count_span("8..2").unwrap_err().contains("\"8..2\""));
        assert!(parse_count_span("2..x").unwrap_err().contains("\"x\""));
        assert_eq!(
            parse_bytes_span("768 MiB..5 GiB"),
            Ok(Span {
                lo: 768 * MIB,
                hi: 5120 * MIB
            })
        );
        assert!(parse_bytes_span("768..5 GiB").unwrap_err().contains("no unit"));
    }

    /// A fixed range draws that value: one VM count, one size.
    #[test]
    fn randomized_fixed_spans_draw_their_value() {
        let d = NodeDistribution {
            vms: Span { lo: 3, hi: 3 },
            memory_per_vm_bytes: Span {
                lo: 2048 * MIB,
                hi: 2048 * MIB,
            },
            standin: 0.0,
            ..NodeDistribution::default()
        };
        for i in 0..20 {
            let s = parsed(&d, i);
            assert_eq!(s.vms.len(), 3);
            assert_eq!(s.node.capacity_bytes, 3 * 2048 * MIB);
        }
    }
}

//! The relationships the paper states in section 5, as data, and how ours compare.
//!
//! Each claim is a ratio `a / b` of one metric between two policies (for one VM or the mean
//! over VMs), e.g. "S1: DDPG deviation 82.2% below static" is `deviation(ddpg) /
//! deviation(static) = 0.178`. Ours is computed from the same metric over the same window;
//! the ordering holds when both ratios are on the same side of 1, and the difference is
//! within noise when the two policies' 95% intervals over seeds overlap.

use super::{Aggregate, VmStats};
use crate::eval::formulation::FormulationName;
use crate::eval::metrics::Interval;

/// Which metric a claim is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Average miss rate.
    MissRate,
    /// Average miss-rate deviation.
    Deviation,
    /// Training overhead.
    Overhead,
}

/// Which VM: one, or the mean over VMs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// VM `k` (0-based).
    Vm(usize),
    /// The mean over VMs.
    Mean,
}

/// One stated relationship.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Claim {
    /// Scenario name.
    pub scenario: &'static str,
    /// The paper's words, shortened.
    pub text: &'static str,
    /// Metric.
    pub metric: Metric,
    /// VM or mean.
    pub which: Which,
    /// Numerator policy.
    pub a: &'static str,
    /// Denominator policy.
    pub b: &'static str,
    /// The paper's ratio `a / b`.
    pub paper_ratio: f64,
}

const fn claim(
    scenario: &'static str,
    text: &'static str,
    metric: Metric,
    which: Which,
    a: &'static str,
    b: &'static str,
    paper_ratio: f64,
) -> Claim {
    Claim {
        scenario,
        text,
        metric,
        which,
        a,
        b,
        paper_ratio,
    }
}

use Metric::{Deviation, MissRate, Overhead};
use Which::{Mean, Vm};

/// Section 5's relationships.
pub const CLAIMS: &[Claim] = &[
    claim(
        "s1",
        "DDPG miss rate 10% above static",
        MissRate,
        Mean,
        "ddpg",
        "static",
        1.10,
    ),
    claim(
        "s1",
        "DQL miss rate 14.7% above static",
        MissRate,
        Mean,
        "dqn",
        "static",
        1.147,
    ),
    claim(
        "s1",
        "QL miss rate 13.9% above static",
        MissRate,
        Mean,
        "ql",
        "static",
        1.139,
    ),
    claim(
        "s1",
        "DDPG deviation 82.2% below static",
        Deviation,
        Mean,
        "ddpg",
        "static",
        0.178,
    ),
    claim(
        "s1",
        "DDPG deviation 66.1% below DQL",
        Deviation,
        Mean,
        "ddpg",
        "dqn",
        0.339,
    ),
    claim(
        "s1",
        "DDPG deviation 75.4% below QL",
        Deviation,
        Mean,
        "ddpg",
        "ql",
        0.246,
    ),
    claim(
        "s1",
        "DQL overhead 10.64x DDPG",
        Overhead,
        Mean,
        "dqn",
        "ddpg",
        10.64,
    ),
    claim("s1", "DQL overhead 15.0x QL", Overhead, Mean, "dqn", "ql", 15.0),
    claim(
        "s1",
        "DDPG overhead 37% above QL",
        Overhead,
        Mean,
        "ddpg",
        "ql",
        1.37,
    ),
    claim(
        "s2",
        "DDPG miss rate 6.41% below DQL for the paper's VM1 (VM 0)",
        MissRate,
        Vm(0),
        "ddpg",
        "dqn",
        0.9359,
    ),
    claim(
        "s2",
        "DDPG miss rate 5.81% above DQL for the paper's VM2 (VM 1)",
        MissRate,
        Vm(1),
        "ddpg",
        "dqn",
        1.0581,
    ),
    claim(
        "s2",
        "DDPG deviation 67.6% above DQL",
        Deviation,
        Mean,
        "ddpg",
        "dqn",
        1.676,
    ),
    claim(
        "s2",
        "DQL overhead 5.44x DDPG",
        Overhead,
        Mean,
        "dqn",
        "ddpg",
        5.44,
    ),
    claim("s2", "DQL overhead 9.96x QL", Overhead, Mean, "dqn", "ql", 9.96),
    claim(
        "s2",
        "DDPG overhead 70% above QL",
        Overhead,
        Mean,
        "ddpg",
        "ql",
        1.70,
    ),
    claim(
        "s3",
        "DDPG miss rate 5.96% above DQL",
        MissRate,
        Mean,
        "ddpg",
        "dqn",
        1.0596,
    ),
    claim(
        "s3",
        "DQL deviation 65.92% below DDPG",
        Deviation,
        Mean,
        "dqn",
        "ddpg",
        0.3408,
    ),
    claim(
        "s3",
        "DQL overhead 10.9x DDPG",
        Overhead,
        Mean,
        "dqn",
        "ddpg",
        10.9,
    ),
    claim("s3", "DQL overhead 14.2x QL", Overhead, Mean, "dqn", "ql", 14.2),
    claim(
        "s3",
        "DDPG overhead 28% above QL",
        Overhead,
        Mean,
        "ddpg",
        "ql",
        1.28,
    ),
];

/// A claim checked against our results.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// The claim.
    pub claim: Claim,
    /// Our ratio `a / b` (NaN when b is 0).
    pub ours: f64,
    /// Both ratios on the same side of 1.
    pub ordering_holds: bool,
    /// The 95% intervals of a and b overlap (or only one seed: unknown, reported as false).
    pub within_noise: bool,
}

fn pick(stats: &VmStats, metric: Metric) -> Interval {
    match metric {
        Metric::MissRate => stats.miss,
        Metric::Deviation => stats.deviation,
        Metric::Overhead => stats.overhead,
    }
}

/// Whether the paper states claims about scenario `name` (Table 2's s1–s3).
pub fn is_paper_scenario(name: &str) -> bool {
    CLAIMS.iter().any(|c| c.scenario == name)
}

/// Checks every claim whose cells exist for `formulation`.
pub fn check(agg: &Aggregate, formulation: FormulationName) -> Vec<Verdict> {
    CLAIMS
        .iter()
        .filter_map(|c| {
            let cell_a = agg.get(c.scenario, formulation, c.a)?;
            let cell_b = agg.get(c.scenario, formulation, c.b)?;
            let stats = |cell: &super::CellStats| match c.which {
                Which::Mean => Some(cell.mean),
                Which::Vm(k) => cell.per_vm.get(k).copied(),
            };
            let (ia, ib) = (pick(&stats(cell_a)?, c.metric), pick(&stats(cell_b)?, c.metric));
            let ours = if ib.mean == 0.0 {
                f64::NAN
            } else {
                ia.mean / ib.mean
            };
            let ordering_holds = ours.is_finite() && (ours > 1.0) == (c.paper_ratio > 1.0);
            let within_noise = ia.n > 1 && ib.n > 1 && ia.overlaps(&ib);
            Some(Verdict {
                claim: *c,
                ours,
                ordering_holds,
                within_noise,
            })
        })
        .collect()
}

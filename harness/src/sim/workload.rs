//! Workload models: the SPEC CPU2006 inputs of the paper's scenarios as looping phase
//! sequences, each phase with a duration, a footprint and a miss-rate curve.
//!
//! Durations and footprints are the published per-input baselines in
//! `docs/workloads.md` (peak RSS in MiB / wall seconds, 64-bit Linux, one copy; from
//! the camp-experiment records, agreeing within 1% with the floatzone and rangesanitizer
//! baselines). The default curves are measured on a real kernel (`calibrated`,
//! [`super::calibration`]); the assumed shapes they replace remain as options:
//! - perlbench and gcc: a truncated power law (Hartstein et al., CF'06, "the √2 rule"):
//!   faults per CPU-second `A·((F/m)^α − 1)` below the footprint `F`, none at or above it.
//! - bzip2: a cyclic sweep over its active set (input buffer + compressed output + 10 MiB),
//!   which under LRU misses on every access once memory is below the active set: a step.

use std::fmt;

/// One of the three benchmarks of the paper's Table 2 (`workload` in a scenario file:
/// `perlbench`, `bzip2`, `gcc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Benchmark {
    /// 400.perlbench.
    Perlbench,
    /// 401.bzip2.
    Bzip2,
    /// 403.gcc.
    Gcc,
}

impl Benchmark {
    /// Every benchmark.
    pub const ALL: [Self; 3] = [Self::Perlbench, Self::Bzip2, Self::Gcc];

    /// The scenario-file name (`perlbench`, `bzip2`, `gcc`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Perlbench => "perlbench",
            Self::Bzip2 => "bzip2",
            Self::Gcc => "gcc",
        }
    }

    /// Parses a scenario-file name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The reference inputs in SPEC's order (workloads.md): name, peak RSS MiB, seconds,
    /// and for bzip2 the active set in MiB.
    pub fn inputs(self) -> &'static [InputSpec] {
        match self {
            Self::Perlbench => PERLBENCH,
            Self::Bzip2 => BZIP2,
            Self::Gcc => GCC,
        }
    }

    /// The assumed curve of this benchmark (before calibration): a power law for
    /// perlbench and gcc, a step for bzip2.
    pub fn assumed_curve(self) -> CurveKind {
        match self {
            Self::Perlbench | Self::Gcc => CurveKind::PowerLaw,
            Self::Bzip2 => CurveKind::Step,
        }
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which input sequence a simulated VM's copies run (`inputs` in a scenario file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSet {
    /// SPEC's reference inputs in order ([`Benchmark::inputs`]; the paper's; default).
    #[default]
    Spec,
    /// The benchmark's stand-in program of `cavmem live` at its measured footprint
    /// ([`super::calibration::standin_inputs`]): the simulated twin of a live node.
    Standin,
}

impl InputSet {
    /// The scenario-file name (`spec`, `standin`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Spec => "spec",
            Self::Standin => "standin",
        }
    }
}

/// One reference input of a benchmark.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InputSpec {
    /// SPEC's input name.
    pub name: &'static str,
    /// Peak resident memory of one copy, MiB.
    pub footprint_mib: f64,
    /// Run time of one copy with all its memory, seconds.
    pub duration_s: f64,
    /// The memory below which a step curve misses (bzip2's active set), MiB; `None` for
    /// power-law inputs.
    pub active_set_mib: Option<f64>,
}

const fn input(name: &'static str, footprint_mib: f64, duration_s: f64) -> InputSpec {
    InputSpec {
        name,
        footprint_mib,
        duration_s,
        active_set_mib: None,
    }
}

const fn sweep(name: &'static str, footprint_mib: f64, duration_s: f64, active_set_mib: f64) -> InputSpec {
    InputSpec {
        name,
        footprint_mib,
        duration_s,
        active_set_mib: Some(active_set_mib),
    }
}

/// workloads.md, 400.perlbench.
const PERLBENCH: &[InputSpec] = &[
    input("checkspam", 238.0, 78.4),
    input("diffmail", 303.0, 21.7),
    input("splitmail", 664.0, 37.1),
];

/// workloads.md, 401.bzip2. Active sets: N + compressed output + 10 MiB; 370 MiB for the
/// 280 MiB inputs (workloads.md); 70 MiB for the 30 MiB JPEG inputs (JPEG hardly
/// compresses: 30 + 30 + 10); 270 MiB for `combined` (N = 200 MiB, about 60 MiB output).
const BZIP2: &[InputSpec] = &[
    sweep("source", 851.0, 53.4, 370.0),
    sweep("chicken.jpg", 101.0, 18.5, 70.0),
    sweep("liberty.jpg", 101.0, 26.8, 70.0),
    sweep("program", 851.0, 52.4, 370.0),
    sweep("text.html", 851.0, 58.5, 370.0),
    sweep("combined", 611.0, 41.4, 270.0),
];

/// workloads.md, 403.gcc.
const GCC: &[InputSpec] = &[
    input("166", 231.0, 11.5),
    input("200", 252.0, 22.2),
    input("c-typeck", 444.0, 15.7),
    input("cp-decl", 335.0, 11.2),
    input("expr", 451.0, 13.1),
    input("expr2", 609.0, 18.8),
    input("g23", 848.0, 32.9),
    input("s04", 886.0, 26.3),
    input("scilab", 96.0, 7.8),
];

/// The shape of a miss-rate curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CurveKind {
    /// Measured on a real kernel: the stand-in of this benchmark's faults per CPU-second
    /// at the memory fraction `m/F` ([`super::calibration`]; the default).
    Calibrated(Benchmark),
    /// Measured on a live node for one VM (`curve = "node"`,
    /// [`super::node_calibration`]): its faults per CPU-second at the fraction `m/F`.
    Node(&'static super::calibration::MeasuredCurve),
    /// `A·((F/m)^α − 1)` for `m < F` (an assumption: Hartstein et al.'s √2 rule).
    PowerLaw,
    /// `A` for `m <` active set, else 0 (an assumption: a cyclic sweep under LRU).
    Step,
}

/// Parameters of a miss-rate curve, all scenario parameters (`alpha` and the intensity
/// apply to the assumed shapes only).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Curve {
    /// The shape.
    pub kind: CurveKind,
    /// Exponent α of the power law (0.3–0.7 in Hartstein et al.; default 0.5, the √2 rule).
    pub alpha: f64,
    /// Scale `A`: faults per CPU-second (power law: at `m = F/2^(1/α)`; step: below the
    /// active set). Default 50,000 pages/s, an assumption (see docs/simulator.md).
    pub intensity_pages_per_s: f64,
}

impl Curve {
    /// Faults per second of CPU progress for a copy holding `memory_mib` of an input.
    pub fn faults_per_cpu_s(&self, input: &InputSpec, memory_mib: f64) -> f64 {
        match self.kind {
            CurveKind::Calibrated(benchmark) => super::calibration::builtin_curve(benchmark)
                .map_or(0.0, |c| c.faults_per_cpu_s(memory_mib / input.footprint_mib)),
            CurveKind::Node(curve) => curve.faults_per_cpu_s(memory_mib / input.footprint_mib),
            CurveKind::PowerLaw => {
                if memory_mib >= input.footprint_mib {
                    0.0
                } else {
                    let m = memory_mib.max(1.0);
                    self.intensity_pages_per_s * ((input.footprint_mib / m).powf(self.alpha) - 1.0)
                }
            }
            CurveKind::Step => {
                let active = input.active_set_mib.unwrap_or(input.footprint_mib);
                if memory_mib >= active {
                    0.0
                } else {
                    self.intensity_pages_per_s
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input of docs/workloads.md's table, in order: (name, MiB, seconds).
    fn documented_inputs(spec_name: &str) -> Vec<(String, f64, f64)> {
        let doc = include_str!("../../../docs/workloads.md");
        let row = doc
            .lines()
            .find_map(|l| l.strip_prefix(&format!("| {spec_name} | ")))
            .unwrap();
        row.trim_end_matches(" |")
            .split(" → ")
            .map(|input| {
                let (rest, seconds) = input.rsplit_once(" / ").unwrap();
                let (name, mib) = rest.rsplit_once(' ').unwrap();
                (name.to_string(), mib.parse().unwrap(), seconds.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn workload_tables_match_workloads_md() {
        for (benchmark, spec_name) in [
            (Benchmark::Perlbench, "400.perlbench"),
            (Benchmark::Bzip2, "401.bzip2"),
            (Benchmark::Gcc, "403.gcc"),
        ] {
            let code: Vec<(String, f64, f64)> = benchmark
                .inputs()
                .iter()
                .map(|i| (i.name.to_string(), i.footprint_mib, i.duration_s))
                .collect();
            assert_eq!(code, documented_inputs(spec_name), "{spec_name}");
        }
        let total = |b: Benchmark| b.inputs().iter().map(|i| i.duration_s).sum::<f64>();
        assert!((total(Benchmark::Perlbench) - 137.2).abs() < 1e-9);
        assert!((total(Benchmark::Bzip2) - 251.0).abs() < 1e-9);
        assert!((total(Benchmark::Gcc) - 159.5).abs() < 1e-9);
        assert_eq!(Benchmark::Gcc.inputs()[7].name, "s04");
        assert_eq!(Benchmark::Gcc.inputs()[7].footprint_mib, 886.0);
    }

    #[test]
    fn workload_curves_fall_with_memory() {
        let input = Benchmark::Gcc.inputs()[7];
        let curve = Curve {
            kind: CurveKind::PowerLaw,
            alpha: 0.5,
            intensity_pages_per_s: 50_000.0,
        };
        let mut last = f64::INFINITY;
        for m in [50.0, 200.0, 443.0, 800.0, 885.0] {
            let f = curve.faults_per_cpu_s(&input, m);
            assert!(f < last && f > 0.0);
            last = f;
        }
        assert_eq!(curve.faults_per_cpu_s(&input, 886.0), 0.0);
        let half = curve.faults_per_cpu_s(&input, 443.0);
        assert!((half - 50_000.0 * (2f64.sqrt() - 1.0)).abs() < 1e-6);
        let bz = Benchmark::Bzip2.inputs()[0];
        let step = Curve {
            kind: CurveKind::Step,
            ..curve
        };
        assert_eq!(step.faults_per_cpu_s(&bz, 369.0), 50_000.0);
        assert_eq!(step.faults_per_cpu_s(&bz, 370.0), 0.0);
    }
}

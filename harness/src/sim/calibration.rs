//! Miss-rate curves measured on a real kernel (`cavmem calibrate`): each stand-in program
//! run in a memory cgroup at limits of 100/80/60/40% of its measured footprint, its major
//! faults counted per second of user CPU time. The simulator's `calibrated` curve (the
//! default) reads them from `harness/data/calibration/standins.toml`, built into the binary.
//!
//! The curve of a benchmark is a function of the memory fraction `x = memory / footprint`
//! (the stand-in's measurements carried over to SPEC's inputs by that fraction):
//! - between measured fractions: linear interpolation of faults per CPU-second;
//! - above the largest measured fraction: linear down to the unconstrained rate (measured
//!   without a limit) at one grid step (0.2) above it, and that rate beyond;
//! - below the smallest: the power law through the two smallest points (exponent clamped
//!   to [-3, 0]), continued down to x = 0.01.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use cavmem_core::units::MIB;

use super::workload::{Benchmark, InputSpec};

/// The calibration built into the simulator.
pub const BUILTIN_TEXT: &str = include_str!("../../data/calibration/standins.toml");
/// Where [`BUILTIN_TEXT`] comes from, for messages.
pub const BUILTIN_PATH: &str = "harness/data/calibration/standins.toml";

/// Fraction above the largest measured one at which the unconstrained rate is reached.
pub const ABOVE_STEP: f64 = 0.2;
/// Smallest memory fraction the extrapolation goes down to.
pub const MIN_FRACTION: f64 = 0.01;

/// A calibration file: where and how it was measured, and one entry per workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The machine (CPU model, cores, kernel, swap device).
    pub machine: String,
    /// When it was measured (UTC date).
    pub date: String,
    /// The command that measured it.
    pub command: String,
    /// One entry per stand-in.
    pub workload: Vec<WorkloadCalibration>,
}

/// The measurements of one stand-in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadCalibration {
    /// The benchmark it stands in for (`perlbench`, `gcc`, `bzip2`).
    pub name: String,
    /// The command line it ran.
    pub standin: String,
    /// Peak memory of one copy without a limit, bytes (its footprint).
    pub footprint_bytes: u64,
    /// Measured without a limit.
    pub unconstrained: Point,
    /// Measured at each limit, largest first.
    pub point: Vec<Point>,
}

/// One measurement window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// The cgroup limit, bytes (0: none).
    pub limit_bytes: u64,
    /// `limit_bytes / footprint_bytes` (the unconstrained point has none: 0).
    pub fraction: f64,
    /// Length of the window, seconds.
    pub window_s: f64,
    /// Major faults in the window.
    pub major_faults: u64,
    /// User CPU time in the window, seconds (the workload's progress).
    pub user_cpu_s: f64,
}

impl Point {
    /// Major faults per second of wall time.
    pub fn faults_per_s(&self) -> f64 {
        self.major_faults as f64 / self.window_s.max(1e-9)
    }
    /// Major faults per CPU-second of progress (the simulator's curve).
    pub fn faults_per_cpu_s(&self) -> f64 {
        self.major_faults as f64 / self.user_cpu_s.max(1e-3)
    }
    /// User CPU-seconds per second of wall time.
    pub fn progress(&self) -> f64 {
        self.user_cpu_s / self.window_s.max(1e-9)
    }
    /// Seconds one fault stalled the workload, from the slowdown against `unconstrained`:
    /// `(p₀/p − 1) / f`; `None` without faults.
    pub fn fault_service_time_s(&self, unconstrained: &Point) -> Option<f64> {
        let f = self.faults_per_cpu_s();
        let p = self.progress();
        (self.major_faults > 0 && p > 0.0).then(|| ((unconstrained.progress() / p - 1.0) / f).max(0.0))
    }
}

/// The median over `points` of [`Point::fault_service_time_s`] against `unconstrained`
/// (`None` when no point faulted): the stall per fault a simulated twin takes.
pub fn median_stall_s(points: &[Point], unconstrained: &Point) -> Option<f64> {
    let mut stalls: Vec<f64> = points
        .iter()
        .filter_map(|p| p.fault_service_time_s(unconstrained))
        .collect();
    stalls.sort_by(f64::total_cmp);
    stalls.get(stalls.len() / 2).copied()
}

/// Why a calibration was refused: the file (or other origin), and the workload when the
/// fault is in one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalibrationError {
    /// Not TOML of the calibration's shape.
    #[error("{origin}: {reason}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// The parser's message.
        reason: String,
    },
    /// A workload's values are impossible.
    #[error("{origin}: workload {workload:?}: {reason}")]
    Workload {
        /// Where the text came from.
        origin: String,
        /// The workload's name.
        workload: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A VM's values in a node calibration are impossible.
    #[error("{origin}: vm[{vm}]: {reason}")]
    Vm {
        /// Where the text came from.
        origin: String,
        /// The VM's index.
        vm: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file could not be read.
    #[error("{origin}: cannot read: {reason}")]
    Read {
        /// The file.
        origin: String,
        /// The system's message.
        reason: String,
    },
    /// The built-in calibration lacks a benchmark.
    #[error("{origin}: no calibration of {benchmark} (run `cavmem calibrate`)")]
    Missing {
        /// The built-in file.
        origin: String,
        /// The benchmark.
        benchmark: Benchmark,
    },
}

/// Reads a calibration written by `cavmem calibrate`; `origin` names it in errors.
///
/// # Errors
/// [`CalibrationError`]: the syntax, or which workload's values are impossible.
pub fn parse(text: &str, origin: &str) -> Result<Calibration, CalibrationError> {
    let c: Calibration = toml::from_str(text).map_err(|e| CalibrationError::Syntax {
        origin: origin.to_string(),
        reason: e.to_string(),
    })?;
    for w in &c.workload {
        let at = |reason: &'static str| CalibrationError::Workload {
            origin: origin.to_string(),
            workload: w.name.clone(),
            reason,
        };
        if Benchmark::from_name(&w.name).is_none() {
            return Err(at("not one of perlbench, gcc, bzip2"));
        }
        if w.footprint_bytes == 0 {
            return Err(at("footprint_bytes must be positive"));
        }
        check_points(&w.point, &w.unconstrained).map_err(at)?;
    }
    Ok(c)
}

/// Checks measured points: at least one, every value finite and non-negative, every
/// window non-empty, every limited point at a positive fraction.
///
/// # Errors
/// What is wrong, for the caller's error.
pub fn check_points(points: &[Point], unconstrained: &Point) -> Result<(), &'static str> {
    if points.is_empty() {
        return Err("no measured points");
    }
    for p in points.iter().chain([unconstrained]) {
        let finite = [p.fraction, p.window_s, p.user_cpu_s]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0);
        if !finite || p.window_s <= 0.0 {
            return Err("a point with a negative, non-finite or empty value");
        }
    }
    if points.iter().any(|p| p.fraction <= 0.0) {
        return Err("a limited point needs a positive fraction");
    }
    Ok(())
}

/// A benchmark's measured curve, ready to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasuredCurve {
    /// `(fraction, faults per CPU-second)`, fractions increasing.
    points: Vec<(f64, f64)>,
    /// The rate without a limit.
    unconstrained: f64,
    /// Power-law exponent below the smallest fraction.
    below_exponent: f64,
}

impl MeasuredCurve {
    /// The curve of one workload's measurements.
    pub fn new(w: &WorkloadCalibration) -> Self {
        Self::measured(&w.point, &w.unconstrained)
    }

    /// The curve through measured `points`, with `unconstrained`'s rate beyond them.
    pub fn measured(points: &[Point], unconstrained: &Point) -> Self {
        let mut points: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.fraction, p.faults_per_cpu_s()))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self::from_points(points, unconstrained.faults_per_cpu_s())
    }

    /// The curve through `points` (`(fraction, faults per CPU-second)`, fractions
    /// increasing) with `unconstrained` beyond them.
    pub fn from_points(points: Vec<(f64, f64)>, unconstrained: f64) -> Self {
        let below_exponent = match points.as_slice() {
            [(x0, f0), (x1, f1), ..] if *f0 > 0.0 && *f1 > 0.0 && x1 > x0 => {
                ((f1 / f0).ln() / (x1 / x0).ln()).clamp(-3.0, 0.0)
            }
            _ => 0.0,
        };
        Self {
            points,
            unconstrained,
            below_exponent,
        }
    }

    /// Faults per CPU-second at memory fraction `x` (memory / footprint).
    pub fn faults_per_cpu_s(&self, x: f64) -> f64 {
        let (Some(&(x_lo, f_lo)), Some(&(x_hi, f_hi))) = (self.points.first(), self.points.last()) else {
            return self.unconstrained;
        };
        if x >= x_hi + ABOVE_STEP {
            return self.unconstrained;
        }
        if x >= x_hi {
            let t = (x - x_hi) / ABOVE_STEP;
            return f_hi * (1.0 - t) + self.unconstrained * t;
        }
        if x <= x_lo {
            return f_lo * (x.max(MIN_FRACTION) / x_lo).powf(self.below_exponent);
        }
        for pair in self.points.windows(2) {
            let [(xa, fa), (xb, fb)] = [pair[0], pair[1]];
            if x <= xb {
                return fa + (fb - fa) * (x - xa) / (xb - xa).max(1e-12);
            }
        }
        f_hi
    }
}

/// CPU-seconds of the one input a stand-in runs in the simulator (`inputs = "standin"`):
/// the stand-ins run one unchanging phase, so the input only repeats and the value changes
/// nothing but where the simulator cuts a step.
pub const STANDIN_INPUT_CPU_S: f64 = 60.0;

/// What the simulator takes from one workload of the built-in calibration.
#[derive(Clone, Debug, PartialEq)]
struct Builtin {
    benchmark: Benchmark,
    curve: MeasuredCurve,
    /// The stand-in as a one-input sequence at its measured footprint.
    standin: [InputSpec; 1],
    /// The median of its points' stall per fault, seconds (`None` when no point faulted).
    fault_service_time_s: Option<f64>,
}

impl Builtin {
    fn new(benchmark: Benchmark, w: &WorkloadCalibration) -> Self {
        Self {
            benchmark,
            curve: MeasuredCurve::new(w),
            standin: [InputSpec {
                name: "stand-in",
                footprint_mib: w.footprint_bytes as f64 / MIB as f64,
                duration_s: STANDIN_INPUT_CPU_S,
                active_set_mib: None,
            }],
            fault_service_time_s: median_stall_s(&w.point, &w.unconstrained),
        }
    }
}

/// The built-in calibration, one entry per benchmark measured (parsed once).
fn builtin() -> Result<&'static [Builtin], CalibrationError> {
    static BUILTIN: OnceLock<Result<Vec<Builtin>, CalibrationError>> = OnceLock::new();
    let parsed = BUILTIN.get_or_init(|| {
        let c = parse(BUILTIN_TEXT, BUILTIN_PATH)?;
        Ok(c.workload
            .iter()
            .filter_map(|w| Some(Builtin::new(Benchmark::from_name(&w.name)?, w)))
            .collect())
    });
    parsed.as_deref().map_err(Clone::clone)
}

/// The built-in entry of `benchmark`.
fn builtin_entry(benchmark: Benchmark) -> Result<&'static Builtin, CalibrationError> {
    builtin()?
        .iter()
        .find(|b| b.benchmark == benchmark)
        .ok_or_else(|| CalibrationError::Missing {
            origin: BUILTIN_PATH.to_string(),
            benchmark,
        })
}

/// The built-in curve of `benchmark`.
///
/// # Errors
/// [`CalibrationError`] naming the built-in file when it does not parse or lacks the benchmark.
pub fn builtin_curve(benchmark: Benchmark) -> Result<&'static MeasuredCurve, CalibrationError> {
    builtin_entry(benchmark).map(|b| &b.curve)
}

/// The stand-in of `benchmark` as the simulator's input sequence: one input at the
/// stand-in's measured footprint (one copy, `--size-scale 1`), [`STANDIN_INPUT_CPU_S`] long.
///
/// # Errors
/// As [`builtin_curve`].
pub fn standin_inputs(benchmark: Benchmark) -> Result<&'static [InputSpec], CalibrationError> {
    builtin_entry(benchmark).map(|b| b.standin.as_slice())
}

/// How long one major fault stalled the stand-in of `benchmark`: the median over its
/// measured limits of [`Point::fault_service_time_s`] (70–74 µs for perlbench, 710–1,446 µs
/// for gcc in the built-in file).
///
/// # Errors
/// As [`builtin_curve`]; [`CalibrationError::Workload`] when no point faulted.
pub fn measured_fault_service_time_s(benchmark: Benchmark) -> Result<f64, CalibrationError> {
    builtin_entry(benchmark)?
        .fault_service_time_s
        .ok_or_else(|| CalibrationError::Workload {
            origin: BUILTIN_PATH.to_string(),
            workload: benchmark.name().to_string(),
            reason: "no measured point faulted, so no stall per fault is known",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve() -> MeasuredCurve {
        MeasuredCurve::from_points(
            vec![(0.4, 40_000.0), (0.6, 20_000.0), (0.8, 10_000.0), (1.0, 1_000.0)],
            0.0,
        )
    }

    #[test]
    fn calibration_curve_interpolates_between_points() {
        let c = curve();
        assert_eq!(c.faults_per_cpu_s(0.6), 20_000.0);
        assert!((c.faults_per_cpu_s(0.7) - 15_000.0).abs() < 1e-6);
        assert!((c.faults_per_cpu_s(0.9) - 5_500.0).abs() < 1e-6);
    }

    #[test]
    fn calibration_curve_extends_beyond_the_points() {
        let c = curve();
        assert!(
            (c.faults_per_cpu_s(1.1) - 500.0).abs() < 1e-6,
            "halfway to the unconstrained rate"
        );
        assert_eq!(c.faults_per_cpu_s(1.2), 0.0);
        assert_eq!(c.faults_per_cpu_s(5.0), 0.0);
        // Below 0.4: the power law through (0.4, 40k) and (0.6, 20k), exponent ln 0.5 / ln 1.5.
        let k = 0.5f64.ln() / 1.5f64.ln();
        assert!((c.faults_per_cpu_s(0.2) - 40_000.0 * 0.5f64.powf(k)).abs() < 1e-6);
        assert!(c.faults_per_cpu_s(0.0).is_finite());
        assert_eq!(c.faults_per_cpu_s(0.0), c.faults_per_cpu_s(MIN_FRACTION));
        let mut last = f64::INFINITY;
        for k in 0..=150 {
            let f = c.faults_per_cpu_s(f64::from(k) / 100.0);
            assert!(f <= last + 1e-9 && f >= 0.0, "non-increasing in memory at {k}%");
            last = f;
        }
    }

    #[test]
    fn calibration_builtin_data_parses_and_covers_every_benchmark() {
        for b in Benchmark::ALL {
            let c = builtin_curve(b).unwrap();
            assert!(
                c.faults_per_cpu_s(0.4) > c.faults_per_cpu_s(1.0),
                "{b}: fewer faults with more memory"
            );
        }
    }

    #[test]
    fn calibration_bad_files_are_named() {
        let e = parse("machine = 1", "x.toml").unwrap_err();
        assert!(matches!(e, CalibrationError::Syntax { .. }), "{e}");
        assert!(e.to_string().starts_with("x.toml: "), "{e}");
        let text = BUILTIN_TEXT.replacen("name = \"perlbench\"", "name = \"spec\"", 1);
        let e = parse(&text, "y.toml").unwrap_err();
        assert!(
            matches!(&e, CalibrationError::Workload { workload, .. } if workload == "spec"),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("\"spec\": not one of perlbench, gcc, bzip2"),
            "{e}"
        );
    }
}

//! The calibration report: for every measured point, the measured major-fault rate next to
//! what the simulator says for one copy at the same memory fraction — with the calibrated
//! curve (exact at its own points but for the fault service time, so also left-one-out:
//! the curve rebuilt without that point), and with the assumed curve it replaces.

use std::fmt::Write as _;

use crate::scenario::{DEFAULT_ALPHA, DEFAULT_FAULT_SERVICE_TIME_S, DEFAULT_INTENSITY_PAGES_PER_S};
use crate::sim::calibration::{Calibration, MeasuredCurve, Point, WorkloadCalibration};
use crate::sim::workload::{Benchmark, Curve};

/// One row of the report.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Row {
    /// Memory fraction (limit / footprint).
    pub fraction: f64,
    /// Measured major faults per second.
    pub measured_per_s: f64,
    /// Measured faults per CPU-second.
    pub measured_per_cpu_s: f64,
    /// Measured progress (user CPU per second).
    pub progress: f64,
    /// Measured seconds per fault, if it faulted.
    pub service_time_s: Option<f64>,
    /// The simulator with the calibrated curve, faults per second.
    pub calibrated_per_s: f64,
    /// The same curve without this point, faults per second.
    pub left_out_per_s: f64,
    /// The simulator with the assumed curve, faults per second.
    pub assumed_per_s: f64,
}

/// What the simulator's VM would measure, faults per second, at `f` faults per CPU-second
/// with one fault stalling it `t` seconds: `f / (1 + f·t)`.
fn wall_rate(f: f64, t: f64) -> f64 {
    f / (1.0 + f * t)
}

/// The rows of one workload; the simulator's fault service time is the scenarios' default.
pub fn rows(w: &WorkloadCalibration) -> Vec<Row> {
    let t = DEFAULT_FAULT_SERVICE_TIME_S;
    let curve = MeasuredCurve::new(w);
    let unconstrained = w.unconstrained.faults_per_cpu_s();
    let benchmark = Benchmark::from_name(&w.name);
    w.point
        .iter()
        .enumerate()
        .map(|(k, p)| {
            let mut others: Vec<(f64, f64)> = w
                .point
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != k)
                .map(|(_, q)| (q.fraction, q.faults_per_cpu_s()))
                .collect();
            others.sort_by(|a, b| a.0.total_cmp(&b.0));
            let left_out = MeasuredCurve::from_points(others, unconstrained);
            let assumed = benchmark.map_or(0.0, |b| assumed_faults_per_cpu_s(b, p));
            Row {
                fraction: p.fraction,
                measured_per_s: p.faults_per_s(),
                measured_per_cpu_s: p.faults_per_cpu_s(),
                progress: p.progress(),
                service_time_s: p.fault_service_time_s(&w.unconstrained),
                calibrated_per_s: wall_rate(curve.faults_per_cpu_s(p.fraction), t),
                left_out_per_s: wall_rate(left_out.faults_per_cpu_s(p.fraction), t),
                assumed_per_s: wall_rate(assumed, t),
            }
        })
        .collect()
}

/// The assumed curve (scenario defaults) at the point's fraction of the benchmark's first
/// input.
fn assumed_faults_per_cpu_s(benchmark: Benchmark, p: &Point) -> f64 {
    let Some(input) = benchmark.inputs().first() else {
        return 0.0;
    };
    let curve = Curve {
        kind: benchmark.assumed_curve(),
        alpha: DEFAULT_ALPHA,
        intensity_pages_per_s: DEFAULT_INTENSITY_PAGES_PER_S,
    };
    curve.faults_per_cpu_s(input, p.fraction * input.footprint_mib)
}

/// Relative error of `simulated` against `measured`, percent (`—` when nothing was measured).
fn error(simulated: f64, measured: f64) -> String {
    if measured < 1.0 {
        format!("({simulated:.0} vs {measured:.1})")
    } else {
        format!("{:+.0}%", (simulated / measured - 1.0) * 100.0)
    }
}

/// The report as Markdown.
pub fn markdown(c: &Calibration) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Calibration of the simulator's miss-rate curves\n");
    let _ = writeln!(
        out,
        "Measured {} on {}.  \nCommand: `{}`\n",
        c.date, c.machine, c.command
    );
    let _ = writeln!(
        out,
        "Each stand-in runs alone in a memory cgroup; faults are the cgroup's major faults, progress its \
         user CPU time per second. Simulated rates are one copy at the same memory fraction with the \
         scenarios' fault service time of {:.0} µs: *calibrated* is the simulator's default curve (exact \
         at its own points in faults per CPU-second; the difference there is the service time), \
         *left out* the same curve rebuilt without that point (how well it predicts what it has not \
         seen), *assumed* the curve it replaced (power law A = {:.0}, α = {}; step for bzip2).\n",
        DEFAULT_FAULT_SERVICE_TIME_S * 1e6,
        DEFAULT_INTENSITY_PAGES_PER_S,
        DEFAULT_ALPHA
    );
    for w in &c.workload {
        let _ = writeln!(
            out,
            "## {} — `{}`, footprint {:.1} MiB, unconstrained {:.0} faults/s at {:.2} CPU/s\n",
            w.name,
            w.standin,
            w.footprint_bytes as f64 / f64::from(1 << 20),
            w.unconstrained.faults_per_s(),
            w.unconstrained.progress()
        );
        let _ = writeln!(
            out,
            "| limit | measured faults/s | progress | faults/CPU-s | µs/fault | calibrated | error | left out | error | assumed | error |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        for r in rows(w) {
            let _ = writeln!(
                out,
                "| {:.0}% | {:.0} | {:.2} | {:.0} | {} | {:.0} | {} | {:.0} | {} | {:.0} | {} |",
                r.fraction * 100.0,
                r.measured_per_s,
                r.progress,
                r.measured_per_cpu_s,
                r.service_time_s.map_or("—".into(), |t| format!("{:.0}", t * 1e6)),
                r.calibrated_per_s,
                error(r.calibrated_per_s, r.measured_per_s),
                r.left_out_per_s,
                error(r.left_out_per_s, r.measured_per_s),
                r.assumed_per_s,
                error(r.assumed_per_s, r.measured_per_s),
            );
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(fraction: f64, major_faults: u64, user_cpu_s: f64) -> Point {
        Point {
            limit_bytes: (fraction * 1e8) as u64,
            fraction,
            window_s: 10.0,
            major_faults,
            user_cpu_s,
        }
    }

    #[test]
    fn calibration_report_compares_simulated_and_measured() {
        let w = WorkloadCalibration {
            name: "perlbench".into(),
            standin: "perl perlbench.pl 128".into(),
            footprint_bytes: 100 << 20,
            unconstrained: point(0.0, 0, 10.0),
            point: vec![
                point(1.0, 0, 10.0),
                point(0.8, 60_000, 5.0),
                point(0.6, 90_000, 3.0),
                point(0.4, 100_000, 2.0),
            ],
        };
        let rows = rows(&w);
        let r = rows[1];
        assert_eq!(r.measured_per_s, 6_000.0);
        assert_eq!(r.measured_per_cpu_s, 12_000.0);
        // Slowed to half by 12,000 faults per CPU-second: 1/12,000 s per fault.
        assert!((r.service_time_s.unwrap() - 1.0 / 12_000.0).abs() < 1e-12);
        let t = DEFAULT_FAULT_SERVICE_TIME_S;
        assert!((r.calibrated_per_s - 12_000.0 / (1.0 + 12_000.0 * t)).abs() < 1e-6);
        // Left out: halfway between 0 at 100% and 30,000 at 60%.
        assert!((r.left_out_per_s - 15_000.0 / (1.0 + 15_000.0 * t)).abs() < 1e-6);
        let text = markdown(&Calibration {
            machine: "test machine".into(),
            date: "2026-11-26".into(),
            command: "cavmem calibrate".into(),
            workload: vec![w],
        });
        assert!(text.contains("| 80% | 6000 | 0.50 | 12000 | 83 |"), "{text}");
    }
}

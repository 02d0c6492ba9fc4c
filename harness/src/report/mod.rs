//! Reports of the paper's evaluation: the aggregation over seeds ([`Aggregate`]), and the
//! files written from it — `summary.json` ([`json`]), `episodes.csv` ([`csv`]), SVG plots
//! ([`svg`]) and `report.md` ([`md`]).

pub mod claims;
pub mod compare;
pub mod csv;
pub mod figures;
pub mod json;
pub mod md;
pub mod svg;

use std::collections::BTreeMap;

use crate::eval::formulation::FormulationName;
use crate::eval::metrics::{Interval, jain_index, mean};
use crate::eval::paper::Protocol;
use crate::eval::run::RunResult;
use crate::output::OutputError;
use crate::scenario::Scenario;

/// Writes everything a `paper` or `suite` run reports into `dir`: summary.json,
/// episodes.csv, report.md (headed `title`, naming `command`) and the figures; returns how
/// many figures were written.
///
/// # Errors
/// [`OutputError`] naming the file that could not be written.
pub fn write_paper(
    dir: &std::path::Path,
    runs: &[RunResult],
    protocol: &Protocol,
    scenarios: &[Scenario],
    command: &str,
    title: &str,
) -> Result<usize, OutputError> {
    let agg = Aggregate::new(runs, protocol.window);
    let total_steps = u64::from(protocol.episodes) * 100;
    let hyper = protocol.params.hyperparams(total_steps);
    json::write(dir, &json::summary(&agg, protocol, scenarios, &hyper))?;
    csv::write(dir, runs)?;
    md::write(dir, &md::report(&agg, protocol, scenarios, command, title))?;
    figures::write_all(dir, &agg, runs, protocol, scenarios)
}

/// One metric of one VM (or the mean over VMs) over the last `window` episodes, as an
/// interval over seeds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VmStats {
    /// Average miss rate, pages/s.
    pub miss: Interval,
    /// Average |miss rate − target|, pages/s.
    pub deviation: Interval,
    /// Seconds the agent spent acting and learning over the window.
    pub overhead: Interval,
    /// Average allocation, bytes.
    pub allocation: Interval,
    /// Fraction of steps at the floor.
    pub at_floor: Interval,
}

/// A (scenario, formulation, policy) cell aggregated over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct CellStats {
    /// Per VM.
    pub per_vm: Vec<VmStats>,
    /// Mean over VMs.
    pub mean: VmStats,
    /// Jain's fairness index of the VMs' miss rates.
    pub jain: Interval,
    /// The largest VM miss rate (pages/s; per seed the largest of the VMs' window means).
    pub worst_miss: Interval,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Every seed's window means, per VM: `[miss, deviation, overhead sum, allocation, at floor]`.
    pub per_seed: Vec<Vec<[f64; 5]>>,
    /// Waiting and admission over the window, all seeds and VMs.
    pub waiting: Waiting,
}

/// How long VMs waited for memory in a cell's window episodes (all seeds and VMs).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Waiting {
    /// The most steps one VM waited in one episode.
    pub max_steps: u32,
    /// Mean steps waiting per VM and episode.
    pub mean_steps: f64,
    /// The longest admission delay of one VM in one episode, steps.
    pub max_admission_delay_steps: u32,
    /// Mean admission delay per VM and episode, steps.
    pub mean_admission_delay_steps: f64,
}

impl Waiting {
    /// Over the window episodes of `runs`.
    fn of(runs: &[&RunResult], window: u32) -> Self {
        let mut w = Self::default();
        let mut n = 0u64;
        for run in runs {
            let first = run.episodes.saturating_sub(window);
            for r in run.records.iter().filter(|r| r.episode >= first) {
                w.max_steps = w.max_steps.max(r.steps_waiting);
                w.max_admission_delay_steps = w.max_admission_delay_steps.max(r.admission_delay_steps);
                w.mean_steps += f64::from(r.steps_waiting);
                w.mean_admission_delay_steps += f64::from(r.admission_delay_steps);
                n += 1;
            }
        }
        let per = 1.0 / n.max(1) as f64;
        w.mean_steps *= per;
        w.mean_admission_delay_steps *= per;
        w
    }
}

/// The share of what is achievable that `policy` achieves on a metric where less is
/// better: `(static − policy) / (static − limit)` — 1 at the limit, 0 at the static split,
/// negative below it, above 1 beyond the (one-step) limit. `None` when the static split is
/// already within 0.1% of the limit (nothing to achieve).
///
/// ```
/// use cavmem_harness::report::headroom;
/// assert_eq!(headroom(1000.0, 400.0, 100.0), Some(2.0 / 3.0));
/// assert_eq!(headroom(1000.0, 1000.0, 999.5), None);
/// ```
pub fn headroom(static_value: f64, policy: f64, limit: f64) -> Option<f64> {
    let room = static_value - limit;
    (room > 1e-3 * static_value.abs().max(1e-9)).then(|| (static_value - policy) / room)
}

/// The title of a `paper` run's report.
pub const PAPER_TITLE: &str = "the paper's evaluation";
/// The title of a `suite` run's report.
pub const SUITE_TITLE: &str = "the scenario suite";

/// The policy names of the static split and the two limits, as reports name them.
pub const STATIC: &str = "static";
/// The limit for the mean miss rate.
pub const LIMIT_MEAN: &str = "oracle-minsum";
/// The limit for the largest VM miss rate.
pub const LIMIT_WORST: &str = "oracle-minmax";

/// Key of a cell: scenario, formulation, policy.
pub type CellKey = (String, FormulationName, String);

/// All cells aggregated over seeds, plus the raw runs (for curves and traces).
#[derive(Clone, Debug)]
pub struct Aggregate {
    /// Episodes at the end over which metrics are taken.
    pub window: u32,
    /// The aggregated cells.
    pub cells: BTreeMap<CellKey, CellStats>,
}

/// The mean and the largest of the VMs' miss rates, over those measured (`None`: none was).
pub fn mean_and_worst(rates: impl Iterator<Item = f64>) -> (Option<f64>, Option<f64>) {
    let measured: Vec<f64> = rates.filter(|r| r.is_finite()).collect();
    if measured.is_empty() {
        return (None, None);
    }
    let mean = measured.iter().sum::<f64>() / measured.len() as f64;
    (Some(mean), measured.into_iter().reduce(f64::max))
}

/// Per-seed window means of one run: per VM `[miss, deviation, overhead sum, allocation, at floor]`.
fn window_means(run: &RunResult, window: u32) -> Vec<[f64; 5]> {
    let first = run.episodes.saturating_sub(window);
    let vms = run.records.iter().map(|r| r.vm + 1).max().unwrap_or(0);
    (0..vms)
        .map(|vm| {
            let rows: Vec<_> = run
                .records
                .iter()
                .filter(|r| r.vm == vm && r.episode >= first)
                .collect();
            let col = |f: &dyn Fn(&crate::eval::run::EpisodeRecord) -> f64| {
                rows.iter().map(|r| f(r)).collect::<Vec<_>>()
            };
            // Episodes in which the VM was never on the node (it waited throughout) were
            // not measured (NaN): left out of the means, NaN if no episode was measured.
            let measured = |f: &dyn Fn(&crate::eval::run::EpisodeRecord) -> f64| {
                let values: Vec<f64> = col(f).into_iter().filter(|v| !v.is_nan()).collect();
                if values.is_empty() {
                    f64::NAN
                } else {
                    mean(&values)
                }
            };
            [
                measured(&|r| r.avg_miss_rate_pages_per_s),
                measured(&|r| r.miss_rate_deviation_pages_per_s),
                col(&|r| r.overhead_s).iter().sum(),
                measured(&|r| r.avg_allocation_bytes),
                measured(&|r| r.at_floor_fraction),
            ]
        })
        .collect()
}

fn stats_of(per_seed: &[[f64; 5]]) -> VmStats {
    let col = |k: usize| Interval::of(&per_seed.iter().map(|v| v[k]).collect::<Vec<_>>());
    VmStats {
        miss: col(0),
        deviation: col(1),
        overhead: col(2),
        allocation: col(3),
        at_floor: col(4),
    }
}

impl Aggregate {
    /// Aggregates runs over seeds, taking metrics over the last `window` episodes.
    pub fn new(runs: &[RunResult], window: u32) -> Self {
        let mut groups: BTreeMap<CellKey, Vec<Vec<[f64; 5]>>> = BTreeMap::new();
        let mut members: BTreeMap<CellKey, Vec<&RunResult>> = BTreeMap::new();
        for r in runs {
            let key = (r.scenario.clone(), r.formulation, r.policy.clone());
            groups
                .entry(key.clone())
                .or_default()
                .push(window_means(r, window));
            members.entry(key).or_default().push(r);
        }
        let cells = groups
            .into_iter()
            .map(|(key, seeds)| {
                let waiting = Waiting::of(members.get(&key).map_or(&[][..], Vec::as_slice), window);
                let vms = seeds.iter().map(Vec::len).min().unwrap_or(0);
                let per_vm = (0..vms)
                    .map(|vm| stats_of(&seeds.iter().map(|s| s[vm]).collect::<Vec<_>>()))
                    .collect();
                let means: Vec<[f64; 5]> = seeds
                    .iter()
                    .map(|s| {
                        let mut m = [0.0; 5];
                        for v in s {
                            for (a, b) in m.iter_mut().zip(v) {
                                *a += b / s.len() as f64;
                            }
                        }
                        m
                    })
                    .collect();
                let jain = Interval::of(
                    &seeds
                        .iter()
                        .map(|s| jain_index(&s.iter().map(|v| v[0]).collect::<Vec<_>>()))
                        .collect::<Vec<_>>(),
                );
                let worst_miss = Interval::of(
                    &seeds
                        .iter()
                        .map(|s| s.iter().map(|v| v[0]).fold(0.0, f64::max))
                        .collect::<Vec<_>>(),
                );
                let stats = CellStats {
                    per_vm,
                    mean: stats_of(&means),
                    jain,
                    worst_miss,
                    seeds: seeds.len(),
                    per_seed: seeds,
                    waiting,
                };
                (key, stats)
            })
            .collect();
        Self { window, cells }
    }

    /// The cell for a scenario, formulation and policy name.
    pub fn get(&self, scenario: &str, formulation: FormulationName, policy: &str) -> Option<&CellStats> {
        self.cells
            .get(&(scenario.to_string(), formulation, policy.to_string()))
    }

    /// The headroom of `policy` (see [`headroom`]) on the mean miss rate (against
    /// [`LIMIT_MEAN`]) and on the largest VM miss rate (against [`LIMIT_WORST`]), when the
    /// static split and the limit were run too.
    pub fn headrooms(&self, scenario: &str, formulation: FormulationName, policy: &str) -> [Option<f64>; 2] {
        let cell = |p: &str| self.get(scenario, formulation, p);
        let (Some(this), Some(base)) = (cell(policy), cell(STATIC)) else {
            return [None, None];
        };
        [
            cell(LIMIT_MEAN)
                .and_then(|l| headroom(base.mean.miss.mean, this.mean.miss.mean, l.mean.miss.mean)),
            cell(LIMIT_WORST)
                .and_then(|l| headroom(base.worst_miss.mean, this.worst_miss.mean, l.worst_miss.mean)),
        ]
    }

    /// Cells in which some VM waited more than one step for memory in a window episode.
    pub fn waiting_flags(&self) -> Vec<(&CellKey, Waiting)> {
        self.cells
            .iter()
            .filter(|(_, c)| c.waiting.max_steps > 1)
            .map(|(k, c)| (k, c.waiting))
            .collect()
    }

    /// Cells whose VMs spent more than half of the window's steps at the floor.
    pub fn floor_flags(&self) -> Vec<(&CellKey, usize, f64)> {
        let mut out = Vec::new();
        for (key, cell) in &self.cells {
            for (vm, s) in cell.per_vm.iter().enumerate() {
                if s.at_floor.mean > 0.5 {
                    out.push((key, vm, s.at_floor.mean));
                }
            }
        }
        out
    }
}

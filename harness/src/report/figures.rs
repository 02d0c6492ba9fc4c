//! The figures of a `paper` run, written as SVG into `DIR/plots/`: per formulation and
//! scenario, miss rate, deviation and overhead bars (the paper's Figures 3–10), learning
//! curves and the last episode's allocation trace.

use std::path::Path;

use super::svg::{Line, LineStyle};
use super::{Aggregate, svg};
use crate::eval::formulation::FormulationName;
use crate::eval::metrics::{Interval, mean};
use crate::eval::paper::Protocol;
use crate::eval::run::RunResult;
use crate::output::{OutputError, create_dir};
use crate::scenario::{Scenario, vm_label};

/// Selects one metric of a VM's statistics.
type Pick = fn(&super::VmStats) -> Interval;

/// The figures written for each formulation and scenario: the key in the file name, and
/// what the figure shows.
pub const FIGURES: [(&str, &str); 5] = [
    ("miss_rate", "average miss rate per VM"),
    ("deviation", "miss-rate deviation per VM"),
    ("overhead", "agent overhead per VM"),
    ("learning", "learning curves"),
    ("allocation", "allocations in the last episode"),
];

/// Where figure `key` of a formulation and scenario is, relative to the output directory.
pub fn figure_path(formulation: FormulationName, scenario: &str, key: &str) -> String {
    format!("plots/{formulation}-{scenario}-{key}.svg")
}

/// Writes every figure of [`FIGURES`] into `dir/plots/`; returns how many were written.
///
/// # Errors
/// [`OutputError`] when the directory cannot be created (a figure that cannot be drawn is
/// reported on stderr and skipped).
pub fn write_all(
    dir: &Path,
    agg: &Aggregate,
    runs: &[RunResult],
    protocol: &Protocol,
    scenarios: &[Scenario],
) -> Result<usize, OutputError> {
    let plots = dir.join("plots");
    create_dir(&plots)?;
    let mut written = 0;
    let mut emit = |name: String, result: Result<(), svg::PlotError>| match result {
        Ok(()) => written += 1,
        Err(e) => eprintln!("cavmem: plot {name} skipped: {e}"),
    };
    for formulation in &protocol.formulations {
        for s in scenarios {
            let policies: Vec<String> = protocol
                .policies
                .iter()
                .filter(|p| agg.get(&s.name, *formulation, p).is_some())
                .cloned()
                .collect();
            let series: Vec<String> = s
                .vms
                .iter()
                .enumerate()
                .map(|(k, vm)| format!("{} ({})", vm_label(k), vm.benchmark))
                .collect();
            let bars = |pick: Pick| -> Vec<Vec<Interval>> {
                policies
                    .iter()
                    .filter_map(|p| agg.get(&s.name, *formulation, p))
                    .map(|c| c.per_vm.iter().map(pick).collect())
                    .collect()
            };
            let file = |key: &str| dir.join(figure_path(*formulation, &s.name, key));
            let figures: [(&str, &str, Pick); 3] = [
                ("miss_rate", "average miss rate (pages/s)", |v| v.miss),
                ("deviation", "average miss-rate deviation (pages/s)", |v| {
                    v.deviation
                }),
                ("overhead", "overhead over the window (s)", |v| v.overhead),
            ];
            for (key, label, pick) in figures {
                let path = file(key);
                let title = format!("{}: {label}, formulation {formulation}", s.name);
                emit(
                    path.display().to_string(),
                    svg::grouped_bars(&path, &title, label, &policies, &series, &bars(pick)),
                );
            }
            let path = file("learning");
            let curves = learning_curves(runs, &s.name, *formulation, &policies, &protocol.policies);
            emit(
                path.display().to_string(),
                svg::lines(
                    &path,
                    &format!("{}: learning curves ({formulation})", s.name),
                    "episode",
                    "miss rate, mean of VMs and seeds, 10-episode average (pages/s)",
                    &curves,
                ),
            );
            let path = file("allocation");
            let traces = allocation_traces(runs, &s.name, *formulation, &policies, &protocol.policies);
            emit(
                path.display().to_string(),
                svg::lines(
                    &path,
                    &format!(
                        "{}: allocations in the last episode, seed 0 ({formulation})",
                        s.name
                    ),
                    "step",
                    "allocation (GiB)",
                    &traces,
                ),
            );
        }
    }
    Ok(written)
}

/// The line style of `policy`: its colour is its place in the protocol's list, the same in
/// every figure; the VM's index picks the dash.
fn policy_style(policy: &str, all_policies: &[String], vm: usize) -> LineStyle {
    LineStyle {
        color: all_policies
            .iter()
            .position(|p| p == policy)
            .unwrap_or(all_policies.len()),
        dash: vm,
    }
}

fn learning_curves(
    runs: &[RunResult],
    scenario: &str,
    formulation: FormulationName,
    policies: &[String],
    all_policies: &[String],
) -> Vec<Line> {
    policies
        .iter()
        .map(|p| {
            let cell: Vec<&RunResult> = runs
                .iter()
                .filter(|r| r.scenario == scenario && r.formulation == formulation && &r.policy == p)
                .collect();
            let episodes = cell.first().map_or(0, |r| r.episodes);
            let per_episode: Vec<f64> = (0..episodes)
                .map(|e| {
                    mean(
                        &cell
                            .iter()
                            .flat_map(|r| r.records.iter().filter(move |x| x.episode == e))
                            .map(|x| x.avg_miss_rate_pages_per_s)
                            .collect::<Vec<_>>(),
                    )
                })
                .collect();
            let points = per_episode
                .iter()
                .enumerate()
                .map(|(e, _)| {
                    let lo = e.saturating_sub(9);
                    (e as f64, mean(&per_episode[lo..=e]))
                })
                .collect();
            Line {
                name: p.clone(),
                style: policy_style(p, all_policies, 0),
                points,
            }
        })
        .collect()
}

fn allocation_traces(
    runs: &[RunResult],
    scenario: &str,
    formulation: FormulationName,
    policies: &[String],
    all_policies: &[String],
) -> Vec<Line> {
    let gib = (1u64 << 30) as f64;
    let mut out = Vec::new();
    for p in policies {
        if let Some(r) = runs
            .iter()
            .find(|r| r.scenario == scenario && r.formulation == formulation && &r.policy == p && r.seed == 0)
        {
            let vms = r.trace.first().map_or(0, |t| t.allocation_bytes.len());
            for vm in 0..vms {
                let pts = r
                    .trace
                    .iter()
                    .filter_map(|t| {
                        t.allocation_bytes
                            .get(vm)
                            .map(|a| (f64::from(t.step), *a as f64 / gib))
                    })
                    .collect();
                out.push(Line {
                    name: format!("{p} {}", vm_label(vm)),
                    style: policy_style(p, all_policies, vm),
                    points: pts,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every policy keeps its colour in every figure, and each (policy, VM) line of an
    /// allocation figure has a style of its own.
    #[test]
    fn figures_give_each_policy_and_vm_its_own_line_style() {
        let all: Vec<String> = ["ddpg", "dqn", "ql", "static"].map(String::from).to_vec();
        let mut seen = std::collections::BTreeSet::new();
        for p in &all {
            for vm in 0..3 {
                let style = policy_style(p, &all, vm);
                assert!(seen.insert((style.color, style.dash % 3)), "{p} {vm}");
            }
        }
        assert_eq!(policy_style("ql", &all, 1).color, 2);
    }
}

//! `report.md`: per scenario and formulation, a table of our figures, the paper's stated
//! relationships beside ours, floor flags, and a short discussion.

use std::fmt::Write as _;
use std::path::Path;

use super::Aggregate;
use super::claims::{self, Metric};
use crate::eval::formulation::FormulationName;
use crate::eval::metrics::Interval;
use crate::eval::paper::Protocol;
use crate::output::{OutputError, write_atomic};
use crate::scenario::{CopyStart, Scenario};
use crate::sim::workload::{CurveKind, InputSet};

const GIB: f64 = (1u64 << 30) as f64;

fn fmt_interval(i: &Interval, scale: f64, digits: usize) -> String {
    if i.n > 1 {
        format!(
            "{:.*} ({:.*}–{:.*})",
            digits,
            i.mean / scale,
            digits,
            i.lo / scale,
            digits,
            i.hi / scale
        )
    } else {
        format!("{:.*}", digits, i.mean / scale)
    }
}

fn scenario_line(s: &Scenario) -> String {
    let vms: Vec<String> = s
        .vms
        .iter()
        .map(|v| {
            let curve = match v.curve.kind {
                CurveKind::Calibrated(_) => "calibrated curve (measured)".to_string(),
                CurveKind::Node(_) => "curve measured on the node".to_string(),
                kind => format!(
                    "assumed {} curve, α {}, A {} pages/CPU-s",
                    if kind == CurveKind::Step {
                        "step"
                    } else {
                        "power-law"
                    },
                    v.curve.alpha,
                    v.curve.intensity_pages_per_s
                ),
            };
            let mut inputs = String::new();
            if v.input_set == InputSet::Standin {
                inputs.push_str(", stand-in inputs");
            }
            if v.fault_service_time_s != s.node.fault_service_time_s {
                let _ = write!(inputs, ", {:.0} µs per fault", v.fault_service_time_s * 1e6);
            }
            format!(
                "{} ×{} ({}, {curve}{inputs})",
                v.benchmark,
                v.copies,
                if v.copy_start == CopyStart::InStep {
                    "in step"
                } else {
                    "staggered"
                },
            )
        })
        .collect();
    format!(
        "capacity {:.1} GiB, floor {} MiB, start {:.1} GiB/VM, fault service time {:.0} µs, measurement noise {}; VMs: {}",
        s.node.capacity_bytes as f64 / GIB,
        s.node.floor_bytes >> 20,
        s.node.initial_allocation_bytes as f64 / GIB,
        s.node.fault_service_time_s * 1e6,
        s.node.measurement_noise,
        vms.join("; ")
    )
}

/// The report's Markdown text, headed `# CAVMem: {title}`.
pub fn report(
    agg: &Aggregate,
    protocol: &Protocol,
    scenarios: &[Scenario],
    command: &str,
    title: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# CAVMem: {title}\n");
    let _ = writeln!(
        out,
        "Produced by `{command}`: {} episodes of {} steps per run, metrics over the last {} episodes, seeds 0–{}, formulations {}. \
         Figures are means over seeds{}.\n",
        protocol.episodes,
        scenarios.first().map_or(100, |s| s.node.steps_per_episode),
        protocol.window,
        protocol.seeds.saturating_sub(1),
        protocol
            .formulations
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", "),
        if protocol.seeds > 1 {
            " (in brackets: the bootstrap 95% interval of the mean, which stays within the seeds' range)"
        } else {
            " (one seed: no interval)"
        }
    );
    let _ = writeln!(out, "Scenario parameters (each can change which policy wins):\n");
    for s in scenarios {
        let _ = writeln!(out, "- **{}** — {}: {}", s.name, s.description, scenario_line(s));
    }
    for formulation in &protocol.formulations {
        let _ = writeln!(out, "\n## Formulation `{formulation}`\n");
        for s in scenarios {
            let _ = writeln!(out, "### {} — {}\n", s.name, s.description);
            let _ = writeln!(
                out,
                "| policy | VM | miss rate (pages/s) | deviation (pages/s) | overhead (s) | allocation (GiB) | at floor | Jain |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
            for policy in &protocol.policies {
                let Some(cell) = agg.get(&s.name, *formulation, policy) else {
                    continue;
                };
                for (vm, v) in cell.per_vm.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "| {policy} | {vm} | {} | {} | {} | {} | {:.0}% | {} |",
                        fmt_interval(&v.miss, 1.0, 0),
                        fmt_interval(&v.deviation, 1.0, 0),
                        fmt_interval(&v.overhead, 1.0, 3),
                        fmt_interval(&v.allocation, GIB, 2),
                        v.at_floor.mean * 100.0,
                        fmt_interval(&cell.jain, 1.0, 3),
                    );
                }
            }
            headroom_table(&mut out, agg, protocol, &s.name, *formulation);
            admission_line(&mut out, agg, protocol, s, *formulation);
            let figures: Vec<String> = super::figures::FIGURES
                .iter()
                .map(|(key, what)| {
                    format!(
                        "[{what}]({})",
                        super::figures::figure_path(*formulation, &s.name, key)
                    )
                })
                .collect();
            let _ = writeln!(out, "\nFigures: {}.", figures.join(", "));
            let verdicts: Vec<_> = claims::check(agg, *formulation)
                .into_iter()
                .filter(|v| v.claim.scenario == s.name)
                .collect();
            if !verdicts.is_empty() {
                let _ = writeln!(
                    out,
                    "\n| the paper says | paper a/b | ours a/b | ordering holds | a, b within noise |"
                );
                let _ = writeln!(out, "|---|---|---|---|---|");
                for v in &verdicts {
                    let _ = writeln!(
                        out,
                        "| {} | {:.3} | {:.3} | {} | {} |",
                        v.claim.text,
                        v.claim.paper_ratio,
                        v.ours,
                        if v.ordering_holds { "yes" } else { "no" },
                        if protocol.seeds < 2 {
                            "n/a (one seed)"
                        } else if v.within_noise {
                            "yes"
                        } else {
                            "no"
                        }
                    );
                }
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "## Runs whose agents end at the floor\n");
    let flags = agg.floor_flags();
    if flags.is_empty() {
        let _ = writeln!(
            out,
            "None: no VM spent more than half of the window's steps at the floor.\n"
        );
    } else {
        for ((scenario, formulation, policy), vm, frac) in flags {
            let _ = writeln!(
                out,
                "- {scenario}, `{formulation}`, {policy}, {}: {:.0}% of the window's steps at the floor",
                crate::scenario::vm_label(vm),
                frac * 100.0
            );
        }
        let _ = writeln!(out);
    }
    waiting_section(&mut out, agg);
    out.push_str(&discussion(agg, protocol, scenarios));
    out
}

/// For a scenario with arrivals: each policy's admission delay beside its miss rate.
fn admission_line(
    out: &mut String,
    agg: &Aggregate,
    protocol: &Protocol,
    s: &Scenario,
    formulation: FormulationName,
) {
    if s.vms.iter().all(|v| v.arrive_step == 0) {
        return;
    }
    let parts: Vec<String> = protocol
        .policies
        .iter()
        .filter_map(|p| agg.get(&s.name, formulation, p).map(|c| (p, c)))
        .map(|(p, c)| {
            format!(
                "{p} {:.0} pages/s, delay {:.2} (max {})",
                c.mean.miss.mean, c.waiting.mean_admission_delay_steps, c.waiting.max_admission_delay_steps
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nVMs arrive during episodes here. Mean miss rate and admission delay (steps from arrival to the floor, mean per VM and episode; max): {}.",
        parts.join("; ")
    );
}

/// Runs in which a VM waited more than one step for memory, flagged as runs at the floor are.
fn waiting_section(out: &mut String, agg: &Aggregate) {
    let _ = writeln!(out, "## Runs in which a VM waited for memory\n");
    let flags = agg.waiting_flags();
    if flags.is_empty() {
        let _ = writeln!(out, "None: no VM waited more than one step for its floor.\n");
        return;
    }
    for ((scenario, formulation, policy), w) in flags {
        let _ = writeln!(
            out,
            "- {scenario}, `{formulation}`, {policy}: a VM waited up to {} steps in an episode (mean {:.2} per VM and episode; admission delay up to {} steps)",
            w.max_steps, w.mean_steps, w.max_admission_delay_steps
        );
    }
    let _ = writeln!(out);
}

/// Per policy: the node's mean and worst VM miss rate and how much of the room between
/// the static split and the one-step limit the policy takes ([`super::headroom`]).
fn headroom_table(
    out: &mut String,
    agg: &Aggregate,
    protocol: &Protocol,
    scenario: &str,
    formulation: FormulationName,
) {
    let pct = |h: Option<f64>| h.map_or_else(|| "—".to_string(), |h| format!("{:.0}%", h * 100.0));
    let _ = writeln!(
        out,
        "\n| policy | mean miss rate (pages/s) | headroom taken (vs {}) | worst VM's miss rate (pages/s) | headroom taken (vs {}) |",
        super::LIMIT_MEAN,
        super::LIMIT_WORST
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for policy in &protocol.policies {
        let Some(cell) = agg.get(scenario, formulation, policy) else {
            continue;
        };
        let [mean, worst] = agg.headrooms(scenario, formulation, policy);
        let _ = writeln!(
            out,
            "| {policy} | {} | {} | {} | {} |",
            fmt_interval(&cell.mean.miss, 1.0, 0),
            pct(mean),
            fmt_interval(&cell.worst_miss, 1.0, 0),
            pct(worst),
        );
    }
}

/// Per scenario, where the learned agent (DDPG) stands against the controllers an operator
/// would use instead and the static split: ahead or behind on the mean miss rate, and
/// whether the intervals over seeds separate them.
fn standing(
    out: &mut String,
    agg: &Aggregate,
    protocol: &Protocol,
    scenarios: &[Scenario],
    formulation: FormulationName,
) {
    let Some(ddpg_name) = protocol.policies.iter().find(|p| *p == "ddpg") else {
        return;
    };
    let rivals: Vec<&String> = protocol
        .policies
        .iter()
        .filter(|p| ["static", "feedback", "mom"].contains(&p.as_str()))
        .collect();
    let mut rows = Vec::new();
    for s in scenarios {
        let Some(ddpg) = agg.get(&s.name, formulation, ddpg_name) else {
            continue;
        };
        let verdicts: Vec<String> = rivals
            .iter()
            .filter_map(|r| {
                let rival = agg.get(&s.name, formulation, r)?;
                let (a, b) = (ddpg.mean.miss, rival.mean.miss);
                let word = if a.overlaps(&b) {
                    "ties"
                } else if a.mean < b.mean {
                    "beats"
                } else {
                    "loses to"
                };
                Some(format!("{word} {r} ({:.0} vs {:.0})", a.mean, b.mean))
            })
            .collect();
        rows.push(format!("{}: DDPG {}", s.name, verdicts.join(", ")));
    }
    if !rows.is_empty() {
        let _ = writeln!(
            out,
            "- `{formulation}`, DDPG against the controllers and the static split (mean miss rate, pages/s; \"ties\" when the 95% intervals overlap): {}.",
            rows.join("; ")
        );
    }
}

fn discussion(agg: &Aggregate, protocol: &Protocol, scenarios: &[Scenario]) -> String {
    let mut out = String::from("## Discussion\n\n");
    for formulation in &protocol.formulations {
        standing(&mut out, agg, protocol, scenarios, *formulation);
        let verdicts = claims::check(agg, *formulation);
        if verdicts.is_empty() {
            continue; // none of the paper's scenarios
        }
        let holds = verdicts.iter().filter(|v| v.ordering_holds).count();
        let noisy = verdicts.iter().filter(|v| v.within_noise).count();
        let _ = writeln!(
            out,
            "- `{formulation}`: the paper's ordering holds for {holds} of {} stated relationships; {} of them compare policies whose 95% intervals overlap, so they are not resolved by this many seeds.",
            verdicts.len(),
            if protocol.seeds > 1 {
                noisy.to_string()
            } else {
                "(with one seed, none can be judged)".to_string()
            }
        );
        let overhead: Vec<_> = verdicts
            .iter()
            .filter(|v| v.claim.metric == Metric::Overhead && v.claim.a == "dqn" && v.claim.b == "ddpg")
            .collect();
        if let Some(v) = overhead.first() {
            let _ = writeln!(
                out,
                "  DQN's overhead is {:.2}× DDPG's here against the paper's 5.4–10.9×: with equal network sizes a DQN update trains one network where DDPG trains two (and runs two target networks forward), so an algorithmic ratio above 1 is not expected; the paper's figures likely reflect its implementation rather than the algorithms.",
                v.ours
            );
        }
        let ql: Vec<_> = verdicts
            .iter()
            .filter(|v| v.claim.metric == Metric::Overhead && v.claim.a == "ddpg" && v.claim.b == "ql")
            .collect();
        if let Some(v) = ql.first() {
            let _ = writeln!(
                out,
                "  DDPG's overhead is {:.0}× Q-learning's here against the paper's 1.3–1.7×: a tabular update is one row read and one value written, a DDPG update about 2.8 million multiply-adds; ratios that small suggest per-step costs outside the algorithms (interpreter, framework) dominated the paper's timings.",
                v.ours
            );
        }
    }
    if scenarios.iter().all(|s| !claims::is_paper_scenario(&s.name)) {
        return out;
    }
    out.push_str(
        "- The paper does not describe its simulator; ours models SPEC CPU2006 inputs from published footprints and run times (docs/simulator.md). \
         Absolute miss rates therefore differ from the paper's figures; only the relationships are compared.\n\
         - Under the literal formulation (`paper`), Eq. 3 on rescaled values has zero-deviation optima while VMs thrash (docs/formulation.md); \
         check the floor flags above for runs whose agents found them.\n",
    );
    out
}

/// Writes `report.md` into `dir`.
///
/// # Errors
/// [`OutputError`] naming the file.
pub fn write(dir: &Path, text: &str) -> Result<(), OutputError> {
    write_atomic(&dir.join("report.md"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> Scenario {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
        Scenario::load(&path).unwrap()
    }

    #[test]
    fn report_scenario_line_names_stand_ins_and_their_own_stall() {
        let live = scenario_line(&shipped("live/perlbench-gcc"));
        assert!(
            live.contains(
                "perlbench ×2 (in step, calibrated curve (measured), stand-in inputs, 73 µs per fault)"
            ),
            "{live}"
        );
        assert!(
            live.contains("gcc ×2 (in step, calibrated curve (measured), stand-in inputs, 790 µs per fault)"),
            "{live}"
        );
        let s1 = scenario_line(&shipped("s1"));
        assert!(!s1.contains("stand-in") && !s1.contains("per fault)"), "{s1}");
        let own = shipped("s1").source.replacen(
            "workload = \"perlbench\"",
            "workload = \"perlbench\"\nfault_service_time = \"250 us\"",
            1,
        );
        let own = scenario_line(&Scenario::parse(Path::new("own.toml"), &own).unwrap());
        assert!(
            own.contains("calibrated curve (measured), 250 µs per fault)"),
            "{own}"
        );
    }
}

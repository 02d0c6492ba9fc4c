//! Two runs of one node side by side, VM by VM (`cavmem compare`): a live run and its
//! simulated twin, or any two runs with the same VMs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cavmem_core::units::MIB;

use crate::eval::metrics::mean;
use crate::eval::run::RunResult;

/// Why two runs cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A run's file could not be read or is not a run.json.
    #[error("{}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The runs' VMs differ in number.
    #[error("{} has {a} VMs and {} has {b}: not the same node", path_a.display(), path_b.display())]
    VmCount {
        /// The first run's file.
        path_a: PathBuf,
        /// Its VMs.
        a: usize,
        /// The second run's file.
        path_b: PathBuf,
        /// Its VMs.
        b: usize,
    },
}

/// One VM's means over a run's episodes (the mean of the episode means; episodes in which
/// it was never on the node are left out; NaN when there is none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VmMeans {
    /// Memory its workload needed, MiB.
    pub demand_mib: f64,
    /// Memory it held, MiB.
    pub allocation_mib: f64,
    /// Major faults per second.
    pub miss_rate_pages_per_s: f64,
}

/// Reads `run.json` from a run's output directory, or the file itself.
///
/// # Errors
/// [`CompareError::Read`] naming the file.
pub fn read_run(path: &Path) -> Result<(PathBuf, RunResult), CompareError> {
    let file = if path.is_dir() {
        path.join("run.json")
    } else {
        path.to_path_buf()
    };
    let read = |reason: String| CompareError::Read {
        path: file.clone(),
        reason,
    };
    let text = std::fs::read_to_string(&file).map_err(|e| read(format!("cannot read: {e}")))?;
    let run = serde_json::from_str(&text).map_err(|e| read(format!("not a run.json of cavmem: {e}")))?;
    Ok((file, run))
}

/// Each VM's means over the run's last `last` episodes (all when `None`), VM 0 first.
pub fn vm_means(run: &RunResult, last: Option<u32>) -> Vec<VmMeans> {
    let vms = run.records.iter().map(|r| r.vm + 1).max().unwrap_or(0);
    let first = last.map_or(0, |n| run.episodes.saturating_sub(n));
    (0..vms)
        .map(|vm| {
            let of = |value: fn(&crate::eval::run::EpisodeRecord) -> f64| {
                let values: Vec<f64> = run
                    .records
                    .iter()
                    .filter(|r| r.vm == vm && r.episode >= first)
                    .map(value)
                    .filter(|v| !v.is_nan())
                    .collect();
                if values.is_empty() {
                    f64::NAN
                } else {
                    mean(&values)
                }
            };
            VmMeans {
                demand_mib: of(|r| r.avg_demand_bytes) / MIB as f64,
                allocation_mib: of(|r| r.avg_allocation_bytes) / MIB as f64,
                miss_rate_pages_per_s: of(|r| r.avg_miss_rate_pages_per_s),
            }
        })
        .collect()
}

/// A Markdown table of the two runs' VMs side by side: demand, allocation and miss rate
/// of each, the ratio of the miss rates (second ÷ first), and a row for the mean of the VMs'
/// miss rates. `labels` name the runs in the header.
///
/// # Errors
/// [`CompareError::VmCount`] when the runs have different numbers of VMs.
pub fn table(
    a: (&Path, &RunResult),
    b: (&Path, &RunResult),
    labels: [&str; 2],
    last: Option<u32>,
) -> Result<String, CompareError> {
    let (ma, mb) = (vm_means(a.1, last), vm_means(b.1, last));
    if ma.len() != mb.len() {
        return Err(CompareError::VmCount {
            path_a: a.0.to_path_buf(),
            a: ma.len(),
            path_b: b.0.to_path_buf(),
            b: mb.len(),
        });
    }
    let [la, lb] = labels;
    let mut out = format!(
        "| VM | demand, MiB ({la} / {lb}) | allocation, MiB ({la} / {lb}) | miss rate, pages/s ({la} / {lb}) | {lb} ÷ {la} |\n|---|---|---|---|---|\n"
    );
    let ratio = |x: f64, y: f64| {
        if x > 0.0 {
            format!("{:.2}", y / x)
        } else {
            "—".into()
        }
    };
    for (vm, (x, y)) in ma.iter().zip(&mb).enumerate() {
        let _ = writeln!(
            out,
            "| {vm} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} |",
            x.demand_mib,
            y.demand_mib,
            x.allocation_mib,
            y.allocation_mib,
            x.miss_rate_pages_per_s,
            y.miss_rate_pages_per_s,
            ratio(x.miss_rate_pages_per_s, y.miss_rate_pages_per_s),
        );
    }
    let both = |m: &[VmMeans]| mean(&m.iter().map(|v| v.miss_rate_pages_per_s).collect::<Vec<_>>());
    let (x, y) = (both(&ma), both(&mb));
    let _ = writeln!(out, "| mean of the VMs | | | {x:.0} / {y:.0} | {} |", ratio(x, y));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::formulation::FormulationName;
    use crate::eval::run::{EpisodeRecord, zero_record};

    fn run(rates: &[[f64; 2]]) -> RunResult {
        let records = rates
            .iter()
            .enumerate()
            .flat_map(|(e, pair)| {
                pair.iter().enumerate().map(move |(vm, &rate)| EpisodeRecord {
                    episode: e as u32,
                    vm,
                    avg_miss_rate_pages_per_s: rate,
                    avg_allocation_bytes: (100 * (vm + 1)) as f64 * MIB as f64,
                    avg_demand_bytes: 200.0 * MIB as f64,
                    ..zero_record()
                })
            })
            .collect();
        RunResult {
            scenario: "t".into(),
            policy: "static".into(),
            formulation: FormulationName::Raw,
            seed: 0,
            episodes: rates.len() as u32,
            records,
            trace: Vec::new(),
            wall_s: 0.0,
            interrupted: false,
        }
    }

    #[test]
    fn compare_means_skip_unmeasured_episodes_and_honour_last() {
        let r = run(&[[10.0, 1.0], [30.0, f64::NAN], [50.0, 3.0]]);
        let all = vm_means(&r, None);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].miss_rate_pages_per_s, 30.0);
        assert_eq!(all[1].miss_rate_pages_per_s, 2.0, "the NaN episode is not a 0");
        assert_eq!((all[1].allocation_mib, all[1].demand_mib), (200.0, 200.0));
        assert_eq!(vm_means(&r, Some(2))[0].miss_rate_pages_per_s, 40.0);
    }

    #[test]
    fn compare_table_puts_the_runs_side_by_side() {
        let (a, b) = (run(&[[100.0, 10.0]]), run(&[[50.0, 30.0]]));
        let t = table((Path::new("a"), &a), (Path::new("b"), &b), ["live", "twin"], None).unwrap();
        assert!(t.starts_with("| VM | demand, MiB (live / twin) |"), "{t}");
        assert!(
            t.contains("| 0 | 200 / 200 | 100 / 100 | 100 / 50 | 0.50 |"),
            "{t}"
        );
        assert!(
            t.contains("| 1 | 200 / 200 | 200 / 200 | 10 / 30 | 3.00 |"),
            "{t}"
        );
        assert!(t.contains("| mean of the VMs | | | 55 / 40 | 0.73 |"), "{t}");
        let mut three = run(&[[1.0, 1.0]]);
        three.records.push(EpisodeRecord {
            vm: 2,
            ..three.records[0]
        });
        let e = table((Path::new("a"), &a), (Path::new("c"), &three), ["x", "y"], None).unwrap_err();
        assert_eq!(e.to_string(), "a has 2 VMs and c has 3: not the same node");
    }

    #[test]
    fn compare_read_names_the_file() {
        let dir = std::env::temp_dir().join(format!("cavmem-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_run(&dir).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&dir.join("run.json").display().to_string()),
            "{e}"
        );
        std::fs::write(dir.join("run.json"), "{}").unwrap();
        assert!(
            read_run(&dir)
                .unwrap_err()
                .to_string()
                .contains("not a run.json of cavmem")
        );
        std::fs::write(
            dir.join("run.json"),
            serde_json::to_string(&run(&[[1.0, 2.0]])).unwrap(),
        )
        .unwrap();
        assert_eq!(read_run(&dir).unwrap().1.episodes, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

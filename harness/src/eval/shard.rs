//! Grids across machines: `--shard I/N` runs a deterministic slice of a grid, `--from DIR…`
//! builds the whole grid's results from cells written anywhere.
//!
//! Shard `I` of `N` runs the cells whose position in the grid's fixed order
//! ([`super::paper::cells`]) is `I` modulo `N`, and writes them into its `DIR/cells/` as a
//! single run would; it writes no summary. A merge reads every cell of the grid from the
//! directories given (the first that holds a finished cell of the same protocol wins),
//! copies them into its own `DIR/cells/` and writes the summary, report and figures from
//! them: the results are those of the single-process run, bit for bit (the cells are the
//! same runs; only their timings differ).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::paper::{Cell, PaperError, Protocol, Stored, stored_cell};
use super::run::RunResult;
use crate::output::{create_dir, write_atomic};

/// One slice of a grid: cells `index`, `index + count`, `index + 2·count`, …
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This slice, from 0.
    pub index: u32,
    /// Number of slices, ≥ 1.
    pub count: u32,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// `I/N` with `0 ≤ I < N`.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || index >= count {
            return Err(format!(
                "shard {index}/{count}: the index counts from 0 and must be below the count"
            ));
        }
        Ok(Self { index, count })
    }

    /// The cells of `grid` this shard runs, in grid order.
    pub fn select(&self, grid: Vec<Cell>) -> Vec<Cell> {
        let (index, count) = (self.index as usize, self.count as usize);
        grid.into_iter()
            .enumerate()
            .filter(|(k, _)| k % count == index)
            .map(|(_, c)| c)
            .collect()
    }

    /// The shard a Slurm job array or a Kubernetes Indexed Job gives this process, read
    /// with `var` (the environment):
    /// - Slurm: `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT`;
    /// - Kubernetes: `JOB_COMPLETION_INDEX` of `CAVMEM_SHARD_COUNT` (the Job's
    ///   `completions`; Kubernetes does not export it, the manifest sets it).
    ///
    /// # Errors
    /// A message naming the variables when neither is there or they do not make a shard.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let number = |name: &str| -> Result<Option<u32>, String> {
            var(name)
                .map(|v| v.trim().parse::<u32>().map_err(|e| format!("{name}={v:?}: {e}")))
                .transpose()
        };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let count = number("SLURM_ARRAY_TASK_COUNT")?
                .ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
            let index = id.checked_sub(min).ok_or(format!(
                "SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"
            ))?;
            return Self::new(index, count);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = number("CAVMEM_SHARD_COUNT")?.ok_or(
                "JOB_COMPLETION_INDEX is set but CAVMEM_SHARD_COUNT is not (set it to the Job's completions)",
            )?;
            return Self::new(index, count);
        }
        Err("--shard auto: no SLURM_ARRAY_TASK_ID (a Slurm job array) and no JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) in the environment".into())
    }
}

/// `--shard`: `I/N` or `auto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardArg {
    /// Given.
    Fixed(Shard),
    /// From the environment ([`Shard::from_env`]).
    Auto,
}

impl FromStr for ShardArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "auto" {
            return Ok(Self::Auto);
        }
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: expected I/N (e.g. 0/4) or auto"))?;
        let number = |s: &str| {
            s.trim()
                .parse::<u32>()
                .map_err(|e| format!("{text:?}: {s:?}: {e}"))
        };
        Shard::new(number(i)?, number(n)?).map(Self::Fixed)
    }
}

impl ShardArg {
    /// The shard, reading the process's environment for `auto`.
    ///
    /// # Errors
    /// As [`Shard::from_env`].
    pub fn resolve(self) -> Result<Shard, String> {
        match self {
            Self::Fixed(s) => Ok(s),
            Self::Auto => Shard::from_env(|name| std::env::var(name).ok()),
        }
    }
}

/// Reads every cell of `grid` from `dirs` (each a grid's output directory), copies them
/// into `out_dir/cells/` and returns their results in grid order.
///
/// # Errors
/// [`PaperError::Incomplete`] when cells are missing (naming the first, how many, and a
/// cell of another protocol found in their place); [`PaperError::Output`] when a cell
/// cannot be copied.
pub fn gather(
    dirs: &[PathBuf],
    grid: &[Cell],
    protocol: &Protocol,
    out_dir: &Path,
) -> Result<Vec<RunResult>, PaperError> {
    let out_cells = out_dir.join("cells");
    create_dir(&out_cells)?;
    let (mut results, mut missing, mut foreign) = (Vec::with_capacity(grid.len()), Vec::new(), None);
    for cell in grid {
        let name = cell.file_name();
        let found = dirs.iter().find_map(|dir| {
            let path = dir.join("cells").join(&name);
            match stored_cell(&path, cell, protocol) {
                Stored::Reusable(r) => Some((path, r)),
                Stored::Foreign(why) => {
                    foreign.get_or_insert((path, why));
                    None
                }
                Stored::Missing => None,
            }
        });
        let Some((path, result)) = found else {
            missing.push(name);
            continue;
        };
        let target = out_cells.join(&name);
        if !same_file(&path, &target) {
            let bytes = std::fs::read(&path).map_err(|source| crate::output::OutputError {
                path: path.clone(),
                source,
            })?;
            write_atomic(&target, &bytes)?;
        }
        results.push(result);
    }
    let Some(first) = missing.first() else {
        return Ok(results);
    };
    let listed: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let mut what = format!(
        "{} of the grid's {} cells are not finished in {} (first: cells/{first}); run the shards that hold them, then merge again",
        missing.len(),
        grid.len(),
        listed.join(", ")
    );
    if let Some((path, why)) = foreign {
        what += &format!("; {} is a cell of another protocol ({why})", path.display());
    }
    Err(PaperError::Incomplete(what))
}

/// Whether `a` and `b` are the same file (both exist and have one identity).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests;

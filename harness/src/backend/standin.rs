//! Real programs standing in for the paper's SPEC CPU2006 benchmarks on a real node (SPEC
//! is not free). Each runs forever, its input generated from a fixed seed at run time,
//! and reports its progress on stdout: `ready …` once its data is built, then one `tick`
//! line per unit of work, so a run can measure how fast it progresses under a limit.
//!
//! - perlbench: `perl` running `standin/perlbench.pl`, a mail-scanning script over an
//!   in-memory corpus with a skewed (1/√k) choice of messages.
//! - gcc: Debian's `gcc -O2 -c` compiling generated C translation units in a loop; each
//!   compile is a new `cc1` process whose memory grows with the unit (whole-unit
//!   optimization) and is freed at exit.
//! - bzip2: `standin/bzip2.c`, built at run time against libbz2, holding its input and
//!   compressed output in its own anonymous memory (as SPEC's bzip2 does; the `bzip2`
//!   command would stream in 900 kB blocks and need only a few MB) and compressing and
//!   decompressing it chunk by chunk — a cyclic sweep.
//!
//! docs/real-node.md has the measured footprints and where each differs from SPEC's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::sim::workload::Benchmark;

/// The perlbench stand-in's script.
const PERLBENCH_PL: &str = include_str!("standin/perlbench.pl");
/// The bzip2 stand-in's C source.
const BZIP2_C: &str = include_str!("standin/bzip2.c");

/// Generated translation units the gcc stand-in compiles in turn.
pub const GCC_UNITS: u32 = 4;

/// A stand-in program and its size parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandIn {
    /// The benchmark it stands in for.
    pub benchmark: Benchmark,
    /// Its size: corpus MiB (perlbench), functions per unit (gcc), input MiB (bzip2).
    pub size: u32,
}

/// A prepared stand-in: the command that runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandInCommand {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
}

impl StandIn {
    /// The default size of each stand-in: footprints of about 100–130 MiB on this
    /// project's machines (measured by `cavmem calibrate`), small enough to squeeze
    /// several copies on one machine.
    pub fn default_for(benchmark: Benchmark) -> Self {
        let size = match benchmark {
            Benchmark::Perlbench => 128,
            Benchmark::Gcc => 40,
            Benchmark::Bzip2 => 96,
        };
        Self { benchmark, size }
    }

    /// What runs, in words (for reports): e.g. `perl perlbench.pl 128`.
    pub fn label(&self) -> String {
        match self.benchmark {
            Benchmark::Perlbench => format!("perl perlbench.pl {}", self.size),
            Benchmark::Gcc => format!(
                "gcc -O2 -c, {GCC_UNITS} generated units of {} functions in turn",
                self.size
            ),
            Benchmark::Bzip2 => format!("bzip2-standin {}", self.size),
        }
    }

    /// This stand-in with its size scaled by `factor` (at least 1).
    pub fn scaled(self, factor: f64) -> Self {
        Self {
            size: ((f64::from(self.size) * factor).round() as u32).max(1),
            ..self
        }
    }

    /// Writes the stand-in's inputs into `dir` (generated, deterministic; the bzip2 program
    /// is compiled there) and returns the command that runs it.
    ///
    /// # Errors
    /// [`StandInError`] naming the file or the tool that failed (e.g. gcc or libbz2's
    /// headers missing: `apt-get install gcc libbz2-dev`).
    pub fn prepare(&self, dir: &Path) -> Result<StandInCommand, StandInError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StandInError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let write = |name: &str, text: &str| -> Result<PathBuf, StandInError> {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(io(&path))?;
            Ok(path)
        };
        let size = self.size.to_string();
        match self.benchmark {
            Benchmark::Perlbench => {
                let script = write("perlbench.pl", PERLBENCH_PL)?;
                Ok(StandInCommand {
                    program: "perl".into(),
                    args: vec![script.display().to_string(), size],
                })
            }
            Benchmark::Gcc => {
                std::process::Command::new("gcc")
                    .arg("--version")
                    .output()
                    .map_err(|source| StandInError::Tool {
                        tool: "gcc",
                        source,
                        hint: "the gcc stand-in runs Debian's gcc: apt-get install gcc",
                    })?;
                let units = dir.join(format!("gcc-units-{}", self.size));
                std::fs::create_dir_all(&units).map_err(io(&units))?;
                for k in 0..GCC_UNITS {
                    let path = units.join(format!("unit{k}.c"));
                    let text = gcc_unit(u64::from(k) + 1, self.size);
                    std::fs::write(&path, text).map_err(io(&path))?;
                }
                let lp = "while :; do for f in \"$0\"/unit*.c; do gcc -O2 -c \"$f\" -o /dev/null || exit 1; echo tick; done; done";
                Ok(StandInCommand {
                    program: "sh".into(),
                    args: vec![
                        "-c".into(),
                        format!("echo ready {GCC_UNITS}; {lp}"),
                        units.display().to_string(),
                    ],
                })
            }
            Benchmark::Bzip2 => {
                let source = write("bzip2-standin.c", BZIP2_C)?;
                let binary = dir.join("bzip2-standin");
                let out = std::process::Command::new("gcc")
                    .args(["-O2", "-o"])
                    .arg(&binary)
                    .arg(&source)
                    .arg("-lbz2")
                    .output()
                    .map_err(|e| StandInError::Tool {
                        tool: "gcc",
                        source: e,
                        hint: "the bzip2 stand-in is built with gcc and libbz2-dev",
                    })?;
                if !out.status.success() {
                    return Err(StandInError::Build {
                        source_file: source,
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
                Ok(StandInCommand {
                    program: binary.display().to_string(),
                    args: vec![size],
                })
            }
        }
    }
}

/// Why a stand-in could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    /// Writing its inputs failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A tool it needs did not run.
    #[error("{tool}: {source} ({hint})")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// Why.
        source: std::io::Error,
        /// What to install.
        hint: &'static str,
    },
    /// Compiling the bzip2 stand-in failed.
    #[error("building the bzip2 stand-in ({}): {stderr} (apt-get install gcc libbz2-dev)", source_file.display())]
    Build {
        /// Its C source.
        source_file: PathBuf,
        /// The compiler's messages.
        stderr: String,
    },
}

/// A generated C translation unit of `functions` functions of 60 statements each, from
/// `seed` (xorshift64): branchy integer code over a shared table, the kind of unit whose
/// optimization makes `cc1` hold the whole unit's intermediate form in memory.
pub fn gcc_unit(seed: u64, functions: u32) -> String {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut out = String::from("typedef unsigned long u64;\nu64 table[4096];\n");
    for f in 0..functions {
        let _ = writeln!(out, "u64 f{f}(u64 x, u64 y) {{ u64 a = x, b = y, c = {f};");
        for s in 0..60 {
            let op = ["+", "^", "*", "-"][next(4) as usize];
            let _ = writeln!(
                out,
                "  a = (a {op} (b >> {})) + table[(c + {s}) & 4095]; if (a & {}ul) b += a * {}; else c ^= b;",
                1 + next(13),
                1u64 << next(21),
                3 + next(997)
            );
        }
        out.push_str("  return a + b + c; }\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt as _;

    use super::*;

    #[test]
    fn standin_gcc_units_are_deterministic_and_sized() {
        assert_eq!(gcc_unit(1, 3), gcc_unit(1, 3));
        assert_ne!(gcc_unit(1, 3), gcc_unit(2, 3));
        assert_eq!(gcc_unit(1, 3).matches("u64 f").count(), 3);
    }

    /// Each stand-in starts, says it is ready and makes progress.
    #[test]
    #[ignore = "needs perl, gcc and libbz2-dev (CI runs it)"]
    fn standin_programs_run_and_tick() {
        let dir = tempfile::tempdir().unwrap();
        for benchmark in Benchmark::ALL {
            let small = StandIn {
                benchmark,
                size: match benchmark {
                    Benchmark::Gcc => 2,
                    _ => 8,
                },
            };
            let cmd = match small.prepare(dir.path()) {
                Ok(cmd) => cmd,
                Err(e) => panic!("{benchmark} stand-in (needs perl, gcc and libbz2-dev): {e}"),
            };
            // A group of its own, so that the compiler the gcc loop runs goes with it.
            let Ok(mut child) = std::process::Command::new(&cmd.program)
                .args(&cmd.args)
                .stdout(std::process::Stdio::piped())
                .process_group(0)
                .spawn()
            else {
                panic!("{benchmark} stand-in: cannot start {}", cmd.program);
            };
            let stdout = child.stdout.take().unwrap();
            let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
            let first = lines.next().unwrap().unwrap();
            let second = lines.next().unwrap().unwrap();
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            assert!(first.starts_with("ready "), "{benchmark}: {first}");
            assert_eq!(second, "tick", "{benchmark}");
        }
    }
}

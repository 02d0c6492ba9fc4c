//! Failure drills: results written to a full disk, and runs that are the same bits in every
//! build (debug, optimized test build, release with LTO) and in process.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cavmem_core::agent::PolicyKind;
use cavmem_harness::agents::AgentsAt;
use cavmem_harness::cli::paper;
use cavmem_harness::eval::formulation::FormulationName;
use cavmem_harness::eval::paper::shipped_scenarios;
use cavmem_harness::eval::run::{RunResult, RunSpec, run};
use cavmem_tests::strip_timing;

fn in_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// Every file under `dir`, by relative path, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(
                    path.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&path).unwrap(),
                );
            }
        }
    }
    out
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Option<Self> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `cavmem paper --quick --formulation raw --seeds 1 --out OUT`.
fn quick_paper(out: &Path) -> Result<(), cavmem_harness::cli::CliError> {
    paper(&cavmem_harness::cli::PaperArgs::new(out, 1, true))
}

#[test]
#[ignore = "needs root to mount a tmpfs (CI runs it)"]
fn drill_full_disk_keeps_every_written_file_and_the_run_resumes() {
    let scratch = tempfile::tempdir().unwrap();
    let first = scratch.path().join("first");
    let out = first.clone();
    in_big_stack(move || quick_paper(&out).unwrap());
    let written = tree(&first);
    let bytes: u64 = written.values().map(|v| v.len() as u64).sum();

    // The same results on a small file system, which is then filled to the last byte.
    let mount = scratch.path().join("disk");
    let Some(_disk) = Tmpfs::mount(&mount, bytes + (2 << 20)) else {
        panic!("drill_full_disk cannot mount a tmpfs here (root)");
    };
    let out = mount.join("results");
    for (rel, data) in &written {
        let path = out.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
    }
    let filler = mount.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).and_then(|()| f.sync_all()).is_ok() {}
    }

    // The run resumes every cell, then cannot write its report: a clear error naming the
    // file, and nothing already written is changed or left half-written.
    let again = out.clone();
    let err = in_big_stack(move || quick_paper(&again)).expect_err("a full disk is an error");
    assert!(!err.usage, "a failure, not bad input");
    assert!(
        err.message.contains(&out.display().to_string()) && err.message.contains("No space left on device"),
        "the error names the file and the cause: {}",
        err.message
    );
    assert_eq!(
        tree(&out),
        written,
        "every file as it was, no temporary file left"
    );

    // With space again, the same command finishes and gives the same results.
    std::fs::remove_file(&filler).unwrap();
    let again = out.clone();
    in_big_stack(move || quick_paper(&again).unwrap());
    let cells = |t: &BTreeMap<PathBuf, Vec<u8>>| -> Vec<PathBuf> {
        t.keys().filter(|p| p.starts_with("cells")).cloned().collect()
    };
    let resumed = tree(&out);
    assert_eq!(cells(&resumed), cells(&written));
    for cell in cells(&written) {
        assert_eq!(resumed[&cell], written[&cell], "{} kept", cell.display());
    }
    assert!(resumed.contains_key(Path::new("summary.json")));
}

/// Builds `cavmem` with `profile` in the workspace's target directory; returns its path.
fn build_cavmem(profile: &str) -> PathBuf {
    let args = [
        "--quiet",
        "--profile",
        profile,
        "-p",
        "cavmem-harness",
        "--bin",
        "cavmem",
    ];
    cavmem_tests::cargo_build_executable(&args, "cavmem").unwrap()
}

#[test]
fn determinism_debug_release_and_in_process_runs_are_identical() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binaries = [build_cavmem("dev"), build_cavmem("release")];
    let dir = tempfile::tempdir().unwrap();
    for policy in [
        PolicyKind::Ddpg,
        PolicyKind::Dqn,
        PolicyKind::QLearning,
        PolicyKind::EqualSplit,
    ] {
        let (episodes, seed) = (2, 9);
        let spec = RunSpec {
            scenario: shipped_scenarios().unwrap().remove(0),
            policy: policy.into(),
            formulation: FormulationName::Raw,
            episodes,
            seed,
            hyper: cavmem_harness::agents::hyperparams_for_run(u64::from(episodes) * 100),
            learn: true,
            agents_at: AgentsAt::Inprocess,
        };
        let here = strip_timing(in_big_stack(move || run(&spec, |_| {}).unwrap()));
        for (k, cavmem) in binaries.iter().enumerate() {
            let out = dir.path().join(format!("{}-{k}", policy.name()));
            let status = Command::new(cavmem)
                .arg("run")
                .arg(root.join("harness/scenarios/s1.toml"))
                .args([
                    "--policy",
                    policy.name(),
                    "--episodes",
                    "2",
                    "--seed",
                    "9",
                    "--out",
                ])
                .arg(&out)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            let theirs: RunResult =
                serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
            assert_eq!(
                strip_timing(theirs),
                here,
                "{}: {} differs from the in-process run",
                policy.name(),
                cavmem.display()
            );
        }
    }
}

/// `cavmem run` and `cavmem paper` sent SIGINT mid-run say what they leave behind and exit
/// with status 130; a run writes nothing, a paper run keeps its finished cells.
#[test]
fn drill_interrupted_commands_say_what_they_leave() {
    let cavmem = build_cavmem("release");
    let root = cavmem_tests::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let run_out = dir.path().join("run");
    let paper_out = dir.path().join("paper");
    let scenario = root.join("harness/scenarios/s1.toml");
    let commands: [(Vec<&std::ffi::OsStr>, &Path, &str); 2] = [
        (
            vec![
                "run".as_ref(),
                scenario.as_os_str(),
                "--episodes".as_ref(),
                "100000".as_ref(),
                "--out".as_ref(),
            ],
            &run_out,
            "cavmem: interrupted; nothing was written",
        ),
        (
            vec![
                "paper".as_ref(),
                "--seeds".as_ref(),
                "1".as_ref(),
                "--out".as_ref(),
            ],
            &paper_out,
            "the same command resumes",
        ),
    ];
    for (args, out, said) in commands {
        let child = Command::new(&cavmem)
            .args(args)
            .arg(out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let done = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        assert_eq!(done.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains(said), "{stderr}");
        assert!(!out.join("run.json").exists() && !out.join("summary.json").exists());
    }
    assert!(
        paper_out.join("cells").is_dir(),
        "the paper run's cell directory is kept"
    );
}

/// `cavmem live` sent SIGINT mid-run (as root with cgroups): it exits cleanly, writes the
/// episodes it completed, and leaves no cgroup, process, stand-in input or swap file behind.
#[test]
#[ignore = "needs root and a cgroup memory controller (CI runs it)"]
fn drill_live_run_interrupted_cleans_up_and_keeps_episodes() {
    let cgroup_root = match cavmem_harness::backend::cgroup::detect(Path::new("/sys/fs/cgroup")) {
        Ok((root, _)) => root,
        Err(e) => panic!("the live drill needs root and a cgroup memory controller: {e}"),
    };
    let cavmem = build_cavmem("dev");
    // On disk, not /tmp: a swap file cannot live on tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let scenario = dir.path().join("tiny.toml");
    std::fs::write(
        &scenario,
        // The floor is above the stand-ins' footprint (about 13 MiB at this size): the drill
        // is about cleaning up, and a workload squeezed that small can be OOM-killed.
        "name = \"tiny\"\n[node]\ncapacity = \"96 MiB\"\nfloor = \"24 MiB\"\ninitial_allocation = \"48 MiB\"\n\
         step = \"0.5 s\"\nsteps_per_episode = 4\n\
         [[vm]]\nworkload = \"perlbench\"\ncopies = 1\n[[vm]]\nworkload = \"perlbench\"\ncopies = 1\n",
    )
    .unwrap();
    let swap = dir.path().join("live.swap");
    let mut child = Command::new(&cavmem)
        .arg("live")
        .arg(&scenario)
        .args(["--policy", "ddpg", "--duration", "600 s", "--size-scale", "0.125"])
        .args(["--swap-size", "256 MiB", "--swap-file"])
        .arg(&swap)
        .args(["--out", "out"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("cavmem live did not finish two episodes in time");
        if line.starts_with("episode 2 of") {
            break;
        }
    }
    assert!(swap.exists(), "the swap file is in use during the run");
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cavmem live did not stop after SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/run.json")).unwrap()).unwrap();
    assert_eq!(run["interrupted"], true);
    let episodes = run["episodes"].as_u64().unwrap();
    assert!(episodes >= 2, "{episodes}");
    assert_eq!(run["records"].as_array().unwrap().len() as u64, episodes * 2);
    let prefix = format!("cavmem-{pid}-");
    let left: Vec<_> = std::fs::read_dir(&cgroup_root)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "cgroups left: {left:?}");
    assert!(!swap.exists(), "the swap file is removed");
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap();
    assert!(!swaps.contains(&swap.display().to_string()), "{swaps}");
    let scratch = std::fs::read_dir(dir.path().join("results/live-tmp"))
        .unwrap()
        .count();
    assert_eq!(scratch, 0, "the stand-ins' inputs are removed");
}

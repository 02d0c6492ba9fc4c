//! In-process agents and `cavmem-fw` processes give bit-identical trajectories.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cavmem_core::agent::PolicyKind;
use cavmem_core::bid::{BidConfig, ShareRule, VmGrant, VmTerms, analyze_with_terms};
use cavmem_core::simd::{self, KernelPath};
use cavmem_core::wire::analyze::{WireVm, error_detail};
use cavmem_core::wire::message::ErrorCode;
use cavmem_harness::agents::AgentsAt;
use cavmem_harness::eval::formulation::FormulationName;
use cavmem_harness::eval::paper::shipped_scenarios;
use cavmem_harness::eval::run::{RunResult, RunSpec, firmware_agents, make_agents, run_agents};
use cavmem_tests::strip_timing;

/// Builds `cavmem-fw` with the toolchain running this test, in a target directory of its
/// own (so it does not wait on the one `cargo test` holds), and returns its path.
fn build_firmware() -> PathBuf {
    let target = cavmem_tests::target_dir().unwrap().join("fw-test");
    let target = target.to_string_lossy();
    let args = [
        "--quiet",
        "--profile",
        "firmware",
        "-p",
        "cavmem-firmware-sim",
        "--features",
        "fw",
        "--bin",
        "cavmem-fw",
        "--target-dir",
        &target,
    ];
    cavmem_tests::cargo_build_executable(&args, "cavmem-fw").unwrap()
}

/// A short run of shipped scenario `index` (0: s1, 1: s2) with `policy`.
fn short_spec(index: usize, policy: PolicyKind, episodes: u32, seed: u64) -> RunSpec {
    RunSpec {
        scenario: shipped_scenarios().unwrap().remove(index),
        policy: policy.into(),
        formulation: FormulationName::Raw,
        episodes,
        seed,
        hyper: cavmem_harness::agents::hyperparams_for_run(u64::from(episodes) * 100),
        learn: true,
        agents_at: AgentsAt::Inprocess,
    }
}

/// Trains in process on `spec` and returns the agents and VM 0's policy snapshot.
fn train_and_snapshot(spec: &RunSpec) -> (Vec<Box<dyn cavmem_harness::agents::SimAgent>>, Vec<u8>) {
    let mut trained = make_agents(spec).unwrap();
    run_agents(spec, &mut trained, |_| {}).unwrap();
    let mut snapshot = vec![0u8; 64 * 1024];
    let n = trained[0].save_snapshot(&mut snapshot).unwrap();
    snapshot.truncate(n);
    (trained, snapshot)
}

#[test]
fn firmware_trajectories_equal_in_process() {
    let fw = build_firmware();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            // The firmware runs the widest kernels its CPU has; in process, every path.
            let paths = KernelPath::ALL.into_iter().filter(|p| simd::available(*p));
            let paths: Vec<KernelPath> = paths.collect();
            for policy in PolicyKind::ALL {
                let spec = short_spec(1, policy, 1, 11);
                let mut remote = firmware_agents(&spec, &fw).unwrap();
                let b = strip_timing(run_agents(&spec, &mut remote, |_| {}).unwrap());
                for path in &paths {
                    simd::select(*path).unwrap();
                    let mut local = make_agents(&spec).unwrap();
                    let a = strip_timing(run_agents(&spec, &mut local, |_| {}).unwrap());
                    assert_eq!(a, b, "{policy:?}: firmware and in-process ({path:?}) runs differ");
                    assert!(a.records.iter().any(|r| r.avg_miss_rate_pages_per_s > 0.0));
                    // One episode: the trace holds every step's allocations and miss rates.
                    assert_eq!(a.trace.len(), 100);
                }
            }
            simd::select(simd::detect()).unwrap();
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn snapshot_gives_identical_bids_in_process_and_in_firmware() {
    use cavmem_core::agent::FrozenActor;
    use cavmem_core::mdp::Observation;
    use cavmem_core::rng::Rng;
    let fw = build_firmware();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            // Train in process, save VM 0's policy.
            let spec = short_spec(1, PolicyKind::Ddpg, 2, 5);
            let (mut trained, snapshot) = train_and_snapshot(&spec);
            // Load it into a firmware agent and into a frozen in-process actor.
            let mut remote = firmware_agents(&spec, &fw).unwrap();
            remote[0].load_snapshot(&snapshot).unwrap();
            remote[0].set_exploration(false);
            let mut frozen = FrozenActor::zeroed();
            frozen.load_snapshot(&snapshot).unwrap();
            trained[0].set_exploration(false);
            let mut rng = Rng::seed_from_u64(3);
            for _ in 0..100 {
                let obs = Observation {
                    msr: rng.uniform_range(-1.0, 1.0),
                    mem_share: rng.uniform_f32(),
                    avg_msr: rng.uniform_range(-1.0, 1.0),
                    msr_tgt: rng.uniform_range(-1.0, 1.0),
                    total_mem_use: rng.uniform_f32(),
                };
                let want = trained[0].act(&obs).unwrap().bid.to_bits();
                assert_eq!(remote[0].act(&obs).unwrap().bid.to_bits(), want);
                assert_eq!(frozen.act(&obs).unwrap().bid.to_bits(), want);
            }
            // A corrupted snapshot is refused by the firmware, which keeps its policy.
            let mut bad = snapshot.clone();
            bad[100] ^= 1;
            assert!(remote[0].load_snapshot(&bad).is_err());
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Builds `libcavmem.a` and the C example host; returns the host's path.
fn build_c_example() -> PathBuf {
    let root = cavmem_tests::workspace_root();
    let target = cavmem_tests::target_dir().unwrap().join("capi-test");
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "--release",
            "--manifest-path",
            "firmware-sim/capi/staticlib/Cargo.toml",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success(), "building libcavmem.a failed");
    let exe = target.join("balancer");
    let status = Command::new("gcc")
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "-pthread",
            "-I",
            "firmware-sim/include",
            "firmware-sim/examples/c/balancer.c",
        ])
        .arg(target.join("release").join("libcavmem.a"))
        .arg("-o")
        .arg(&exe)
        .current_dir(&root)
        .status()
        .expect("gcc is needed for the C interface test (apt-get install gcc)");
    assert!(status.success(), "compiling the C example failed");
    exe
}

#[test]
fn snapshot_gives_identical_bids_in_the_c_host() {
    use cavmem_core::agent::FrozenActor;
    use cavmem_core::mdp::Observation;
    let host = build_c_example();
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let spec = short_spec(0, PolicyKind::Ddpg, 2, 8);
            let (_, snapshot) = train_and_snapshot(&spec);
            let n = snapshot.len();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("policy.cavm");
            std::fs::write(&file, &snapshot[..n]).unwrap();
            let out = Command::new(&host).arg(&file).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let c_bits: Vec<u32> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| u32::from_str_radix(l.trim(), 16).unwrap())
                .collect();
            let mut frozen = FrozenActor::zeroed();
            frozen.load_snapshot(&snapshot[..n]).unwrap();
            let rust_bits: Vec<u32> = (0..=100)
                .map(|k| {
                    let obs = Observation {
                        msr: -1.0 + k as f32 * 0.02,
                        mem_share: 0.3,
                        avg_msr: 0.1,
                        msr_tgt: -0.2,
                        total_mem_use: 0.6,
                    };
                    frozen.act(&obs).unwrap().bid.to_bits()
                })
                .collect();
            assert_eq!(
                c_bits, rust_bits,
                "the C host and the harness disagree on the same snapshot"
            );
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Writes an executable shell script `name` into `dir`.
fn shell_script(dir: &Path, name: &str, body: String) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    Command::new("chmod").arg("+x").arg(&path).status().unwrap();
    path
}

/// A one-episode DDPG run of scenario s2 with each VM's agent in the given program (a
/// `cavmem-fw` or a script around one), each with a 500 ms deadline.
fn run_with_programs(programs: [PathBuf; 2]) -> RunResult {
    use std::time::Duration;

    use cavmem_harness::agents::SimAgent;
    use cavmem_harness::agents::firmware::FirmwareAgent;
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let spec = RunSpec {
                agents_at: AgentsAt::Firmware,
                ..short_spec(1, PolicyKind::Ddpg, 1, 3)
            };
            let mut agents: Vec<Box<dyn SimAgent>> = programs
                .iter()
                .enumerate()
                .map(|(j, program)| {
                    let mut a = FirmwareAgent::start(
                        program,
                        cavmem_harness::scenario::vm_label(j),
                        PolicyKind::Ddpg,
                        1,
                        2,
                        10,
                        10,
                    )
                    .unwrap();
                    a.set_deadline(Duration::from_millis(500));
                    Box::new(a) as Box<dyn SimAgent>
                })
                .collect();
            run_agents(&spec, &mut agents, |_| {}).unwrap()
        })
        .unwrap()
        .join()
        .unwrap()
}

/// Decisions VM `vm` fell back to the safe bid in, over the run.
fn fallbacks(result: &RunResult, vm: usize) -> u64 {
    result
        .records
        .iter()
        .filter(|r| r.vm == vm)
        .map(|r| r.fallbacks)
        .sum()
}

#[test]
fn firmware_that_dies_or_hangs_is_replaced_by_the_safe_policy() {
    let fw = build_firmware();
    let dir = tempfile::tempdir().unwrap();
    // Dies: its input ends after a few requests, so it exits.
    let dies = shell_script(
        dir.path(),
        "dies.sh",
        format!("dd bs=1 count=3000 2>/dev/null | exec {}", fw.display()),
    );
    // Hangs: answers a few requests, then its answers are swallowed.
    let hangs = shell_script(
        dir.path(),
        "hangs.sh",
        format!(
            "{} | (dd bs=1 count=1200 2>/dev/null; sleep 5 >/dev/null 2>&1)",
            fw.display()
        ),
    );
    let result = run_with_programs([dies, hangs]);
    // The run went on to the end, and both VMs fell back to holding.
    assert_eq!(result.records.len(), 2);
    for vm in 0..2 {
        let n = fallbacks(&result, vm);
        assert!((30..100).contains(&n), "VM{} fell back {n} times", vm + 1);
    }
}

#[test]
fn firmware_answering_garbage_is_replaced_by_the_safe_policy() {
    let fw = build_firmware();
    let dir = tempfile::tempdir().unwrap();
    // Answers correctly for a while, then sends random bytes instead of frames.
    let garbage = shell_script(
        dir.path(),
        "garbage.sh",
        format!(
            "{} | (dd bs=1 count=1200 2>/dev/null; head -c 300000 /dev/urandom; sleep 5 >/dev/null 2>&1)",
            fw.display()
        ),
    );
    let result = run_with_programs([garbage, fw]);
    assert!(
        (30..100).contains(&fallbacks(&result, 0)),
        "the VM whose firmware sends garbage holds: {} fallbacks",
        fallbacks(&result, 0)
    );
    assert_eq!(fallbacks(&result, 1), 0, "the healthy firmware is unaffected");
}

/// A node of 1–31 VMs with random reservations, limits and weights (some refused), bids of
/// any bits, from `rng`.
fn random_node(rng: &mut cavmem_core::rng::Rng) -> (BidConfig, Vec<WireVm>) {
    let n = 1 + rng.below(31) as usize;
    let node = BidConfig {
        capacity_bytes: rng.next_u64() % ((n as u64 + 2) << 32),
        floor_bytes: rng.next_u64() % (1 << 28),
        granularity_bytes: 1 + rng.next_u64() % (1 << 20),
        share: if rng.below(2) == 0 {
            ShareRule::Equal
        } else {
            ShareRule::Proportional
        },
    };
    let vms = (0..n)
        .map(|_| {
            let kind = rng.below(8);
            WireVm {
                allocation_bytes: rng.next_u64() % (1 << 32),
                bid: if kind < 2 {
                    f32::from_bits(rng.next_u32())
                } else {
                    rng.uniform_range(-1.0, 1.0)
                },
                terms: VmTerms {
                    min_bytes: if kind % 2 == 1 {
                        rng.next_u64() % (1 << 30)
                    } else {
                        0
                    },
                    max_bytes: if kind >= 6 {
                        rng.next_u64() % (1 << 33)
                    } else {
                        u64::MAX
                    },
                    weight: rng.below(4) + u32::from(kind != 7),
                },
            }
        })
        .collect();
    (node, vms)
}

/// The Bid Analyzer in `cavmem-fw` (Analyze requests through its pipes) gives what the
/// core's `analyze_with_terms` gives in this process, to the byte, and refuses what it
/// refuses with the documented detail: 3,000 random nodes with reservations, limits and weights.
#[test]
fn firmware_analyzer_with_terms_equals_in_process() {
    use cavmem_harness::agents::firmware::{FirmwareAgent, RequestFailure};
    let fw = build_firmware();
    let mut agent = FirmwareAgent::start(&fw, "analyzer".into(), PolicyKind::EqualSplit, 0, 1, 0, 1).unwrap();
    let mut rng = cavmem_core::rng::Rng::seed_from_u64(20);
    let (mut served, mut refused) = (0, 0);
    for case in 0..3_000 {
        let (node, vms) = random_node(&mut rng);
        let mut allocations: Vec<u64> = vms.iter().map(|v| v.allocation_bytes).collect();
        let bids: Vec<f32> = vms.iter().map(|v| v.bid).collect();
        let terms: Vec<VmTerms> = vms.iter().map(|v| v.terms).collect();
        let mut grants = vec![VmGrant::default(); vms.len()];
        let local = analyze_with_terms(&node, &terms, &mut allocations, &bids, &mut grants);
        match (agent.analyze(&node, &vms), local) {
            (Ok((got, free)), Ok(summary)) => {
                served += 1;
                assert_eq!((got, free), (allocations, summary.free_bytes), "case {case}");
            }
            (Err(RequestFailure::Refused(ErrorCode::Analyze, detail)), Err(e)) => {
                refused += 1;
                assert_eq!(detail, error_detail(e), "case {case}: {e}");
            }
            (wire, local) => panic!("case {case}: wire {wire:?}, in process {local:?}"),
        }
    }
    assert!(
        served > 300 && refused > 300,
        "served {served}, refused {refused}"
    );
}

/// Stack that docs/embedding.md promises for every call: 16 KiB.
const STACK_GOAL_BYTES: u64 = 16 << 10;

/// cavmem-fw's agent server is a zero-initialized `static`: its megabytes sit in `.bss`
/// (no bytes in the executable), and its initialized data stays small. A policy slot whose
/// "none" is not all zero bytes once moved 4.3 MB into `.data`.
#[test]
fn firmware_agent_server_is_zero_initialized() {
    let fw = build_firmware();
    let sizes = cavmem_harness::footprint::elf_sizes(&fw).unwrap();
    println!("cavmem-fw: {sizes:?}");
    assert!(sizes.data < 64 << 10, "{sizes:?}");
    assert!(sizes.bss > 1 << 20, "the agent server is in .bss: {sizes:?}");
}

/// cavmem-fw's painted stack meter over a session that saves a snapshot and loads it back,
/// and over act/learn sessions, stays within the documented 16 KiB for every policy; so
/// does it over Analyze requests of 31 VMs.
#[test]
fn firmware_stack_stays_within_16_kib_for_every_request_and_policy() {
    let fw = build_firmware();
    let high_water = |input: &[u8]| -> u64 {
        let mut child = Command::new(&fw)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
        let out = child.wait_with_output().unwrap();
        // Every request was served (the snapshot loaded back), none refused.
        let mut decoder = Box::new(cavmem_core::wire::FrameDecoder::new());
        let mut rest = &out.stdout[..];
        loop {
            let (taken, event) = decoder.push(rest);
            rest = &rest[taken..];
            match event {
                Some(Ok((msg_type, payload))) => assert_ne!(msg_type, 0xFF, "refused: {payload:?}"),
                Some(Err(e)) => panic!("a bad reply frame: {e:?}"),
                None if taken == 0 => break,
                None => {}
            }
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().find(|l| l.contains("stack high-water")).unwrap();
        line.split_whitespace().rev().nth(1).unwrap().parse().unwrap()
    };
    for policy in PolicyKind::ALL.map(PolicyKind::code) {
        let snapshot = cavmem_harness::footprint::snapshot_script(&fw, policy).unwrap();
        let learning = cavmem_harness::footprint::script(policy, 70, 10, 3);
        for (what, input) in [("snapshot save and load", snapshot), ("act, learn", learning)] {
            let bytes = high_water(&input);
            println!("policy {policy}, {what}: {bytes} B of stack");
            assert!(bytes <= STACK_GOAL_BYTES, "policy {policy}, {what}: {bytes} B");
        }
    }
    let bytes = high_water(&cavmem_harness::footprint::analyze_script(20));
    println!("Analyze, 31 VMs with terms: {bytes} B of stack");
    assert!(bytes <= STACK_GOAL_BYTES, "Analyze: {bytes} B");
}

#[test]
#[ignore = "needs valgrind (CI runs it)"]
fn firmware_runs_clean_under_valgrind() {
    assert!(
        Command::new("valgrind").arg("--version").output().is_ok(),
        "this test needs valgrind (apt-get install valgrind)"
    );
    let fw = build_firmware();
    let suppressions = Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-sim/valgrind.supp");
    for policy in PolicyKind::ALL.map(PolicyKind::code) {
        // Past the 64 transitions learning waits for, then acts, learns and a snapshot.
        let input = cavmem_harness::footprint::script(policy, 70, 10, 3);
        let mut child = Command::new("valgrind")
            // cavmem-fw paints its 6 MiB stack at start (a jump valgrind takes for a stack
            // switch unless told the frame size); its unrolled kernels make basic blocks too
            // large for memcheck's translation buffer unless superblocks are kept short.
            .args([
                "--error-exitcode=3",
                "--max-stackframe=8388608",
                "--vex-guest-max-insns=25",
            ])
            .arg(format!("--suppressions={}", suppressions.display()))
            .arg(&fw)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, &input).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "policy {policy}: {err}");
        assert!(err.contains("ERROR SUMMARY: 0 errors"), "policy {policy}: {err}");
        assert!(
            out.stdout.len() > 70 * 3 * 12,
            "policy {policy}: every request answered"
        );
    }
}

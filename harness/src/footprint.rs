//! `cavmem footprint`: what an agent costs in a foreign host — the sizes of the `cavmem-fw`
//! executable and of the Cortex-M4 image from their ELF files, `cavmem-fw`'s stack
//! high-water mark per policy (it paints its stack), and instructions per act and per learn
//! counted by callgrind (repeatable, unlike times).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cavmem_core::agent::PolicyKind;
use cavmem_core::bid::{BidConfig, VmTerms};
use cavmem_core::wire::analyze::{AnalyzeVms, MAX_ANALYZE_VMS, WireVm};
use cavmem_core::wire::encode_frame;
use cavmem_core::wire::frame::FrameDecoder;
use cavmem_core::wire::frame::{MAX_FRAME, MAX_PAYLOAD};
use cavmem_core::wire::message::SNAPSHOT_CHUNK;
use cavmem_core::wire::message::{Configure, Message, WireTransition};
use object::{Object, ObjectSection, SectionFlags, SectionKind};
use serde::Serialize;

/// Berkeley-style sizes of an ELF file, bytes.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ElfSizes {
    /// Code and read-only data.
    pub text: u64,
    /// Initialized writable data.
    pub data: u64,
    /// Zero-initialized writable data.
    pub bss: u64,
}

/// Why an executable's sizes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not an object file `object` reads.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: object::read::Error,
    },
}

/// Sizes of the allocated sections of an ELF file, as `size` reports them.
///
/// # Errors
/// [`ElfError`] naming the file when it cannot be read or parsed.
pub fn elf_sizes(path: &Path) -> Result<ElfSizes, ElfError> {
    let bytes = std::fs::read(path).map_err(|source| ElfError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let file = object::File::parse(&*bytes).map_err(|source| ElfError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let mut sizes = ElfSizes::default();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        const SHF_WRITE: u64 = 0x1;
        const SHF_ALLOC: u64 = 0x2;
        if sh_flags & SHF_ALLOC == 0 {
            continue;
        }
        let size = section.size();
        if section.kind() == SectionKind::UninitializedData || section.kind() == SectionKind::UninitializedTls
        {
            sizes.bss += size;
        } else if sh_flags & SHF_WRITE != 0 {
            sizes.data += size;
        } else {
            sizes.text += size;
        }
    }
    Ok(sizes)
}

/// A trainable DDPG agent's cost on the Cortex-M4 self-test image. Instructions are counted
/// under QEMU with `-icount` (SysTick ticks calibrated against a loop of known length); stack
/// is what the calls use below the caller's frame (painted and scanned by the image).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct M4TrainableCost {
    /// Instructions per `act`.
    pub instructions_per_act: f64,
    /// Instructions per `learn` (one minibatch update).
    pub instructions_per_learn: f64,
    /// Stack high-water mark of `act`, bytes.
    pub act_stack_bytes: u64,
    /// Stack high-water mark of `learn`, bytes.
    pub learn_stack_bytes: u64,
    /// Stack high-water mark of saving the actor's snapshot and loading it back, bytes.
    pub snapshot_stack_bytes: u64,
}

/// The inference-only Cortex-M4 image's cost, measured like [`M4TrainableCost`].
#[derive(Clone, Copy, Debug, Serialize)]
pub struct M4InferenceCost {
    /// Instructions per frozen-actor `act`.
    pub instructions_per_act: f64,
    /// Instructions per decision step of a two-VM node: the MDP's observations, two acts
    /// and the Bid Analyzer.
    pub instructions_per_step: f64,
    /// Stack high-water mark of the decision steps, bytes.
    pub step_stack_bytes: u64,
    /// Stack high-water mark of loading the embedded actor snapshot, bytes.
    pub load_stack_bytes: u64,
}

/// One policy's figures in `cavmem-fw`.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyCost {
    /// Policy name.
    pub policy: &'static str,
    /// Stack high-water mark of configure and `act` requests only, bytes.
    pub stack_act_bytes: Option<u64>,
    /// Stack high-water mark over 200 act/record/learn cycles and a snapshot, bytes.
    pub stack_learn_bytes: Option<u64>,
    /// Stack high-water mark of a session that saves a snapshot (`SnapshotRead`) and loads
    /// it back (`SnapshotWrite` pieces), bytes.
    pub stack_snapshot_bytes: Option<u64>,
    /// Wall time per `act` request through the process's pipes, µs (native, not callgrind).
    pub act_us: Option<f64>,
    /// Wall time per `learn` request, µs.
    pub learn_us: Option<f64>,
    /// Instructions per `act` request (decode, act, encode), from callgrind.
    pub instructions_per_act: Option<f64>,
    /// Instructions per `learn` request, from callgrind.
    pub instructions_per_learn: Option<f64>,
}

/// `cavmem-fw`'s Bid Analyzer: an Analyze request of [`MAX_ANALYZE_VMS`] VMs, each with a
/// reservation, a limit and a weight.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct AnalyzerCost {
    /// Stack high-water mark of Analyze requests, bytes.
    pub stack_bytes: Option<u64>,
    /// Wall time per request through the process's pipes, µs (native).
    pub request_us: Option<f64>,
    /// Instructions per request (decode, analyze, encode), from callgrind.
    pub instructions_per_request: Option<f64>,
}

/// Everything `cavmem footprint` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Footprint {
    /// `cavmem-fw` (x86-64, static, no libc).
    pub firmware: ElfSizes,
    /// The Cortex-M4 self-test image (trainable DDPG), if built.
    pub cortex_m4: Option<ElfSizes>,
    /// DDPG's cost per call on the Cortex-M4 self-test image, if it ran under QEMU.
    pub cortex_m4_cost: Option<M4TrainableCost>,
    /// The Cortex-M4 inference-only image (core without `learn`), if built.
    pub cortex_m4_inference: Option<ElfSizes>,
    /// The inference-only image's cost per call, if it ran under QEMU.
    pub cortex_m4_inference_cost: Option<M4InferenceCost>,
    /// Per policy.
    pub policies: Vec<PolicyCost>,
    /// The Bid Analyzer in `cavmem-fw`.
    pub analyzer: AnalyzerCost,
}

fn frame(msg: &Message<'_>) -> Vec<u8> {
    let mut payload = [0u8; MAX_FRAME];
    let n = msg.encode_payload(&mut payload).unwrap_or(0);
    let mut out = [0u8; MAX_FRAME];
    let len = encode_frame(msg.type_byte(), &payload[..n], &mut out).unwrap_or(0);
    out[..len].to_vec()
}

/// A request stream for `cavmem-fw`: configure `policy` (its wire byte: 0 DDPG, 1 DQN, 2
/// Q-learning, 3 equal split), `warm` act/record/learn cycles, then `acts` acts, `learns`
/// learns, and a snapshot read.
pub fn script(policy: u8, warm: usize, acts: usize, learns: usize) -> Vec<u8> {
    let obs = [0.1, 0.3, 0.0, -0.1, 0.6];
    let t = WireTransition {
        state: obs,
        bid: 0.2,
        reward: -0.5,
        next_state: [0.2, 0.3, 0.1, -0.1, 0.6],
        done: false,
    };
    let mut s = frame(&Message::Configure(configure(policy)));
    for _ in 0..warm {
        s.extend(frame(&Message::Act { obs }));
        s.extend(frame(&Message::Transition(t)));
        s.extend(frame(&Message::Learn));
    }
    for _ in 0..acts {
        s.extend(frame(&Message::Act { obs }));
    }
    for _ in 0..learns {
        s.extend(frame(&Message::Learn));
    }
    s.extend(frame(&Message::SnapshotRead { offset: 0 }));
    s
}

/// `requests` Analyze requests of [`MAX_ANALYZE_VMS`] VMs with reservations, limits and
/// weights on a 64 GiB node (no agent is configured: Analyze needs none).
pub fn analyze_script(requests: usize) -> Vec<u8> {
    let vms: Vec<WireVm> = (0..MAX_ANALYZE_VMS)
        .map(|j| WireVm {
            allocation_bytes: (1 + j as u64 % 3) << 30,
            bid: ((j as f32) * 0.37).sin(),
            terms: VmTerms {
                min_bytes: (j as u64 % 2) << 29,
                max_bytes: if j % 4 == 0 { 3 << 30 } else { u64::MAX },
                weight: 1 + j as u32 % 3,
            },
        })
        .collect();
    let mut records = [0u8; MAX_PAYLOAD];
    let Ok(vms) = AnalyzeVms::write(&mut records, &vms) else {
        return Vec::new();
    };
    let request = frame(&Message::Analyze {
        node: BidConfig::new(64 << 30),
        vms,
    });
    request.repeat(requests)
}

/// A request stream that configures `policy` (as [`script`] does), saves its snapshot and
/// loads it back in [`SNAPSHOT_CHUNK`]-byte pieces; the snapshot's bytes come from earlier
/// runs of `fw` (the same configuration gives the same snapshot).
pub fn snapshot_script(fw: &Path, policy: u8) -> Option<Vec<u8>> {
    let first = snapshot_pieces(&run_capturing_stdout(fw, &script(policy, 0, 0, 0))?);
    let total = first.first()?.0;
    let mut reads = frame(&Message::Configure(configure(policy)));
    for offset in (0..total).step_by(SNAPSHOT_CHUNK) {
        reads.extend(frame(&Message::SnapshotRead { offset }));
    }
    let snapshot: Vec<u8> = snapshot_pieces(&run_capturing_stdout(fw, &reads)?)
        .into_iter()
        .flat_map(|(_, data)| data)
        .collect();
    if snapshot.len() != total as usize {
        return None;
    }
    let mut s = script(policy, 0, 0, 0);
    for (k, data) in snapshot.chunks(SNAPSHOT_CHUNK).enumerate() {
        let offset = u32::try_from(k * SNAPSHOT_CHUNK).ok()?;
        s.extend(frame(&Message::SnapshotWrite { total, offset, data }));
    }
    Some(s)
}

/// The `(total, data)` of every SnapshotData frame in `out`.
fn snapshot_pieces(mut out: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut decoder = Box::new(FrameDecoder::new());
    let mut pieces = Vec::new();
    loop {
        let (taken, event) = decoder.push(out);
        out = out.get(taken..).unwrap_or_default();
        match event {
            Some(Ok((t, payload))) => {
                if let Ok(Message::SnapshotData { total, data, .. }) = Message::decode(t, payload) {
                    pieces.push((total, data.to_vec()));
                }
            }
            Some(Err(_)) => {}
            None if taken == 0 => return pieces,
            None => {}
        }
    }
}

/// The configuration every footprint script starts with.
fn configure(policy: u8) -> Configure {
    Configure {
        policy,
        seed: 1,
        vm_count: 2,
        explore_steps: 100,
        anneal_steps: 100,
    }
}

/// Runs `program` with `args` on `input`, keeping the output streams that are `Stdio::piped()`.
fn run_piped(
    program: &Path,
    args: &[&str],
    input: &[u8],
    (stdout, stderr): (Stdio, Stdio),
) -> Option<std::process::Output> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(input).ok()?;
    child.wait_with_output().ok()
}

/// Runs `program` on `input`; returns its stdout if it succeeded.
fn run_capturing_stdout(program: &Path, input: &[u8]) -> Option<Vec<u8>> {
    let out = run_piped(program, &[], input, (Stdio::piped(), Stdio::null()))?;
    out.status.success().then_some(out.stdout)
}

/// Runs `program` with `args` on `input`; returns its stderr.
fn run_with_input(program: &Path, args: &[&str], input: &[u8]) -> Option<String> {
    let out = run_piped(program, args, input, (Stdio::null(), Stdio::piped()))?;
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn stack_bytes(fw: &Path, input: &[u8]) -> Option<u64> {
    let err = run_with_input(fw, &[], input)?;
    let line = err.lines().find(|l| l.contains("stack high-water"))?;
    line.split_whitespace().rev().nth(1)?.parse().ok()
}

/// Seconds `fw` takes on `input` (median of five runs).
fn seconds(fw: &Path, input: &[u8]) -> Option<f64> {
    let mut runs: Vec<f64> = (0..5)
        .filter_map(|_| {
            let t = std::time::Instant::now();
            run_with_input(fw, &[], input)?;
            Some(t.elapsed().as_secs_f64())
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs.get(2).copied()
}

/// `(time(script with 2n) − time(script with n)) / n`, µs.
fn us_per_call(fw: &Path, policy: u8, acts: bool, n: usize) -> Option<f64> {
    let (a, b) = if acts {
        (script(policy, 100, n, 0), script(policy, 100, 2 * n, 0))
    } else {
        (script(policy, 100, 0, n), script(policy, 100, 0, 2 * n))
    };
    Some((seconds(fw, &b)? - seconds(fw, &a)?) / n as f64 * 1e6)
}

/// The `name=value` fields of a Cortex-M4 image's line starting with `prefix`, from a run
/// under QEMU with `-icount shift=0` (one instruction per virtual nanosecond), with
/// `per_tick`, the instructions per SysTick tick from the image's calibration loop.
struct M4Line {
    line: String,
    per_tick: f64,
}

impl M4Line {
    fn run(elf: &Path, prefix: &str) -> Option<Self> {
        let out = Command::new("qemu-system-arm")
            .args([
                "-machine",
                "mps2-an386",
                "-cpu",
                "cortex-m4",
                "-nographic",
                "-semihosting-config",
                "enable=on,target=native",
                "-icount",
                "shift=0",
                "-kernel",
            ])
            .arg(elf)
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().find(|l| l.starts_with(prefix))?.to_string();
        let mut m = Self { line, per_tick: 0.0 };
        m.per_tick = m.field("calibration_instructions")? / m.field("calibration_ticks")?;
        Some(m)
    }

    fn field(&self, name: &str) -> Option<f64> {
        self.line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
    }

    /// Instructions per call: `ticks` over `calls`, converted.
    fn per_call(&self, ticks: &str, calls: &str) -> Option<f64> {
        Some(self.field(ticks)? * self.per_tick / self.field(calls)?)
    }

    fn bytes(&self, name: &str) -> Option<u64> {
        Some(self.field(name)? as u64)
    }
}

fn m4_trainable_cost(elf: &Path) -> Option<M4TrainableCost> {
    let m = M4Line::run(elf, "cavmem m4 cost:")?;
    Some(M4TrainableCost {
        instructions_per_act: m.per_call("act_ticks", "acts")?,
        instructions_per_learn: m.per_call("learn_ticks", "learns")?,
        act_stack_bytes: m.bytes("act_stack_bytes")?,
        learn_stack_bytes: m.bytes("learn_stack_bytes")?,
        snapshot_stack_bytes: m.bytes("snapshot_stack_bytes")?,
    })
}

fn m4_inference_cost(elf: &Path) -> Option<M4InferenceCost> {
    let m = M4Line::run(elf, "cavmem m4 infer cost:")?;
    Some(M4InferenceCost {
        instructions_per_act: m.per_call("act_ticks", "acts")?,
        instructions_per_step: m.per_call("step_ticks", "steps")?,
        step_stack_bytes: m.bytes("step_stack_bytes")?,
        load_stack_bytes: m.bytes("load_stack_bytes")?,
    })
}

/// Instructions of `fw` on `input`, counted by callgrind.
fn instructions(fw: &Path, input: &[u8]) -> Option<u64> {
    let valgrind = PathBuf::from("valgrind");
    let fw = fw.to_str()?;
    let err = run_with_input(
        &valgrind,
        &["--tool=callgrind", "--callgrind-out-file=/dev/null", fw],
        input,
    )?;
    let line = err.lines().find(|l| l.contains("Collected :"))?;
    line.split(':').nth(1)?.trim().parse().ok()
}

/// `(instructions(script with 2n) − instructions(script with n)) / n`.
fn per_call(fw: &Path, policy: u8, acts: bool, n: usize) -> Option<f64> {
    let (a, b) = if acts {
        (script(policy, 100, n, 0), script(policy, 100, 2 * n, 0))
    } else {
        (script(policy, 100, 0, n), script(policy, 100, 0, 2 * n))
    };
    let (ia, ib) = (instructions(fw, &a)?, instructions(fw, &b)?);
    Some((ib as f64 - ia as f64) / n as f64)
}

/// A warning when the image at `path` is older than this `cavmem` executable: it was
/// probably built from an older core, so its figures may not be this revision's. `None`
/// when it is newer, or either time cannot be read.
pub fn staleness_warning(path: &Path) -> Option<String> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let exe = std::env::current_exe().ok()?;
    (modified(path)? < modified(&exe)?).then(|| {
        format!(
            "warning: {} is older than this cavmem executable; rebuild it (README, 'What the agent costs') to measure this revision",
            path.display()
        )
    })
}

/// Measures everything; `callgrind` turns the instruction counts on (needs valgrind).
///
/// # Errors
/// [`ElfError`] when `cavmem-fw` or an image cannot be read.
pub fn measure(
    fw: &Path,
    m4: Option<&Path>,
    m4_inference: Option<&Path>,
    callgrind: bool,
) -> Result<Footprint, ElfError> {
    let firmware = elf_sizes(fw)?;
    let cortex_m4 = m4.filter(|p| p.is_file()).map(elf_sizes).transpose()?;
    let cortex_m4_inference = m4_inference.filter(|p| p.is_file()).map(elf_sizes).transpose()?;
    let cortex_m4_cost = m4.filter(|p| p.is_file()).and_then(m4_trainable_cost);
    let cortex_m4_inference_cost = m4_inference.filter(|p| p.is_file()).and_then(m4_inference_cost);
    let policies = PolicyKind::ALL
        .into_iter()
        .map(|kind| {
            let byte = kind.code();
            // The tabular learner's update is cheap: time more of them.
            let learn_calls = if kind == PolicyKind::QLearning {
                200_000
            } else {
                2_000
            };
            PolicyCost {
                policy: kind.name(),
                stack_act_bytes: stack_bytes(fw, &script(byte, 0, 200, 0)),
                stack_learn_bytes: stack_bytes(fw, &script(byte, 200, 0, 0)),
                stack_snapshot_bytes: snapshot_script(fw, byte).and_then(|s| stack_bytes(fw, &s)),
                act_us: us_per_call(fw, byte, true, 200_000),
                learn_us: kind
                    .learns()
                    .then(|| us_per_call(fw, byte, false, learn_calls))
                    .flatten(),
                instructions_per_act: callgrind.then(|| per_call(fw, byte, true, 200)).flatten(),
                instructions_per_learn: (callgrind && kind.learns())
                    .then(|| per_call(fw, byte, false, 20))
                    .flatten(),
            }
        })
        .collect();
    let analyzer = AnalyzerCost {
        stack_bytes: stack_bytes(fw, &analyze_script(100)),
        request_us: seconds(fw, &analyze_script(20_000))
            .zip(seconds(fw, &analyze_script(40_000)))
            .map(|(a, b)| (b - a) / 20_000.0 * 1e6),
        instructions_per_request: callgrind
            .then(|| {
                let (a, b) = (
                    instructions(fw, &analyze_script(100))?,
                    instructions(fw, &analyze_script(200))?,
                );
                Some((b as f64 - a as f64) / 100.0)
            })
            .flatten(),
    };
    Ok(Footprint {
        analyzer,
        firmware,
        cortex_m4,
        cortex_m4_cost,
        cortex_m4_inference,
        cortex_m4_inference_cost,
        policies,
    })
}

/// The text table.
pub fn to_text(f: &Footprint) -> String {
    let mut out = format!(
        "cavmem-fw (x86-64, static, no libc): text {} B, data {} B, bss {} B\n",
        f.firmware.text, f.firmware.data, f.firmware.bss
    );
    match &f.cortex_m4 {
        Some(m) => {
            out += &format!(
                "cortex-m4 self-test image: text {} B, data {} B, bss {} B (flash {} B, static RAM {} B)\n",
                m.text,
                m.data,
                m.bss,
                m.text + m.data,
                m.data + m.bss
            )
        }
        None => {
            out += "cortex-m4 self-test image: not built (firmware-sim/cortex-m4: cargo build --release)\n"
        }
    }
    if let Some(c) = &f.cortex_m4_cost {
        out += &format!(
            "cortex-m4 DDPG (QEMU -icount): {:.0} instructions per act, {:.0} per learn; stack {} B per act, {} B per learn, {} B per snapshot save and load\n",
            c.instructions_per_act,
            c.instructions_per_learn,
            c.act_stack_bytes,
            c.learn_stack_bytes,
            c.snapshot_stack_bytes
        );
    }
    match &f.cortex_m4_inference {
        Some(m) => {
            out += &format!(
                "cortex-m4 inference-only image (core without learn, DDPG actor snapshot included): flash {} B, static RAM {} B\n",
                m.text + m.data,
                m.data + m.bss
            )
        }
        None => {
            out += "cortex-m4 inference-only image: not built (firmware-sim/cortex-m4-infer: cargo build --release)\n"
        }
    }
    if let Some(c) = &f.cortex_m4_inference_cost {
        out += &format!(
            "cortex-m4 inference-only (QEMU -icount): {:.0} instructions per act, {:.0} per two-VM decision step (observe, 2 acts, Bid Analyzer); stack {} B per step, {} B per snapshot load\n",
            c.instructions_per_act, c.instructions_per_step, c.step_stack_bytes, c.load_stack_bytes
        );
    }
    out += &format!(
        "{:<8} {:>10} {:>12} {:>15} {:>9} {:>10} {:>10} {:>12}\n",
        "policy",
        "stack act",
        "stack learn",
        "stack snapshot",
        "act µs",
        "learn µs",
        "instr/act",
        "instr/learn"
    );
    let num = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |x| format!("{x:.digits$}"));
    let bytes = |v: Option<u64>| v.map_or("-".to_string(), |b| b.to_string());
    for p in &f.policies {
        out += &format!(
            "{:<8} {:>10} {:>12} {:>15} {:>9} {:>10} {:>10} {:>12}\n",
            p.policy,
            bytes(p.stack_act_bytes),
            bytes(p.stack_learn_bytes),
            bytes(p.stack_snapshot_bytes),
            num(p.act_us, 2),
            num(p.learn_us, 2),
            num(p.instructions_per_act, 0),
            num(p.instructions_per_learn, 0)
        );
    }
    out += "(stack in bytes, painted; times per request through the pipes, native; instructions per request by callgrind, incl. framing)\n";
    out += &format!(
        "(native runs use cavmem-fw's kernels for this CPU, {}; callgrind, which has no AVX-512, the generic ones)\n",
        cavmem_simd::detect().name()
    );
    let a = &f.analyzer;
    out += &format!(
        "Bid Analyzer in cavmem-fw (Analyze, {MAX_ANALYZE_VMS} VMs with terms): stack {} B, {} µs and {} instructions per request\n",
        bytes(a.stack_bytes),
        num(a.request_us, 2),
        num(a.instructions_per_request, 0)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn footprint_warns_about_images_older_than_the_executable() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("cavmem-fw");
        std::fs::write(&image, b"\x7fELF").unwrap();
        assert_eq!(staleness_warning(&image), None, "just built");
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(&image)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let warning = staleness_warning(&image).unwrap();
        assert!(
            warning.contains("cavmem-fw") && warning.contains("older"),
            "{warning}"
        );
        assert_eq!(staleness_warning(&dir.path().join("missing")), None);
    }
}

//! Agents in `cavmem-fw` processes: one process per VM, driven over the wire protocol
//! (docs/protocol.md) through its stdin and stdout.
//!
//! A process that dies, answers garbage, or does not answer within the deadline is
//! reported once on stderr and replaced by the safe policy for its VM (bid 0, hold,
//! counted as fallbacks); the run goes on.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use cavmem_core::agent::common::TransitionField;
use cavmem_core::agent::{
    AgentTransition, Decision, Fallback, LearnOutcome, Policy, PolicyError, PolicyKind, PolicyStats,
};
use cavmem_core::bid::BidConfig;
use cavmem_core::mdp::{InvalidObservation, Observation, ObservationField};
use cavmem_core::snapshot::SnapshotError;
use cavmem_core::wire::analyze::{AnalyzeVms, WireVm};
use cavmem_core::wire::frame::{MAX_FRAME, MAX_PAYLOAD};
use cavmem_core::wire::message::{Configure, ErrorCode, SNAPSHOT_CHUNK, WireTransition};
use cavmem_core::wire::{FrameDecoder, Message, encode_frame};

use super::SimAgent;

/// How long a request may take before the process is given up.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Why a firmware agent could not be found or set up.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// No `cavmem-fw` where [`locate`] looks.
    #[error(
        "cavmem-fw not found: build it with `cargo build --profile firmware -p cavmem-firmware-sim --features fw --bin cavmem-fw` or set CAVMEM_FW"
    )]
    NotFound,
    /// This executable's own path is unknown.
    #[error("this executable's path: {0}")]
    OwnPath(#[source] std::io::Error),
    /// The process did not start.
    #[error("{}: {source}", path.display())]
    Start {
        /// The executable.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The process started but did not take its configuration.
    #[error("{agent}: configure: {failure}")]
    Configure {
        /// The agent's name.
        agent: String,
        /// What went wrong.
        failure: RequestFailure,
    },
}

/// Finds the `cavmem-fw` executable: `$CAVMEM_FW`, else `target/firmware/cavmem-fw` beside
/// this executable's `target/<profile>/` directory.
///
/// # Errors
/// [`FirmwareError::NotFound`] (with how to build it), [`FirmwareError::OwnPath`].
pub fn locate() -> Result<PathBuf, FirmwareError> {
    if let Some(p) = std::env::var_os("CAVMEM_FW") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(FirmwareError::OwnPath)?;
    let candidates = exe
        .ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("firmware").join("cavmem-fw"))
        .collect::<Vec<_>>();
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or(FirmwareError::NotFound)
}

/// An agent in a `cavmem-fw` process.
pub struct FirmwareAgent {
    name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    chunks: Option<Receiver<Vec<u8>>>,
    decoder: Box<FrameDecoder>,
    pending: Vec<u8>,
    deadline: Duration,
    failed: bool,
    /// Statistics kept here once the process is gone (the safe policy's decisions).
    local: PolicyStats,
}

impl std::fmt::Debug for FirmwareAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirmwareAgent")
            .field("name", &self.name)
            .field("failed", &self.failed)
            .finish()
    }
}

/// Why a request to a firmware agent failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailure {
    /// Reading or writing the pipe failed, or the process exited.
    #[error("i/o: {0}")]
    Io(String),
    /// No answer within [`DEADLINE`].
    #[error("no answer within the deadline")]
    Timeout,
    /// An Error reply: its code and detail.
    #[error("refused: {0:?} ({1})")]
    Refused(ErrorCode, u8),
    /// A reply of the wrong type, or one that does not decode.
    #[error("unexpected or malformed reply")]
    Unexpected,
}

impl FirmwareAgent {
    /// Starts `fw` and configures it.
    ///
    /// # Errors
    /// A message when the process cannot start or refuses the configuration.
    pub fn start(
        fw: &Path,
        name: String,
        policy: PolicyKind,
        seed: u64,
        vm_count: u32,
        explore_steps: u64,
        anneal_steps: u64,
    ) -> Result<Self, FirmwareError> {
        let start = |source| FirmwareError::Start {
            path: fw.to_path_buf(),
            source,
        };
        let mut child = Command::new(fw)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(start)?;
        let stdin = child.stdin.take();
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| start(std::io::Error::other("no stdout pipe")))?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut agent = Self {
            name,
            child: Some(child),
            stdin,
            chunks: Some(rx),
            decoder: Box::new(FrameDecoder::new()),
            pending: Vec::new(),
            deadline: DEADLINE,
            failed: false,
            local: PolicyStats::default(),
        };
        let configure = Message::Configure(Configure {
            policy: policy.code(),
            seed,
            vm_count,
            explore_steps,
            anneal_steps,
        });
        agent
            .request(&configure, |m| matches!(m, Message::Hello { .. }).then_some(()))
            .map_err(|failure| FirmwareError::Configure {
                agent: agent.name.clone(),
                failure,
            })?;
        Ok(agent)
    }

    /// Sends one request and maps its reply with `f` (None: unexpected reply).
    fn request<T>(
        &mut self,
        msg: &Message<'_>,
        f: impl FnOnce(Message<'_>) -> Option<T>,
    ) -> Result<T, RequestFailure> {
        let mut payload = [0u8; MAX_FRAME];
        let n = msg
            .encode_payload(&mut payload)
            .map_err(|e| RequestFailure::Io(e.to_string()))?;
        let mut frame = [0u8; MAX_FRAME];
        let len = encode_frame(msg.type_byte(), &payload[..n], &mut frame)
            .map_err(|e| RequestFailure::Io(e.to_string()))?;
        let stdin = self.stdin.as_mut().ok_or(RequestFailure::Io("closed".into()))?;
        stdin
            .write_all(&frame[..len])
            .and_then(|()| stdin.flush())
            .map_err(|e| RequestFailure::Io(e.to_string()))?;
        let chunks = self.chunks.as_ref().ok_or(RequestFailure::Io("closed".into()))?;
        loop {
            let (used, event) = self.decoder.push(&self.pending);
            let event = event.map(|e| e.map(|(t, p)| (t, p.to_vec())));
            self.pending.drain(..used);
            match event {
                Some(Ok((t, p))) => {
                    return match Message::decode(t, &p) {
                        Ok(Message::Error { code, detail }) => Err(RequestFailure::Refused(code, detail)),
                        Ok(m) => f(m).ok_or(RequestFailure::Unexpected),
                        Err(_) => Err(RequestFailure::Unexpected),
                    };
                }
                Some(Err(_)) => return Err(RequestFailure::Unexpected),
                None if used == 0 => match chunks.recv_timeout(self.deadline) {
                    Ok(bytes) => self.pending.extend_from_slice(&bytes),
                    Err(RecvTimeoutError::Timeout) => return Err(RequestFailure::Timeout),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(RequestFailure::Io("the process exited".into()));
                    }
                },
                None => {}
            }
        }
    }

    /// Gives up on the process: reports it once, kills it, and switches to the safe policy.
    fn give_up(&mut self, why: &RequestFailure) {
        if !self.failed {
            eprintln!(
                "cavmem: firmware agent {} failed ({why}); its VM now holds its allocation (safe policy)",
                self.name
            );
        }
        self.failed = true;
        self.stdin = None;
        self.chunks = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs the Bid Analyzer in the process (an Analyze request: up to
    /// [`cavmem_core::wire::analyze::MAX_ANALYZE_VMS`] VMs with their terms); returns the new allocations, bytes, in
    /// the order of `vms`, and the free memory after the call.
    ///
    /// # Errors
    /// [`RequestFailure::Refused`] with code Analyze and the detail of docs/protocol.md when
    /// the analyzer refuses; [`RequestFailure::Io`] for more than 31 VMs or
    /// none; the other failures as for every request. The process is not given up.
    pub fn analyze(&mut self, node: &BidConfig, vms: &[WireVm]) -> Result<(Vec<u64>, u64), RequestFailure> {
        let mut records = [0u8; MAX_PAYLOAD];
        let vms = AnalyzeVms::write(&mut records, vms).map_err(|e| RequestFailure::Io(e.to_string()))?;
        let count = vms.len();
        self.request(&Message::Analyze { node: *node, vms }, |m| match m {
            Message::Allocated {
                free_bytes,
                allocations,
                ..
            } if allocations.len() == count => Some((allocations.iter().collect(), free_bytes)),
            _ => None,
        })
    }

    /// Changes how long a request may take before the process is given up (default [`DEADLINE`]).
    pub fn set_deadline(&mut self, deadline: Duration) {
        self.deadline = deadline;
    }

    /// Whether the process was given up.
    pub fn failed(&self) -> bool {
        self.failed
    }
}

impl Drop for FirmwareAgent {
    fn drop(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn field_of(index: u8) -> ObservationField {
    match index {
        0 => ObservationField::Msr,
        1 => ObservationField::MemShare,
        2 => ObservationField::AvgMsr,
        3 => ObservationField::MsrTgt,
        _ => ObservationField::TotalMemUse,
    }
}

impl Policy for FirmwareAgent {
    fn act(&mut self, obs: &Observation) -> Result<Decision, PolicyError> {
        obs.validate()?;
        if !self.failed {
            let msg = Message::Act { obs: obs.to_array() };
            match self.request(&msg, |m| match m {
                Message::Bid {
                    bid,
                    explored,
                    fallback,
                } => Some(Decision {
                    bid,
                    explored,
                    fallback,
                }),
                _ => None,
            }) {
                Ok(d) if d.bid.is_finite() && (-1.0..=1.0).contains(&d.bid) => return Ok(d),
                Ok(_) => self.give_up(&RequestFailure::Unexpected),
                Err(RequestFailure::Refused(ErrorCode::InvalidObservation, d)) => {
                    return Err(PolicyError::InvalidObservation(InvalidObservation {
                        field: field_of(d),
                    }));
                }
                Err(e) => self.give_up(&e),
            }
        }
        self.local.fallbacks += 1;
        Ok(Decision::hold(Fallback::NonFiniteOutput))
    }

    fn record(&mut self, t: &AgentTransition) -> Result<(), PolicyError> {
        cavmem_core::agent::common::check_transition(t)?;
        if self.failed {
            return Ok(());
        }
        let msg = Message::Transition(WireTransition {
            state: t.state.to_array(),
            bid: t.bid,
            reward: t.reward,
            next_state: t.next_state.to_array(),
            done: t.done,
        });
        match self.request(&msg, |m| matches!(m, Message::Ack).then_some(())) {
            Ok(()) => Ok(()),
            Err(RequestFailure::Refused(ErrorCode::InvalidTransition, _)) => {
                Err(PolicyError::InvalidTransition(TransitionField::Reward))
            }
            Err(e) => {
                self.give_up(&e);
                Ok(())
            }
        }
    }

    fn learn(&mut self) -> Result<LearnOutcome, PolicyError> {
        if self.failed {
            return Ok(LearnOutcome::Skipped);
        }
        let r = self.request(&Message::Learn, |m| match m {
            Message::Learned { outcome } => Some(outcome),
            _ => None,
        });
        r.or_else(|e| {
            self.give_up(&e);
            Ok(LearnOutcome::Skipped)
        })
    }

    fn start_episode(&mut self) {
        if !self.failed
            && let Err(e) = self.request(&Message::StartEpisode, |m| {
                matches!(m, Message::Ack).then_some(())
            })
        {
            self.give_up(&e);
        }
    }

    fn set_exploration(&mut self, on: bool) {
        if !self.failed
            && let Err(e) = self.request(&Message::SetExploration { on }, |m| {
                matches!(m, Message::Ack).then_some(())
            })
        {
            self.give_up(&e);
        }
    }

    fn stats(&self) -> PolicyStats {
        // Remote statistics need a request (a mutable borrow); the run loop only reads the
        // fallback count, which includes the safe policy's decisions made here.
        self.local
    }
}

impl SimAgent for FirmwareAgent {
    fn save_snapshot(&mut self, out: &mut [u8]) -> Result<usize, SnapshotError> {
        let mut got = 0usize;
        loop {
            let r = self.request(&Message::SnapshotRead { offset: got as u32 }, |m| match m {
                Message::SnapshotData { total, offset, data } => {
                    Some((total as usize, offset as usize, data.to_vec()))
                }
                _ => None,
            });
            let Ok((total, offset, data)) = r else {
                return Err(SnapshotError::Truncated { needed: 0, got });
            };
            if offset != got || total > out.len() {
                return Err(SnapshotError::BufferTooSmall { needed: total });
            }
            out[offset..offset + data.len()].copy_from_slice(&data);
            got += data.len();
            if got >= total || data.is_empty() {
                return Ok(got);
            }
        }
    }

    fn load_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let total = bytes.len() as u32;
        for (k, chunk) in bytes.chunks(SNAPSHOT_CHUNK).enumerate() {
            let msg = Message::SnapshotWrite {
                total,
                offset: (k * SNAPSHOT_CHUNK) as u32,
                data: chunk,
            };
            match self.request(&msg, |m| matches!(m, Message::Ack).then_some(())) {
                Ok(()) => {}
                Err(RequestFailure::Refused(ErrorCode::Snapshot, _)) => return Err(SnapshotError::BadCrc),
                Err(_) => {
                    return Err(SnapshotError::Truncated {
                        needed: bytes.len(),
                        got: k * SNAPSHOT_CHUNK,
                    });
                }
            }
        }
        Ok(())
    }
}

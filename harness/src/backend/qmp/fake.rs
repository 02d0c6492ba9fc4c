//! A fake QEMU for tests: a QMP server on a Unix socket with a virtio balloon whose size
//! moves toward its target by `speed_bytes` per `query-balloon` (a resize takes time), and
//! a guest whose major faults grow by `faults_per_query` whenever the balloon is below
//! `working_set_bytes`. It records the `balloon` commands it receives.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// What the fake VM's guest does.
#[derive(Clone, Copy, Debug)]
pub struct FakeGuest {
    /// Balloon size at start, bytes.
    pub actual_bytes: u64,
    /// Bytes the balloon moves per `query-balloon`.
    pub speed_bytes: u64,
    /// Below this the guest faults.
    pub working_set_bytes: u64,
    /// Faults added per `query-balloon` while below the working set.
    pub faults_per_query: u64,
}

/// The fake VM's state, shared with the test.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Balloon targets received, in order.
    pub balloon_commands: Vec<u64>,
    /// The size in effect.
    pub actual_bytes: u64,
}

/// A running fake QEMU; its socket is removed (and the server stops) on drop.
#[derive(Debug)]
pub struct FakeQemu {
    /// The QMP socket.
    pub socket: PathBuf,
    /// Its state.
    pub state: Arc<Mutex<FakeState>>,
    /// The connection being served, closed on drop (QEMU going away).
    current: Arc<Mutex<Option<std::os::unix::net::UnixStream>>>,
}

impl FakeQemu {
    /// Starts a fake QEMU listening at `socket` (one client at a time, any number in turn).
    pub fn start(socket: &Path, guest: FakeGuest) -> Self {
        let listener = UnixListener::bind(socket).unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            balloon_commands: Vec::new(),
            actual_bytes: guest.actual_bytes,
        }));
        let shared = Arc::clone(&state);
        let current = Arc::new(Mutex::new(None));
        let serving = Arc::clone(&current);
        std::thread::spawn(move || {
            let mut target = guest.actual_bytes;
            let mut faults = 0u64;
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut out = stream.try_clone().unwrap();
                *serving.lock().unwrap() = stream.try_clone().ok();
                let greeting = json!({"QMP": {"version": {"qemu": {"major": 7, "minor": 2, "micro": 0}}, "capabilities": []}});
                if writeln!(out, "{greeting}").is_err() {
                    continue;
                }
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let Ok(request) = serde_json::from_str::<Value>(&line) else {
                        break;
                    };
                    let id = request["id"].clone();
                    let mut state = shared.lock().unwrap();
                    let reply = match request["execute"].as_str().unwrap_or("") {
                        "qmp_capabilities" | "qom-set" => json!({}),
                        "qom-list" if request["arguments"]["path"] == "/machine/peripheral" => {
                            json!([{"name": "balloon0", "type": "child<virtio-balloon-pci>"}])
                        }
                        "qom-list" => json!([]),
                        "balloon" => {
                            target = request["arguments"]["value"].as_u64().unwrap_or(target);
                            state.balloon_commands.push(target);
                            json!({})
                        }
                        "query-balloon" => {
                            let a = state.actual_bytes;
                            state.actual_bytes = if a < target {
                                (a + guest.speed_bytes).min(target)
                            } else {
                                a.saturating_sub(guest.speed_bytes).max(target)
                            };
                            if state.actual_bytes < guest.working_set_bytes {
                                faults += guest.faults_per_query;
                            }
                            if a != state.actual_bytes {
                                let event = json!({"event": "BALLOON_CHANGE", "data": {"actual": state.actual_bytes}});
                                let _ = writeln!(out, "{event}");
                            }
                            json!({ "actual": state.actual_bytes })
                        }
                        "qom-get" => {
                            json!({"stats": {"stat-major-faults": faults, "stat-total-memory": state.actual_bytes}, "last-update": 1})
                        }
                        other => {
                            let e = json!({"error": {"class": "CommandNotFound", "desc": format!("The command {other} has not been found")}, "id": id});
                            let _ = writeln!(out, "{e}");
                            continue;
                        }
                    };
                    let _ = writeln!(out, "{}", json!({ "return": reply, "id": id }));
                }
            }
        });
        Self {
            socket: socket.to_path_buf(),
            state,
            current,
        }
    }
}

impl Drop for FakeQemu {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        if let Some(stream) = self.current.lock().unwrap().take() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

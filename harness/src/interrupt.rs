//! Ctrl-C and termination signals (SIGINT, SIGTERM, SIGHUP). Long real-node commands
//! (`live`, `calibrate`) [`install`] a flag that they check between steps, so they stop,
//! remove what they created (cgroups, processes, the swap file) and keep the results they
//! have. Other long commands [`exit_on_signal`]: they say what an interruption leaves
//! behind and exit with status 130, as a shell reports SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Whether the command checks [`interrupted`] (else a signal ends the process).
static POLLED: AtomicBool = AtomicBool::new(false);
/// What an interruption leaves behind, said before exiting.
static LEAVES: Mutex<String> = Mutex::new(String::new());
static INSTALLED: OnceLock<Result<(), SignalError>> = OnceLock::new();

/// The signal handler could not be installed (`ctrlc`'s reason; another handler already
/// installed, or the system refused).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot handle Ctrl-C: {0}")]
pub struct SignalError(String);

fn on_signal() {
    if POLLED.load(Ordering::SeqCst) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    } else {
        let leaves = LEAVES.lock().map(|m| m.clone()).unwrap_or_default();
        eprintln!("cavmem: interrupted; {leaves}");
        std::process::exit(130);
    }
}

fn handler() -> Result<(), SignalError> {
    INSTALLED
        .get_or_init(|| ctrlc::set_handler(on_signal).map_err(|e| SignalError(e.to_string())))
        .clone()
}

/// Installs the handler in the polled mode: a signal sets the flag [`interrupted`] reads.
///
/// # Errors
/// [`SignalError`] when another handler is already installed.
pub fn install() -> Result<(), SignalError> {
    POLLED.store(true, Ordering::SeqCst);
    handler()
}

/// Installs the handler in the exiting mode: a signal prints `cavmem: interrupted;
/// {leaves}` on stderr and exits with status 130.
///
/// # Errors
/// [`SignalError`] when another handler is already installed.
pub fn exit_on_signal(leaves: &str) -> Result<(), SignalError> {
    if let Ok(mut m) = LEAVES.lock() {
        *m = leaves.to_string();
    }
    handler()
}

/// Whether a signal has arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Sleeps for `duration` in short slices; returns `false` early if a signal arrives.
pub fn sleep(duration: std::time::Duration) -> bool {
    let end = std::time::Instant::now() + duration;
    loop {
        if interrupted() {
            return false;
        }
        let now = std::time::Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(std::time::Duration::from_millis(50)));
    }
}

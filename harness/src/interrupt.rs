//! Ctrl-C and termination signals for long real-node commands (`live`, `calibrate`): the
//! first signal sets a flag that the command checks between steps, so it stops, removes
//! what it created (cgroups, processes, the swap file) and keeps the results it has.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Installs the handler for SIGINT, SIGTERM and SIGHUP (once per process).
///
/// # Errors
/// A message when another handler is already installed.
pub fn install() -> Result<(), String> {
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst))
                .map_err(|e| format!("cannot handle Ctrl-C: {e}"))
        })
        .clone()
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

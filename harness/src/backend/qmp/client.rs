//! A QEMU Machine Protocol client: one JSON object per line each way. After the greeting
//! (`{"QMP": …}`) the client negotiates capabilities (`qmp_capabilities`); then every
//! command carries an `id` and its reply (`return` or `error`) is matched by it, while
//! asynchronous events (`{"event": …}`) that arrive in between are kept for
//! [`QmpClient::take_events`]. Every read has a timeout; a closed connection, a reply that
//! is not JSON, an over-long line and an error QEMU reports are each their own
//! [`QmpErrorKind`], with the peer's name in the message.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use serde_json::{Value, json};

/// The longest line accepted from the peer, bytes (QEMU's replies are far shorter).
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Default time to wait for a reply.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Events kept at most; older ones are dropped first.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// What went wrong talking to a QMP peer.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QmpErrorKind {
    /// Could not connect or write.
    #[error("{0}")]
    Io(String),
    /// The peer closed the connection.
    #[error("the peer closed the connection")]
    Disconnected,
    /// No reply in time.
    #[error("no reply in time")]
    Timeout,
    /// A line that is not a JSON object, too long, or not the message expected.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// QEMU refused the command: its error class and description.
    #[error("QEMU refused: {class}: {desc}")]
    Command {
        /// E.g. `GenericError`, `CommandNotFound`, `DeviceNotActive`.
        class: String,
        /// QEMU's words.
        desc: String,
    },
}

/// A QMP failure: the peer, what it was doing, and what went wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("QMP {peer} ({during}): {kind}")]
pub struct QmpError {
    /// The peer (its socket path).
    pub peer: String,
    /// The command or phase (`greeting`, `qmp_capabilities`, `balloon`, …).
    pub during: String,
    /// What went wrong.
    pub kind: QmpErrorKind,
}

/// An asynchronous event from QEMU.
#[derive(Clone, Debug, PartialEq)]
pub struct QmpEvent {
    /// Its name, e.g. `BALLOON_CHANGE`, `SHUTDOWN`.
    pub name: String,
    /// Its `data` member (`null` if none).
    pub data: Value,
}

/// A connected, negotiated QMP session over any byte stream.
#[derive(Debug)]
pub struct QmpClient<S: Read + Write> {
    reader: BufReader<S>,
    peer: String,
    next_id: u64,
    events: VecDeque<QmpEvent>,
    /// QEMU's version from the greeting, e.g. "7.2.19".
    version: String,
    /// The start of a line whose rest has not arrived yet (a read timed out mid-line).
    pending: Vec<u8>,
}

/// A stream whose reads can time out.
pub trait TimedStream: Read + Write {
    /// Sets the read timeout.
    ///
    /// # Errors
    /// The OS's error.
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()>;
}

impl TimedStream for std::os::unix::net::UnixStream {
    fn set_timeout(&self, timeout: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(timeout))?;
        self.set_write_timeout(Some(timeout))
    }
}

impl QmpClient<std::os::unix::net::UnixStream> {
    /// Connects to the QMP socket at `path` and negotiates capabilities.
    ///
    /// # Errors
    /// [`QmpError`] naming the socket and the phase that failed.
    pub fn connect(path: &std::path::Path, timeout: Duration) -> Result<Self, QmpError> {
        let peer = path.display().to_string();
        let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| QmpError {
            peer: peer.clone(),
            during: "connect".into(),
            kind: QmpErrorKind::Io(e.to_string()),
        })?;
        Self::start(stream, peer, timeout)
    }
}

impl<S: TimedStream> QmpClient<S> {
    /// Reads the greeting from `stream` and negotiates capabilities; `peer` names it in
    /// errors.
    ///
    /// # Errors
    /// [`QmpError`] for a missing or malformed greeting or a refused negotiation.
    pub fn start(stream: S, peer: String, timeout: Duration) -> Result<Self, QmpError> {
        stream.set_timeout(timeout).map_err(|e| QmpError {
            peer: peer.clone(),
            during: "connect".into(),
            kind: QmpErrorKind::Io(e.to_string()),
        })?;
        let mut client = Self {
            reader: BufReader::new(stream),
            peer,
            next_id: 0,
            events: VecDeque::new(),
            version: String::new(),
            pending: Vec::new(),
        };
        let greeting = client.read_message("greeting")?;
        let Some(qmp) = greeting.get("QMP") else {
            return Err(client.error(
                "greeting",
                QmpErrorKind::Protocol(format!("not a QMP greeting: {greeting}")),
            ));
        };
        let v = &qmp["version"]["qemu"];
        client.version = format!("{}.{}.{}", v["major"], v["minor"], v["micro"]);
        client.execute("qmp_capabilities", None)?;
        Ok(client)
    }

    /// QEMU's version from the greeting (`major.minor.micro`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Runs `command` with `arguments` and returns its `return` value; events that arrive
    /// before the reply are kept.
    ///
    /// # Errors
    /// [`QmpError`]: QEMU's refusal ([`QmpErrorKind::Command`]), a timeout, a disconnect or
    /// a protocol error.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            request["arguments"] = args;
        }
        let mut line = request.to_string();
        line.push('\n');
        let stream = self.reader.get_mut();
        if let Err(e) = stream.write_all(line.as_bytes()).and_then(|()| stream.flush()) {
            let kind = if e.kind() == std::io::ErrorKind::BrokenPipe {
                QmpErrorKind::Disconnected
            } else {
                QmpErrorKind::Io(e.to_string())
            };
            return Err(self.error(command, kind));
        }
        loop {
            let message = self.read_message(command)?;
            if message.get("event").is_some() {
                self.keep_event(message);
                continue;
            }
            if message.get("id").and_then(Value::as_u64) != Some(id) {
                // A reply to an earlier command that timed out: skip it.
                continue;
            }
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(e) = message.get("error") {
                let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
                return Err(self.error(
                    command,
                    QmpErrorKind::Command {
                        class: text("class"),
                        desc: text("desc"),
                    },
                ));
            }
            return Err(self.error(
                command,
                QmpErrorKind::Protocol(format!("neither return nor error: {message}")),
            ));
        }
    }

    /// The events received so far, oldest first (and forgets them).
    pub fn take_events(&mut self) -> Vec<QmpEvent> {
        self.events.drain(..).collect()
    }

    /// Reads events that are already waiting, for up to `wait`, without sending anything.
    ///
    /// # Errors
    /// [`QmpError`] for a disconnect or a protocol error (a quiet peer is not an error).
    pub fn poll_events(&mut self, wait: Duration) -> Result<(), QmpError> {
        let set = |s: &S, t: Duration| s.set_timeout(t.max(Duration::from_millis(1)));
        let _ = set(self.reader.get_ref(), wait);
        let result = loop {
            match self.read_message("events") {
                Ok(m) if m.get("event").is_some() => self.keep_event(m),
                Ok(_) => {} // a late reply: nothing waits for it
                Err(QmpError {
                    kind: QmpErrorKind::Timeout,
                    ..
                }) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let _ = set(self.reader.get_ref(), DEFAULT_TIMEOUT);
        result
    }

    fn keep_event(&mut self, message: Value) {
        if self.events.len() == MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(QmpEvent {
            name: message["event"].as_str().unwrap_or("?").to_string(),
            data: message.get("data").cloned().unwrap_or(Value::Null),
        });
    }

    fn error(&self, during: &str, kind: QmpErrorKind) -> QmpError {
        QmpError {
            peer: self.peer.clone(),
            during: during.to_string(),
            kind,
        }
    }

    /// One message: a line holding a JSON object. A read that times out mid-line keeps
    /// what arrived for the next call.
    fn read_message(&mut self, during: &str) -> Result<Value, QmpError> {
        let room = (MAX_LINE_BYTES + 1).saturating_sub(self.pending.len()) as u64;
        let read = (&mut self.reader).take(room).read_until(b'\n', &mut self.pending);
        match read {
            Ok(0) if self.pending.is_empty() || room == 0 => {
                if room == 0 {
                    self.pending.clear();
                    return Err(self.error(
                        during,
                        QmpErrorKind::Protocol(format!("a line over {MAX_LINE_BYTES} bytes")),
                    ));
                }
                return Err(self.error(during, QmpErrorKind::Disconnected));
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(self.error(during, QmpErrorKind::Timeout));
            }
            Err(e) => return Err(self.error(during, QmpErrorKind::Io(e.to_string()))),
        }
        if self.pending.last() != Some(&b'\n') {
            if self.pending.len() > MAX_LINE_BYTES {
                self.pending.clear();
                return Err(self.error(
                    during,
                    QmpErrorKind::Protocol(format!("a line over {MAX_LINE_BYTES} bytes")),
                ));
            }
            return Err(self.error(during, QmpErrorKind::Disconnected));
        }
        let line = std::mem::take(&mut self.pending);
        match serde_json::from_slice::<Value>(&line) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(v) => Err(self.error(during, QmpErrorKind::Protocol(format!("not a JSON object: {v}")))),
            Err(e) => Err(self.error(
                during,
                QmpErrorKind::Protocol(format!(
                    "not JSON ({e}): {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                )),
            )),
        }
    }
}

#[cfg(test)]
mod tests;

//! The QMP client against a scripted fake peer on a socket pair: the happy path, events
//! between replies, and every way a peer can misbehave.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;

use super::*;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 19, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

/// What the fake peer does, in order.
enum Step {
    /// Writes a line (a newline is added).
    Send(String),
    /// Reads a command, checks its name, and answers `{"return": <value>, "id": <its id>}`.
    Reply(&'static str, Value),
    /// Reads a command, checks its name, and answers with an error.
    Refuse(&'static str, &'static str, &'static str),
    /// Reads a command and does not answer.
    Ignore(&'static str),
    /// Reads a command and answers with `text` (any bytes, no id handling).
    Answer(&'static str, String),
    /// Waits.
    Sleep(Duration),
    /// Writes raw bytes.
    Raw(Vec<u8>),
}

/// A fake QMP peer running `script`, then closing; returns the client's end and the thread.
fn peer(script: Vec<Step>) -> (UnixStream, JoinHandle<()>) {
    let (client, server) = UnixStream::pair().unwrap();
    let thread = std::thread::spawn(move || {
        let mut reader = BufReader::new(server.try_clone().unwrap());
        let mut out = server;
        let mut command = |name: &str| -> Value {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["execute"], name, "{line}");
            v["id"].clone()
        };
        for step in script {
            match step {
                Step::Send(text) => {
                    let _ = writeln!(out, "{text}");
                }
                Step::Reply(name, value) => {
                    let id = command(name);
                    let _ = writeln!(out, "{}", json!({ "return": value, "id": id }));
                }
                Step::Refuse(name, class, desc) => {
                    let id = command(name);
                    let _ = writeln!(
                        out,
                        "{}",
                        json!({ "error": { "class": class, "desc": desc }, "id": id })
                    );
                }
                Step::Ignore(name) => {
                    command(name);
                }
                Step::Answer(name, text) => {
                    command(name);
                    let _ = writeln!(out, "{text}");
                }
                Step::Sleep(d) => std::thread::sleep(d),
                Step::Raw(bytes) => {
                    let _ = out.write_all(&bytes);
                }
            }
        }
    });
    (client, thread)
}

/// `script` after the greeting and the capabilities negotiation.
fn negotiated(mut script: Vec<Step>) -> Vec<Step> {
    let mut full = vec![
        Step::Send(GREETING.into()),
        Step::Reply("qmp_capabilities", json!({})),
    ];
    full.append(&mut script);
    full
}

fn start(script: Vec<Step>, timeout: Duration) -> (Result<QmpClient<UnixStream>, QmpError>, JoinHandle<()>) {
    let (stream, thread) = peer(script);
    (QmpClient::start(stream, "fake.sock".into(), timeout), thread)
}

#[test]
fn qmp_negotiates_runs_commands_and_keeps_interleaved_events() {
    let script = negotiated(vec![
        Step::Send(r#"{"event": "BALLOON_CHANGE", "data": {"actual": 536870912}, "timestamp": {"seconds": 1, "microseconds": 2}}"#.into()),
        Step::Reply("query-balloon", json!({ "actual": 536_870_912u64 })),
        Step::Refuse("balloon", "DeviceNotActive", "No balloon device has been activated"),
    ]);
    let (client, thread) = start(script, Duration::from_secs(5));
    let mut client = client.unwrap();
    assert_eq!(client.version(), "7.2.19");
    let v = client.execute("query-balloon", None).unwrap();
    assert_eq!(v["actual"], 536_870_912u64);
    let events = client.take_events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "BALLOON_CHANGE");
    assert_eq!(events[0].data["actual"], 536_870_912u64);
    assert!(client.take_events().is_empty());
    let e = client
        .execute("balloon", Some(json!({ "value": 1 })))
        .unwrap_err();
    assert_eq!(
        e.kind,
        QmpErrorKind::Command {
            class: "DeviceNotActive".into(),
            desc: "No balloon device has been activated".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "QMP fake.sock (balloon): QEMU refused: DeviceNotActive: No balloon device has been activated"
    );
    thread.join().unwrap();
}

#[test]
fn qmp_refuses_a_peer_that_is_not_qemu() {
    let (client, thread) = start(vec![Step::Send(r#"{"hello": 1}"#.into())], Duration::from_secs(5));
    let e = client.unwrap_err();
    assert_eq!(e.during, "greeting");
    assert!(matches!(e.kind, QmpErrorKind::Protocol(_)), "{e}");
    thread.join().unwrap();
    let (client, thread) = start(
        vec![Step::Send("SSH-2.0-OpenSSH_9.2".into())],
        Duration::from_secs(5),
    );
    let e = client.unwrap_err();
    assert!(e.to_string().contains("not JSON"), "{e}");
    thread.join().unwrap();
}

#[test]
fn qmp_malformed_replies_are_protocol_errors() {
    for bad in ["{\"return\": ", "[1, 2]", "{\"id\": 3}"] {
        let script = negotiated(vec![Step::Answer("query-balloon", bad.into())]);
        let (client, thread) = start(script, Duration::from_secs(5));
        let mut client = client.unwrap();
        let e = client.execute("query-balloon", None).unwrap_err();
        // A reply with another id is skipped; then the peer closes.
        assert!(
            matches!(e.kind, QmpErrorKind::Protocol(_) | QmpErrorKind::Disconnected),
            "{bad}: {e}"
        );
        thread.join().unwrap();
    }
}

#[test]
fn qmp_slow_replies_time_out_and_late_ones_are_skipped() {
    let script = negotiated(vec![
        Step::Ignore("query-balloon"),
        Step::Sleep(Duration::from_millis(400)),
        // The late reply to command 2, then the reply to command 3, split across writes.
        Step::Send(r#"{"return": {"actual": 1}, "id": 2}"#.into()),
        Step::Ignore("query-balloon"),
        Step::Raw(br#"{"return": {"actual": "#.to_vec()),
        Step::Sleep(Duration::from_millis(300)),
        Step::Raw(b"2}, \"id\": 3}\n".to_vec()),
    ]);
    let (client, thread) = start(script, Duration::from_millis(150));
    let mut client = client.unwrap();
    let e = client.execute("query-balloon", None).unwrap_err();
    assert_eq!(e.kind, QmpErrorKind::Timeout);
    // The next reply arrives in two pieces, the first read timing out in between.
    let e = client.execute("query-balloon", None).unwrap_err();
    assert_eq!(e.kind, QmpErrorKind::Timeout, "first piece only");
    thread.join().unwrap();
    // The rest of the line completes the kept piece (a late reply, skipped), then the peer
    // has closed: no protocol error from a lost half line.
    let e = client.poll_events(Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind, QmpErrorKind::Disconnected);
}

#[test]
fn qmp_waits_across_a_split_reply() {
    let script = negotiated(vec![
        Step::Ignore("query-balloon"),
        Step::Raw(br#"{"return": {"actual": "#.to_vec()),
        Step::Sleep(Duration::from_millis(100)),
        Step::Raw(b"2}, \"id\": 2}\n".to_vec()),
    ]);
    let (client, thread) = start(script, Duration::from_secs(5));
    let v = client.unwrap().execute("query-balloon", None).unwrap();
    assert_eq!(v["actual"], 2);
    thread.join().unwrap();
}

#[test]
fn qmp_disconnects_are_named() {
    let script = negotiated(vec![Step::Ignore("query-balloon")]);
    let (client, thread) = start(script, Duration::from_secs(5));
    let mut client = client.unwrap();
    let e = client.execute("query-balloon", None).unwrap_err();
    assert_eq!(e.kind, QmpErrorKind::Disconnected);
    assert!(e.to_string().contains("closed the connection"), "{e}");
    thread.join().unwrap();
    // Closed mid-line.
    let script = negotiated(vec![
        Step::Ignore("query-balloon"),
        Step::Raw(b"{\"return\"".to_vec()),
    ]);
    let (client, thread) = start(script, Duration::from_secs(5));
    let e = client.unwrap().execute("query-balloon", None).unwrap_err();
    assert_eq!(e.kind, QmpErrorKind::Disconnected);
    thread.join().unwrap();
}

#[test]
fn qmp_overlong_lines_are_refused() {
    let mut huge = vec![b' '; MAX_LINE_BYTES + 10];
    huge.push(b'\n');
    let script = negotiated(vec![Step::Ignore("query-balloon"), Step::Raw(huge)]);
    let (client, thread) = start(script, Duration::from_secs(5));
    let e = client.unwrap().execute("query-balloon", None).unwrap_err();
    assert!(e.to_string().contains("a line over"), "{e}");
    thread.join().unwrap();
}

#[test]
fn qmp_events_are_polled_without_a_command_and_bounded() {
    let mut script = vec![
        Step::Send(GREETING.into()),
        Step::Reply("qmp_capabilities", json!({})),
    ];
    for k in 0..(MAX_QUEUED_EVENTS + 5) {
        script.push(Step::Send(format!(
            r#"{{"event": "BALLOON_CHANGE", "data": {{"actual": {k}}}}}"#
        )));
    }
    let (client, thread) = start(script, Duration::from_secs(5));
    let mut client = client.unwrap();
    let e = client.poll_events(Duration::from_secs(2)).unwrap_err();
    thread.join().unwrap();
    assert_eq!(
        e.kind,
        QmpErrorKind::Disconnected,
        "the peer closed after its events"
    );
    let events = client.take_events();
    assert_eq!(events.len(), MAX_QUEUED_EVENTS);
    assert_eq!(events[0].data["actual"], 5, "the oldest are dropped first");
}

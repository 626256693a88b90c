//! `fd:N` and `systemd:NAME` endpoints under systemd's socket activation protocol, as
//! `systemd-socket-activate` runs it: it binds the sockets, and on the first connection starts
//! the server with them as descriptors 3, 4... (`LISTEN_FDS`, `LISTEN_PID`, and with
//! `--fdname` the names in `LISTEN_FDNAMES`). The server is the echo example, told where to
//! listen only by endpoints.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

use util::programs::{example, Spawned};
use util::WAIT;

const ACTIVATE: &str = "systemd-socket-activate";

/// Whether `systemd-socket-activate` is installed (Debian's `systemd` package; `.ci/run`
/// installs it). Without it the tests say so and pass: they cannot run.
fn activator_available() -> bool {
    let found = Command::new(ACTIVATE).arg("--help").output().is_ok();
    if !found {
        eprintln!("note: {ACTIVATE} not found (package systemd); skipping");
    }
    found
}

/// A loopback port that was free a moment ago, for the activator to bind.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// Retries `connect` until the activator listens (it binds before it waits), within [`WAIT`].
fn connect_when_listening<S>(what: &str, connect: impl Fn() -> std::io::Result<S>) -> S {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect() {
            Ok(stream) => return stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(err) => panic!("{ACTIVATE} never listened on {what}: {err}"),
        }
    }
}

/// Writes `data` and reads its echo back.
fn echoes(stream: &mut (impl Read + Write), data: &[u8]) -> Vec<u8> {
    stream.write_all(data).unwrap();
    let mut reply = vec![0; data.len()];
    stream.read_exact(&mut reply).unwrap();
    reply
}

/// Stops the activated server (and with it the activator, which execs into it) by closing
/// its standard input, and checks that it stopped cleanly.
fn stop(process: Spawned) -> String {
    let finished = process.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    finished.stdout
}

#[test]
fn an_inherited_descriptor_is_served_by_its_number() {
    if !activator_available() {
        return;
    }
    let addr = free_port();
    let mut command = Command::new(ACTIVATE);
    command
        .args(["-l", &addr.to_string()])
        .arg(example("echo_server"))
        .args(["--listen", "fd:3", "--stop-on-stdin-eof"])
        .env("RUST_LOG", "warn");
    let mut process = Spawned::spawn(&mut command);
    let mut client = connect_when_listening(&addr.to_string(), || TcpStream::connect(addr));
    client.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(echoes(&mut client, b"by number"), b"by number");
    assert_eq!(
        process.next_line(),
        format!("echo server listening on tcp:{addr}")
    );
    drop(client);
    stop(process);
}

#[test]
fn inherited_descriptors_are_served_by_their_systemd_names() {
    if !activator_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("admin.sock");
    let addr = free_port();
    let mut command = Command::new(ACTIVATE);
    command
        .args(["-l", &addr.to_string()])
        .args(["-l", path.to_str().unwrap()])
        .arg("--fdname=web:admin")
        .arg(example("echo_server"))
        // In the other order than the activator's: names, not positions, decide.
        .args(["--listen", "systemd:admin", "--listen", "systemd:web"])
        .arg("--stop-on-stdin-eof")
        .env("RUST_LOG", "warn");
    let mut process = Spawned::spawn(&mut command);
    let mut web = connect_when_listening(&addr.to_string(), || TcpStream::connect(addr));
    web.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(echoes(&mut web, b"over tcp"), b"over tcp");
    let mut admin = UnixStream::connect(&path).unwrap();
    admin.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(echoes(&mut admin, b"over unix"), b"over unix");
    assert_eq!(
        process.next_line(),
        format!("echo server listening on unix:{}", path.display())
    );
    assert_eq!(
        process.next_line(),
        format!("echo server listening on tcp:{addr}")
    );
    drop((web, admin));
    stop(process);
}

#[test]
fn a_name_that_was_not_inherited_is_an_error_that_lists_what_was() {
    if !activator_available() {
        return;
    }
    let addr = free_port();
    let mut command = Command::new(ACTIVATE);
    command
        .args(["-l", &addr.to_string(), "--fdname=web"])
        .arg(example("echo_server"))
        .args(["--listen", "systemd:api", "--stop-on-stdin-eof"])
        .env("RUST_LOG", "warn");
    let process = Spawned::spawn(&mut command);
    // The server starts at the first connection, fails to listen, and exits.
    let _client = connect_when_listening(&addr.to_string(), || TcpStream::connect(addr));
    let finished = process.finish();
    assert!(!finished.status.success(), "{}", finished.stdout);
    assert!(
        finished.stderr.contains("systemd:api")
            && finished
                .stderr
                .contains(&"inherited: fd:3 (systemd:web)".to_string()),
        "{}",
        finished.stderr
    );
}

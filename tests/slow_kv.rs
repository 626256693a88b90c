//! The `slow_kv` example: blocking work done on worker threads comes back to the right
//! connection, replies keep request order under pipelining, and a client that leaves early
//! costs nothing.

mod util;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;

use util::programs::{example, Finished, Spawned, TIMEOUT};

/// The example on an ephemeral port, with these extra options.
fn start(options: &[&str]) -> (Spawned, SocketAddr) {
    let mut command = Command::new(example("slow_kv"));
    command
        .args(["--addr", "127.0.0.1:0", "--stop-on-stdin-eof"])
        .args(options)
        .env("RUST_LOG", "warn");
    let mut process = Spawned::spawn(&mut command);
    let line = process.next_line();
    let addr = line
        .strip_prefix("slow_kv listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (process, addr)
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    BufReader::new(stream)
}

fn read_lines(client: &mut BufReader<TcpStream>, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut line = String::new();
            client.read_line(&mut line).expect("a reply line");
            line.trim_end().to_string()
        })
        .collect()
}

fn stop(process: Spawned) -> Finished {
    let finished = process.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(!finished.stderr.contains("panicked"), "{}", finished.stderr);
    finished
}

/// The counter after `label` in the server's closing line.
fn count(finished: &Finished, label: &str) -> u64 {
    let line = finished
        .stdout
        .lines()
        .find(|line| line.starts_with("slow_kv stopped:"))
        .unwrap_or_else(|| panic!("no stats line in {:?}", finished.stdout));
    let before = &line[..line
        .find(label)
        .unwrap_or_else(|| panic!("{label} in {line}"))];
    let number = before.trim_end().rsplit([' ', ',', ':']).next().unwrap();
    number
        .parse()
        .unwrap_or_else(|_| panic!("a number before {label} in {line}"))
}

#[test]
fn pipelined_requests_get_replies_in_request_order() {
    let (process, addr) = start(&["--workers", "4", "--slow-ms", "50"]);
    let mut client = connect(addr);
    client
        .get_mut()
        .write_all(b"SLOW a\nPING\nSET k v\nGET k\nSLOW b\nSLOW c\nPING\n")
        .unwrap();
    let replies = read_lines(&mut client, 7);
    let slow: Vec<_> = replies.iter().filter(|r| r.starts_with("SLOW ")).collect();
    assert_eq!(slow.len(), 3, "{replies:?}");
    assert_eq!(
        [&replies[1], &replies[2], &replies[3], &replies[6]],
        ["PONG", "OK", "VALUE v", "PONG"]
    );
    assert!(replies[0].starts_with("SLOW ") && replies[4].starts_with("SLOW "));
    // Different inputs, different digests: each result went to the request that asked.
    assert_ne!(replies[0], replies[4]);
    assert_ne!(replies[4], replies[5]);
    drop(client);
    stop(process);
}

#[test]
fn each_connection_gets_its_own_results() {
    let (process, addr) = start(&["--workers", "8", "--slow-ms", "20"]);
    let mut clients: Vec<_> = (0..8).map(|_| connect(addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .get_mut()
            .write_all(format!("SLOW same\nSLOW other-{i}\n").as_bytes())
            .unwrap();
    }
    let replies: Vec<Vec<String>> = clients.iter_mut().map(|c| read_lines(c, 2)).collect();
    for pair in &replies {
        assert_eq!(pair[0], replies[0][0], "same input, same digest");
    }
    let others: std::collections::HashSet<_> = replies.iter().map(|pair| &pair[1]).collect();
    assert_eq!(
        others.len(),
        8,
        "each connection got the digest of its own input"
    );
    drop(clients);
    stop(process);
}

#[test]
fn a_client_that_closes_before_its_results_costs_nothing() {
    // One worker: while it does the first job, the client leaves; the other jobs are then
    // skipped, and no result reaches anyone else.
    let (process, addr) = start(&["--workers", "1", "--slow-ms", "300"]);
    let mut leaver = connect(addr);
    leaver
        .get_mut()
        .write_all(b"SLOW 1\nSLOW 2\nSLOW 3\nSLOW 4\n")
        .unwrap();
    drop(leaver);
    let mut stayer = connect(addr);
    stayer.get_mut().write_all(b"SLOW mine\nPING\n").unwrap();
    let replies = read_lines(&mut stayer, 2);
    assert!(replies[0].starts_with("SLOW "), "{replies:?}");
    assert_eq!(replies[1], "PONG");
    drop(stayer);
    let finished = stop(process);
    let (done, skipped) = (
        count(&finished, "slow jobs done"),
        count(&finished, "skipped"),
    );
    assert_eq!(done + skipped, 5, "{}", finished.stdout);
    assert!(
        skipped >= 1,
        "the leaver's queued jobs were not skipped: {}",
        finished.stdout
    );
    // Whatever the leaver's results did (skipped, or sent and missed), none was delivered:
    // the stayer read exactly its own two replies above.
}

/// systemd socket activation: `systemd-socket-activate` binds the port, and on the first
/// connection starts the server with the listener as descriptor 3 (`LISTEN_FDS=1`). The
/// server listens on it (`Reactor::listen` with the inherited listener) and answers that very
/// first connection.
#[test]
fn a_listener_inherited_from_systemd_socket_activation_is_served() {
    let activate = "systemd-socket-activate";
    if Command::new(activate).arg("--help").output().is_err() {
        eprintln!("note: {activate} not found (package systemd); skipping");
        return;
    }
    // A port that was free a moment ago, for the activator to bind.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut command = Command::new(activate);
    command
        .args(["-l", &addr.to_string()])
        .arg(example("slow_kv"))
        .args(["--listen-fd", "--stop-on-stdin-eof"])
        .env("RUST_LOG", "warn");
    let mut process = Spawned::spawn(&mut command);
    // The activator binds before it waits: retry until it does, within the bound.
    let deadline = std::time::Instant::now() + TIMEOUT;
    let stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(_) if std::time::Instant::now() < deadline => std::thread::yield_now(),
            Err(err) => panic!("{activate} never listened on {addr}: {err}"),
        }
    };
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut client = BufReader::new(stream);
    client.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(read_lines(&mut client, 1), ["PONG"]);
    assert_eq!(process.next_line(), format!("slow_kv listening on {addr}"));
    drop(client);
    stop(process);
}

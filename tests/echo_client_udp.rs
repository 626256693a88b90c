//! `echo_client --udp --pipeline K`: K datagrams in flight per socket, every echo matched
//! to what was sent whatever its order, and the report's counts right.

mod util;

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use util::programs::{example, output_within, stderr, stdout, Spawned, TIMEOUT};

/// Runs `echo_client --udp` against `server` with these extra options.
fn echo_client_udp(server: SocketAddr, options: &[&str]) -> std::process::Output {
    let mut command = Command::new(example("echo_client"));
    command
        .args(["--udp", "--addr", &server.to_string(), "--timeout", "8"])
        .args(options);
    output_within(command)
}

/// The report's line that starts with `prefix`.
fn report_line<'a>(report: &'a str, prefix: &str) -> &'a str {
    report
        .lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {report:?}"))
}

/// Starts `echo_server` on UDP and runs `echo_client --udp` against it with these
/// `--connections`, `--messages`, `--size` and `--pipeline`; returns the server, still
/// running, and the client's report, after checking the client succeeded.
fn pipelined_run_against_the_echo_server(
    connections: &str,
    messages: &str,
    size: &str,
    pipeline: &str,
) -> (Spawned, String) {
    let mut command = Command::new(example("echo_server"));
    command.args(["--listen", "udp:127.0.0.1:0", "--stop-on-stdin-eof"]);
    let (server, addr) = Spawned::listening(&mut command, "echo server listening on udp:");
    let report = pipelined_run(addr, connections, messages, size, pipeline);
    (server, report)
}

/// Runs `echo_client --udp` against `server` with these `--connections`, `--messages`,
/// `--size` and `--pipeline`; returns its report, after checking it succeeded.
fn pipelined_run(
    server: SocketAddr,
    connections: &str,
    messages: &str,
    size: &str,
    pipeline: &str,
) -> String {
    let args = [
        "--connections",
        connections,
        "--messages",
        messages,
        "--size",
        size,
        "--pipeline",
        pipeline,
    ];
    let output = echo_client_udp(server, &args);
    let report = stdout(&output);
    assert!(output.status.success(), "{report}{}", stderr(&output));
    report
}

#[test]
fn every_datagram_of_a_pipelined_run_against_the_echo_server_is_echoed_and_counted() {
    let (server, report) = pipelined_run_against_the_echo_server("4", "200", "100", "8");
    assert!(
        report_line(&report, "connections:")
            .starts_with("connections: 4, messages: 800 of 100 bytes, echoed: 80000 bytes"),
        "{report}"
    );
    assert_eq!(
        report_line(&report, "datagrams:"),
        "datagrams: 800 echoed, 0 lost (0.000%)"
    );
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// The shortest round trip the report's `latency:` line gives, in whole microseconds.
fn min_micros(report: &str) -> u64 {
    let line = report_line(report, "latency: ");
    let min = line
        .rsplit_once("min ")
        .map(|(_, min)| min.trim_end_matches(" µs"));
    min.and_then(|min| min.parse().ok())
        .unwrap_or_else(|| panic!("no min in {line:?}"))
}

#[test]
fn round_trips_are_timed_per_datagram_not_by_the_turn_clock() {
    // A round trip through another process takes microseconds at the very least. Timed with
    // the reactor's clock, read once per turn, an echo that comes back within the turn that
    // sent it (against a server as quick as the client's own turn) would take 0 µs; among
    // thousands of echoes with 16 in flight, some do.
    let (server, report) = pipelined_run_against_the_echo_server("2", "2000", "64", "16");
    assert!(min_micros(&report) > 0, "{report}");
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
}

/// A peer that echoes nothing until `batch` datagrams from one sender have arrived, then
/// echoes them last first; it stops after `total` datagrams or at [`TIMEOUT`].
fn echo_in_reversed_batches(batch: usize, total: usize) -> (SocketAddr, thread::JoinHandle<usize>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let addr = socket.local_addr().expect("its address");
    let peer = thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let mut held: HashMap<SocketAddr, Vec<Vec<u8>>> = HashMap::new();
        let mut echoed = 0;
        let mut buf = [0; 2048];
        while echoed < total && Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue; // the read timeout: check the deadline
            };
            let waiting = held.entry(from).or_default();
            waiting.push(buf[..n].to_vec());
            if waiting.len() == batch {
                for datagram in waiting.drain(..).rev() {
                    socket.send_to(&datagram, from).expect("send the echo");
                    echoed += 1;
                }
            }
        }
        echoed
    });
    (addr, peer)
}

#[test]
fn pipeline_keeps_that_many_datagrams_in_flight_and_matches_echoes_out_of_order() {
    // Only a client with eight in flight gets any echo from this peer: one sending a
    // datagram at a time would see every one of them time out as lost.
    let (addr, peer) = echo_in_reversed_batches(8, 2 * 40);
    let report = pipelined_run(addr, "2", "40", "32", "8");
    assert_eq!(peer.join().expect("the peer thread"), 80);
    assert_eq!(
        report_line(&report, "datagrams:"),
        "datagrams: 80 echoed, 0 lost (0.000%)"
    );
}

#[test]
fn datagrams_never_echoed_are_counted_as_lost_and_the_run_still_ends() {
    // A peer that drops every datagram whose sequence number (its first byte, little-endian,
    // under 256 here) is a multiple of 5: 8 of each socket's 40.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    let addr = socket.local_addr().expect("its address");
    let peer = thread::spawn(move || {
        let deadline = Instant::now() + TIMEOUT;
        let (mut received, mut buf) = (0, [0; 2048]);
        while received < 2 * 40 && Instant::now() < deadline {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            received += 1;
            if buf[0] % 5 != 0 {
                socket.send_to(&buf[..n], from).expect("send the echo");
            }
        }
        received
    });
    let report = pipelined_run(addr, "2", "40", "16", "4");
    assert_eq!(peer.join().expect("the peer thread"), 80);
    assert_eq!(
        report_line(&report, "datagrams:"),
        "datagrams: 64 echoed, 16 lost (20.000%)"
    );
}

#[test]
fn the_client_takes_the_udp_endpoint_the_server_announces() {
    let mut command = Command::new(example("echo_server"));
    command.args(["--listen", "udp:127.0.0.1:0", "--stop-on-stdin-eof"]);
    let (server, addr) = Spawned::listening(&mut command, "echo server listening on udp:");
    let mut client = Command::new(example("echo_client"));
    let endpoint = format!("udp:{addr}"); // as announced, without --udp
    client.args([
        "--addr",
        &endpoint,
        "--connections",
        "2",
        "--messages",
        "50",
    ]);

    let output = output_within(client);

    let report = stdout(&output);
    assert!(output.status.success(), "{report}{}", stderr(&output));
    assert_eq!(
        report_line(&report, "datagrams:"),
        "datagrams: 100 echoed, 0 lost (0.000%)"
    );
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
}

#[test]
fn a_pipeline_deeper_than_the_default_send_queue_loses_nothing_on_loopback() {
    // 100 in flight per socket are queued at once when the socket opens: more than the
    // reactor's default send queue of 64, which would drop the rest before they left.
    let (server, report) = pipelined_run_against_the_echo_server("2", "500", "64", "100");
    assert_eq!(
        report_line(&report, "datagrams:"),
        "datagrams: 1000 echoed, 0 lost (0.000%)"
    );
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
}

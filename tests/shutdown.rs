//! Shutdown from another thread: stop accepting, let connections finish, abort what is left
//! at the deadline (or at a second request), and return from `run()`.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Config};
use util::{client, next_close, random_bytes, round_trip, Server, WAIT};

#[test]
fn graceful_shutdown_delivers_the_data_in_flight_then_run_returns() {
    let server = Server::echo(Config::default());
    let mut stream = client(server.addr);
    // More than loopback socket buffers can hold, so the echo really backs up.
    let data = random_bytes(5, 32 * 1024 * 1024);
    let mut writer = stream.try_clone().unwrap();
    let sent = data.clone();
    // Send without reading: the server's echo backs up and it stops reading.
    let sender = std::thread::spawn(move || {
        let result = writer.write_all(&sent);
        let _ = writer.shutdown(Shutdown::Write);
        result
    });
    let mut first = [0; 1000];
    stream.read_exact(&mut first).unwrap(); // data is in flight

    server.shutdown.shutdown();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let received = [&first[..], &rest].concat();
    sender.join().unwrap().ok(); // the server may stop reading before all is sent
    drop(stream);
    let stats = server.wait();

    assert_eq!(
        received.len() as u64,
        stats.bytes_out,
        "every byte the server wrote was delivered"
    );
    assert!(received == data[..received.len()], "and in order");
    assert!(
        stats.bytes_out < data.len() as u64,
        "the shutdown came mid-transfer: {stats:?}"
    );
    assert_eq!(stats.closed.shutdown, 1, "{stats:?}");
}

#[test]
fn a_second_shutdown_request_aborts_at_once() {
    let config = Config::default()
        .shutdown_timeout(Duration::from_secs(600))
        .close_timeout(Duration::from_secs(600));
    let server = Server::echo(config);
    // This client never closes, so a graceful shutdown would wait for it.
    let mut stubborn = client(server.addr);
    assert_eq!(round_trip(&mut stubborn, b"hi"), b"hi");
    server.shutdown.shutdown();
    server.shutdown.shutdown();
    let stats = server.wait(); // bounded by WAIT, far below the 600 s deadline
    assert_eq!(stats.closed.shutdown, 1);
    let mut rest = Vec::new();
    let _ = stubborn.read_to_end(&mut rest); // reset or EOF, never a hang
}

#[test]
fn a_graceful_request_after_a_shutdown_lets_the_drain_finish_instead_of_aborting() {
    let config = Config::default()
        .shutdown_timeout(Duration::from_secs(600))
        .close_timeout(Duration::from_secs(600));
    let (server, events) = Server::reporting_echo(config);
    let mut client = client(server.addr);
    assert_eq!(round_trip(&mut client, b"hi"), b"hi");
    server.shutdown.shutdown(); // SIGTERM, say: the drain starts
    server.shutdown.shutdown_gracefully(); // standard input closed: not a second request
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap(); // the server's FIN: it is draining
    drop(client);
    assert_eq!(next_close(&events), CloseReason::Shutdown, "not aborted");
    let stats = server.wait();
    assert_eq!(stats.closed.shutdown, 1);
}

#[test]
fn shutdown_stops_accepting_while_connections_finish() {
    let config = Config::default().shutdown_timeout(Duration::from_secs(600));
    let server = Server::echo(config);
    let mut lingering = client(server.addr);
    assert_eq!(round_trip(&mut lingering, b"hi"), b"hi");
    server.shutdown.shutdown();

    // The listener closes while the old connection is still being finished.
    let deadline = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(server.addr) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            _ => assert!(Instant::now() < deadline, "still accepting"),
        }
        std::thread::yield_now();
    }
    let mut rest = Vec::new();
    lingering.read_to_end(&mut rest).unwrap(); // the server closes it gracefully: EOF
    drop(lingering);
    let stats = server.wait();
    // A probe may have connected just before the listener closed; it was served and closed
    // like any other connection.
    assert!(stats.closed.shutdown >= 1);
    assert_eq!(stats.closed.total(), stats.accepted);
    assert_eq!(stats.open_connections, 0);
}

#[test]
fn run_returns_at_once_when_there_is_nothing_to_finish() {
    let server = Server::echo(Config::default());
    let started = Instant::now();
    server.stop();
    assert!(started.elapsed() < WAIT);
}

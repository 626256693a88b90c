//! Running out of file descriptors must neither spin the loop nor stall the listener.
//!
//! With edge-triggered readiness, `accept` failing with `EMFILE` leaves the connection in the
//! kernel's queue: the listener stays readable but no new edge will come. A loop that retries
//! at once spins at 100% CPU; one that waits for an edge may wait forever. The reactor backs
//! off with a timer and retries. This file is its own test binary (its own process) because
//! it lowers the process's descriptor limit.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{Config, ListenOptions, Reactor};
use util::{client, init_logging, loopback, round_trip, Echo, WAIT};

/// The descriptor limit that leaves exactly `spare` descriptors free: new descriptors take
/// the lowest free numbers below the limit, so count the numbers in use below it.
fn limit_leaving(spare: usize) -> usize {
    let listing = std::fs::read_dir("/proc/self/fd").unwrap();
    let mut open: Vec<usize> = listing
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    // The listing's own descriptor was among them, and is closed now.
    open.sort_unstable();
    let listing_fd = open
        .iter()
        .position(|&fd| std::fs::metadata(format!("/proc/self/fd/{fd}")).is_err());
    if let Some(index) = listing_fd {
        open.remove(index);
    }
    (0..)
        .find(|&limit| limit - open.iter().filter(|&&fd| fd < limit).count() == spare)
        .unwrap()
}

/// Sets this process's soft descriptor limit (the hard limit stays), with util-linux's
/// `prlimit`, so the test needs no `unsafe`.
fn set_soft_fd_limit(limit: usize) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={limit}:"))
        .status()
        .expect("prlimit (util-linux) runs");
    assert!(status.success(), "prlimit failed");
}

fn echoes(stream: &mut TcpStream) -> bool {
    round_trip(stream, b"?") == b"?"
}

#[test]
fn running_out_of_descriptors_backs_off_without_spinning_and_recovers() {
    init_logging();
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel();
    let server = std::thread::spawn(move || {
        let config = Config::default().accept_backoff(Duration::from_millis(20));
        let mut reactor = Reactor::with_config(config).unwrap();
        let addr = reactor
            .listen(loopback(), ListenOptions::default(), |_| Some(Echo))
            .unwrap()
            .local_addr()
            .unwrap();
        addr_tx.send((addr, reactor.shutdown_handle())).unwrap();
        go_rx.recv().unwrap();
        reactor.run().unwrap();
        done_tx.send(reactor.stats()).unwrap();
    });
    let (addr, shutdown) = addr_rx.recv_timeout(WAIT).unwrap();

    // 30 clients complete their handshakes in the kernel's backlog before the server runs...
    let mut clients: Vec<TcpStream> = (0..30).map(|_| client(addr)).collect();
    // ...then the process may open only 5 more descriptors: the server accepts 5 and hits
    // EMFILE with 25 connections still queued. (A margin of 1 for prlimit's own pipe is not
    // needed: it runs in a child process.)
    let spare = 5;
    let original = rlimit_soft();
    set_soft_fd_limit(limit_leaving(spare));
    go_tx.send(()).unwrap();

    for stream in clients.iter_mut().take(spare) {
        assert!(echoes(stream), "the first clients are served");
    }
    // The 6th waits in the backlog. (Reading it with a short timeout is the only way to see
    // that it is *not* served; the loop meanwhile backs off every 20 ms.)
    clients[spare].write_all(b"?").unwrap();
    clients[spare]
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        clients[spare].read(&mut [0; 1]).is_err(),
        "served beyond the limit"
    );
    clients[spare].set_read_timeout(Some(WAIT)).unwrap();

    // Clients leave: their descriptors free up and the queued ones are accepted.
    clients.drain(..spare);
    let mut reply = [0; 1];
    clients[0].read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"?", "served once descriptors freed");
    for stream in clients.iter_mut().skip(1).take(spare - 1) {
        assert!(echoes(stream));
    }

    set_soft_fd_limit(original);
    for stream in clients.iter_mut() {
        assert!(
            echoes(stream),
            "everyone is served once the limit is lifted"
        );
    }
    drop(clients);
    shutdown.shutdown();
    let stats = done_rx.recv_timeout(WAIT).expect("run() returned");
    server.join().unwrap();
    assert_eq!(stats.accepted, 30);
    assert!(stats.accept_backoffs >= 1, "{stats:?}");
    // Spinning would turn the loop millions of times while full; backing off every 20 ms
    // for well under a minute costs at most a few thousand turns, traffic included.
    assert!(stats.turns < 5_000, "the loop spun: {stats:?}");
}

fn rlimit_soft() -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

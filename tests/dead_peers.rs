//! Dead peers found: a peer that vanishes without a FIN or a RST (its host crashed, its NAT
//! entry expired) is found by TCP keepalive when the connection is idle, and by
//! `TCP_USER_TIMEOUT` when data is in flight; its connection closes with
//! `CloseReason::PeerTimedOut`, and a connection on loopback is untouched and still served.
//!
//! The peer is a Python client in a network namespace of its own, joined to ours by a veth
//! pair (`util::netns`); it vanishes when an nftables table in its namespace drops every
//! packet. Needs root, iproute2, nftables and python3; skipped with a note without them.

mod util;

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use mio_reactor::{
    CloseReason, Config, ConnId, DeadPeerDetection, Keepalive, ListenOptions, LoopHandle,
};
use util::netns::{next_line, VethPeer};
use util::{client, loopback, round_trip, Echo, Reporting, Seen, Server, WAIT};

/// Added to every expected detection time: a loaded 2-core machine may run the reactor's
/// thread late, but not by this much.
const SLACK: Duration = Duration::from_secs(10);

/// The client in the namespace: connects, has one line echoed, says so, then does nothing
/// until its standard input closes.
const PEER: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"ping\n")
echoed = b""
while len(echoed) < 5:
    chunk = s.recv(5 - len(echoed))
    if not chunk:
        break
    echoed += chunk
print("echoed" if echoed == b"ping\n" else "not echoed: %r" % echoed, flush=True)
sys.stdin.read()
"#;

/// An echo server listening on the veth pair's host end (with `veth_options`) and on
/// loopback, whose connections report their open and close.
struct Setup {
    server: Server,
    events: Receiver<Seen>,
    veth_addr: SocketAddr,
    loop_handle: LoopHandle,
}

fn serve(peer: &VethPeer, config: Config, veth_options: ListenOptions) -> Setup {
    let (events_tx, events) = mpsc::channel();
    let (veth_tx, veth_rx) = mpsc::channel();
    let host_ip = IpAddr::V4(peer.host_ip);
    let server = Server::start(config, move |reactor| {
        let reporting = move |events: mpsc::Sender<Seen>| {
            move |_: &_| {
                Some(Reporting {
                    inner: Echo,
                    events: events.clone(),
                })
            }
        };
        let veth = SocketAddr::new(host_ip, 0);
        let veth = reactor.listen(veth, veth_options, reporting(events_tx.clone()))?;
        veth_tx
            .send((veth.local_addr()?, reactor.handle()))
            .expect("test alive");
        reactor.listen(loopback(), ListenOptions::default(), reporting(events_tx))
    });
    let (veth_addr, loop_handle) = veth_rx.recv_timeout(WAIT).expect("listening");
    Setup {
        server,
        events,
        veth_addr,
        loop_handle,
    }
}

/// The id of the next connection that opens.
fn next_open(events: &Receiver<Seen>) -> ConnId {
    match events
        .recv_timeout(WAIT)
        .expect("a connection opened in time")
    {
        Seen::Open(id) => id,
        other => panic!("expected an open, got {other:?}"),
    }
}

/// A connection from loopback, echoed once; its id.
fn loopback_client(setup: &Setup) -> (TcpStream, ConnId) {
    let mut stream = client(setup.server.addr);
    assert_eq!(round_trip(&mut stream, b"hi"), b"hi");
    (stream, next_open(&setup.events))
}

/// A connection from the peer in the namespace, echoed once; its id.
fn peer_client(setup: &Setup, peer: &mut VethPeer) -> ConnId {
    let (ip, port) = (setup.veth_addr.ip().to_string(), setup.veth_addr.port());
    let stdout = peer.spawn("python3", &["-c", PEER, &ip, &port.to_string()]);
    assert_eq!(next_line(stdout, WAIT).trim(), "echoed");
    next_open(&setup.events)
}

/// Waits at most `budget` for `id` to close, the next thing any connection does; its reason
/// and how long it took.
fn wait_for_close(
    events: &Receiver<Seen>,
    id: ConnId,
    budget: Duration,
) -> (CloseReason, Duration) {
    let start = Instant::now();
    match events.recv_timeout(budget) {
        Ok(Seen::Closed(closed, reason)) if closed == id => (reason, start.elapsed()),
        Ok(other) => panic!("only {id} was to close, but: {other:?}"),
        Err(_) => panic!("{id} still open after {budget:?}: its peer was never found dead"),
    }
}

/// The loopback connection is still open and served.
fn assert_untouched(stream: &mut TcpStream, events: &Receiver<Seen>) {
    assert_eq!(round_trip(stream, b"still here"), b"still here");
    let seen: Vec<Seen> = events.try_iter().collect();
    assert!(
        seen.is_empty(),
        "the loopback connection was disturbed: {seen:?}"
    );
}

fn python3_found() -> bool {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if !found {
        eprintln!("note: python3 not found: skipping");
    }
    found
}

#[test]
fn keepalive_finds_an_idle_peer_that_vanished() {
    if !python3_found() {
        return;
    }
    let Some(mut peer) = VethPeer::create() else {
        return;
    };
    // Probes after 1 s of silence, then 1 s apart; 2 unanswered probes: dead after ~3 s.
    let second = Duration::from_secs(1);
    let keepalive = Keepalive::new(second, second, 2);
    let detection = DeadPeerDetection::off().keepalive(Some(keepalive));
    // Reactor-wide: the loopback connection is probed too, and answers.
    let config = Config::default().dead_peer_detection(detection);
    let setup = serve(&peer, config, ListenOptions::default());
    let (mut alive, _) = loopback_client(&setup);
    let vanishing = peer_client(&setup, &mut peer);

    peer.vanish();
    let budget = keepalive.time_to_find_dead_peer() + SLACK;
    let (reason, after) = wait_for_close(&setup.events, vanishing, budget);

    eprintln!("found dead {after:?} after it vanished");
    assert_eq!(reason, CloseReason::PeerTimedOut, "after {after:?}");
    assert_untouched(&mut alive, &setup.events);
    drop(alive); // the shutdown then has nothing to wait for
    assert_eq!(setup.server.stop().closed.peer_timed_out, 1);
}

#[test]
fn user_timeout_finds_a_peer_that_vanished_with_data_in_flight() {
    if !python3_found() {
        return;
    }
    let Some(mut peer) = VethPeer::create() else {
        return;
    };
    // No keepalive: only the user timeout can end it (the kernel alone would retransmit
    // for ~15 minutes). A listen option: the loopback listen keeps the reactor's defaults.
    let user_timeout = Duration::from_millis(1500);
    let detection = DeadPeerDetection::off().user_timeout(Some(user_timeout));
    let veth_options = ListenOptions::default().dead_peer_detection(detection);
    let setup = serve(&peer, Config::default(), veth_options);
    let (mut alive, _) = loopback_client(&setup);
    let vanishing = peer_client(&setup, &mut peer);

    peer.vanish();
    // Data the peer will never acknowledge: the kernel retransmits it until the timeout.
    let sent = setup
        .loop_handle
        .post(move |lc| lc.write(vanishing, &[b'x'; 4096]).expect("open"));
    assert!(sent.is_ok(), "posted");
    let (reason, after) = wait_for_close(&setup.events, vanishing, user_timeout + SLACK);

    eprintln!("found dead {after:?} after it vanished");
    assert_eq!(reason, CloseReason::PeerTimedOut, "after {after:?}");
    assert_untouched(&mut alive, &setup.events);
    drop(alive); // the shutdown then has nothing to wait for
    assert_eq!(setup.server.stop().closed.peer_timed_out, 1);
}

//! Sends that block: when a UDP socket's send buffer is full (`WouldBlock`), the queue waits
//! for the socket's writable edge and then leaves, whole and in order. A socket is
//! registered for writable readiness only while its sends are blocked (`Udp::write_interest`
//! in src/udp.rs), so this is the path that must not lose its wake-up.
//!
//! On loopback a UDP send never blocks (the loopback device frees the datagram's memory at
//! once), so the datagrams go to a peer in a network namespace over a veth pair whose end on
//! this side is rate-limited (`tbf`): the queue in front of that slow link is charged to the
//! socket's send buffer. Needs root, iproute2 (`ip`, `tc`) and python3; skipped with a note
//! without them.

mod util;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::ChildStdout;
use std::sync::mpsc::{self, Receiver};

use mio_reactor::{Config, DatagramContext, DatagramHandler, Reactor};
use util::netns::VethPeer;
use util::{init_logging, turn_until, WAIT};

/// Datagrams sent, and their size: 200 KB through a link of 8 Mbit/s takes 0.2 s, and the
/// smallest send buffer the kernel allows (4,608 bytes) holds about two of them.
const COUNT: usize = 200;
const SIZE: usize = 1_000;

/// The receiver in the namespace: says its port, then the sequence numbers it received, in
/// order, once it has `COUNT` or heard nothing for 10 s.
const PEER: &str = r#"
import socket, sys
count = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(10)
seen = []
try:
    while len(seen) < count:
        data = s.recv(65536)
        seen.append(int.from_bytes(data[:4], "big"))
except socket.timeout:
    pass
print(" ".join(map(str, seen)), flush=True)
sys.stdin.read()
"#;

/// Queues `COUNT` numbered datagrams to `to` when it opens, from a socket with the smallest
/// send buffer.
struct Burst {
    to: SocketAddr,
}

impl DatagramHandler for Burst {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        ctx.set_send_buffer_size(1).expect("SO_SNDBUF");
        for n in 0..COUNT as u32 {
            let mut datagram = vec![0; SIZE];
            datagram[..4].copy_from_slice(&n.to_be_bytes());
            ctx.send_to(&datagram, self.to).expect("queued");
        }
    }

    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
}

/// The lines `stdout` prints, as they come.
fn lines(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn a_queue_blocked_by_a_full_send_buffer_leaves_whole_and_in_order_once_writable() {
    init_logging();
    let Some(mut peer) = VethPeer::create() else {
        return;
    };
    peer.limit_rate("8mbit");
    let output = lines(peer.spawn("python3", &["-c", PEER, &COUNT.to_string()]));
    let port: u16 = output
        .recv_timeout(WAIT)
        .expect("the port")
        .parse()
        .unwrap();
    let to = SocketAddr::new(IpAddr::V4(peer.peer_ip), port);

    let config = Config::default().max_queued_datagrams(COUNT);
    let mut reactor = Reactor::with_config(config).unwrap();
    let bind = format!("udp:{}:0", peer.host_ip);
    reactor.bind_udp(bind.as_str(), Burst { to }).unwrap();
    turn_until(&mut reactor, |r| r.stats().datagrams_out == COUNT as u64);

    let received = output.recv_timeout(WAIT).expect("what the peer received");
    let expected: Vec<String> = (0..COUNT).map(|n| n.to_string()).collect();
    assert_eq!(received, expected.join(" "));
    let stats = reactor.stats();
    assert_eq!(
        (stats.datagrams_dropped, stats.datagram_send_errors),
        (0, 0)
    );
}

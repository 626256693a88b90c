//! Datagrams the kernel drops because a socket's receive buffer is full are counted
//! (`SO_RXQ_OVFL`, `socket(7)`): each datagram carries the socket's drop count as it stood
//! when the datagram was queued, so the drops of a flood are learned from the first
//! datagram queued after it.
#![cfg(target_os = "linux")]

mod util;

use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;

use mio_reactor::{DatagramContext, DatagramHandler, Reactor};
use util::{init_logging, turn_until};

const PROBE: &[u8] = b"probe";

/// Sizes its receive buffer on open (if asked); notes when the probe arrives and the
/// socket's own drop count then.
struct Watch {
    recv_buffer: Option<usize>,
    probe_seen: Rc<Cell<bool>>,
    socket_drops: Rc<Cell<u64>>,
}

impl DatagramHandler for Watch {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        if let Some(bytes) = self.recv_buffer {
            ctx.set_recv_buffer_size(bytes).unwrap();
        }
    }

    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], _: SocketAddr) {
        if data == PROBE {
            self.probe_seen.set(true);
            self.socket_drops
                .set(ctx.socket_stats().unwrap().kernel_drops);
        }
    }
}

struct Outcome {
    sent: u64,
    received: u64,
    overflows: u64,
    socket_drops: u64,
}

/// Sends `flood` datagrams of 100 bytes before the reactor turns, lets it drain them, then
/// sends a probe and turns until the probe is handled.
fn flood_then_probe(recv_buffer: Option<usize>, flood: u64) -> Outcome {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (probe_seen, socket_drops) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let watch = Watch {
        recv_buffer,
        probe_seen: probe_seen.clone(),
        socket_drops: socket_drops.clone(),
    };
    let addr = reactor.bind_udp("udp:127.0.0.1:0", watch).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..flood {
        client.send_to(&[7; 100], addr).unwrap();
    }
    // What the buffer held is read in one dispatch (a few datagrams, well within the
    // receive budget); the drops are not known yet: no datagram was queued after them.
    turn_until(&mut reactor, |r| r.stats().datagrams_in > 0);
    assert_eq!(reactor.stats().datagram_receive_overflows, 0);

    client.send_to(PROBE, addr).unwrap();
    turn_until(&mut reactor, |_| probe_seen.get());

    let stats = reactor.stats();
    Outcome {
        sent: flood + 1,
        received: stats.datagrams_in,
        overflows: stats.datagram_receive_overflows,
        socket_drops: socket_drops.get(),
    }
}

#[test]
fn datagrams_dropped_on_a_full_receive_buffer_are_counted_once_a_later_one_arrives() {
    // The smallest buffer the kernel allows (asking for 1 byte gets its minimum, ~4.6 KB):
    // a few datagrams fit, the rest of the flood is dropped.
    let outcome = flood_then_probe(Some(1), 1_000);

    assert!(outcome.received < outcome.sent, "nothing was dropped");
    assert_eq!(outcome.overflows, outcome.sent - outcome.received);
    assert_eq!(outcome.socket_drops, outcome.overflows);
}

#[test]
fn without_a_flood_no_drop_is_counted() {
    let outcome = flood_then_probe(None, 10);

    assert_eq!(outcome.received, outcome.sent);
    assert_eq!((outcome.overflows, outcome.socket_drops), (0, 0));
}

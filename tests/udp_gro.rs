//! Generic receive offload (`UDP_GRO`, Linux 5.0): a message that holds many datagrams of one
//! sender is split back into them, each handed to the handler with its sender, in order.
//! On loopback, a message sent with `UDP_SEGMENT` (GSO) reaches a socket with GRO on whole,
//! as the kernel's GRO engine would coalesce datagrams arriving from a network card.
#![cfg(target_os = "linux")]

mod util;

use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;

use mio_reactor::{Config, DatagramContext, DatagramHandler, Reactor};
use util::{init_logging, random_bytes, send_segmented, send_segmented_from, turn_until};

/// Datagrams with their senders, in order.
type Datagrams = Vec<(Vec<u8>, SocketAddr)>;

/// Keeps every datagram it receives, with its sender, in order.
struct Keep {
    received: Rc<RefCell<Datagrams>>,
}

impl DatagramHandler for Keep {
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        self.received.borrow_mut().push((data.to_vec(), from));
    }
}

/// Receives one GSO message of ten 1,000-byte datagrams and one of 500 bytes; returns what
/// the handler saw, the datagrams expected, and the reactor's stats.
fn receive_one_gso_message(config: Config) -> (Datagrams, Datagrams, mio_reactor::Stats) {
    init_logging();
    let mut reactor = Reactor::with_config(config).unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let keep = Keep {
        received: received.clone(),
    };
    let addr = reactor.bind_udp("udp:127.0.0.1:0", keep).unwrap();
    let payload = random_bytes(22, 10 * 1_000 + 500);
    let sender = send_segmented(addr, &payload, 1_000);

    turn_until(&mut reactor, |r| r.stats().datagrams_in >= 11);

    let expected = payload
        .chunks(1_000)
        .map(|datagram| (datagram.to_vec(), sender))
        .collect();
    let received = received.borrow().clone();
    (received, expected, reactor.stats())
}

#[test]
fn a_coalesced_message_is_handed_over_as_its_datagrams_in_order_from_one_receive_call() {
    let (received, expected, stats) = receive_one_gso_message(Config::default());

    assert_eq!(received.len(), 11);
    assert_eq!(received, expected);
    assert_eq!(stats.datagrams_in, 11);
    assert_eq!(stats.bytes_in, 10_500);
    assert_eq!(stats.datagram_receive_calls, 1, "one message, one recvmmsg");
}

#[test]
fn with_batches_off_gro_stays_off_and_the_kernel_splits_the_message() {
    // recvfrom cannot split a coalesced message: GRO must be off, so the kernel delivers
    // the eleven datagrams one by one, one call each.
    let (received, expected, stats) =
        receive_one_gso_message(Config::default().datagram_batches(false));

    assert_eq!(received, expected);
    assert_eq!(stats.datagram_receive_calls, 11);
}

/// Echoes each datagram to its sender.
struct Echo;

impl DatagramHandler for Echo {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        ctx.send_to(data, from).unwrap();
    }
}

#[test]
fn the_replies_to_a_coalesced_message_larger_than_the_send_queue_all_leave() {
    // 60 datagrams in one message, against a queue of 40: the replies must leave in
    // batches as they are made, not all after the message.
    init_logging();
    let config = Config::default().max_queued_datagrams(40);
    let mut reactor = Reactor::with_config(config).unwrap();
    let addr = reactor.bind_udp("udp:127.0.0.1:0", Echo).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    let payload = random_bytes(60, 60 * 1_000);
    send_segmented_from(&client, addr, &payload, 1_000);

    turn_until(&mut reactor, |r| {
        r.stats().datagrams_in == 60 && r.stats().datagrams_out + r.stats().datagrams_dropped == 60
    });

    let stats = reactor.stats();
    assert_eq!(stats.datagram_receive_calls, 1, "not one coalesced message");
    assert_eq!((stats.datagrams_out, stats.datagrams_dropped), (60, 0));
}

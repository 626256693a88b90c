//! Datagrams received in batches (`recvmmsg`): many per system call, each handed to the
//! handler whole, within the receive budget that keeps other sockets served, and one
//! `recvfrom` per datagram when batches are off (as after the kernel refused them).

mod util;

use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;

use mio_reactor::{Config, DatagramContext, DatagramHandler, Reactor};
use util::{init_logging, random_bytes, turn_until};

/// Keeps every datagram it receives, in order.
struct Keep {
    received: Rc<RefCell<Vec<Vec<u8>>>>,
}

impl DatagramHandler for Keep {
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, data: &[u8], _: SocketAddr) {
        self.received.borrow_mut().push(data.to_vec());
    }
}

/// A reactor with one `Keep` socket, and what it keeps.
fn keeping_reactor(config: Config) -> (Reactor, SocketAddr, Rc<RefCell<Vec<Vec<u8>>>>) {
    init_logging();
    let mut reactor = Reactor::with_config(config).unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let keep = Keep {
        received: received.clone(),
    };
    let addr = reactor.bind_udp("udp:127.0.0.1:0", keep).unwrap();
    (reactor, addr, received)
}

/// Sends `datagrams` to `addr`, all before the reactor turns: they wait in the kernel.
fn send_all(addr: SocketAddr, datagrams: &[Vec<u8>]) {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in datagrams {
        client.send_to(datagram, addr).unwrap();
    }
}

#[test]
fn datagrams_waiting_together_are_received_in_fewer_calls_than_datagrams() {
    let (mut reactor, addr, received) = keeping_reactor(Config::default());
    let datagrams: Vec<Vec<u8>> = (0..100u32).map(|n| n.to_be_bytes().to_vec()).collect();
    send_all(addr, &datagrams);

    turn_until(&mut reactor, |r| r.stats().datagrams_in == 100);

    assert_eq!(*received.borrow(), datagrams);
    let calls = reactor.stats().datagram_receive_calls;
    assert!(calls < 100, "{calls} calls for 100 datagrams");
}

#[test]
fn datagrams_of_the_largest_udp_payload_arrive_whole_inside_a_batch() {
    let (mut reactor, addr, received) = keeping_reactor(Config::default());
    // Two of the largest, between small ones: as many as the kernel's default receive buffer
    // (212,992 bytes) keeps at once.
    let datagrams: Vec<Vec<u8>> = [65_507, 1, 65_507, 2, 3]
        .iter()
        .enumerate()
        .map(|(seed, &len)| random_bytes(seed as u64, len))
        .collect();
    send_all(addr, &datagrams);

    turn_until(&mut reactor, |r| r.stats().datagrams_in == 5);

    assert_eq!(*received.borrow(), datagrams);
    assert!(reactor.stats().datagram_receive_calls < 5, "not one batch");
}

#[test]
fn with_batches_off_each_datagram_is_its_own_receive_call_and_none_is_lost() {
    let (mut reactor, addr, received) = keeping_reactor(Config::default().datagram_batches(false));
    let datagrams: Vec<Vec<u8>> = [1, 65_507, 2, 3, 100]
        .iter()
        .enumerate()
        .map(|(seed, &len)| random_bytes(seed as u64, len))
        .collect();
    send_all(addr, &datagrams);

    turn_until(&mut reactor, |r| r.stats().datagrams_in == 5);

    assert_eq!(*received.borrow(), datagrams);
    assert_eq!(reactor.stats().datagram_receive_calls, 5);
}

/// Which socket received each datagram, in the order the reactor handed them out.
type Log = Rc<RefCell<Vec<char>>>;

/// Sends each datagram it receives back to itself until it has received `total`: its socket
/// stays readable, with a few datagrams waiting, for `total` datagrams in a row.
struct SelfFeeding {
    log: Log,
    seen: usize,
    total: usize,
}

impl DatagramHandler for SelfFeeding {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], _: SocketAddr) {
        self.log.borrow_mut().push('A');
        self.seen += 1;
        if self.seen + SEEDS <= self.total {
            let me = ctx.local_addr().unwrap();
            ctx.send_to(data, me).unwrap();
        }
    }
}

/// Logs each datagram it receives.
struct Logging(Log);

impl DatagramHandler for Logging {
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {
        self.0.borrow_mut().push('B');
    }
}

/// Datagrams that start the self-feeding socket.
const SEEDS: usize = 8;

#[test]
fn a_socket_that_stays_readable_yields_to_another_after_its_budget_and_loses_nothing() {
    init_logging();
    let total = 2_000; // far more than one dispatch's budget
    let log = Log::default();
    let mut reactor = Reactor::new().unwrap();
    let busy = SelfFeeding {
        log: log.clone(),
        seen: 0,
        total,
    };
    let busy = reactor.bind_udp("udp:127.0.0.1:0", busy).unwrap();
    let other = reactor
        .bind_udp("udp:127.0.0.1:0", Logging(log.clone()))
        .unwrap();
    send_all(busy, &vec![b"seed".to_vec(); SEEDS]);
    send_all(other, &[b"other".to_vec()]);

    turn_until(&mut reactor, |r| r.stats().datagrams_in == total as u64 + 1);

    let log = log.borrow();
    let other_turn = log.iter().position(|&c| c == 'B').unwrap();
    assert!(
        other_turn < total,
        "the other socket waited for all {total} of the busy one's datagrams"
    );
    assert_eq!(log.iter().filter(|&&c| c == 'A').count(), total);
}

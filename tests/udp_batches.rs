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

/// Datagrams of these lengths, of random bytes (a seed each).
fn random_datagrams(lens: &[usize]) -> Vec<Vec<u8>> {
    lens.iter()
        .enumerate()
        .map(|(seed, &len)| random_bytes(seed as u64, len))
        .collect()
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
    let datagrams = random_datagrams(&[65_507, 1, 65_507, 2, 3]);
    send_all(addr, &datagrams);

    turn_until(&mut reactor, |r| r.stats().datagrams_in == 5);

    assert_eq!(*received.borrow(), datagrams);
    assert!(reactor.stats().datagram_receive_calls < 5, "not one batch");
}

#[test]
fn with_batches_off_each_datagram_is_its_own_receive_call_and_none_is_lost() {
    let (mut reactor, addr, received) = keeping_reactor(Config::default().datagram_batches(false));
    let datagrams = random_datagrams(&[1, 65_507, 2, 3, 100]);
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

/// Echoes each datagram, and counts what became of its replies.
struct Echo;

impl DatagramHandler for Echo {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        ctx.send_to(data, from).unwrap();
    }
}

/// Sends `datagrams` to a reactor's `Echo` before it turns, and reads the echoes.
fn echo_all(config: Config, datagrams: &[Vec<u8>]) -> (Vec<Vec<u8>>, mio_reactor::Stats) {
    init_logging();
    let mut reactor = Reactor::with_config(config).unwrap();
    let addr = reactor.bind_udp("udp:127.0.0.1:0", Echo).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(util::WAIT)).unwrap();
    for datagram in datagrams {
        client.send_to(datagram, addr).unwrap();
    }
    let count = datagrams.len() as u64;
    turn_until(&mut reactor, |r| r.stats().datagrams_out == count);
    let mut buf = vec![0; 70_000];
    let echoes = datagrams
        .iter()
        .map(|_| {
            let len = client.recv(&mut buf).unwrap();
            buf[..len].to_vec()
        })
        .collect();
    (echoes, reactor.stats())
}

#[test]
fn the_replies_to_a_batch_leave_in_fewer_calls_than_datagrams() {
    let datagrams: Vec<Vec<u8>> = (0..100u32).map(|n| n.to_be_bytes().to_vec()).collect();
    let (echoes, stats) = echo_all(Config::default(), &datagrams);
    assert_eq!(echoes, datagrams);
    assert!(stats.datagram_send_calls < 100, "{stats:?}");
}

#[test]
fn the_replies_to_a_whole_receive_budget_fit_the_default_send_queue() {
    // More replies than the send queue holds (64), fewer than the receive budget (256).
    let datagrams: Vec<Vec<u8>> = (0..200u32).map(|n| n.to_be_bytes().to_vec()).collect();
    let (echoes, stats) = echo_all(Config::default(), &datagrams);
    assert_eq!(echoes, datagrams);
    assert_eq!(stats.datagrams_dropped, 0);
}

/// On any datagram, sends five replies to its sender.
struct FiveReplies;

impl DatagramHandler for FiveReplies {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, _: &[u8], from: SocketAddr) {
        for n in 0..5u8 {
            ctx.send_to(&[n], from).unwrap();
        }
    }
}

#[test]
fn with_batches_off_each_reply_is_its_own_send_call() {
    init_logging();
    let mut reactor = Reactor::with_config(Config::default().datagram_batches(false)).unwrap();
    let addr = reactor.bind_udp("udp:127.0.0.1:0", FiveReplies).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(util::WAIT)).unwrap();
    client.send_to(b"go", addr).unwrap();

    turn_until(&mut reactor, |r| r.stats().datagrams_out == 5);

    for n in 0..5u8 {
        let mut buf = [0; 8];
        let len = client.recv(&mut buf).unwrap();
        assert_eq!(buf[..len], [n]);
    }
    assert_eq!(reactor.stats().datagram_send_calls, 5);
}

/// On any datagram, sends five to its sender, the third of them to port 0, which Linux
/// refuses (`EINVAL`) when it is sent.
struct OneBadDestination;

impl DatagramHandler for OneBadDestination {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, _: &[u8], from: SocketAddr) {
        let nowhere = SocketAddr::from(([127, 0, 0, 1], 0));
        for (n, to) in [from, from, nowhere, from, from].into_iter().enumerate() {
            ctx.send_to(&[n as u8], to).unwrap();
        }
    }
}

#[test]
fn a_datagram_the_kernel_refuses_in_a_send_batch_is_counted_and_the_rest_still_go() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .bind_udp("udp:127.0.0.1:0", OneBadDestination)
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(util::WAIT)).unwrap();
    client.send_to(b"go", addr).unwrap();

    turn_until(&mut reactor, |r| r.stats().datagram_send_errors == 1);

    let mut received = Vec::new();
    for _ in 0..4 {
        let mut buf = [0; 8];
        let len = client.recv(&mut buf).unwrap();
        received.push(buf[..len].to_vec());
    }
    assert_eq!(received, [[0], [1], [3], [4]]);
    let stats = reactor.stats();
    assert_eq!((stats.datagrams_out, stats.datagrams_dropped), (4, 1));
    assert!(stats.datagram_send_calls < 4, "batches stopped: {stats:?}");
}

/// On "ping N" (N > 0), sends "ping N-1" to itself: each arrives after the batch that held
/// the one before, a batch shorter than asked for, after which the socket is not read again
/// until its next readiness event.
struct Countdown;

impl DatagramHandler for Countdown {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], _: SocketAddr) {
        let n = data[0];
        if n > 0 {
            let me = ctx.local_addr().unwrap();
            ctx.send_to(&[n - 1], me).unwrap();
        }
    }
}

#[test]
fn a_datagram_arriving_after_a_short_batch_raises_a_new_event_and_is_received() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor.bind_udp("udp:127.0.0.1:0", Countdown).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(&[20], addr).unwrap();

    // Would stop at the deadline if an arrival after a short batch raised no event.
    turn_until(&mut reactor, |r| r.stats().datagrams_in == 21);

    let stats = reactor.stats();
    assert_eq!(stats.datagrams_out, 20);
    assert!(stats.datagram_receive_calls <= 21);
}

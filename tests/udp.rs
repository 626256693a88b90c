//! Datagram sockets in the same loop: whole datagrams up to the UDP maximum, on IPv4 and
//! IPv6, and a bounded send queue whose overflow is dropped and counted, never fatal. A UDP
//! socket's bytes count in the reactor's byte totals, and its records name it by its `UdpId`.

mod util;

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio_reactor::{
    Config, DatagramContext, DatagramHandler, Endpoint, Reactor, Record, SendOutcome, Stats,
    TimerId, TimerKind, TimerTarget, UdpId,
};
use util::{init_logging, random_bytes, turn_until, WAIT};

/// The largest UDP payload over IPv4.
const MAX_PAYLOAD: usize = 65_507;

struct UdpEcho;

impl DatagramHandler for UdpEcho {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        ctx.send_to(data, from).expect("send");
    }
}

/// Runs a reactor with one UDP socket on its own thread until `shutdown`.
fn serve_udp<H: DatagramHandler + Send>(
    addr: &str,
    config: Config,
    handler: H,
) -> (
    SocketAddr,
    mio_reactor::ShutdownHandle,
    mpsc::Receiver<Stats>,
) {
    init_logging();
    let addr: SocketAddr = addr.parse().unwrap();
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reactor = Reactor::with_config(config).unwrap();
        let bound = reactor.bind_udp(Endpoint::Udp(addr), handler).unwrap();
        ready_tx.send((bound, reactor.shutdown_handle())).unwrap();
        reactor.run().unwrap();
        done_tx.send(reactor.stats()).unwrap();
    });
    let (bound, shutdown) = ready.recv_timeout(WAIT).unwrap();
    (bound, shutdown, done)
}

fn echo_many_sizes(server: &str, client: &str) {
    let (addr, shutdown, done) = serve_udp(server, Config::default(), UdpEcho);
    let socket = UdpSocket::bind(client).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = vec![0; 70_000];
    let sizes = [
        0,
        1,
        2,
        100,
        1_472,
        1_500,
        9_000,
        32_768,
        65_000,
        MAX_PAYLOAD,
    ];
    let mut sent = 0;
    for round in 0..20u64 {
        for &size in &sizes {
            let datagram = random_bytes(round * 100 + size as u64, size);
            socket.send_to(&datagram, addr).unwrap();
            // One at a time: loopback drops what overflows the receive buffer, and this
            // test is about integrity, not loss.
            let (len, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr);
            assert_eq!(len, size, "a datagram arrives whole");
            assert!(buf[..len] == datagram[..], "and intact");
            sent += 1;
        }
    }
    shutdown.shutdown();
    let stats = done.recv_timeout(WAIT).unwrap();
    assert_eq!(stats.datagrams_in, sent);
    assert_eq!(stats.datagrams_out, sent);
    assert_eq!(stats.datagrams_dropped, 0);
}

#[test]
fn echoes_datagrams_of_every_size_up_to_the_maximum_over_ipv4() {
    echo_many_sizes("127.0.0.1:0", "127.0.0.1:0");
}

#[test]
fn echoes_datagrams_of_every_size_up_to_the_maximum_over_ipv6() {
    echo_many_sizes("[::1]:0", "[::1]:0");
}

/// Sends a burst at open, before the turn flushes the queue: the first
/// `max_queued_datagrams` wait in the queue, the rest are dropped.
struct Burst {
    to: SocketAddr,
    outcomes: mpsc::Sender<SendOutcome>,
}

impl DatagramHandler for Burst {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        for i in 0..100u8 {
            let outcome = ctx.send_to(&[i; 10], self.to).unwrap();
            self.outcomes.send(outcome).unwrap();
        }
    }
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
}

#[test]
fn sends_beyond_the_queue_are_dropped_and_counted_and_the_queue_is_flushed() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver.set_read_timeout(Some(WAIT)).unwrap();
    let (tx, outcomes) = mpsc::channel();
    let burst = Burst {
        to: receiver.local_addr().unwrap(),
        outcomes: tx,
    };
    let config = Config::default().max_queued_datagrams(64);
    let (_, shutdown, done) = serve_udp("127.0.0.1:0", config, burst);

    let outcomes: Vec<_> = (0..100)
        .map(|_| outcomes.recv_timeout(WAIT).unwrap())
        .collect();
    let queued = outcomes
        .iter()
        .filter(|o| **o == SendOutcome::Queued)
        .count();
    let dropped = outcomes
        .iter()
        .filter(|o| **o == SendOutcome::Dropped)
        .count();
    assert_eq!((queued, dropped), (64, 36), "{outcomes:?}");

    // The queued ones arrive, in order, once the socket is writable.
    let mut buf = [0; 16];
    for i in 0..64u8 {
        let (len, _) = receiver.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], &[i; 10]);
    }
    shutdown.shutdown();
    let stats = done.recv_timeout(WAIT).unwrap();
    assert_eq!(stats.datagrams_out, 64);
    assert_eq!(stats.datagrams_dropped, 36);
    receiver
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    assert!(
        receiver.recv_from(&mut buf).is_err(),
        "no dropped datagram was sent"
    );
}

#[test]
fn datagram_payload_counts_in_bytes_in_and_bytes_out() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor.bind_udp("udp:127.0.0.1:0", UdpEcho).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(&[7; 100], addr).unwrap();
    client.send_to(&[8; 23], addr).unwrap();
    turn_until(&mut reactor, |r| r.stats().datagrams_out == 2);

    let stats = reactor.stats();
    assert_eq!((stats.datagrams_in, stats.bytes_in), (2, 123));
    assert_eq!((stats.datagrams_out, stats.bytes_out), (2, 123));
}

/// Sends one datagram from its timer, and remembers its id.
struct SendOnTimer {
    to: SocketAddr,
    id: Rc<Cell<Option<UdpId>>>,
}

impl DatagramHandler for SendOnTimer {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        self.id.set(Some(ctx.id()));
        ctx.set_timer(Duration::ZERO);
    }

    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}

    fn on_timer(&mut self, ctx: &mut DatagramContext<'_>, _: TimerId) {
        ctx.send_to(b"tick", self.to).unwrap();
    }
}

#[test]
fn a_udp_sockets_timers_and_datagrams_are_traced_under_its_udp_id() {
    init_logging();
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    let records = Rc::new(RefCell::new(Vec::new()));
    let sink = records.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor.set_observer(move |_: Instant, record: &Record| match record {
        Record::TimerFired { .. } | Record::Datagram { .. } => {
            sink.borrow_mut().push(record.clone())
        }
        _ => {}
    });
    let id = Rc::new(Cell::new(None));
    let handler = SendOnTimer {
        to: receiver.local_addr().unwrap(),
        id: id.clone(),
    };
    reactor.bind_udp("udp:127.0.0.1:0", handler).unwrap();
    turn_until(&mut reactor, |r| r.stats().datagrams_out == 1);

    let id = id.get().expect("on_open ran");
    let records = records.borrow();
    let Some(Record::TimerFired { kind, target }) = records.first() else {
        panic!("the timer fired first: {records:?}");
    };
    assert_eq!(
        (*kind, *target),
        (TimerKind::User, Some(TimerTarget::Udp(id)))
    );
    let Some(Record::Datagram {
        socket, incoming, ..
    }) = records.get(1)
    else {
        panic!("then the datagram was sent: {records:?}");
    };
    assert_eq!((*socket, *incoming), (id, false));
    assert!(id.to_string().starts_with("udp#"), "{id}");
    assert_eq!(
        records[0].to_string(),
        format!("timer fired: User for {id}")
    );
}

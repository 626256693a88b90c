//! A connection's own output limits (`OutputLimits`): per listen, per connect, per adopted
//! stream and per connection from its `Context`; the soft limit over time; another
//! connection's buffered output.

mod util;

use std::cell::RefCell;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio_reactor::{
    CloseReason, Config, ConnId, ConnectOptions, Context, Handler, Limit, ListenOptions,
    OutputLimits, Reactor,
};
use util::{
    client, fnv1a, loopback, next_close, random_bytes, turn_until, Reporting, Server, WAIT,
};

const MIB: usize = 1024 * 1024;

/// Small socket buffers, so that the kernel takes little of what a peer does not read and
/// the bytes stay in the reactor's buffers, where the limits count them.
fn small_buffers() -> Config {
    Config::default()
        .socket_send_buffer(Some(16 * 1024))
        .socket_recv_buffer(Some(16 * 1024))
}

/// Closes as seen by handlers on this thread, by connection.
type Closes = Rc<RefCell<Vec<(ConnId, CloseReason)>>>;

/// Writes `bytes` (in 1 MiB pieces) whenever input arrives or, with `at_open`, when it opens;
/// records its close.
struct Flood {
    bytes: usize,
    at_open: bool,
    closes: Closes,
}

impl Flood {
    fn flood(&self, ctx: &mut Context<'_>) {
        let piece = vec![b'x'; MIB.min(self.bytes)];
        let mut left = self.bytes;
        while left > 0 {
            let n = left.min(piece.len());
            if ctx.write_to(ctx.id(), &piece[..n]).is_err() {
                break;
            }
            left -= n;
        }
    }
}

impl Handler for Flood {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if self.at_open {
            self.flood(ctx);
        }
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.flood(ctx);
        data.len()
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        self.closes.borrow_mut().push((ctx.id(), reason.clone()));
    }
}

fn flood(bytes: usize, closes: &Closes) -> Flood {
    Flood {
        bytes,
        at_open: false,
        closes: closes.clone(),
    }
}

fn closed(closes: &Closes) -> Vec<CloseReason> {
    closes.borrow().iter().map(|(_, r)| r.clone()).collect()
}

/// Turns the reactor for `how_long`, whatever happens.
fn turn_for(reactor: &mut Reactor, how_long: Duration) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        reactor.turn(Some(Duration::from_millis(5))).expect("turn");
    }
}

#[test]
fn a_listens_own_hard_cap_closes_a_peer_that_does_not_read_at_that_cap_only() {
    util::init_logging();
    let closes = Closes::default();
    let mut reactor = Reactor::with_config(small_buffers()).unwrap();
    let capped = OutputLimits::default().max_output(MIB);
    let (c1, c2) = (closes.clone(), closes.clone());
    let small = reactor
        .listen(
            loopback(),
            ListenOptions::default().output_limits(capped),
            move |_| Some(flood(3 * MIB, &c1)),
        )
        .unwrap()
        .local_addr()
        .unwrap();
    let default = reactor
        .listen(loopback(), ListenOptions::default(), move |_| {
            Some(flood(3 * MIB, &c2))
        })
        .unwrap()
        .local_addr()
        .unwrap();

    // Neither peer reads: 3 MiB is above the listen's 1 MiB cap, below the default 4 MiB.
    let mut kept = client(default);
    kept.write_all(b"go").unwrap();
    let mut cut = client(small);
    cut.write_all(b"go").unwrap();
    turn_until(&mut reactor, |_| !closes.borrow().is_empty());
    turn_for(&mut reactor, Duration::from_millis(200));

    assert_eq!(closed(&closes), [CloseReason::LimitExceeded(Limit::Output)]);
    assert_eq!(
        reactor.stats().open_connections,
        1,
        "the default listen's peer stays"
    );
    assert_eq!(reactor.stats().closed.limit_exceeded, 1);
    drop((kept, cut));
}

#[test]
fn connect_and_adopt_options_give_their_connection_its_own_hard_cap() {
    util::init_logging();
    let closes = Closes::default();
    let mut reactor = Reactor::with_config(small_buffers()).unwrap();
    let capped = OutputLimits::default().max_output(MIB);
    let silent = TcpListener::bind(loopback()).unwrap();
    let at_open = |closes: &Closes| Flood {
        bytes: 3 * MIB,
        at_open: true,
        closes: closes.clone(),
    };

    let options = ConnectOptions::default().output_limits(capped);
    reactor
        .connect(silent.local_addr().unwrap(), options, at_open(&closes))
        .unwrap();
    let (_accepted, _) = silent.accept().unwrap();
    turn_until(&mut reactor, |_| closes.borrow().len() == 1);

    let (_peer, ours) = pair(&silent);
    let options = ListenOptions::default().output_limits(capped);
    reactor.adopt(ours, options, at_open(&closes)).unwrap();
    turn_until(&mut reactor, |_| closes.borrow().len() == 2);

    // Without the option, the same 3 MiB stays under the reactor's 4 MiB.
    let (_peer2, ours) = pair(&silent);
    reactor
        .adopt(ours, ConnectOptions::default(), at_open(&closes))
        .unwrap();
    turn_for(&mut reactor, Duration::from_millis(200));

    let over = CloseReason::LimitExceeded(Limit::Output);
    assert_eq!(closed(&closes), [over.clone(), over]);
    assert_eq!(reactor.stats().open_connections, 1);
}

/// A connected pair: the peer (never read) and our side, to adopt.
fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    (peer, ours)
}

/// Answers any input with one 16 MiB reply, after raising its own hard cap if `raise`.
struct Big {
    reply: Rc<Vec<u8>>,
    raise: bool,
}

impl Handler for Big {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if self.raise {
            let roomy = OutputLimits::default().max_output(32 * MIB);
            ctx.set_output_limits(roomy).unwrap();
            assert_eq!(ctx.output_limits(), roomy);
        }
        ctx.write(&self.reply);
        data.len()
    }
}

#[test]
fn a_cap_raised_from_the_context_lets_a_16_mib_reply_reach_a_reading_client_whole() {
    let reply = random_bytes(20, 16 * MIB);
    let expected = fnv1a(&reply);
    let (events, seen) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        let reply = Rc::new(reply);
        let shared = reply.clone();
        let events2 = events.clone();
        let default = reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Reporting {
                inner: Big {
                    reply: shared.clone(),
                    raise: false,
                },
                events: events2.clone(),
            })
        })?;
        addr_tx.send(default.local_addr()?).unwrap();
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Reporting {
                inner: Big {
                    reply: reply.clone(),
                    raise: true,
                },
                events: events.clone(),
            })
        })
    });
    let default = addr_rx.recv_timeout(WAIT).unwrap();

    let mut reader = client(server.addr);
    reader.write_all(b"get\n").unwrap();
    let mut got = vec![0; 16 * MIB];
    reader.read_exact(&mut got).unwrap();
    assert_eq!(fnv1a(&got), expected);

    // The same reply with the default 4 MiB cap: the connection is cut off.
    let mut cut = client(default);
    cut.write_all(b"get\n").unwrap();
    assert_eq!(next_close(&seen), CloseReason::LimitExceeded(Limit::Output));
    drop((reader, cut));
    let stats = server.stop();
    assert_eq!(stats.closed.limit_exceeded, 1);
}

/// A client that never blocks: what it reads is counted, not kept.
fn nonblocking(addr: SocketAddr) -> TcpStream {
    let stream = client(addr);
    stream.set_nonblocking(true).unwrap();
    stream
}

/// Reads what is there (up to `WouldBlock` or EOF); returns how much.
fn read_available(stream: &mut TcpStream) -> usize {
    let mut buf = vec![0; 256 * 1024];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return total,
            Err(err) => panic!("read: {err}"),
        }
    }
}

/// Turns the reactor while `stream` reads, until it has read `bytes`.
fn read_while_turning(reactor: &mut Reactor, stream: &mut TcpStream, bytes: usize) {
    let mut read = 0;
    turn_until(reactor, |_| {
        read += read_available(stream);
        read >= bytes
    });
}

const SOFT: usize = 256 * 1024;
// Long enough that catching up (reading 1 MiB while turning) fits in the half of it that the
// sparing test leaves, however loaded the machine.
const SOFT_FOR: Duration = Duration::from_secs(1);

/// A reactor on this thread whose one listen has a 256 KiB soft limit for 400 ms and
/// floods 1 MiB per input.
fn soft_limited(closes: &Closes) -> (Reactor, SocketAddr) {
    util::init_logging();
    let mut reactor = Reactor::with_config(small_buffers()).unwrap();
    let limits = OutputLimits::default().soft_limit(SOFT, SOFT_FOR);
    let closes = closes.clone();
    let addr = reactor
        .listen(
            loopback(),
            ListenOptions::default().output_limits(limits),
            move |_| Some(flood(MIB, &closes)),
        )
        .unwrap()
        .local_addr()
        .unwrap();
    (reactor, addr)
}

#[test]
fn the_soft_limit_closes_a_peer_that_stays_above_it_for_longer_than_its_duration() {
    let closes = Closes::default();
    let (mut reactor, addr) = soft_limited(&closes);
    let mut slow = nonblocking(addr);
    slow.write_all(b"go").unwrap();
    let started = Instant::now();
    turn_until(&mut reactor, |_| !closes.borrow().is_empty());

    assert!(
        started.elapsed() >= SOFT_FOR,
        "closed after {:?}",
        started.elapsed()
    );
    let limit = Limit::SoftOutput {
        bytes: SOFT,
        duration: SOFT_FOR,
    };
    assert_eq!(closed(&closes), [CloseReason::LimitExceeded(limit)]);
    assert_eq!(
        CloseReason::LimitExceeded(limit).to_string(),
        "buffered output above 262144 B for 1 s"
    );
    assert_eq!(reactor.stats().closed.limit_exceeded, 1);
}

#[test]
fn the_soft_limit_spares_a_peer_that_dips_below_it_in_time() {
    let closes = Closes::default();
    let (mut reactor, addr) = soft_limited(&closes);
    let mut bursty = nonblocking(addr);
    let started = Instant::now();
    // Three times: above the soft limit for half its duration, then caught up. Above it
    // for longer than the duration in all, never for that long at once.
    for _ in 0..3 {
        bursty.write_all(b"go").unwrap();
        turn_until(&mut reactor, |r| r.stats().bytes_in > 0);
        turn_for(&mut reactor, SOFT_FOR / 2);
        read_while_turning(&mut reactor, &mut bursty, MIB);
    }
    assert!(started.elapsed() > SOFT_FOR);
    turn_for(&mut reactor, SOFT_FOR);
    assert_eq!(closed(&closes), []);
    assert_eq!(reactor.stats().open_connections, 1);
}

/// Publishes what arrives to the subscriber, noting the subscriber's buffered output as the
/// publisher's context sees it.
struct Publisher {
    subscriber: Rc<RefCell<Option<ConnId>>>,
    seen: Rc<RefCell<Vec<usize>>>,
}

impl Handler for Publisher {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let subscriber = self.subscriber.borrow().expect("a subscriber");
        ctx.write_to(subscriber, &vec![b'm'; 256 * 1024]).unwrap();
        let behind = ctx.buffered_output_of(subscriber).expect("open");
        self.seen.borrow_mut().push(behind);
        assert_eq!(
            ctx.buffered_output_of(ctx.id()),
            Some(ctx.buffered_output())
        );
        data.len()
    }
}

/// Only notes its id.
struct Subscriber(Rc<RefCell<Option<ConnId>>>);

impl Handler for Subscriber {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        *self.0.borrow_mut() = Some(ctx.id());
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn buffered_output_of_another_connection_grows_while_its_peer_does_not_read() {
    util::init_logging();
    let mut reactor = Reactor::with_config(small_buffers()).unwrap();
    let subscriber = Rc::new(RefCell::new(None));
    let seen = Rc::new(RefCell::new(Vec::new()));
    let id = subscriber.clone();
    let subs = reactor
        .listen(loopback(), ListenOptions::default(), move |_| {
            Some(Subscriber(id.clone()))
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let (id, noted) = (subscriber.clone(), seen.clone());
    let pubs = reactor
        .listen(loopback(), ListenOptions::default(), move |_| {
            Some(Publisher {
                subscriber: id.clone(),
                seen: noted.clone(),
            })
        })
        .unwrap()
        .local_addr()
        .unwrap();

    let _not_reading = client(subs);
    turn_until(&mut reactor, |_| subscriber.borrow().is_some());
    let mut publisher = client(pubs);
    for round in 1..=4 {
        publisher.write_all(b"m").unwrap();
        turn_until(&mut reactor, |_| seen.borrow().len() == round);
    }
    let seen = seen.borrow().clone();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert!(seen[3] >= 512 * 1024, "{seen:?}");

    // Posted work sees the same.
    let id = subscriber.borrow().unwrap();
    let (tx, rx) = mpsc::channel();
    reactor
        .handle()
        .post(move |loop_ctx| tx.send(loop_ctx.buffered_output(id)).unwrap())
        .unwrap();
    turn_for(&mut reactor, Duration::from_millis(50));
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Some(seen[3]));
}

fn is_invalid<T>(result: io::Result<T>) -> bool {
    matches!(result, Err(err) if err.kind() == ErrorKind::InvalidInput)
}

#[test]
fn invalid_limits_are_an_invalid_input_error() {
    util::init_logging();
    let wrong = [
        OutputLimits::default().low_water(100).high_water(10),
        OutputLimits::default().high_water(2 * MIB).max_output(MIB),
        OutputLimits::default().soft_limit(8 * MIB, Duration::from_secs(1)),
    ];
    let mut reactor = Reactor::new().unwrap();
    let peer = TcpListener::bind(loopback()).unwrap();

    let closes = Closes::default();
    for limits in wrong {
        let options = ListenOptions::default().output_limits(limits);
        assert!(is_invalid(reactor.listen(
            loopback(),
            options.clone(),
            |_| { Some(util::Echo) }
        )));
        let (_peer, ours) = pair(&peer);
        assert!(is_invalid(reactor.adopt(ours, options, util::Echo)));
        let options = ConnectOptions::default().output_limits(limits);
        let addr = peer.local_addr().unwrap();
        assert!(is_invalid(reactor.connect(
            addr,
            options,
            flood(1, &closes)
        )));
    }
    assert_eq!(reactor.stats().open_connections, 0);

    // From a context: refused, and the connection keeps the limits it had.
    let (tx, rx) = mpsc::channel();
    struct Setter(mpsc::Sender<(io::ErrorKind, OutputLimits)>);
    impl Handler for Setter {
        fn on_open(&mut self, ctx: &mut Context<'_>) {
            let wrong = OutputLimits::default().low_water(100).high_water(10);
            let err = ctx.set_output_limits(wrong).unwrap_err();
            self.0.send((err.kind(), ctx.output_limits())).unwrap();
        }
        fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
            data.len()
        }
    }
    let (_peer, ours) = pair(&peer);
    reactor
        .adopt(ours, ListenOptions::default(), Setter(tx))
        .unwrap();
    let (kind, kept) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(kind, ErrorKind::InvalidInput);
    assert_eq!(kept, OutputLimits::default());
}

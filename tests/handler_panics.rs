//! A panic in user code costs only what that code serves: the connection (reset, reported
//! once as `CloseReason::HandlerPanicked`, counted), or the one peer a factory was building a
//! handler for. Every other connection, the listener and `run()` go on.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Instant;

use mio_reactor::{
    CloseReason, Config, Context, DatagramContext, DatagramHandler, Endpoint, Handler,
    ListenOptions, Reactor, Record,
};
use util::{client, loopback, round_trip, turn_until, Reporting, Seen, Server, WAIT};

/// Echoes, but panics on the byte `!`.
struct Fragile;

impl Handler for Fragile {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        assert!(!data.contains(&b'!'), "a bang from {}", ctx.peer_addr());
        ctx.write(data);
        data.len()
    }
}

fn fragile_server() -> (Server, mpsc::Receiver<Seen>) {
    let (events, seen) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_: &_| {
            Some(Reporting {
                inner: Fragile,
                events: events.clone(),
            })
        })
    });
    (server, seen)
}

/// Reads until the peer ends the stream: `Ok(bytes)` at EOF, the error kind otherwise.
fn read_until_end(stream: &mut std::net::TcpStream) -> Result<Vec<u8>, ErrorKind> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).map_err(|e| e.kind())?;
    Ok(all)
}

#[test]
fn a_panicking_handler_costs_only_its_connection() {
    let (server, _seen) = fragile_server();
    // Five clients in the middle of an echo exchange: the first half is echoed...
    let mut others: Vec<_> = (0..5).map(|_| client(server.addr)).collect();
    for (i, other) in others.iter_mut().enumerate() {
        let first = format!("client {i} first half;");
        assert_eq!(round_trip(other, first.as_bytes()), first.as_bytes());
    }
    // ...when another client's handler panics.
    let mut bang = client(server.addr);
    bang.write_all(b"one !").unwrap();
    let _ = read_until_end(&mut bang);

    let mut served = 0;
    for (i, other) in others.iter_mut().enumerate() {
        let second = format!("client {i} second half");
        if round_trip(other, second.as_bytes()) == second.as_bytes() {
            served += 1;
        }
    }
    let mut newcomer = client(server.addr);
    let new_served = round_trip(&mut newcomer, b"hello") == b"hello";
    drop((others, newcomer));
    let stats = server.stop(); // panics unless run() returned Ok in time
    println!(
        "after one handler panicked: {served}/5 other connections served, new connection {}, \
         run() returned Ok",
        if new_served { "served" } else { "NOT served" }
    );
    assert_eq!(served, 5);
    assert!(new_served);
    assert_eq!(stats.handler_panics, 1);
    assert_eq!(stats.closed.handler_panicked, 1);
    assert_eq!(stats.accepted, 7);
}

#[test]
fn the_panicking_peer_gets_a_reset() {
    let (server, _seen) = fragile_server();
    let mut bang = client(server.addr);
    bang.write_all(b"!").unwrap();
    assert_eq!(read_until_end(&mut bang), Err(ErrorKind::ConnectionReset));
    server.stop();
}

#[test]
fn a_handler_that_panicked_hears_nothing_more_not_even_on_close() {
    let (server, seen) = fragile_server();
    let mut calm = client(server.addr);
    round_trip(&mut calm, b"calm");
    let mut bang = client(server.addr);
    bang.write_all(b"!").unwrap();
    let _ = read_until_end(&mut bang);
    drop(calm);
    let stats = server.stop();
    assert_eq!(stats.closed.total(), 2);
    let closes: Vec<CloseReason> = seen
        .try_iter()
        .filter_map(|event| match event {
            Seen::Closed(_, reason) => Some(reason),
            Seen::Open(_) => None,
        })
        .collect();
    // Only the calm connection's handler heard its close.
    assert_eq!(closes.len(), 1);
    assert!(!matches!(closes[0], CloseReason::HandlerPanicked(_)));
}

#[test]
fn the_close_is_reported_once_with_the_panic_message() {
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Fragile))
        .unwrap()
        .local_addr()
        .unwrap();
    let (records, closes) = mpsc::channel();
    reactor.set_observer(move |_at: Instant, record: &Record| {
        if let Record::Closed { reason, .. } = record {
            let _ = records.send(reason.clone());
        }
    });
    let mut bang = client(addr);
    bang.write_all(b"!").unwrap();
    turn_until(&mut reactor, |r| r.stats().closed.total() == 1);
    let reason = closes.try_recv().expect("a close record");
    match reason {
        CloseReason::HandlerPanicked(message) => {
            assert!(message.starts_with("a bang from 127.0.0.1:"), "{message}")
        }
        other => panic!("closed as {other:?}"),
    }
    assert!(closes.try_recv().is_err(), "reported once");
}

#[test]
fn a_panicking_factory_refuses_only_that_peer() {
    let server = Server::start(Config::default(), |reactor| {
        let mut built = 0;
        reactor.listen(loopback(), ListenOptions::default(), move |_: &_| {
            built += 1;
            assert!(built != 1, "the first peer breaks the factory");
            Some(Fragile)
        })
    });
    let mut refused = client(server.addr);
    let _ = refused.write_all(b"anyone?");
    assert!(read_until_end(&mut refused).map_or(true, |bytes| bytes.is_empty()));
    let mut next = client(server.addr);
    assert_eq!(round_trip(&mut next, b"served"), b"served");
    drop(next);
    let stats = server.stop();
    assert_eq!(
        (stats.handler_panics, stats.refused, stats.accepted),
        (1, 1, 1)
    );
}

#[test]
fn with_catch_panics_off_the_panic_unwinds_out_of_the_loop() {
    let config = Config::default().catch_panics(false);
    let mut reactor = Reactor::with_config(config).unwrap();
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Fragile))
        .unwrap()
        .local_addr()
        .unwrap();
    let mut bang = client(addr);
    bang.write_all(b"!").unwrap();
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        turn_until(&mut reactor, |r| r.stats().bytes_in > 0)
    }));
    assert!(unwound.is_err(), "the panic reached the caller of turn()");
}

/// Replies to each datagram, but panics on `!`.
struct FragileUdp;

impl DatagramHandler for FragileUdp {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        assert!(data != b"!", "a bang");
        let _ = ctx.send_to(data, from);
    }
}

#[test]
fn a_panicking_datagram_handler_closes_only_its_socket() {
    let mut reactor = Reactor::new().unwrap();
    let fragile = reactor
        .bind_udp(Endpoint::Udp(loopback()), FragileUdp)
        .unwrap();
    let sturdy = reactor
        .bind_udp(Endpoint::Udp(loopback()), FragileUdp)
        .unwrap();
    let peer = std::net::UdpSocket::bind(loopback()).unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    peer.send_to(b"!", fragile).unwrap();
    turn_until(&mut reactor, |r| r.stats().handler_panics == 1);
    peer.send_to(b"still here?", sturdy).unwrap();
    let mut reply = [0; 32];
    turn_until(&mut reactor, |r| r.stats().datagrams_out == 1);
    let (len, from) = peer.recv_from(&mut reply).unwrap();
    assert_eq!((&reply[..len], from), (&b"still here?"[..], sturdy));
}

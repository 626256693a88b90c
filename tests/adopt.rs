//! Sockets made elsewhere, served by a reactor: adopted listeners and streams, streams
//! handed over from other threads, and one acceptor spreading connections over reactors.

mod util;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc;
use std::thread::JoinHandle;

use mio_reactor::{
    AdoptedStream, Config, ConnectOptions, ListenOptions, LoopHandle, PostError, Reactor,
    ReactorThreads, ShutdownHandle, Spread, Stats,
};
use proptest::prelude::*;
use util::{init_logging, loopback, round_trip, turn_until, Echo, WAIT};

/// A reactor on its own thread that echoes streams handed over to it.
fn handover_target(config: Config) -> (LoopHandle, ShutdownHandle, JoinHandle<Stats>) {
    init_logging();
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor = Reactor::with_config(config).expect("reactor");
        reactor
            .listen("handover:", ListenOptions::default(), |_: &_| Some(Echo))
            .expect("listen");
        tx.send((reactor.handle(), reactor.shutdown_handle()))
            .unwrap();
        reactor.run().expect("run");
        reactor.stats()
    });
    let (handle, shutdown) = rx.recv_timeout(WAIT).expect("started");
    (handle, shutdown, thread)
}

/// A connected pair: the client side, and the server side accepted by plain `std`.
fn accepted_elsewhere() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(loopback()).unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    (client, server_side)
}

#[test]
fn an_adopted_stream_is_served_like_an_accepted_one() {
    init_logging();
    let (mut client, server_side) = accepted_elsewhere();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .adopt(server_side, ListenOptions::default(), Echo)
        .unwrap();
    client.write_all(b"adopted").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out == 7);
    let mut echo = [0; 7];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"adopted");
    assert_eq!(reactor.stats().adopted, 1);
}

#[test]
fn an_unconnected_stream_is_refused_with_an_error() {
    init_logging();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let unconnected: TcpStream = socket.into();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .adopt(unconnected, ConnectOptions::default(), Echo)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    assert_eq!(reactor.stats().open_connections, 0);
}

#[test]
fn an_adopted_unix_listener_keeps_its_socket_file() {
    init_logging();
    let path = std::env::temp_dir().join(format!("mio-reactor-adopt-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).unwrap();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen(listener, ListenOptions::default(), |_: &_| Some(Echo))
        .unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    client.write_all(b"hi").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out == 2);
    drop(reactor);
    assert!(path.exists(), "whoever made the socket owns its file");
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_stream_handed_over_from_another_thread_is_served() {
    let (handle, shutdown, thread) = handover_target(Config::default());
    let (mut client, server_side) = accepted_elsewhere();
    handle.hand_over(server_side).unwrap();
    assert_eq!(round_trip(&mut client, b"over"), b"over");
    drop(client);
    shutdown.shutdown();
    assert_eq!(thread.join().unwrap().adopted, 1);
}

#[test]
fn a_reactor_without_a_handover_factory_refuses_the_stream() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let (mut client, server_side) = accepted_elsewhere();
    reactor.handle().hand_over(server_side).unwrap();
    turn_until(&mut reactor, |r| r.stats().refused == 1);
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0, "closed unserved");
}

#[test]
fn handing_over_to_a_shutting_down_reactor_gives_the_stream_back() {
    let (handle, shutdown, thread) = handover_target(Config::default());
    shutdown.shutdown();
    let (_client, server_side) = accepted_elsewhere();
    match handle.hand_over(server_side) {
        Err(PostError::ShuttingDown(AdoptedStream::Tcp(_))) => {}
        other => panic!("expected the stream back, got {other:?}"),
    }
    thread.join().unwrap();
}

#[test]
fn the_load_counts_handovers_in_flight() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen("handover:", ListenOptions::default(), |_: &_| Some(Echo))
        .unwrap();
    let handle = reactor.handle();
    let (_client, server_side) = accepted_elsewhere();
    handle.hand_over(server_side).unwrap();
    assert_eq!(handle.load(), 1, "handed over, not yet registered");
    turn_until(&mut reactor, |r| r.stats().adopted == 1);
    assert_eq!(handle.load(), 1, "now an open connection");
}

#[test]
fn one_acceptor_spreads_long_lived_connections_evenly() {
    init_logging();
    let threads = ReactorThreads::serve(
        2,
        Config::default(),
        loopback(),
        ListenOptions::default(),
        Spread::LeastLoaded,
        |_, _| |_: &_| Some(Echo),
    )
    .unwrap();
    let addr = threads.local_addr().unwrap();
    let mut clients = Vec::new();
    for i in 0..8u8 {
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(WAIT)).unwrap();
        assert_eq!(round_trip(&mut client, &[i]), [i]);
        clients.push(client);
    }
    drop(clients);
    threads.shutdown_handle().shutdown();
    let stats = threads.join().unwrap();
    let adopted: Vec<u64> = stats.iter().map(|s| s.adopted).collect();
    assert_eq!(adopted, [4, 4, 0]);
    assert_eq!(stats[2].handed_over, 8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// Streams handed to random reactors: each is served by exactly the one it went to.
    #[test]
    fn every_handed_over_stream_is_served_exactly_once(
        targets in prop::collection::vec(0usize..3, 1..12),
    ) {
        let reactors: Vec<_> = (0..3).map(|_| handover_target(Config::default())).collect();
        let mut clients = Vec::new();
        for (n, &target) in targets.iter().enumerate() {
            let (mut client, server_side) = accepted_elsewhere();
            reactors[target].0.hand_over(server_side).unwrap();
            let message = [n as u8; 3];
            prop_assert_eq!(round_trip(&mut client, &message), message);
            clients.push(client);
        }
        drop(clients); // their EOF lets the graceful shutdown finish at once
        let mut adopted = Vec::new();
        for (_, shutdown, thread) in reactors {
            shutdown.shutdown();
            adopted.push(thread.join().unwrap().adopted);
        }
        for (index, &count) in adopted.iter().enumerate() {
            let sent = targets.iter().filter(|&&t| t == index).count() as u64;
            prop_assert_eq!(count, sent);
        }
    }
}

//! `ReactorThreads::serve` as a whole program uses it: each reactor set up on its own
//! thread by `make_factory` (a before-sleep hook, say), several endpoints in one serve, and
//! one reactor that listens on any endpoint, as `Reactor::listen` does.

mod util;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

use mio_reactor::{Config, Endpoint, ListenOptions, ReactorThreads, Spread, Stats};
use util::{client, round_trip, Echo, WAIT};

/// Shuts `threads` down and returns each reactor's stats.
fn stop(threads: ReactorThreads) -> Vec<Stats> {
    threads.shutdown_handle().shutdown();
    threads.join().expect("the reactors stop")
}

fn served(stats: &[Stats]) -> u64 {
    stats.iter().map(|s| s.accepted + s.adopted).sum()
}

#[test]
fn make_factory_sets_up_each_reactor_on_its_own_thread_with_its_index() {
    util::init_logging();
    let (hooks_tx, hooks) = mpsc::channel();
    let threads = ReactorThreads::serve(
        2,
        Config::default(),
        "127.0.0.1:0",
        ListenOptions::default(),
        Spread::ReusePort,
        move |reactor, index| {
            let tx = hooks_tx.clone();
            let mut reported = false;
            reactor.before_sleep(move |_| {
                if !std::mem::replace(&mut reported, true) {
                    let thread = std::thread::current().name().map(String::from);
                    tx.send((index, thread)).expect("the test is waiting");
                }
            });
            |_: &_| Some(Echo)
        },
    )
    .unwrap();
    let mut seen = [hooks.recv_timeout(WAIT), hooks.recv_timeout(WAIT)]
        .map(|hook| hook.expect("each reactor's hook runs before its first poll"));
    seen.sort();
    let expected = [0, 1].map(|index| (index, Some(format!("reactor-{index}"))));
    assert_eq!(seen, expected);
    stop(threads);
}

#[test]
fn serve_listens_on_every_endpoint_it_is_given() {
    util::init_logging();
    for spread in [Spread::ReusePort, Spread::LeastLoaded] {
        let threads = ReactorThreads::serve(
            2,
            Config::default(),
            ["tcp:127.0.0.1:0", "tcp:127.0.0.1:0"],
            ListenOptions::default(),
            spread,
            |_, _| |_: &_| Some(Echo),
        )
        .unwrap();
        let addrs: Vec<SocketAddr> = threads
            .bound()
            .iter()
            .map(|bound| bound.socket_addr().expect("tcp"))
            .collect();
        assert_eq!(addrs.len(), 2, "{spread:?}");
        assert_ne!(addrs[0], addrs[1], "{spread:?}: a port each");
        for addr in &addrs {
            let mut stream = client(*addr);
            assert_eq!(round_trip(&mut stream, b"each"), b"each", "{spread:?}");
        }
        assert_eq!(served(&stop(threads)), 2, "{spread:?}");
    }
}

#[test]
fn one_reactor_serves_a_unix_endpoint_beside_tcp() {
    util::init_logging();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alone.sock");
    let unix = Endpoint::Unix(path.clone());
    let threads = ReactorThreads::serve(
        1,
        Config::default(),
        vec![Endpoint::Tcp("127.0.0.1:0".parse().unwrap()), unix.clone()],
        ListenOptions::default(),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    )
    .unwrap();
    assert_eq!(threads.bound()[1], unix);
    let mut over_tcp = client(threads.local_addr().unwrap());
    assert_eq!(round_trip(&mut over_tcp, b"tcp"), b"tcp");
    let mut over_unix = UnixStream::connect(&path).unwrap();
    over_unix.set_read_timeout(Some(WAIT)).unwrap();
    std::io::Write::write_all(&mut over_unix, b"unix").unwrap();
    let mut echo = [0; 4];
    std::io::Read::read_exact(&mut over_unix, &mut echo).unwrap();
    assert_eq!(&echo, b"unix");
    drop((over_tcp, over_unix));
    assert_eq!(served(&stop(threads)), 2);
}

/// Whether a socket with `SO_REUSEPORT` can join `addr`'s port.
fn can_share(addr: SocketAddr) -> bool {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_port(true).unwrap();
    match socket.bind(&addr.into()) {
        Ok(()) => true,
        Err(err) if err.kind() == ErrorKind::AddrInUse => false,
        Err(err) => panic!("bind {addr}: {err}"),
    }
}

#[test]
fn one_reactor_sets_so_reuseport_only_if_the_options_ask() {
    util::init_logging();
    for asked in [false, true] {
        let threads = ReactorThreads::serve(
            1,
            Config::default(),
            "127.0.0.1:0",
            ListenOptions::default().reuse_port(asked),
            Spread::ReusePort,
            |_, _| |_: &_| Some(Echo),
        )
        .unwrap();
        assert_eq!(can_share(threads.local_addr().unwrap()), asked);
        stop(threads);
    }
}

#[test]
fn reuse_port_on_several_reactors_refuses_a_unix_endpoint() {
    let err = ReactorThreads::serve(
        2,
        Config::default(),
        ["tcp:127.0.0.1:0", "unix:/tmp/mio-reactor-never.sock"],
        ListenOptions::default(),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("unix:"), "{err}");
}

#[test]
fn serving_no_endpoint_is_an_error() {
    let err = ReactorThreads::serve(
        2,
        Config::default(),
        Vec::<Endpoint>::new(),
        ListenOptions::default(),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

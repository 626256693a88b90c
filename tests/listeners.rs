//! Listener handles and the one `listen`: what it bound, stopping one listen while its
//! connections go on, listing a reactor's sockets, and the options that compose on it.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use mio_reactor::{ConnectOptions, Context, Endpoint, Handler, ListenOptions, PeerAddr, Reactor};
use util::{turn_until, Echo, WAIT};

/// Sends `data` on `client` and reads its echo, turning `reactor` meanwhile.
fn echo_through(reactor: &mut Reactor, client: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    let before = reactor.stats().bytes_out;
    client.write_all(data).unwrap();
    let want = before + data.len() as u64;
    turn_until(reactor, |r| r.stats().bytes_out >= want);
    let mut reply = vec![0; data.len()];
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.read_exact(&mut reply).unwrap();
    reply
}

fn echo_factory() -> impl FnMut(&PeerAddr) -> Option<Echo> {
    |_| Some(Echo)
}

#[test]
fn stopping_a_listener_closes_its_socket_and_keeps_its_connections() {
    util::init_logging();
    let mut reactor = Reactor::new().unwrap();
    let listening = reactor
        .listen("tcp:127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    let addr = listening.local_addr().unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.stats().accepted == 1);

    assert!(reactor.stop_listening(listening.id()));
    assert!(reactor.listeners().is_empty());
    // The connection it accepted goes on being served.
    assert_eq!(
        echo_through(&mut reactor, &mut client, b"still here"),
        b"still here"
    );
    // Nobody listens any more, and the port is free for another socket.
    let refused = TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let again = TcpListener::bind(addr);
    assert!(again.is_ok(), "the port stayed taken: {again:?}");
    // Stopping it twice finds nothing.
    assert!(!reactor.stop_listening(listening.id()));
}

#[test]
fn stopping_one_listener_leaves_the_others_listening() {
    let mut reactor = Reactor::new().unwrap();
    let first = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    let second = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    assert!(reactor.stop_listening(first.id()));
    let mut client = TcpStream::connect(second.local_addr().unwrap()).unwrap();
    assert_eq!(echo_through(&mut reactor, &mut client, b"hi"), b"hi");
    let ids: Vec<_> = reactor.listeners().iter().map(|l| l.id).collect();
    assert_eq!(ids, [second.id()]);
}

#[test]
fn listeners_lists_each_socket_with_its_endpoint_address_and_descriptor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("listed.sock");
    let mut reactor = Reactor::new().unwrap();
    let tcp = reactor
        .listen("tcp:127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    let unix = reactor
        .listen(
            Endpoint::Unix(path.clone()),
            ListenOptions::default(),
            echo_factory(),
        )
        .unwrap();
    let listed = reactor.listeners();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, tcp.id());
    assert_eq!(listed[0].endpoint.to_string(), "tcp:127.0.0.1:0");
    assert_eq!(listed[0].local, Endpoint::Tcp(tcp.local_addr().unwrap()));
    assert_eq!(listed[1].id, unix.id());
    assert_eq!(listed[1].local, Endpoint::Unix(path.clone()));
    assert_eq!(unix.bound(), [Endpoint::Unix(path)]);
    let fds: Vec<_> = listed.iter().map(|l| l.fd.expect("a socket")).collect();
    assert!(fds[0] > 2 && fds[1] > 2 && fds[0] != fds[1], "{fds:?}");
}

#[test]
fn a_name_is_listened_on_at_every_address_it_resolves_to() {
    let mut reactor = Reactor::new().unwrap();
    let listening = reactor
        .listen("tcp:localhost:0", ListenOptions::default(), echo_factory())
        .unwrap();
    let resolved: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs("localhost:0")
        .unwrap()
        .collect();
    assert_eq!(listening.bound().len(), resolved.len());
    assert_eq!(reactor.listeners().len(), resolved.len());
    assert_eq!(listening.endpoint().to_string(), "tcp:localhost:0");
    for (bound, asked) in listening.bound().iter().zip(&resolved) {
        let Endpoint::Tcp(bound) = bound else {
            panic!("{bound} is not TCP")
        };
        assert_eq!(bound.ip(), asked.ip());
        assert_ne!(bound.port(), 0);
        let mut client = TcpStream::connect(bound).unwrap();
        assert_eq!(echo_through(&mut reactor, &mut client, b"ok"), b"ok");
    }
    assert!(reactor.stop_listening(listening.id()));
    assert!(reactor.listeners().is_empty());
}

#[test]
fn a_bad_endpoint_is_an_invalid_input_error_that_names_it() {
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen("tpc:127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`tpc:127.0.0.1:0`"), "{err}");
    assert!(err.to_string().contains("unknown scheme `tpc`"), "{err}");
    assert!(reactor.listeners().is_empty());
}

#[test]
fn a_datagram_endpoint_cannot_listen_and_a_stream_endpoint_cannot_bind_udp() {
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen("udp:127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("bind_udp"), "{err}");

    struct Quiet;
    impl mio_reactor::DatagramHandler for Quiet {
        fn on_datagram(
            &mut self,
            _: &mut mio_reactor::DatagramContext<'_>,
            _: &[u8],
            _: SocketAddr,
        ) {
        }
    }
    let err = reactor.bind_udp("127.0.0.1:0", Quiet).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("write udp:HOST:PORT"), "{err}");
}

#[test]
fn an_inherited_endpoint_this_process_did_not_inherit_is_not_found() {
    let mut reactor = Reactor::new().unwrap();
    for endpoint in ["fd:3", "systemd:web"] {
        let err = reactor
            .listen(endpoint, ListenOptions::default(), echo_factory())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{endpoint}: {err}");
        assert!(err.to_string().contains(endpoint), "{err}");
        assert!(err.to_string().contains("LISTEN_FDS"), "{err}");
    }
}

#[test]
fn reuse_port_is_an_option_that_lets_two_listeners_share_a_port() {
    let mut reactor = Reactor::new().unwrap();
    let shared = ListenOptions::default().reuse_port(true);
    let first = reactor
        .listen("127.0.0.1:0", shared.clone(), echo_factory())
        .unwrap();
    let addr = first.local_addr().unwrap();
    let second = reactor.listen(addr, shared, echo_factory()).unwrap();
    assert_eq!(second.local_addr().unwrap(), addr);
    // Without the option on the newcomer, the port is taken.
    let err = reactor
        .listen(addr, ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(
        err.to_string()
            .starts_with(&format!("listen on tcp:{addr}")),
        "{err}"
    );
}

#[test]
fn a_unix_socket_gets_the_mode_its_listen_asks_for() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.sock");
    let mut reactor = Reactor::new().unwrap();
    let listening = reactor
        .listen(
            format!("unix:{}", path.display()),
            ListenOptions::default().unix_mode(0o600).backlog(16),
            echo_factory(),
        )
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(reactor.stop_listening(listening.id()));
    assert!(!path.exists(), "the socket file outlived its listener");
}

#[test]
fn a_listener_made_elsewhere_is_served_and_listed() {
    let made = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = made.local_addr().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let listening = reactor
        .listen(made, ListenOptions::default(), echo_factory())
        .unwrap();
    assert_eq!(listening.bound(), [Endpoint::Tcp(addr)]);
    let mut client = TcpStream::connect(addr).unwrap();
    assert_eq!(echo_through(&mut reactor, &mut client, b"made"), b"made");
}

#[test]
fn a_second_handover_listen_is_refused() {
    let mut reactor = Reactor::new().unwrap();
    let first = reactor
        .listen("handover:", ListenOptions::default(), echo_factory())
        .unwrap();
    assert_eq!(first.bound(), [Endpoint::Handover]);
    let err = reactor
        .listen("handover:", ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let listed = reactor.listeners();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].fd, None);
    assert!(reactor.stop_listening(first.id()));
}

/// Asks for an outbound connect to a host name from inside a callback.
struct ConnectsByName {
    outcome: std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>,
}

impl Handler for ConnectsByName {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let tried = ctx.connect("tcp:localhost:9", ConnectOptions::default(), Echo);
        *self.outcome.borrow_mut() = tried.err();
        ctx.close();
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn a_connect_from_inside_the_loop_refuses_a_name_that_needs_a_lookup() {
    let outcome = std::rc::Rc::new(std::cell::RefCell::new(None));
    let seen = outcome.clone();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), move |_| {
            Some(ConnectsByName {
                outcome: seen.clone(),
            })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let _client = TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.stats().accepted == 1);
    let err = outcome
        .borrow_mut()
        .take()
        .expect("the connect was refused");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("needs a lookup"), "{err}");
    assert_eq!(
        reactor.stats().open_connections,
        1,
        "no outbound connection"
    );
}

#[test]
fn an_id_of_another_reactor_stops_nothing_here() {
    let mut ours = Reactor::new().unwrap();
    let mut theirs = Reactor::new().unwrap();
    let mine = ours
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    let other = theirs
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    assert_ne!(mine.id(), other.id());
    assert!(!ours.stop_listening(other.id()));
    assert_eq!(ours.listeners().len(), 1);
    let mut client = TcpStream::connect(mine.local_addr().unwrap()).unwrap();
    assert_eq!(echo_through(&mut ours, &mut client, b"mine"), b"mine");
}

#[test]
fn a_socket_made_elsewhere_that_does_not_listen_is_refused() {
    use socket2::{Domain, Socket, Type};
    let bound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    bound
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let not_listening: TcpListener = bound.into();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(not_listening, ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("not a listening socket"), "{err}");
    assert!(err.to_string().starts_with("listen on fd:"), "{err}");
    assert!(reactor.listeners().is_empty());
}

#[test]
fn a_listen_after_the_shutdown_began_is_refused_and_the_loop_still_ends() {
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap();
    reactor.shutdown_handle().shutdown();
    reactor.turn(Some(std::time::Duration::ZERO)).unwrap();
    let err = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), echo_factory())
        .unwrap_err();
    assert!(err.to_string().contains("shutting down"), "{err}");
    let deadline = Instant::now() + WAIT;
    while !reactor.is_finished() {
        assert!(Instant::now() < deadline, "the reactor did not finish");
        reactor
            .turn(Some(std::time::Duration::from_millis(10)))
            .unwrap();
    }
}

#[test]
fn serving_with_no_reactor_is_an_error() {
    for spread in [
        mio_reactor::Spread::ReusePort,
        mio_reactor::Spread::LeastLoaded,
    ] {
        let err = mio_reactor::ReactorThreads::serve(
            0,
            mio_reactor::Config::default(),
            "127.0.0.1:0",
            ListenOptions::default(),
            spread,
            |_, _| |_: &PeerAddr| Some(Echo),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{spread:?}: {err}");
    }
}

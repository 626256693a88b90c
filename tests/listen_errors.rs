//! A listen that fails says which address failed: the error keeps the operating system's
//! kind (`AddrInUse`...) and its message starts with `listen on ADDR:`, so a program that
//! listens on several addresses (or one of its users) can tell which one is taken.

mod util;

use std::io::{self, ErrorKind};
use std::net::{TcpListener, UdpSocket};

use mio_reactor::{
    Config, DatagramContext, DatagramHandler, Endpoint, ListenOptions, Reactor, ReactorThreads,
    Spread,
};
use util::Echo;

/// `err` has `kind`, and its message starts with `listen on WHAT: `.
fn assert_names(err: &io::Error, kind: ErrorKind, what: String) {
    assert_eq!(err.kind(), kind, "{err}");
    let prefix = format!("listen on {what}: ");
    assert!(err.to_string().starts_with(&prefix), "{err}");
}

/// A loopback TCP port held by a listener that did not set `SO_REUSEPORT`.
fn taken_tcp_port() -> (TcpListener, std::net::SocketAddr) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    (taken, addr)
}

#[test]
fn listening_on_a_taken_port_names_the_address() {
    let (_taken, addr) = taken_tcp_port();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(addr, ListenOptions::default(), |_| Some(Echo))
        .unwrap_err();
    assert_names(&err, ErrorKind::AddrInUse, format!("tcp:{addr}"));
}

#[test]
fn listening_with_reuseport_on_a_taken_port_names_the_address() {
    let (_taken, addr) = taken_tcp_port();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(addr, ListenOptions::default().reuse_port(true), |_| {
            Some(Echo)
        })
        .unwrap_err();
    assert_names(&err, ErrorKind::AddrInUse, format!("tcp:{addr}"));
}

#[test]
fn reactor_threads_on_a_taken_port_name_the_address() {
    let (_taken, addr) = taken_tcp_port();
    let err = ReactorThreads::serve(
        2,
        Config::default(),
        addr,
        ListenOptions::default(),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    )
    .map(drop)
    .unwrap_err();
    assert_names(&err, ErrorKind::AddrInUse, format!("tcp:{addr}"));
}

#[test]
fn listening_on_a_unix_path_in_a_missing_directory_names_the_path() {
    let path = std::env::temp_dir()
        .join(format!("mio-reactor-missing-{}", std::process::id()))
        .join("echo.sock");
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .listen(
            Endpoint::Unix(path.clone()),
            ListenOptions::default(),
            |_| Some(Echo),
        )
        .unwrap_err();
    assert_names(
        &err,
        ErrorKind::NotFound,
        format!("unix:{}", path.display()),
    );
}

/// Never gets a datagram: the socket is never bound.
struct Unbound;

impl DatagramHandler for Unbound {
    fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: std::net::SocketAddr) {}
}

#[test]
fn binding_udp_on_a_taken_port_names_the_address() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor.bind_udp(Endpoint::Udp(addr), Unbound).unwrap_err();
    assert_names(&err, ErrorKind::AddrInUse, format!("udp:{addr}"));
}

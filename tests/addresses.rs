//! IPv4, IPv6 and names: listeners on `[::1]` and `localhost`, and connects that try every
//! address a name resolves to, in order.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Config, ConnectOptions, Context, Handler, ListenOptions, Reactor};
use util::{client, init_logging, round_trip, Echo, Server, WAIT};

#[test]
fn an_ipv6_listener_serves_ipv6_clients() {
    let server = Server::start(Config::default(), |reactor| {
        reactor.listen("[::1]:0", ListenOptions::default(), |_| Some(Echo))
    });
    assert!(server.addr.is_ipv6());
    let mut stream = client(server.addr);
    assert_eq!(round_trip(&mut stream, b"over IPv6"), b"over IPv6");
    drop(stream);
    server.stop();
}

#[test]
fn a_localhost_listener_serves_clients_that_connect_by_name() {
    let server = Server::start(Config::default(), |reactor| {
        // What the examples do with `--addr localhost:PORT`: resolve first (blocking, outside
        // the loop), then listen on the address.
        let addr = std::net::ToSocketAddrs::to_socket_addrs("localhost:0")?
            .next()
            .unwrap();
        reactor.listen(addr, ListenOptions::default(), |_| Some(Echo))
    });
    let by_name = format!("localhost:{}", server.addr.port());
    let stream = std::net::TcpStream::connect(by_name).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut stream = stream;
    assert_eq!(round_trip(&mut stream, b"by name"), b"by name");
    drop(stream);
    server.stop();
}

/// Reports the peer it reached, or why it could not.
struct Probe(mpsc::Sender<Result<SocketAddr, CloseReason>>);

impl Handler for Probe {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.0.send(Ok(ctx.peer_addr().tcp().unwrap())).unwrap();
        ctx.close();
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        if !matches!(reason, CloseReason::Local | CloseReason::PeerClosed) {
            self.0.send(Err(reason.clone())).unwrap();
        }
    }
}

fn connect_and_see(addrs: &[SocketAddr]) -> Result<SocketAddr, CloseReason> {
    init_logging();
    let (tx, rx) = mpsc::channel();
    let mut reactor = Reactor::new().unwrap();
    // A list is tried in order until one address connects, as a name's addresses are.
    reactor
        .connect(addrs, ConnectOptions::default(), Probe(tx))
        .unwrap();
    let deadline = Instant::now() + WAIT;
    while !reactor.is_finished() {
        assert!(Instant::now() < deadline);
        reactor.turn(Some(Duration::from_millis(100))).unwrap();
    }
    rx.try_recv().expect("one outcome")
}

#[test]
fn a_connect_tries_each_address_in_order_until_one_answers() {
    let server = Server::echo(Config::default());
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let reached = connect_and_see(&[refused, refused, server.addr]);
    assert_eq!(reached, Ok(server.addr));
    server.stop();
}

#[test]
fn a_connect_reports_failure_once_every_address_failed() {
    let refused = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let outcome = connect_and_see(&[refused, refused]);
    assert_eq!(
        outcome,
        Err(CloseReason::ConnectFailed(
            std::io::ErrorKind::ConnectionRefused
        ))
    );
}

//! The three UDP echo servers under test (the `udp-*` scenarios), each run alone in a child
//! process like the stream servers (`servers.rs`): every datagram goes back to its sender.
//!
//! * `tokio`: what a tokio user writes: the current-thread runtime, one task,
//!   `loop { recv_from; send_to }` on a `tokio::net::UdpSocket` (the shape of tokio's
//!   `examples/echo-udp.rs`).
//! * `mio`: what a mio user writes by hand, in the style of mio's `udp_server` example: one
//!   edge-triggered `UdpSocket`, `recv_from` until `WouldBlock`, each datagram sent straight
//!   back with its own `send_to`. One system call per datagram each way: the baseline that
//!   batches are measured against.
//! * `reactor`: this crate, a `DatagramHandler` on `Reactor::bind_udp` with the default
//!   `Config` (batches on), as `examples/echo_server.rs --listen udp:` serves.
//!
//! A reply the kernel will not take now (`WouldBlock`) is dropped by all three: UDP may
//! drop it anyway, and the load generator counts it as lost. `faulty` flips a bit now and
//! then, to show that the load generator checks every echoed byte.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use mio_reactor::{DatagramContext, DatagramHandler, Endpoint};

use crate::servers::{announce, corrupt_now_and_then, ServerKind};
use crate::Fallible;

/// The largest UDP payload over IPv4: every server's receive buffer holds any datagram whole.
const MAX_DATAGRAM: usize = 65_507;

/// The child process's `main` in a UDP scenario: echo datagrams on `addr` (until the driver
/// closes standard input, which `servers::serve` watches).
pub fn serve(kind: ServerKind, addr: SocketAddr) -> Fallible<()> {
    match kind {
        ServerKind::Tokio => serve_tokio(addr),
        ServerKind::Mio => serve_mio(addr),
        ServerKind::Reactor => serve_reactor(addr),
        ServerKind::Faulty => serve_faulty(addr),
    }
}

fn serve_tokio(addr: SocketAddr) -> Fallible<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let socket = tokio::net::UdpSocket::bind(addr).await?;
        announce(socket.local_addr()?)?;
        let mut buf = vec![0; MAX_DATAGRAM];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
            // As tokio's example: wait until the reply can be sent. On loopback the send
            // buffer is never full for long; an error (ECONNREFUSED from an earlier reply's
            // ICMP) is not this datagram's, so it is ignored.
            let _ = socket.send_to(&buf[..n], from).await;
        }
    })
}

const SOCKET: Token = Token(0);

fn serve_mio(addr: SocketAddr) -> Fallible<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(16);
    let mut socket = UdpSocket::bind(addr)?;
    poll.registry()
        .register(&mut socket, SOCKET, Interest::READABLE)?;
    announce(socket.local_addr()?)?;
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        // Edge-triggered: drain the socket before waiting again.
        loop {
            let (n, from) = match socket.recv_from(&mut buf) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // An ICMP error for an earlier reply (the peer's port closed): not fatal.
                Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => continue,
                Err(err) => return Err(err.into()),
            };
            // WouldBlock or an ICMP error: the reply is dropped, as UDP may drop it.
            let _ = socket.send_to(&buf[..n], from);
        }
    }
}

/// The protocol, as in `examples/echo_server.rs`: each datagram back to its sender. A reply
/// that cannot be queued is dropped (and counted in `Stats`), as UDP may drop it anyway.
struct UdpEcho;

impl DatagramHandler for UdpEcho {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        let _ = ctx.send_to(data, from);
    }
}

fn serve_reactor(addr: SocketAddr) -> Fallible<()> {
    let mut reactor = mio_reactor::Reactor::new()?;
    let bound = reactor.bind_udp(Endpoint::Udp(addr), UdpEcho)?;
    announce(bound)?;
    reactor.run()?;
    Ok(())
}

/// A blocking echo with a deliberate fault, kept apart from the servers under test.
fn serve_faulty(addr: SocketAddr) -> Fallible<()> {
    let socket = std::net::UdpSocket::bind(addr)?;
    announce(socket.local_addr()?)?;
    let mut buf = vec![0; MAX_DATAGRAM];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        corrupt_now_and_then(&mut buf[..n]);
        let _ = socket.send_to(&buf[..n], from);
    }
}

//! The three echo servers under test, each run alone in a child process.
//!
//! * `tokio`: what a tokio user writes: the current-thread runtime, a task per connection,
//!   `read` into the task's buffer, `write_all` it back (the shape of tokio's
//!   `examples/echo.rs`).
//! * `mio`: what a mio user writes by hand, in the style of mio's `tcp_server` example: one
//!   `HashMap` from token to connection, read until `WouldBlock`, write straight back,
//!   buffer what the kernel refuses.
//! * `reactor`: this crate, with the same `Echo` handler as `examples/echo_server.rs`.
//!
//! A fourth, `faulty`, is not under test: it corrupts one byte now and then, to show that the
//! benchmark notices (`--server faulty` must fail, in the TLS and UDP scenarios too).
//!
//! In the UDP scenarios (`--udp`), the same three echo datagrams instead (`udp_servers.rs`).
//!
//! In the TLS scenarios (`--tls-dir` given), `tokio` is tokio-rustls (`tokio_tls_server.rs`)
//! and `reactor` is this crate's `listen` with `ListenOptions::tls` (the `tls` feature), both with the same
//! rustls `ServerConfig` (`tls.rs`); `mio` has no TLS server and sits those out.
//!
//! All three set `TCP_NODELAY` on accepted sockets, so none waits on Nagle. A server prints
//! `listening ADDR` once bound, and exits when its standard input closes: that is how the
//! driver stops it, without signals.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;

use crate::tokio_tls_server;
use crate::udp_servers;
use crate::Fallible;

/// The servers, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Tokio,
    Mio,
    Reactor,
    /// Not compared: a broken echo that checks the checking.
    Faulty,
}

impl ServerKind {
    pub const ALL: [ServerKind; 3] = [ServerKind::Tokio, ServerKind::Mio, ServerKind::Reactor];

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Tokio => "tokio",
            ServerKind::Mio => "mio",
            ServerKind::Reactor => "reactor",
            ServerKind::Faulty => "faulty",
        }
    }

    /// Whether it has a TLS server for the TLS scenarios.
    pub fn speaks_tls(self) -> bool {
        self != ServerKind::Mio
    }

    pub fn parse(name: &str) -> Option<ServerKind> {
        let all = ServerKind::ALL.into_iter().chain([ServerKind::Faulty]);
        all.into_iter().find(|kind| kind.name() == name)
    }
}

/// The tokio task's read buffer, by default. tokio's own example uses 1 KiB; 4 KiB (a page)
/// keeps a pipelined burst (16 × 512 B) from costing 8 reads. The reactor and the mio server
/// read into one shared 64 KiB buffer, which costs them nothing per connection, while a
/// tokio task owns its buffer: the size trades memory per connection for system calls per
/// byte, so `--tokio-buffer` changes it to see that trade.
pub const TOKIO_BUFFER: usize = 4 * 1024;

/// How the servers are set up, passed from the driver to the `--serve` child.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub tokio_buffer: usize,
    /// Writes per echo: 2 splits each reply in halves, written one after the other.
    pub reply_pieces: usize,
    /// Echo datagrams on a UDP socket instead (`udp_servers.rs`).
    pub udp: bool,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            tokio_buffer: TOKIO_BUFFER,
            reply_pieces: 1,
            udp: false,
        }
    }
}
/// The plain mio server's read buffer, shared by all connections (like the reactor's).
const MIO_BUFFER: usize = 64 * 1024;

/// The child process's `main`: serve on `addr` (over TLS with `tls`) until standard input
/// closes.
pub fn serve(
    kind: ServerKind,
    addr: SocketAddr,
    options: ServeOptions,
    tls: Option<Arc<ServerConfig>>,
) -> Fallible<()> {
    std::thread::spawn(|| {
        // Read until EOF (or an error): the driver closed our stdin, so we are done.
        for line in io::stdin().lock().lines() {
            if line.is_err() {
                break;
            }
        }
        std::process::exit(0);
    });
    if options.udp {
        return udp_servers::serve(kind, addr);
    }
    match (kind, tls) {
        (ServerKind::Tokio, None) => serve_tokio(addr, options),
        (ServerKind::Tokio, Some(tls)) => tokio_tls_server::serve(addr, options, tls),
        (ServerKind::Mio, None) => serve_mio(addr, options.reply_pieces),
        (ServerKind::Mio, Some(_)) => Err("the mio server has no TLS".into()),
        (ServerKind::Reactor, tls) => serve_reactor(addr, options.reply_pieces, tls),
        (ServerKind::Faulty, tls) => serve_faulty(addr, tls),
    }
}

/// Tells the driver where we listen.
pub fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening {addr}")?;
    out.flush()
}

/// `data` in `pieces` parts of about equal size, in order (all of it when `pieces` is 1).
fn pieces(data: &[u8], pieces: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(data.len().div_ceil(pieces.max(1)).max(1))
}

fn serve_tokio(addr: SocketAddr, options: ServeOptions) -> Fallible<()> {
    serve_tokio_with(addr, move |socket| tokio_echo(socket, options))
}

/// The tokio servers' shape: the current-thread runtime, a listener, a task per accepted
/// connection running `serve_connection` on it.
pub fn serve_tokio_with<F, Fut>(addr: SocketAddr, mut serve_connection: F) -> Fallible<()>
where
    F: FnMut(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        announce(listener.local_addr()?)?;
        loop {
            let (socket, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    eprintln!("tokio server: accept: {err}");
                    continue;
                }
            };
            socket.set_nodelay(true)?;
            tokio::spawn(serve_connection(socket));
        }
    })
}

/// The tokio echo task: `read` into its own buffer, `write_all` it back, until EOF or an
/// error, on any stream (plain TCP, or tokio-rustls's).
pub async fn tokio_echo<S>(mut stream: S, options: ServeOptions)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0; options.tokio_buffer];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for piece in pieces(&buf[..n], options.reply_pieces) {
            if stream.write_all(piece).await.is_err() {
                return;
            }
        }
        // A no-op on TCP; on TLS it pushes out any record still held in the session.
        if stream.flush().await.is_err() {
            return;
        }
    }
}

const LISTENER: Token = Token(0);

/// A connection of the plain mio server: its socket and the echo the kernel did not take.
struct MioConn {
    stream: TcpStream,
    pending: Vec<u8>,
    reply_pieces: usize,
}

fn serve_mio(addr: SocketAddr, reply_pieces: usize) -> Fallible<()> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut listener = TcpListener::bind(addr)?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    announce(listener.local_addr()?)?;

    let mut connections: HashMap<Token, MioConn> = HashMap::new();
    let mut next_token = 1;
    let mut buf = vec![0; MIO_BUFFER];
    loop {
        if let Err(err) = poll.poll(&mut events, None) {
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err.into());
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                loop {
                    let (mut stream, _) = match listener.accept() {
                        Ok(accepted) => accepted,
                        Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                        Err(err) => {
                            eprintln!("mio server: accept: {err}");
                            break;
                        }
                    };
                    stream.set_nodelay(true)?;
                    let token = Token(next_token);
                    next_token += 1;
                    poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    )?;
                    let pending = Vec::new();
                    let conn = MioConn {
                        stream,
                        pending,
                        reply_pieces,
                    };
                    connections.insert(token, conn);
                }
                continue;
            }
            let finished = match connections.get_mut(&event.token()) {
                Some(conn) => conn.handle(event, &mut buf).is_err(),
                None => false, // a stale event for a closed connection
            };
            if finished {
                if let Some(mut conn) = connections.remove(&event.token()) {
                    poll.registry().deregister(&mut conn.stream)?;
                }
            }
        }
    }
}

impl MioConn {
    /// Serves one event. An error (EOF included) means the connection is over.
    fn handle(&mut self, event: &mio::event::Event, buf: &mut [u8]) -> io::Result<()> {
        if event.is_writable() && !self.pending.is_empty() {
            let written = write_until_blocked(&mut self.stream, &self.pending)?;
            self.pending.drain(..written);
        }
        if event.is_readable() {
            loop {
                match self.stream.read(buf) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => {
                        for piece in pieces(&buf[..n], self.reply_pieces) {
                            self.echo(piece)?;
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(())
    }

    fn echo(&mut self, data: &[u8]) -> io::Result<()> {
        let written = if self.pending.is_empty() {
            write_until_blocked(&mut self.stream, data)?
        } else {
            0 // keep the order: behind what is already waiting
        };
        self.pending.extend_from_slice(&data[written..]);
        Ok(())
    }
}

/// Writes until everything is written or the kernel says `WouldBlock`; returns bytes written.
fn write_until_blocked(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < data.len() {
        match stream.write(&data[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

/// The protocol, as in `examples/echo_server.rs`: write back whatever arrives (in
/// `reply_pieces` writes).
struct Echo {
    reply_pieces: usize,
}

impl mio_reactor::Handler for Echo {
    fn on_data(&mut self, ctx: &mut mio_reactor::Context<'_>, data: &[u8]) -> usize {
        for piece in pieces(data, self.reply_pieces) {
            ctx.write(piece);
        }
        data.len()
    }
}

fn serve_reactor(
    addr: SocketAddr,
    reply_pieces: usize,
    tls: Option<Arc<ServerConfig>>,
) -> Fallible<()> {
    // The default config, but with room for the held-connections run (19,000 and more).
    let config = mio_reactor::Config::default().max_connections(1_000_000);
    let mut reactor = mio_reactor::Reactor::with_config(config)?;
    let factory = move |_: &_| Some(Echo { reply_pieces });
    let bound = match tls {
        None => reactor
            .listen(addr, mio_reactor::ListenOptions::default(), factory)?
            .local_addr()?,
        Some(tls) => listen_tls(&mut reactor, addr, tls, factory)?,
    };
    announce(bound)?;
    reactor.run()?;
    Ok(())
}

#[cfg(feature = "tls")]
fn listen_tls(
    reactor: &mut mio_reactor::Reactor,
    addr: SocketAddr,
    tls: Arc<ServerConfig>,
    factory: impl FnMut(&mio_reactor::PeerAddr) -> Option<Echo> + 'static,
) -> Fallible<SocketAddr> {
    let options = mio_reactor::ListenOptions::default().tls(tls);
    Ok(reactor.listen(addr, options, factory)?.local_addr()?)
}

#[cfg(not(feature = "tls"))]
fn listen_tls(
    _: &mut mio_reactor::Reactor,
    _: SocketAddr,
    _: Arc<ServerConfig>,
    _: impl FnMut(&mio_reactor::PeerAddr) -> Option<Echo> + 'static,
) -> Fallible<SocketAddr> {
    Err("the reactor's TLS server needs the `tls` feature: cargo bench --features tls".into())
}

/// The faulty server flips one bit every this many bytes it echoes, over all its
/// connections: soon enough for any scenario, whether it has 50 busy connections or 1,000
/// that echo a few KB each.
const FAULT_EVERY: usize = 100_000;

/// Bytes the faulty server echoed so far, over all its connections (threads).
static FAULTY_ECHOED: AtomicUsize = AtomicUsize::new(0);

/// A thread-per-connection echo (over blocking rustls with `tls`) with a deliberate fault,
/// kept apart from the servers under test so that none of them carries a check for it.
fn serve_faulty(addr: SocketAddr, tls: Option<Arc<ServerConfig>>) -> Fallible<()> {
    let listener = std::net::TcpListener::bind(addr)?;
    announce(listener.local_addr()?)?;
    for stream in listener.incoming() {
        let stream = stream?;
        stream.set_nodelay(true)?;
        match &tls {
            None => std::thread::spawn(move || echo_faultily(stream)),
            Some(tls) => {
                let session = rustls::ServerConnection::new(tls.clone())?;
                let stream = rustls::StreamOwned::new(session, stream);
                std::thread::spawn(move || echo_faultily(stream))
            }
        };
    }
    Ok(())
}

/// Flips a bit of `echo`'s last byte each time the bytes echoed so far (over every
/// connection or datagram) cross a multiple of [`FAULT_EVERY`].
pub fn corrupt_now_and_then(echo: &mut [u8]) {
    let n = echo.len();
    let echoed = FAULTY_ECHOED.fetch_add(n, Ordering::Relaxed);
    if n > 0 && echoed / FAULT_EVERY != (echoed + n) / FAULT_EVERY {
        echo[n - 1] ^= 0x10;
    }
}

fn echo_faultily(mut stream: impl Read + Write) {
    let mut buf = vec![0; TOKIO_BUFFER];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        corrupt_now_and_then(&mut buf[..n]);
        if stream.write_all(&buf[..n]).is_err() || stream.flush().is_err() {
            return;
        }
    }
}

//! Shared test helpers: a reactor running on its own thread, handlers that report what
//! happened to them, and clients whose every wait is bounded.
#![allow(dead_code)] // each test file uses a different part

pub mod http;
pub mod netns;
pub mod programs;
pub mod redis;
#[cfg(feature = "tls")]
pub mod tls;
pub mod wire;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio_reactor::{
    CloseReason, Config, ConnId, Context, Handler, ListenOptions, Listening, Reactor,
    ShutdownHandle, Stats,
};

/// How long any single wait in a test may take before the test fails. Generous, because the
/// machine is small and shared; a healthy run never comes close.
pub const WAIT: Duration = Duration::from_secs(20);

/// Sets up logging once; `RUST_LOG=debug cargo test` shows the reactor's life.
pub fn init_logging() {
    let _ = env_logger::builder().is_test(true).try_init();
}

/// A reactor serving on its own thread.
pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: ShutdownHandle,
    done: Receiver<io::Result<Stats>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a reactor with `config`; `setup` registers its listeners (handlers are not
    /// `Send`, so they are made on the reactor's thread) and returns the address to use: a
    /// [`SocketAddr`], or the [`Listening`] of a TCP listen (its first TCP address).
    pub fn start<F, A>(config: Config, setup: F) -> Server
    where
        F: FnOnce(&mut Reactor) -> io::Result<A> + Send + 'static,
        A: ServerAddr,
    {
        init_logging();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut reactor = Reactor::with_config(config).expect("reactor");
            let addr = setup(&mut reactor)
                .and_then(ServerAddr::server_addr)
                .expect("listen");
            ready_tx
                .send((addr, reactor.shutdown_handle()))
                .expect("test alive");
            let result = reactor.run().map(|()| reactor.stats());
            let _ = done_tx.send(result);
        });
        let (addr, shutdown) = ready_rx.recv_timeout(WAIT).expect("server started");
        Server {
            addr,
            shutdown,
            done,
            thread: Some(thread),
        }
    }

    /// An echo server on 127.0.0.1 with `config`.
    pub fn echo(config: Config) -> Server {
        Server::start(config, |reactor| {
            reactor.listen(loopback(), ListenOptions::default(), |_| Some(Echo))
        })
    }

    /// An echo server whose connections report their open and close on the receiver.
    pub fn reporting_echo(config: Config) -> (Server, Receiver<Seen>) {
        let (events, seen) = mpsc::channel();
        let server = Server::start(config, move |reactor| {
            reactor.listen(loopback(), ListenOptions::default(), move |_| {
                Some(Reporting {
                    inner: Echo,
                    events: events.clone(),
                })
            })
        });
        (server, seen)
    }

    /// Requests a graceful shutdown and waits (bounded) for `run()` to return.
    pub fn stop(self) -> Stats {
        self.shutdown.shutdown();
        self.wait()
    }

    /// Waits (bounded) for `run()` to return, and returns the final stats.
    pub fn wait(mut self) -> Stats {
        let stats = self
            .done
            .recv_timeout(WAIT)
            .expect("run() returned in time")
            .expect("run() succeeded");
        self.thread.take().unwrap().join().unwrap();
        stats
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test must not leave the reactor thread running: abort it.
        if self.thread.is_some() {
            self.shutdown.shutdown();
            self.shutdown.shutdown();
        }
    }
}

/// What a [`Server::start`] setup returns: the address clients connect to.
pub trait ServerAddr {
    fn server_addr(self) -> io::Result<SocketAddr>;
}

impl ServerAddr for SocketAddr {
    fn server_addr(self) -> io::Result<SocketAddr> {
        Ok(self)
    }
}

impl ServerAddr for Listening {
    fn server_addr(self) -> io::Result<SocketAddr> {
        self.local_addr()
    }
}

/// Turns `reactor` (on this thread) until `done(reactor)`, failing after [`WAIT`] with the
/// reactor's stats in the message.
pub fn turn_until(reactor: &mut Reactor, mut done: impl FnMut(&Reactor) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(reactor) {
        assert!(
            Instant::now() < deadline,
            "condition not reached in {WAIT:?}: {:?}",
            reactor.stats()
        );
        reactor.turn(Some(Duration::from_millis(10))).expect("turn");
    }
}

/// 127.0.0.1 with an ephemeral port.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Writes back whatever arrives.
pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// What a [`Reporting`] handler saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Open(ConnId),
    Closed(ConnId, CloseReason),
}

/// Wraps a handler and reports open and close (with the reason) on a channel.
pub struct Reporting<H> {
    pub inner: H,
    pub events: Sender<Seen>,
}

impl<H: Handler> Handler for Reporting<H> {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = self.events.send(Seen::Open(ctx.id()));
        self.inner.on_open(ctx);
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.inner.on_data(ctx, data)
    }
    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        self.inner.on_eof(ctx);
    }
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        self.inner.on_drain(ctx);
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: mio_reactor::TimerId) {
        self.inner.on_timer(ctx, timer);
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        self.inner.on_close(ctx, reason);
        let _ = self.events.send(Seen::Closed(ctx.id(), reason.clone()));
    }
}

/// Waits (bounded) for the next close report and returns its reason.
pub fn next_close(events: &Receiver<Seen>) -> CloseReason {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events
            .recv_timeout(left)
            .expect("a connection closed in time")
        {
            Seen::Closed(_, reason) => return reason,
            Seen::Open(_) => continue,
        }
    }
}

/// A blocking client whose reads and writes give up after [`WAIT`].
pub fn client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.set_write_timeout(Some(WAIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads until EOF (bounded by the stream's timeouts).
pub fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("read to EOF");
    all
}

/// Sends `data` and reads exactly as many bytes back.
pub fn round_trip(stream: &mut TcpStream, data: &[u8]) -> Vec<u8> {
    stream.write_all(data).expect("write");
    let mut reply = vec![0; data.len()];
    stream.read_exact(&mut reply).expect("read the echo");
    reply
}

/// Deterministic pseudo-random bytes (xorshift64), different for each seed.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// A cheap content hash, to compare megabytes without keeping two copies around.
pub fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(target_os = "linux")]
/// Sends `payload` to `to` as one GSO message of `segment_size`-byte datagrams (the last
/// shorter); returns the sender's address.
pub fn send_segmented(to: SocketAddr, payload: &[u8], segment_size: u16) -> SocketAddr {
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    send_segmented_from(&client, to, payload, segment_size);
    client.local_addr().unwrap()
}

#[cfg(target_os = "linux")]
/// Sends `payload` from `client` to `to` as one GSO message.
pub fn send_segmented_from(
    client: &std::net::UdpSocket,
    to: SocketAddr,
    payload: &[u8],
    segment_size: u16,
) {
    let SocketAddr::V4(to) = to else {
        panic!("an IPv4 address")
    };
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockaddrIn};
    use std::os::fd::AsRawFd;
    let to = SockaddrIn::from(to);
    let iov = [std::io::IoSlice::new(payload)];
    let control = [ControlMessage::UdpGsoSegments(&segment_size)];
    let sent = sendmsg(
        client.as_raw_fd(),
        &iov,
        &control,
        MsgFlags::empty(),
        Some(&to),
    )
    .unwrap();
    assert_eq!(sent, payload.len());
}

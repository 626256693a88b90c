//! One connection of the load generator: opening it, sending the pattern, checking the echo.
//!
//! Shared by the main load generator (`load.rs`) and the helper processes that hold many
//! connections (`held.rs`). Everything here fails loudly: a wrong byte, a byte too many, an
//! early EOF or a failed connect is an error that ends the benchmark with a non-zero exit.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::pattern::{Pattern, CHUNK};
use crate::Fallible;

/// Connects in flight at once while opening many: below the servers' listen backlog
/// (1024 for mio and tokio), so that no SYN is dropped and retried a second later.
const CONNECTS_IN_FLIGHT: usize = 256;

/// A client connection sending messages of a fixed size and checking every echoed byte.
pub struct ClientConn {
    stream: TcpStream,
    /// Its number, for error messages.
    index: usize,
    /// Where its byte stream starts in the pattern table.
    start: usize,
    size: u64,
    /// Bytes asked for (messages queued × size), written, and echoed back.
    queued: u64,
    sent: u64,
    received: u64,
    /// When each message not yet fully echoed was queued, oldest first.
    sent_at: VecDeque<Instant>,
    connected: bool,
    writable: bool,
}

impl ClientConn {
    /// Starts a non-blocking connect to `addr`, from `source` if given (bind before
    /// connect: each source address has its own ~28,000 ephemeral ports).
    fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        index: usize,
        size: usize,
    ) -> Fallible<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        // Small messages go out at once: Nagle would hold a pipelined tail for an ACK.
        socket.set_nodelay(true)?;
        if let Some(ip) = source {
            socket
                .bind(&SocketAddr::new(ip, 0).into())
                .map_err(|err| format!("bind to {ip}: {err}"))?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => return Err(format!("connection {index}: connect to {addr}: {err}").into()),
        }
        Ok(ClientConn {
            stream: TcpStream::from_std(socket.into()),
            index,
            start: Pattern::start_of(index),
            size: size as u64,
            queued: 0,
            sent: 0,
            received: 0,
            sent_at: VecDeque::new(),
            connected: false,
            writable: false,
        })
    }

    /// Queues one message, sent at `now` as far as latency is concerned.
    pub fn queue(&mut self, now: Instant) {
        self.queued += self.size;
        self.sent_at.push_back(now);
    }

    /// Messages sent (or queued) whose echo has not fully arrived.
    pub fn in_flight(&self) -> usize {
        self.sent_at.len()
    }

    /// A writable event: the send buffer has room again.
    pub fn set_writable(&mut self) {
        self.writable = true;
    }

    /// Writes queued bytes until all are written or the socket is full.
    pub fn flush(&mut self, pattern: &Pattern) -> Fallible<()> {
        while self.writable && self.sent < self.queued {
            let len = ((self.queued - self.sent) as usize).min(CHUNK);
            match self.stream.write(pattern.slice(self.start, self.sent, len)) {
                Ok(0) => return Err(self.fail("write returned 0")),
                Ok(n) => {
                    self.sent += n as u64;
                    if n < len {
                        self.writable = false; // a short write: the buffer is full
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.fail(&format!("write: {err}"))),
            }
        }
        Ok(())
    }

    /// Reads what has arrived, checks it, and calls `done` with the send time of every
    /// message whose echo is now complete.
    pub fn read(
        &mut self,
        pattern: &Pattern,
        buf: &mut [u8],
        mut done: impl FnMut(Instant),
    ) -> Fallible<()> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Err(self.fail("the server closed the connection (EOF)")),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.fail(&format!("read: {err}"))),
            };
            if self.received + n as u64 > self.sent {
                let extra = self.received + n as u64 - self.sent;
                return Err(self.fail(&format!("{extra} bytes echoed that were never sent")));
            }
            if let Err(at) = pattern.check(self.start, self.received, &buf[..n]) {
                let offset = self.received + at as u64;
                let expected = pattern.slice(self.start, offset, 1)[0];
                return Err(self.fail(&format!(
                    "wrong echo at stream offset {offset}: expected {expected:#04x}, got {:#04x}",
                    buf[at]
                )));
            }
            let completed_before = self.received / self.size;
            self.received += n as u64;
            for _ in completed_before..self.received / self.size {
                let sent_at = self.sent_at.pop_front().expect("a queued message per echo");
                done(sent_at);
            }
            if n < buf.len() {
                // A short read: drained for now; the next arrival is a new edge.
                return Ok(());
            }
        }
    }

    fn fail(&self, what: &str) -> Box<dyn std::error::Error> {
        format!(
            "connection {}: {what} (sent {} B, echoed {} B)",
            self.index, self.sent, self.received
        )
        .into()
    }
}

/// Opens `count` connections to `addr` and waits until every one is established. Their
/// tokens are their indexes in the returned vector; `first` numbers them (for their
/// pattern and error messages) so that processes sharing a server use distinct streams.
pub fn open_many(
    poll: &mut Poll,
    addr: SocketAddr,
    count: usize,
    size: usize,
    source: Option<IpAddr>,
    first: usize,
) -> Fallible<Vec<ClientConn>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut conns: Vec<ClientConn> = Vec::with_capacity(count);
    let mut events = Events::with_capacity(1024);
    let mut connected = 0;
    while connected < count {
        while conns.len() < count && conns.len() - connected < CONNECTS_IN_FLIGHT {
            let index = conns.len();
            let mut conn = ClientConn::connect(addr, source, first + index, size)?;
            poll.registry().register(
                &mut conn.stream,
                Token(index),
                Interest::READABLE | Interest::WRITABLE,
            )?;
            conns.push(conn);
        }
        if Instant::now() > deadline {
            return Err(format!("only {connected} of {count} connections opened in 60 s").into());
        }
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if conn.connected || !(event.is_writable() || event.is_error()) {
                continue;
            }
            if let Some(err) = conn.stream.take_error()? {
                return Err(conn.fail(&format!("connect to {addr}: {err}")));
            }
            match conn.stream.peer_addr() {
                Ok(_) => {
                    conn.connected = true;
                    conn.writable = true;
                    connected += 1;
                }
                Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
                Err(err) => return Err(conn.fail(&format!("connect to {addr}: {err}"))),
            }
        }
    }
    Ok(conns)
}

/// Sends one message on every connection and waits for all the echoes: proves the server
/// accepted and serves each one. Returns how long the round took and the latencies.
pub fn round_trip_all(
    poll: &mut Poll,
    conns: &mut [ClientConn],
    pattern: &Pattern,
    latencies: &mut crate::histogram::Histogram,
) -> Fallible<Duration> {
    let started = Instant::now();
    for conn in conns.iter_mut() {
        conn.queue(started);
        conn.flush(pattern)?;
    }
    let mut waiting = conns.iter().filter(|c| c.in_flight() > 0).count();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; CHUNK];
    let mut last_progress = Instant::now();
    while waiting > 0 {
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        let now = Instant::now();
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if event.is_writable() {
                conn.set_writable();
                conn.flush(pattern)?;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let before = conn.in_flight();
                conn.read(pattern, &mut buf, |sent_at| {
                    latencies.record(now.saturating_duration_since(sent_at).as_nanos() as u64)
                })?;
                if before > 0 && conn.in_flight() == 0 {
                    waiting -= 1;
                    last_progress = now;
                }
            }
        }
        if now.duration_since(last_progress) > Duration::from_secs(30) {
            return Err(format!("{waiting} echoes missing after 30 s without progress").into());
        }
    }
    Ok(started.elapsed())
}

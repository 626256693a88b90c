//! One connection of the load generator: opening it, sending the pattern, checking the echo,
//! in plaintext or through a rustls client session.
//!
//! Shared by the main load generator (`load.rs`) and the helper processes that hold many
//! connections (`held.rs`). Everything here fails loudly: a wrong byte, a byte too many, an
//! early EOF, a TLS error or a failed connect is an error that ends the benchmark with a
//! non-zero exit.
//!
//! Over TLS the session is driven the sans-I/O way, as the reactor drives its own: plaintext
//! goes into `writer()`, records leave with `write_tls` until the session has nothing to send
//! or the socket is full; records come in with `read_tls` until `WouldBlock`, each batch
//! followed by `process_new_packets` and a drain of `reader()`.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::{ClientConfig, ClientConnection};
use socket2::{Domain, Protocol, Socket, Type};

use crate::pattern::{Pattern, CHUNK};
use crate::tls;
use crate::Fallible;

/// Connects in flight at once while opening many: below the servers' listen backlog
/// (1024 for mio and tokio), so that no SYN is dropped and retried a second later.
const CONNECTS_IN_FLIGHT: usize = 256;

/// Where the load goes: a server's address, and the client config if it speaks TLS.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub tls: Option<Arc<ClientConfig>>,
}

/// A client connection sending messages of a fixed size and checking every echoed byte.
pub struct ClientConn {
    stream: TcpStream,
    /// The TLS session, on a TLS target.
    tls: Option<ClientConnection>,
    /// Its number, for error messages.
    index: usize,
    /// Where its byte stream starts in the pattern table.
    start: usize,
    size: u64,
    /// Bytes asked for (messages queued × size), written (handed to the TLS session, over
    /// TLS), and echoed back.
    queued: u64,
    sent: u64,
    received: u64,
    /// When each message not yet fully echoed was queued, oldest first.
    sent_at: VecDeque<Instant>,
    connected: bool,
    writable: bool,
}

impl ClientConn {
    /// Starts a non-blocking connect to the target, from `source` if given (bind before
    /// connect: each source address has its own ~28,000 ephemeral ports), and registers it
    /// with `poll` under `token`.
    pub fn open(
        poll: &Poll,
        token: Token,
        target: &Target,
        source: Option<IpAddr>,
        index: usize,
        size: usize,
    ) -> Fallible<Self> {
        let addr = target.addr;
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
        let tls = match &target.tls {
            Some(config) => Some(ClientConnection::new(config.clone(), tls::server_name())?),
            None => None,
        };
        let mut conn = ClientConn {
            stream: TcpStream::from_std(socket.into()),
            tls,
            index,
            start: Pattern::start_of(index),
            size: size as u64,
            queued: 0,
            sent: 0,
            received: 0,
            sent_at: VecDeque::new(),
            connected: false,
            writable: false,
        };
        poll.registry().register(
            &mut conn.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        Ok(conn)
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

    /// Connected, and over TLS the handshake done: ready for the measured load.
    fn is_established(&self) -> bool {
        self.connected && self.tls.as_ref().is_none_or(|tls| !tls.is_handshaking())
    }

    /// Writes queued bytes until all are written or the socket is full.
    pub fn flush(&mut self, pattern: &Pattern) -> Fallible<()> {
        if self.tls.is_some() {
            return self.flush_tls(pattern);
        }
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

    /// Hands queued plaintext to the session as far as its buffer takes it, and writes its
    /// records (the handshake's too) until it has none left or the socket is full.
    fn flush_tls(&mut self, pattern: &Pattern) -> Fallible<()> {
        loop {
            let tls = self.tls.as_mut().expect("a TLS connection");
            while self.sent < self.queued {
                let len = ((self.queued - self.sent) as usize).min(CHUNK);
                let slice = pattern.slice(self.start, self.sent, len);
                let taken = tls.writer().write(slice)?;
                if taken == 0 {
                    break; // its buffer is full until records leave
                }
                self.sent += taken as u64;
            }
            if !(self.writable && tls.wants_write()) {
                return Ok(());
            }
            match tls.write_tls(&mut self.stream) {
                Ok(0) => return Err(self.fail("write returned 0")),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.fail(&format!("write: {err}"))),
            }
        }
    }

    /// Reads what has arrived, checks it, and calls `done` with the send time of every
    /// message whose echo is now complete.
    pub fn read(
        &mut self,
        pattern: &Pattern,
        buf: &mut [u8],
        mut done: impl FnMut(Instant),
    ) -> Fallible<()> {
        if self.tls.is_some() {
            return self.read_tls(pattern, buf, done);
        }
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => return Err(self.fail("the server closed the connection (EOF)")),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.fail(&format!("read: {err}"))),
            };
            self.check_echo(pattern, &buf[..n], &mut done)?;
            if n < buf.len() {
                // A short read: drained for now; the next arrival is a new edge.
                return Ok(());
            }
        }
    }

    /// Reads TLS records until the socket is drained, decrypting and checking each batch.
    fn read_tls(
        &mut self,
        pattern: &Pattern,
        buf: &mut [u8],
        mut done: impl FnMut(Instant),
    ) -> Fallible<()> {
        loop {
            let tls = self.tls.as_mut().expect("a TLS connection");
            match tls.read_tls(&mut self.stream) {
                Ok(0) => return Err(self.fail("the server closed the connection (EOF)")),
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.fail(&format!("read: {err}"))),
            }
            if let Err(err) = tls.process_new_packets() {
                return Err(self.fail(&format!("TLS: {err}")));
            }
            // Drain the plaintext, or rustls refuses further records.
            loop {
                let tls = self.tls.as_mut().expect("a TLS connection");
                let n = match tls.reader().read(buf) {
                    Ok(0) => return Err(self.fail("the server sent close_notify")),
                    Ok(n) => n,
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(err) => return Err(self.fail(&format!("TLS read: {err}"))),
                };
                self.check_echo(pattern, &buf[..n], &mut done)?;
            }
        }
    }

    /// Checks `echoed` against what this connection sent, and calls `done` for every
    /// message it completes.
    fn check_echo(
        &mut self,
        pattern: &Pattern,
        echoed: &[u8],
        done: &mut impl FnMut(Instant),
    ) -> Fallible<()> {
        let n = echoed.len() as u64;
        if self.received + n > self.sent {
            let extra = self.received + n - self.sent;
            return Err(self.fail(&format!("{extra} bytes echoed that were never sent")));
        }
        if let Err(at) = pattern.check(self.start, self.received, echoed) {
            let offset = self.received + at as u64;
            let expected = pattern.slice(self.start, offset, 1)[0];
            return Err(self.fail(&format!(
                "wrong echo at stream offset {offset}: expected {expected:#04x}, got {:#04x}",
                echoed[at]
            )));
        }
        let completed_before = self.received / self.size;
        self.received += n;
        for _ in completed_before..self.received / self.size {
            let sent_at = self.sent_at.pop_front().expect("a queued message per echo");
            done(sent_at);
        }
        Ok(())
    }

    /// Closes the connection as a well-behaved client does: over TLS, with a `close_notify`
    /// first (sent if the socket takes it at once), then the socket is closed.
    pub fn close(mut self, poll: &Poll) -> Fallible<()> {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            // Best effort: a full socket only loses the alert, and the server copes.
            let _ = tls.write_tls(&mut self.stream);
        }
        poll.registry().deregister(&mut self.stream)?;
        Ok(())
    }

    /// The connect finished (a writable or error event): checks whether it failed.
    fn check_connected(&mut self, addr: SocketAddr) -> Fallible<()> {
        if let Some(err) = self.stream.take_error()? {
            return Err(self.fail(&format!("connect to {addr}: {err}")));
        }
        match self.stream.peer_addr() {
            Ok(_) => {
                self.connected = true;
                self.writable = true;
            }
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
            Err(err) => return Err(self.fail(&format!("connect to {addr}: {err}"))),
        }
        Ok(())
    }

    fn fail(&self, what: &str) -> Box<dyn std::error::Error> {
        format!(
            "connection {}: {what} (sent {} B, echoed {} B)",
            self.index, self.sent, self.received
        )
        .into()
    }
}

/// Opens `count` connections to `target` and waits until every one is established (over
/// TLS: handshaken). Their tokens are their indexes in the returned vector; `first` numbers
/// them (for their pattern and error messages) so that processes sharing a server use
/// distinct streams.
pub fn open_many(
    poll: &mut Poll,
    target: &Target,
    count: usize,
    size: usize,
    source: Option<IpAddr>,
    first: usize,
) -> Fallible<Vec<ClientConn>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let pattern = Pattern::new();
    let mut conns: Vec<ClientConn> = Vec::with_capacity(count);
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; CHUNK];
    let mut established = 0;
    while established < count {
        while conns.len() < count && conns.len() - established < CONNECTS_IN_FLIGHT {
            let index = conns.len();
            let token = Token(index);
            conns.push(ClientConn::open(
                poll,
                token,
                target,
                source,
                first + index,
                size,
            )?);
        }
        if Instant::now() > deadline {
            return Err(format!("only {established} of {count} connections opened in 60 s").into());
        }
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        for event in events.iter() {
            let conn = &mut conns[event.token().0];
            if conn.is_established() {
                continue;
            }
            if !conn.connected {
                if !(event.is_writable() || event.is_error()) {
                    continue;
                }
                conn.check_connected(target.addr)?;
            }
            if !conn.connected {
                continue;
            }
            // Over TLS: the handshake, driven like the load's own traffic (nothing is
            // queued yet, so any plaintext from the server is an error).
            if conn.tls.is_some() {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    conn.read(&pattern, &mut buf, |_| {})?;
                }
                if event.is_writable() {
                    conn.set_writable();
                }
                conn.flush(&pattern)?;
            }
            if conn.is_established() {
                established += 1;
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
                conn.flush(pattern)?;
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

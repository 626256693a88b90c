//! One TLS client on its own `mio::Poll`, for what a blocking rustls stream cannot do: keep
//! sending while reading no plaintext at all (a peer that never reads), then read and check
//! the whole echo while still sending.
//!
//! Like the swarm, it is not built on `mio_reactor` (the judge does not share the bugs of
//! the judged), and it regenerates its [`Pattern`] to check the echo instead of keeping a
//! copy, so 1 GiB costs no memory. During the handshake it always reads: TLS cannot send
//! application data before the server's flight has been read. After that, "not reading"
//! means not reading the socket at all, so the server's records pile up in the kernels'
//! buffers and then in the server, exactly as with a plaintext peer that never reads.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use mio_reactor::rustls::pki_types::ServerName;
use mio_reactor::rustls::{ClientConfig, ClientConnection};

use super::pattern::Pattern;

/// Plaintext generated at a time.
const CHUNK: usize = 64 * 1024;

/// Read-write rounds per turn: a fast transfer still lets the caller's condition be checked.
const ROUNDS: usize = 64;

/// How the client ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEnd {
    /// The server's close_notify arrived.
    CloseNotify,
    /// The TCP stream ended without a close_notify.
    Eof,
    /// A TLS or socket error, or an echo that differed from what was sent (the text says
    /// which).
    Failed(String),
}

/// A TLS client that sends its pattern and, while reading, checks each byte of the echo.
pub struct TlsPeer {
    poll: Poll,
    events: Events,
    sock: TcpStream,
    conn: ClientConnection,
    sender: Pattern,
    checker: Pattern,
    /// Generated plaintext not yet taken by the session.
    pending: Vec<u8>,
    pending_at: usize,
    /// Plaintext not generated yet.
    to_send: u64,
    /// Plaintext the session took (and encrypted).
    pub sent: u64,
    /// Plaintext echoed, each byte as sent.
    pub received: u64,
    pub end: Option<TlsEnd>,
    reading: bool,
    /// Send close_notify and a FIN once everything is sent.
    closing: bool,
    close_notify_queued: bool,
    fin_sent: bool,
    /// The last turn ran out of rounds with work left: poll without waiting.
    busy: bool,
    read_buf: Vec<u8>,
    expected: Vec<u8>,
}

impl TlsPeer {
    /// Starts a connect to `addr` and a session for `localhost` that will send `bytes` of
    /// `pattern`.
    pub fn connect(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        pattern: Pattern,
        bytes: u64,
    ) -> io::Result<TlsPeer> {
        let poll = Poll::new()?;
        let mut sock = TcpStream::connect(addr)?;
        sock.set_nodelay(true)?;
        poll.registry()
            .register(&mut sock, Token(0), Interest::READABLE | Interest::WRITABLE)?;
        let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        Ok(TlsPeer {
            poll,
            events: Events::with_capacity(8),
            sock,
            conn,
            checker: pattern.clone(),
            sender: pattern,
            pending: Vec::new(),
            pending_at: 0,
            to_send: bytes,
            sent: 0,
            received: 0,
            end: None,
            reading: true,
            closing: false,
            close_notify_queued: false,
            fin_sent: false,
            busy: false,
            read_buf: vec![0; CHUNK],
            expected: vec![0; CHUNK],
        })
    }

    /// Reads plaintext (or stops) once the handshake is done.
    pub fn set_reading(&mut self, reading: bool) {
        self.reading = reading;
    }

    /// Sends close_notify and a FIN once every byte is sent.
    pub fn close(&mut self) {
        self.closing = true;
    }

    /// Runs until `done` says so (`Ok(true)`), the client ends, or `limit` passes
    /// (`Ok(false)`).
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&TlsPeer) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return Ok(true);
            }
            let now = Instant::now();
            if self.end.is_some() || now >= deadline {
                return Ok(false);
            }
            let wait = match self.busy {
                true => Duration::ZERO,
                false => (deadline - now).min(Duration::from_millis(20)),
            };
            match self.poll.poll(&mut self.events, Some(wait)) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
            // One socket: every turn tries both directions until `WouldBlock`, so no edge
            // can be lost whatever the events said.
            self.busy = false;
            for _ in 0..ROUNDS {
                match self.round() {
                    Ok(true) => self.busy = true,
                    Ok(false) => {
                        self.busy = false;
                        break;
                    }
                    Err(end) => {
                        self.end = Some(end);
                        break;
                    }
                }
            }
        }
    }

    /// One read and one write; whether anything moved.
    fn round(&mut self) -> Result<bool, TlsEnd> {
        let read = match self.reading || self.conn.is_handshaking() {
            true => self.read()?,
            false => false,
        };
        Ok(self.write()? || read)
    }

    fn read(&mut self) -> Result<bool, TlsEnd> {
        let failed =
            |what: &str, err: &dyn std::fmt::Display| TlsEnd::Failed(format!("{what}: {err}"));
        match self.conn.read_tls(&mut self.sock) {
            Ok(0) => return Err(TlsEnd::Eof),
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(true),
            Err(err) => return Err(failed("reading", &err)),
        }
        self.conn
            .process_new_packets()
            .map_err(|err| failed("TLS", &err))?;
        // Drain every plaintext byte the records held: rustls takes no more input until then.
        loop {
            match self.conn.reader().read(&mut self.read_buf) {
                Ok(0) => return Err(TlsEnd::CloseNotify),
                Ok(n) => self.check(n)?,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(err) => return Err(failed("reading plaintext", &err)),
            }
        }
    }

    /// Compares `n` bytes just read with what was sent at that offset.
    fn check(&mut self, n: usize) -> Result<(), TlsEnd> {
        if self.received + n as u64 > self.sent {
            return Err(TlsEnd::Failed(format!(
                "{} B echoed, only {} B sent",
                self.received + n as u64,
                self.sent
            )));
        }
        self.checker.fill(&mut self.expected[..n]);
        if let Some(at) = (0..n).find(|&i| self.read_buf[i] != self.expected[i]) {
            let offset = self.received + at as u64;
            return Err(TlsEnd::Failed(format!("echo differs at byte {offset}")));
        }
        self.received += n as u64;
        Ok(())
    }

    fn write(&mut self) -> Result<bool, TlsEnd> {
        let failed = |err: io::Error| TlsEnd::Failed(format!("writing: {err}"));
        if self.conn.wants_write() {
            return match self.conn.write_tls(&mut self.sock) {
                Ok(n) => Ok(n > 0),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(true),
                Err(err) => Err(failed(err)),
            };
        }
        if self.pending_at == self.pending.len() && self.to_send > 0 {
            let n = (self.to_send as usize).min(CHUNK);
            self.pending.resize(n, 0);
            self.sender.fill(&mut self.pending);
            self.pending_at = 0;
            self.to_send -= n as u64;
        }
        if self.pending_at < self.pending.len() {
            // The session takes what fits in its buffer (rustls's buffer limit); the rest
            // waits until its records have gone out.
            let n = self
                .conn
                .writer()
                .write(&self.pending[self.pending_at..])
                .map_err(failed)?;
            self.pending_at += n;
            self.sent += n as u64;
            return Ok(n > 0);
        }
        if self.closing && !self.close_notify_queued {
            self.conn.send_close_notify();
            self.close_notify_queued = true;
            return Ok(true);
        }
        if self.close_notify_queued && !self.fin_sent {
            // Its records are all out (`wants_write` was false above).
            self.sock
                .shutdown(std::net::Shutdown::Write)
                .map_err(failed)?;
            self.fin_sent = true;
            return Ok(true);
        }
        Ok(false)
    }
}

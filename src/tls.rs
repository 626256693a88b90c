//! TLS inside a connection's transport: a rustls session driven by the edge-triggered loop.
//!
//! rustls does no I/O of its own (a "sans-I/O" library): the caller moves bytes between the
//! socket and the session, and the session says what it needs (`wants_read`, `wants_write`).
//! So the session is a second state machine inside the connection's, and this file is where
//! the transport drives it. The rules, each one a way to hang or spin an edge-triggered loop:
//!
//! - **Read records until the socket is drained or plaintext waits.** Handshake records yield
//!   no plaintext, so one readable edge may need several reads; but once plaintext waits it
//!   is handed up before more is read, because rustls refuses input while its plaintext
//!   buffer is full. A short read clears `readable` as for plaintext (the same rule,
//!   [`drained_after_read`]).
//! - **Drain the reader after every `process_new_packets`**: plaintext left in the session
//!   raises no new edge. [`TlsSession::has_input`] keeps the connection readable while it is
//!   there, or while an EOF is still to be reported.
//! - **Write records until `wants_write()` is false or the socket is full.** Handshake
//!   replies, alerts, session tickets and `close_notify` are all just records to write.
//! - **Never spin on `Ok(0)`**: a read of 0 is the TCP EOF, a write of 0 is an error.
//!
//! What the session holds counts as buffered output ([`TlsSession::buffered`]): plaintext
//! written before the handshake finished, and records not yet taken by the kernel. rustls's
//! own buffer limit is switched off so that a write is never half-taken; the connection's
//! water marks and `max_output` bound it instead, as they bound plaintext output.
//!
//! Closing: our graceful close queues `close_notify`, flushes it, then sends the FIN. The
//! peer's `close_notify` is its EOF. A TCP EOF without it is a truncation
//! ([`ReadOutcome::Truncated`]): an attacker who can cut a TCP stream must not be able to make
//! a cut-short message look complete.

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

use crate::close_reason::CloseReason;
use crate::decisions::drained_after_read;
use crate::net::Stream;
use crate::output::OutputBuffer;
use crate::transport::ReadOutcome;

/// One connection's TLS session and what the transport keeps beside it.
pub(crate) struct TlsSession {
    conn: rustls::Connection,
    /// Plaintext the handler wrote before the handshake finished: rustls could only hold it
    /// unencrypted too, and here it is counted like any buffered output.
    early: OutputBuffer,
    /// Encrypted bytes waiting in the session for the socket, as of the last operation.
    pending: usize,
    /// `close_notify` is queued: the FIN follows once it is written.
    fin_pending: bool,
    /// The FIN went out.
    fin_sent: bool,
    /// Decrypted bytes waiting in the session for the handler, as of the last operation.
    plaintext: usize,
    /// The peer's `close_notify` or the TCP EOF arrived: an end to report even without a
    /// new edge.
    end_seen: bool,
    /// That end was reported (`Eof` or `Truncated`).
    end_reported: bool,
    /// The name a client asked for (its SNI); a server learns it from the session.
    client_server_name: Option<String>,
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("buffered", &self.buffered())
            .finish_non_exhaustive()
    }
}

/// How the transport of a new connection is secured: the listener's or the connect's choice.
#[derive(Clone)]
pub(crate) enum TlsSetup {
    /// The server side, one config per listener.
    Server(Arc<ServerConfig>),
    /// The client side, with the name to verify the server's certificate against (and to
    /// send as SNI).
    Client(Arc<ClientConfig>, ServerName<'static>),
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsSetup::Server(_) => f.write_str("TlsSetup::Server"),
            TlsSetup::Client(_, name) => write!(f, "TlsSetup::Client({name:?})"),
        }
    }
}

impl TlsSetup {
    /// A new session for one connection.
    ///
    /// # Errors
    /// rustls's, for a config it cannot use (say, no protocol version in common with its
    /// provider); reported as `InvalidInput`.
    pub(crate) fn session(&self) -> io::Result<TlsSession> {
        let (conn, client_server_name) = match self {
            TlsSetup::Server(config) => (
                rustls::Connection::Server(ServerConnection::new(config.clone()).map_err(invalid)?),
                None,
            ),
            TlsSetup::Client(config, name) => (
                rustls::Connection::Client(
                    ClientConnection::new(config.clone(), name.clone()).map_err(invalid)?,
                ),
                Some(name.to_str().into_owned()),
            ),
        };
        let mut session = TlsSession {
            conn,
            early: OutputBuffer::default(),
            pending: 0,
            fin_pending: false,
            fin_sent: false,
            plaintext: 0,
            end_seen: false,
            end_reported: false,
            client_server_name,
        };
        // Unlimited: a write the session only half took would have to be retried by the
        // caller. The connection's own limits bound what it holds (see the module docs).
        session.conn.set_buffer_limit(None);
        session.refresh_pending();
        Ok(session)
    }
}

/// What a read that took `wire` bytes of records and no plaintext reports.
fn records_read(wire: usize, readable: bool) -> ReadOutcome {
    if wire == 0 {
        ReadOutcome::WouldBlock
    } else {
        ReadOutcome::Data {
            len: 0,
            wire,
            drained: !readable,
        }
    }
}

fn invalid(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err)
}

/// Parses a server name for [`TlsSetup::Client`].
///
/// # Errors
/// `InvalidInput` if `name` is neither a DNS name nor an IP address.
pub(crate) fn server_name(name: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(name.to_owned()).map_err(|err| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("TLS server name {name:?}: {err}"),
        )
    })
}

/// A reader over the socket that remembers whether its last read was short.
struct ProbedRead<'a> {
    stream: &'a mut Stream,
    asked: usize,
    got: usize,
}

impl Read for ProbedRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let got = self.stream.read(buf)?;
        (self.asked, self.got) = (buf.len(), got);
        Ok(got)
    }
}

impl TlsSession {
    /// The handshake has not finished yet.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Plaintext waits in the session, or an EOF is still to be reported: the connection
    /// must be read even though no new edge will come.
    pub(crate) fn has_input(&self) -> bool {
        self.plaintext > 0 || self.end_seen && !self.end_reported
    }

    /// One read for the handler: plaintext already in the session first, else TLS records
    /// from the socket until plaintext appears, the socket is drained, or `buf.len()` bytes
    /// of records were read (the fairness budget counts those).
    pub(crate) fn read(
        &mut self,
        stream: &mut Stream,
        readable: &mut bool,
        read_closed: bool,
        buf: &mut [u8],
    ) -> ReadOutcome {
        let mut wire = 0;
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) if !buf.is_empty() => {
                    // The peer's close_notify: a clean EOF.
                    self.end_reported = true;
                    return ReadOutcome::Eof;
                }
                Ok(len) => {
                    self.plaintext = self.plaintext.saturating_sub(len);
                    let drained = !*readable;
                    return ReadOutcome::Data { len, wire, drained };
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => {
                    self.end_reported = true;
                    return ReadOutcome::Truncated;
                }
                Err(err) => return ReadOutcome::Failed(CloseReason::from_io(&err)),
            }
            if !*readable || wire >= buf.len() {
                return records_read(wire, *readable);
            }
            match self.read_records(stream, readable, read_closed) {
                Ok(len) => wire += len,
                Err(outcome) => return outcome,
            }
        }
    }

    /// Reads and processes TLS records while the handshake lasts, taking no plaintext.
    ///
    /// For a connection whose delivery is paused: by backpressure (the handler wrote past
    /// the high water mark before the handshake finished, and that output can only leave
    /// once it has) or by the handler. Stopping the reads there would stall both sides for
    /// good: the peer waits for our handshake reply, we for the peer to read. Plaintext that
    /// comes with the peer's last handshake flight stays in the session until delivery
    /// resumes.
    pub(crate) fn read_handshake(
        &mut self,
        stream: &mut Stream,
        readable: &mut bool,
        read_closed: bool,
    ) -> ReadOutcome {
        let mut wire = 0;
        while *readable && self.conn.is_handshaking() {
            match self.read_records(stream, readable, read_closed) {
                Ok(len) => wire += len,
                Err(outcome) => return outcome,
            }
        }
        records_read(wire, *readable)
    }

    /// One `read_tls` from the socket, then `process_new_packets`: the bytes of records read
    /// (0 at `WouldBlock`, which clears `readable`, or at the TCP EOF), or the outcome that
    /// ends the connection (after sending the alert rustls prepared).
    fn read_records(
        &mut self,
        stream: &mut Stream,
        readable: &mut bool,
        read_closed: bool,
    ) -> Result<usize, ReadOutcome> {
        let mut probe = ProbedRead {
            stream,
            asked: 0,
            got: 0,
        };
        let len = match self.conn.read_tls(&mut probe) {
            Ok(0) => {
                // TCP EOF: the reader now says whether a close_notify came first.
                *readable = false;
                self.end_seen = true;
                0
            }
            Ok(len) => {
                if drained_after_read(probe.got, probe.asked, read_closed) {
                    *readable = false;
                }
                len
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                *readable = false;
                return Ok(0);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(err) => return Err(ReadOutcome::Failed(CloseReason::from_io(&err))),
        };
        self.process_records(stream).map(|()| len)
    }

    /// Takes records that were read from the socket before the session's own reads began
    /// (with a PROXY protocol header, in its segment), as if `read_records` had read them.
    pub(crate) fn receive_early(
        &mut self,
        stream: &mut Stream,
        mut records: &[u8],
    ) -> Result<(), CloseReason> {
        while !records.is_empty() {
            if let Err(err) = self.conn.read_tls(&mut records) {
                return Err(CloseReason::from_io(&err));
            }
            if let Err(ReadOutcome::Failed(reason)) = self.process_records(stream) {
                return Err(reason);
            }
        }
        Ok(())
    }

    /// `process_new_packets` after records were taken in: the error that ends the
    /// connection (after sending the alert rustls prepared).
    fn process_records(&mut self, stream: &mut Stream) -> Result<(), ReadOutcome> {
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.note(&state);
                Ok(())
            }
            Err(err) => {
                // rustls queued the alert that tells the peer why: one best-effort
                // write, the connection is closing anyway.
                let _ = self.conn.write_tls(&mut SocketWrite(stream));
                Err(ReadOutcome::Failed(CloseReason::Tls(err.to_string())))
            }
        }
    }

    /// Takes plaintext from the handler: kept during the handshake, else encrypted into
    /// records at once. Nothing is written here: the records leave with the next
    /// [`flush`](Self::flush), when the callback returns, so that what one callback writes
    /// leaves together (the gathered writes of `transport.rs`).
    ///
    /// # Errors
    /// rustls's refusal to take more plaintext (it cannot happen while its buffer limit is
    /// off, as it is here).
    pub(crate) fn gather(&mut self, data: &[u8]) -> io::Result<()> {
        if self.conn.is_handshaking() {
            self.early.push(data);
            return Ok(());
        }
        self.encrypt_early()?;
        self.conn.writer().write_all(data)?;
        // Counted at its plaintext size until the flush that ends the callback counts the
        // records: asking rustls now (`process_new_packets`) would cost a walk of its
        // deframer per write, and a writer pumping up to the high water mark only needs the
        // count to grow.
        self.pending += data.len();
        Ok(())
    }

    /// Encrypts plaintext kept during the handshake, once it is over, and writes records
    /// until the session has none left or the socket is full; sends the FIN after a
    /// `close_notify` once that is out. Returns the bytes the kernel took.
    ///
    /// # Errors
    /// The socket's error: the connection has failed.
    pub(crate) fn flush(&mut self, stream: &mut Stream, writable: &mut bool) -> io::Result<usize> {
        self.encrypt_early()?;
        let mut total = 0;
        while *writable && self.conn.wants_write() {
            match self.conn.write_tls(&mut SocketWrite(stream)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => total += written,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => *writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        if self.conn.wants_write() {
            self.refresh_pending(); // the socket is full: how much waits
        } else {
            self.pending = 0;
        }
        if self.fin_pending && !self.fin_sent && self.pending == 0 {
            self.fin_sent = true;
            stream.shutdown_write()?;
        }
        Ok(total)
    }

    fn encrypt_early(&mut self) -> io::Result<()> {
        if !self.early.is_empty() && !self.conn.is_handshaking() {
            self.conn.writer().write_all(self.early.as_slice())?;
            self.pending += self.early.len();
            self.early.clear();
        }
        Ok(())
    }

    /// Plaintext kept during the handshake plus records not yet taken by the kernel
    /// (plaintext written since the last flush counts at its own size until then).
    pub(crate) fn buffered(&self) -> usize {
        self.early.len() + self.pending
    }

    /// Queues `close_notify` and sends the FIN once it is written: the TLS way to end our
    /// side of the stream.
    ///
    /// # Errors
    /// The socket's error: the connection has failed.
    pub(crate) fn shutdown_write(
        &mut self,
        stream: &mut Stream,
        writable: &mut bool,
    ) -> io::Result<()> {
        if !self.fin_pending {
            self.conn.send_close_notify();
            self.fin_pending = true;
        }
        self.flush(stream, writable).map(|_| ())
    }

    /// Drops plaintext kept during the handshake (the connection is closing without it).
    pub(crate) fn discard(&mut self) {
        self.early.clear();
    }

    /// What the handshake negotiated, for the handler.
    pub(crate) fn info(&self) -> TlsInfo<'_> {
        TlsInfo { session: self }
    }

    /// `process_new_packets` with nothing new to process only reports the session's state,
    /// which is the one place rustls tells how many encrypted bytes wait to be written.
    fn refresh_pending(&mut self) {
        if let Ok(state) = self.conn.process_new_packets() {
            self.note(&state);
        }
    }

    fn note(&mut self, state: &rustls::IoState) {
        self.pending = state.tls_bytes_to_write();
        self.plaintext = state.plaintext_bytes_to_read();
        self.end_seen |= state.peer_has_closed();
    }
}

/// `Write` for rustls's `write_tls` over our socket.
struct SocketWrite<'a>(&'a mut Stream);

impl Write for SocketWrite<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a connection's TLS handshake negotiated, from
/// [`Context::tls`](crate::Context::tls).
///
/// Each part is `None` (or empty) until the handshake has got that far: in
/// [`on_open`](crate::Handler::on_open), which runs when the TCP connection is established,
/// the handshake is usually still under way; in [`on_data`](crate::Handler::on_data) it is
/// always over (no plaintext flows before it).
///
/// # Examples
/// ```no_run
/// use mio_reactor::{Context, Handler};
///
/// struct Who;
/// impl Handler for Who {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         if let Some(tls) = ctx.tls() {
///             let version = tls.protocol_version().map(|v| format!("{v:?}"));
///             let alpn = tls.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
///             println!("{version:?}, ALPN {alpn:?}, SNI {:?}", tls.server_name());
///         }
///         data.len()
///     }
/// }
/// # let _factory = |_: &mio_reactor::PeerAddr| Some(Who);
/// ```
pub struct TlsInfo<'a> {
    session: &'a TlsSession,
}

impl TlsInfo<'_> {
    /// Whether the handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        self.session.conn.is_handshaking()
    }

    /// The protocol version agreed on (`TLSv1_2`, `TLSv1_3`).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.session.conn.protocol_version()
    }

    /// The cipher suite agreed on.
    pub fn cipher_suite(&self) -> Option<rustls::SupportedCipherSuite> {
        self.session.conn.negotiated_cipher_suite()
    }

    /// The application protocol agreed on by ALPN (say `b"h2"`), if the client offered any
    /// that the server accepted.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.conn.alpn_protocol()
    }

    /// The server name (SNI): on a server, the name the client asked for, if it sent one; on
    /// a client, the name it asked for.
    pub fn server_name(&self) -> Option<&str> {
        match &self.session.conn {
            rustls::Connection::Server(server) => server.server_name(),
            rustls::Connection::Client(_) => self.session.client_server_name.as_deref(),
        }
    }

    /// The peer's certificate chain, its own certificate first: always there on a client
    /// once the handshake is over; on a server only if the config asked the client for one.
    pub fn peer_certificates(&self) -> Option<&[CertificateDer<'static>]> {
        self.session.conn.peer_certificates()
    }
}

impl fmt::Debug for TlsInfo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsInfo")
            .field("protocol_version", &self.protocol_version())
            .field("cipher_suite", &self.cipher_suite())
            .field("alpn_protocol", &self.alpn_protocol())
            .field("server_name", &self.server_name())
            .finish_non_exhaustive()
    }
}

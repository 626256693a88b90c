//! A connection's transport: the one type between the socket and the connection's buffers.
//!
//! `dispatch.rs` reads from and writes to a [`Transport`], never to the socket itself. What
//! sits between the handler's bytes and the kernel (the output buffer, gathered writes; TLS
//! next) therefore changes this room only, and the state machine and the handler do not know
//! which kind of transport they talk through.
//!
//! Writes are gathered: what a handler writes during one callback is held in the output
//! buffer ([`Transport::send`]) and leaves in one system call when the loop flushes it at
//! the end of the callback or dispatch ([`Transport::flush`]); a piece too large to hold
//! leaves at once with the held bytes in one `writev`. With `TCP_NODELAY` each system call is
//! a segment, so a reply written in pieces would otherwise cost one segment (and one wake-up
//! of the peer) per piece.
//!
//! The transport also owns the connection's edge-triggered readiness, because only the
//! outcome of a read or a write can clear it (tokio's I/O driver routes the same bookkeeping
//! through `ScheduledIo::set_readiness` / `clear_readiness`):
//! - an event *sets* `readable`/`writable` ([`Transport::on_event`]);
//! - a read or write that hits `WouldBlock`, a short read without a pending EOF, and a short
//!   write *clear* them ([`Transport::read`], [`Transport::send`], [`Transport::flush`]).
//!
//! With the `tls` feature a transport may carry a TLS session (`tls.rs`): each operation
//! then has one delimited hook that hands the socket and the readiness flags to the session,
//! which moves records in and out and hands plaintext up. Nothing above this file changes.

use std::io::{self, IoSlice, Read, Write};

use mio::event::{Event, Source};
use mio::{Interest, Registry, Token};

use crate::close_reason::CloseReason;
use crate::decisions::{drained_after_read, send_step, SendStep};
use crate::net::Stream;
use crate::output::OutputBuffer;
#[cfg(feature = "tls")]
use crate::tls::{TlsSession, TlsSetup};

/// What secures the transports of a listener's connections, or of an outbound connect (and
/// its fallbacks): nothing, or TLS with a setup. Empty without the `tls` feature.
///
/// `pub` only so that the sealed option traits can name it; this module is private.
#[derive(Debug, Clone, Default)]
pub struct Security {
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsSetup>,
}

impl Security {
    /// Whether connections secured so speak TLS.
    pub(crate) fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// A transport over `stream` (see [`Transport::new`] for `writable`), with a new TLS
    /// session if this security asks for one.
    ///
    /// # Errors
    /// rustls's refusal of its config (`InvalidInput`).
    pub(crate) fn transport(&self, stream: Stream, writable: bool) -> io::Result<Transport> {
        let transport = Transport::new(stream, writable);
        #[cfg(feature = "tls")]
        if let Some(setup) = &self.tls {
            return Ok(transport.with_tls(setup.session()?));
        }
        Ok(transport)
    }
}

/// The most bytes a callback's writes are held before they are sent at once (further capped
/// by the high water mark). Holding copies the bytes: past a few segments' worth, the copy
/// starts to cost what the system call it saves costs, and a larger piece goes out in a
/// `writev` without a copy instead.
pub(crate) const GATHER_CAP: usize = 16 * 1024;

/// A connected stream (TCP or Unix) with its output buffer and readiness flags.
#[derive(Debug)]
pub(crate) struct Transport {
    stream: Stream,
    output: OutputBuffer,
    /// Set by an event, cleared only when the kernel says `WouldBlock` (or a short read
    /// proves the socket drained).
    readable: bool,
    /// Set by an event, cleared by `WouldBlock` or a short write (the send buffer is full).
    writable: bool,
    /// An event said the peer closed its side: read on after a short read to see the EOF,
    /// which no further edge would announce.
    read_closed: bool,
    /// A TLS session between the socket and the handler's bytes (boxed: a plaintext
    /// connection should not carry a session's size).
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsSession>>,
}

/// What one [`Transport::send`] did with the handler's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Buffered without a system call: `gathered` to leave when the callback returns, or
    /// (not `gathered`) queued behind a full socket until the next writable edge.
    Held { gathered: bool },
    /// One system call; the kernel took this many bytes (held ones first, then the new).
    Written(usize),
}

/// What one [`Transport::read`] found.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// `len` bytes are at the front of the buffer, `wire` bytes were taken from the socket
    /// for them (the same, without TLS; with TLS maybe records that held no plaintext yet,
    /// and `len` 0). `drained`: the socket had no more at that moment, so `readable` is now
    /// clear.
    Data {
        len: usize,
        wire: usize,
        drained: bool,
    },
    /// The peer sent its FIN (over TLS: its `close_notify`): it will send nothing more.
    Eof,
    /// Over TLS, the TCP stream ended without the peer's `close_notify`: whatever it sent
    /// last may have been cut short by someone in between.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Truncated,
    /// Nothing to read until the next readable edge.
    WouldBlock,
    /// The connection failed (a reset, a timeout, a TLS error...).
    Failed(CloseReason),
}

impl Transport {
    /// A transport over `stream`. An accepted socket's send buffer is empty, so it may be
    /// written at once (`writable`) instead of a turn later on the first writable edge; a
    /// connect in progress is not writable until it completes.
    pub(crate) fn new(stream: Stream, writable: bool) -> Transport {
        Transport {
            stream,
            output: OutputBuffer::default(),
            readable: false,
            writable,
            read_closed: false,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// The same transport with TLS between the socket and the handler.
    #[cfg(feature = "tls")]
    pub(crate) fn with_tls(mut self, session: TlsSession) -> Transport {
        self.tls = Some(Box::new(session));
        self
    }

    /// The TLS session, if the transport has one.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<&TlsSession> {
        self.tls.as_deref()
    }

    /// The socket, for its options.
    pub(crate) fn stream(&self) -> &Stream {
        &self.stream
    }

    /// A readiness event arrived. Error and hang-up bits are only hints: they set both flags
    /// so that the next read or write surfaces the actual error or EOF.
    pub(crate) fn on_event(&mut self, event: &Event) {
        let error = event.is_error();
        self.readable |= event.is_readable() || event.is_read_closed() || error;
        self.writable |= event.is_writable() || event.is_write_closed() || error;
        self.read_closed |= event.is_read_closed();
    }

    /// The socket may have bytes (or an EOF) to read, or (TLS) the session holds plaintext
    /// or an end not handed up yet, which no new edge would announce.
    pub(crate) fn is_readable(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return self.readable || tls.has_input();
        }
        self.readable
    }

    /// The socket may take bytes.
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    /// A connect is still in progress after an event woke it (a spurious wake-up): wait for
    /// the next edge.
    pub(crate) fn connect_in_progress(&mut self) {
        self.readable = false;
        self.writable = false;
    }

    /// How a non-blocking connect ended, once an event said it did: the pending socket error
    /// (`SO_ERROR`), or else whether the socket has a peer. `NotConnected` means it is still
    /// in progress.
    pub(crate) fn connect_outcome(&self) -> io::Result<()> {
        match self.stream.take_error() {
            Ok(Some(err)) | Err(err) => Err(err),
            Ok(None) => self.stream.peer_addr().map(|_| ()),
        }
    }

    /// For a connection whose delivery is paused: reads a TLS handshake on, taking no
    /// plaintext (`tls.rs`, `read_handshake`). `None` when there is nothing of the kind to
    /// read: no TLS, the handshake is over, or the socket has no bytes.
    pub(crate) fn read_handshake(&mut self) -> Option<ReadOutcome> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            if self.readable && tls.is_handshaking() {
                let (stream, readable) = (&mut self.stream, &mut self.readable);
                return Some(tls.read_handshake(stream, readable, self.read_closed));
            }
        }
        None
    }

    /// One read into `buf`, with the edge-triggered bookkeeping (see the module docs).
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> ReadOutcome {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let (stream, readable) = (&mut self.stream, &mut self.readable);
            return tls.read(stream, readable, self.read_closed, buf);
        }
        self.read_socket(buf)
    }

    /// One read from the socket itself, whatever the transport carries: for a stage that
    /// comes before any TLS (a PROXY protocol header), and for plaintext.
    pub(crate) fn read_socket(&mut self, buf: &mut [u8]) -> ReadOutcome {
        loop {
            return match self.stream.read(buf) {
                Ok(0) => {
                    self.readable = false;
                    ReadOutcome::Eof
                }
                Ok(len) => {
                    if drained_after_read(len, buf.len(), self.read_closed) {
                        self.readable = false;
                    }
                    let drained = !self.readable;
                    ReadOutcome::Data {
                        len,
                        wire: len,
                        drained,
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    ReadOutcome::WouldBlock
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => ReadOutcome::Failed(CloseReason::from_io(&err)),
            };
        }
    }

    /// Bytes read from the socket before the transport's own reads began (what followed a
    /// PROXY protocol header in its segment): a TLS session takes them as records; without
    /// TLS they are the handler's first input, handed back.
    ///
    /// # Errors
    /// The TLS session's refusal of the records: the connection has failed.
    pub(crate) fn receive_early(&mut self, bytes: Vec<u8>) -> Result<Vec<u8>, CloseReason> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.receive_early(&mut self.stream, &bytes)?;
            return Ok(Vec::new());
        }
        Ok(bytes)
    }

    /// Takes `data` from the handler: holds it with what the current callback wrote before
    /// (the loop flushes it when the callback returns), queues it behind a full socket, or,
    /// when holding it would pass `gather_limit`, sends the held bytes and `data` now in one
    /// system call ([`send_step`] decides). Whatever the kernel does not take is buffered.
    ///
    /// # Errors
    /// The socket's error (a reset, a broken pipe): the connection has failed.
    pub(crate) fn send(&mut self, data: &[u8], gather_limit: usize) -> io::Result<Sent> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.gather(data)?;
            return Ok(Sent::Held { gathered: true });
        }
        match send_step(self.writable, self.output.len(), data.len(), gather_limit) {
            SendStep::Queue => {
                self.output.push(data);
                Ok(Sent::Held { gathered: false })
            }
            SendStep::Gather => {
                self.output.push(data);
                Ok(Sent::Held { gathered: true })
            }
            SendStep::SendNow => {
                let held = self.output.len();
                let (stream, writable, output) =
                    (&mut self.stream, &mut self.writable, &self.output);
                let written = if held == 0 {
                    Self::write_call(stream, writable, data.len(), |s| s.write(data))?
                } else {
                    // Held bytes and the new piece are apart: one `writev`, and the new
                    // piece is not copied unless the kernel leaves some of it.
                    let pieces = [IoSlice::new(output.as_slice()), IoSlice::new(data)];
                    Self::write_call(stream, writable, held + data.len(), |s| {
                        s.write_vectored(&pieces)
                    })?
                };
                let from_held = written.min(held);
                self.output.consume(from_held);
                let from_new = written - from_held;
                if from_new < data.len() {
                    self.output.push(&data[from_new..]);
                }
                Ok(Sent::Written(written))
            }
        }
    }

    /// Writes the buffered output, in one system call, if there is any and the socket may
    /// take it. Returns the bytes written, or `None` if no call was made.
    ///
    /// # Errors
    /// The socket's error: the connection has failed.
    pub(crate) fn flush(&mut self) -> io::Result<Option<usize>> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            let written = tls.flush(&mut self.stream, &mut self.writable)?;
            return Ok((written > 0).then_some(written));
        }
        if !self.writable || self.output.is_empty() {
            return Ok(None);
        }
        let (stream, writable, output) = (&mut self.stream, &mut self.writable, &self.output);
        let written = Self::write_call(stream, writable, output.len(), |s| {
            s.write(output.as_slice())
        })?;
        self.output.consume(written);
        Ok(Some(written))
    }

    /// Bytes the handler wrote that the kernel has not taken yet: what the water marks and
    /// `max_output` count. With TLS: plaintext and records held in the session.
    pub(crate) fn buffered(&self) -> usize {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.buffered();
        }
        self.output.len()
    }

    /// Sends our FIN: the peer reads EOF once it has read everything before it. With TLS,
    /// `close_notify` goes first and the FIN follows once it is written: until then
    /// [`buffered`](Transport::buffered) counts it.
    ///
    /// # Errors
    /// The socket's error (`ENOTCONN` after a reset): the connection has failed.
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            return tls.shutdown_write(&mut self.stream, &mut self.writable);
        }
        self.stream.shutdown_write()
    }

    /// Throws away what is buffered. With `reset`, the close that follows sends a reset
    /// rather than a FIN that the peer would take for a complete stream.
    pub(crate) fn discard(&mut self, reset: bool) {
        if reset {
            self.stream.set_reset_on_close();
        }
        self.output.clear();
        #[cfg(feature = "tls")]
        if let Some(tls) = &mut self.tls {
            tls.discard();
        }
    }

    /// One write system call (`op`) of `len` bytes. `WouldBlock` and short writes mean the
    /// send buffer is full, so `writable` is cleared until the next writable edge.
    fn write_call(
        stream: &mut Stream,
        writable: &mut bool,
        len: usize,
        mut op: impl FnMut(&mut Stream) -> io::Result<usize>,
    ) -> io::Result<usize> {
        loop {
            match op(stream) {
                Ok(0) if len > 0 => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    if n < len {
                        *writable = false;
                    }
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    *writable = false;
                    return Ok(0);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
    }
}

/// Registered with `mio::Poll` as the socket it wraps.
impl Source for Transport {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        self.stream.reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.stream.deregister(registry)
    }
}

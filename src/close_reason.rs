//! Why a connection closed.

use std::fmt;
use std::io;
use std::time::Duration;

/// Which limit a peer ran into.
///
/// # Examples
/// A peer that sends more than the handler will ever consume is cut off, and only that peer:
/// ```
/// use std::cell::Cell;
/// use std::io::Write;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use mio_reactor::{CloseReason, Config, Context, Handler, Limit, ListenOptions, Reactor};
///
/// /// A line protocol: consumes nothing until a line is complete.
/// struct Lines {
///     limit_hit: Rc<Cell<Option<Limit>>>,
/// }
///
/// impl Handler for Lines {
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1)
///     }
///
///     fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
///         if let CloseReason::LimitExceeded(limit) = reason {
///             self.limit_hit.set(Some(*limit));
///         }
///     }
/// }
///
/// let limit_hit = Rc::new(Cell::new(None));
/// let shared = limit_hit.clone();
/// let config = Config::default().max_input(64); // no line is longer than 64 bytes
/// let mut reactor = Reactor::with_config(config)?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
///     Some(Lines { limit_hit: shared.clone() })
/// })?.local_addr()?;
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(&[b'x'; 100])?; // no newline in sight
/// for _ in 0..1000 {
///     if limit_hit.get().is_some() {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// assert_eq!(limit_hit.get(), Some(Limit::Input));
/// assert_eq!(reactor.stats().closed.limit_exceeded, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Buffered output passed the connection's hard cap
    /// ([`OutputLimits::max_output`](crate::OutputLimits::max_output), by default
    /// [`Config::max_output`](crate::Config::max_output)): the peer does not read what it is
    /// sent.
    Output,
    /// Unconsumed input passed [`Config::max_input`](crate::Config::max_input): the peer sent
    /// more than the largest message the handler accepts.
    Input,
    /// Buffered output stayed above the soft limit of
    /// [`OutputLimits::soft_limit`](crate::OutputLimits::soft_limit) (`bytes`) for longer
    /// than its `duration`: the peer reads, but too slowly for too long. The connection was
    /// aborted (its output is stuck anyway).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::{CloseReason, Limit};
    ///
    /// let limit = Limit::SoftOutput { bytes: 8 << 20, duration: Duration::from_secs(60) };
    /// let reason = CloseReason::LimitExceeded(limit);
    /// assert_eq!(reason.to_string(), "buffered output above 8388608 B for 60 s");
    /// ```
    SoftOutput {
        /// The soft limit, in bytes.
        bytes: usize,
        /// How long output may stay above it.
        duration: Duration,
    },
}

/// The reason handed to [`Handler::on_close`](crate::Handler::on_close), exactly once per
/// connection, and counted in [`Stats`](crate::Stats).
///
/// # Notes
/// A graceful close (`PeerClosed`, `Local`, `IdleTimeout`, `Protocol`, `Shutdown`) delivered
/// every byte the handler wrote to the kernel before the FIN. The others may have discarded
/// buffered output. Handed to the kernel is not received by the peer: no close reason says
/// the peer read the bytes.
///
/// The enum is `#[non_exhaustive]`: a `match` needs a catch-all arm.
///
/// # Examples
/// `on_close` is where a handler learns how its connection ended, including an outbound
/// connect that never got as far as `on_open`:
/// ```
/// use std::cell::RefCell;
/// use std::io::ErrorKind;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use mio_reactor::{CloseReason, ConnectOptions, Context, Handler, Reactor};
///
/// struct Client {
///     ended: Rc<RefCell<Option<CloseReason>>>,
/// }
///
/// impl Handler for Client {
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.len()
///     }
///
///     fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
///         match reason {
///             CloseReason::Reset => eprintln!("the server hung up on us"),
///             CloseReason::ConnectFailed(kind) => eprintln!("no server: {kind}"),
///             reason if reason.is_graceful() => {}
///             reason => eprintln!("lost the connection: {reason}"),
///         }
///         *self.ended.borrow_mut() = Some(reason.clone());
///     }
/// }
///
/// // A port nobody listens on: it was free a moment ago.
/// let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let ended = Rc::new(RefCell::new(None));
/// let mut reactor = Reactor::new()?;
/// reactor.connect(addr, ConnectOptions::default(), Client { ended: ended.clone() })?; // Ok: the connect is under way
/// while !reactor.is_finished() {
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// let refused = CloseReason::ConnectFailed(ErrorKind::ConnectionRefused);
/// assert_eq!(*ended.borrow(), Some(refused));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer shut down its side first (EOF) and the connection then closed gracefully.
    PeerClosed,
    /// The handler closed gracefully ([`Context::close`](crate::Context::close)).
    Local,
    /// The handler aborted ([`Context::abort`](crate::Context::abort)): output discarded,
    /// a reset sent.
    Aborted,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`, or `ENOTCONN` once it is gone).
    Reset,
    /// Nothing was read or written for the idle timeout.
    IdleTimeout,
    /// The peer stopped answering and the kernel gave up on it (`ETIMEDOUT` on an
    /// established connection): its keepalive probes went unanswered, or sent data stayed
    /// unacknowledged past `TCP_USER_TIMEOUT` or the kernel's retransmissions. A host that
    /// crashed or a NAT entry that expired: no FIN, no RST ever came. Unlike
    /// [`Reset`](CloseReason::Reset), nothing was heard from the peer; see
    /// [`DeadPeerDetection`](crate::DeadPeerDetection).
    PeerTimedOut,
    /// An outbound connect failed (refused, unreachable, ...).
    ConnectFailed(io::ErrorKind),
    /// An outbound connect did not complete within
    /// [`Config::connect_timeout`](crate::Config::connect_timeout).
    ConnectTimeout,
    /// A graceful close could not flush its output within
    /// [`Config::close_timeout`](crate::Config::close_timeout) and was aborted.
    CloseTimeout,
    /// The peer ran into a limit; only this connection is closed.
    LimitExceeded(Limit),
    /// The handler rejected the peer's input; the text says why.
    Protocol(String),
    /// The reactor shut down and the connection closed gracefully.
    Shutdown,
    /// The reactor's shutdown deadline passed (or a second shutdown was requested) before the
    /// connection finished: it was aborted.
    ShutdownAborted,
    /// Any other I/O error on the socket.
    Io(io::ErrorKind),
    /// The TLS handshake failed or the peer sent a record that does not verify: the text is
    /// rustls's error. The alert rustls prepared was sent before the FIN.
    Tls(String),
    /// The peer ended the TCP stream without a TLS `close_notify` while its input was still
    /// being delivered: what it sent last may have been cut short by someone in between (a
    /// truncation attack), so this is never reported as a clean EOF.
    TlsTruncated,
    /// The TLS handshake did not finish within
    /// [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout).
    TlsHandshakeTimeout,
    /// The handler panicked; the text is the panic's message. The connection was aborted (a
    /// reset on TCP, buffered output discarded) and the handler dropped without another
    /// call: this reason is seen in the [`Stats`](crate::Stats), the trace and the log (at
    /// `error!`), never by the handler's own `on_close`. See
    /// [`Config::catch_panics`](crate::Config::catch_panics).
    HandlerPanicked(String),
    /// A listen with [`ListenOptions::proxy_protocol`](crate::ListenOptions::proxy_protocol)
    /// got no valid PROXY protocol header: the text says why (no signature, a malformed or
    /// too long header, the peer's EOF before its end). No handler was made: this reason is
    /// seen in the [`Stats`](crate::Stats), the trace and the log.
    ProxyHeader(String),
    /// The PROXY protocol header did not arrive within
    /// [`ProxyProtocol::header_timeout`](crate::ProxyProtocol::header_timeout).
    ProxyHeaderTimeout,
    /// The peer is not one of the proxies
    /// [`ProxyProtocol::trust`](crate::ProxyProtocol::trust) names: closed before a byte was
    /// read.
    UntrustedProxy,
}

impl CloseReason {
    /// Classifies a socket error: resets are the peer's doing, a timeout is the kernel
    /// giving up on a silent peer (tcp(7): `ETIMEDOUT` after keepalive or retransmissions
    /// failed), the rest are I/O errors.
    ///
    /// `ENOTCONN` on a connection that was established is a reset too: the kernel tore the
    /// connection down on the peer's RST after our last read or write, so the next call (our
    /// FIN's `shutdown`, typically) finds it gone.
    pub(crate) fn from_io(err: &io::Error) -> CloseReason {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected => CloseReason::Reset,
            io::ErrorKind::TimedOut => CloseReason::PeerTimedOut,
            kind => CloseReason::Io(kind),
        }
    }

    /// Whether the close was orderly: every byte written by the handler was handed to the
    /// kernel before the FIN.
    ///
    /// ```
    /// use mio_reactor::CloseReason;
    ///
    /// assert!(CloseReason::IdleTimeout.is_graceful());
    /// assert!(!CloseReason::Reset.is_graceful()); // output may have been lost
    /// ```
    pub fn is_graceful(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed
                | CloseReason::Local
                | CloseReason::IdleTimeout
                | CloseReason::Protocol(_)
                | CloseReason::Shutdown
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("peer closed"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Aborted => f.write_str("aborted locally"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::IdleTimeout => f.write_str("idle timeout"),
            CloseReason::PeerTimedOut => {
                f.write_str("peer timed out (no answer to keepalive or retransmissions)")
            }
            CloseReason::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::CloseTimeout => f.write_str("graceful close timed out"),
            CloseReason::LimitExceeded(Limit::Output) => {
                f.write_str("output limit exceeded (peer not reading)")
            }
            CloseReason::LimitExceeded(Limit::Input) => f.write_str("input limit exceeded"),
            CloseReason::LimitExceeded(Limit::SoftOutput { bytes, duration }) => {
                write!(f, "buffered output above {bytes} B for ")?;
                if duration.subsec_nanos() == 0 {
                    write!(f, "{} s", duration.as_secs())
                } else {
                    write!(f, "{duration:?}")
                }
            }
            CloseReason::Protocol(why) => write!(f, "protocol error: {why}"),
            CloseReason::Shutdown => f.write_str("reactor shutdown"),
            CloseReason::ShutdownAborted => f.write_str("aborted at reactor shutdown deadline"),
            CloseReason::Io(kind) => write!(f, "I/O error: {kind}"),
            CloseReason::Tls(why) => write!(f, "TLS error: {why}"),
            CloseReason::TlsTruncated => f.write_str("TLS stream truncated (no close_notify)"),
            CloseReason::TlsHandshakeTimeout => f.write_str("TLS handshake timed out"),
            CloseReason::HandlerPanicked(message) => write!(f, "handler panicked: {message}"),
            CloseReason::ProxyHeader(why) => write!(f, "bad PROXY protocol header: {why}"),
            CloseReason::ProxyHeaderTimeout => f.write_str("PROXY protocol header timed out"),
            CloseReason::UntrustedProxy => {
                f.write_str("PROXY protocol header from an untrusted address")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_timeout_is_a_dead_peer_not_a_reset() {
        let err = io::Error::from_raw_os_error(libc::ETIMEDOUT);
        assert_eq!(CloseReason::from_io(&err), CloseReason::PeerTimedOut);
        assert!(!CloseReason::PeerTimedOut.is_graceful());
    }
}

//! Why a connection closed.

use std::fmt;
use std::io;

/// Which limit a peer ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Buffered output passed [`Config::max_output`](crate::Config::max_output): the peer
    /// does not read what it is sent.
    Output,
    /// Unconsumed input passed [`Config::max_input`](crate::Config::max_input): the peer sent
    /// more than the largest message the handler accepts.
    Input,
}

/// The reason handed to [`Handler::on_close`](crate::Handler::on_close), exactly once per
/// connection, and counted in [`Stats`](crate::Stats).
///
/// # Notes
/// A graceful close (`PeerClosed`, `Local`, `IdleTimeout`, `Protocol`, `Shutdown`) delivered
/// every byte the handler wrote to the kernel before the FIN. The others may have discarded
/// buffered output.
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
}

impl CloseReason {
    /// Classifies a socket error: resets are the peer's doing, the rest are I/O errors.
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
            kind => CloseReason::Io(kind),
        }
    }

    /// Whether the close was orderly: every byte written by the handler was handed to the
    /// kernel before the FIN.
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
            CloseReason::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            CloseReason::ConnectTimeout => f.write_str("connect timed out"),
            CloseReason::CloseTimeout => f.write_str("graceful close timed out"),
            CloseReason::LimitExceeded(Limit::Output) => {
                f.write_str("output limit exceeded (peer not reading)")
            }
            CloseReason::LimitExceeded(Limit::Input) => f.write_str("input limit exceeded"),
            CloseReason::Protocol(why) => write!(f, "protocol error: {why}"),
            CloseReason::Shutdown => f.write_str("reactor shutdown"),
            CloseReason::ShutdownAborted => f.write_str("aborted at reactor shutdown deadline"),
            CloseReason::Io(kind) => write!(f, "I/O error: {kind}"),
        }
    }
}

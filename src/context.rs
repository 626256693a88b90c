//! The [`Context`] handed to every handler callback: everything a protocol may ask of the
//! reactor, for its own connection and for others.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::core::Core;
use crate::handler::Handler;
use crate::id::{ConnId, Slot, TimerId};
use crate::net::PeerAddr;

/// Why [`Context::write_to`] could not queue the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// No such connection: it closed (perhaps long ago) or the id never existed.
    NoSuchConnection,
    /// The connection's write side is closed (or closing).
    Closed,
    /// The write took the connection's output past
    /// [`Config::max_output`](crate::Config::max_output): it was closed with
    /// [`Limit::Output`](crate::Limit::Output).
    LimitExceeded,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::NoSuchConnection => "no such connection",
            WriteError::Closed => "the connection's write side is closed",
            WriteError::LimitExceeded => "output limit exceeded; the connection was closed",
        })
    }
}

impl std::error::Error for WriteError {}

/// What a handler can do, handed to each of its callbacks.
///
/// Methods without a connection id act on the handler's own connection. Nothing here blocks:
/// writes are queued and flushed by the loop, closes complete later, and `on_close` reports
/// how they ended.
pub struct Context<'a> {
    core: &'a mut Core,
    slot: Slot,
}

/// Stands in for the peer of a connection that is not there, which cannot happen while its
/// handler runs; it saves every caller an `Option`.
const NO_PEER: PeerAddr = PeerAddr::Unix(None);

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut Core, slot: Slot) -> Context<'a> {
        Context { core, slot }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        ConnId(self.slot)
    }

    /// This connection's peer.
    pub fn peer_addr(&self) -> &PeerAddr {
        self.core
            .conn_ref(self.slot)
            .map_or(&NO_PEER, |conn| &conn.peer)
    }

    /// The time at the start of this reactor turn (the clock is read once per turn).
    pub fn now(&self) -> Instant {
        self.core.now
    }

    /// Sends `data` to the peer.
    ///
    /// When nothing is queued the bytes go straight to the socket; what the kernel does not
    /// take is buffered and sent as the socket drains. Once the output passes the high water
    /// mark, reading pauses until it falls to the low one
    /// ([`Handler::on_drain`](crate::Handler::on_drain)). Past
    /// [`Config::max_output`](crate::Config::max_output) the connection is closed with
    /// [`Limit::Output`](crate::Limit::Output). After a close or `shutdown_write` the bytes are
    /// discarded.
    pub fn write(&mut self, data: &[u8]) {
        if let Err(err) = self.core.write_conn(self.slot, data) {
            log::debug!("{}: {} B not written: {err}", self.id(), data.len());
        }
    }

    /// Sends `data` to another connection, as [`write`](Context::write) would for it.
    ///
    /// This is how a chat server broadcasts. A target that stopped reading is closed once its
    /// buffered output passes [`Config::max_output`](crate::Config::max_output), so one slow
    /// peer cannot grow the server's memory.
    pub fn write_to(&mut self, id: ConnId, data: &[u8]) -> Result<(), WriteError> {
        if id.0 == self.slot && self.core.conn_ref(self.slot).is_some_and(|c| c.finished) {
            return Err(WriteError::NoSuchConnection);
        }
        self.core.write_conn(id.0, data)
    }

    /// Closes gracefully: buffered output is flushed, then a FIN is sent; the connection ends
    /// when the peer closes too, or is aborted after
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    pub fn close(&mut self) {
        self.core.request_close(self.slot, CloseReason::Local);
    }

    /// Closes gracefully, reporting `reason` to [`Handler::on_close`](crate::Handler::on_close)
    /// and the stats: for example [`CloseReason::Protocol`] after a malformed message (write
    /// the error reply first; it is flushed before the FIN).
    pub fn close_with(&mut self, reason: CloseReason) {
        self.core.request_close(self.slot, reason);
    }

    /// Closes at once, discarding buffered output, with a reset to tell the peer.
    pub fn abort(&mut self) {
        self.core.close_now(self.slot, CloseReason::Aborted);
    }

    /// Shuts down the write side once buffered output is flushed (the peer reads EOF). Input
    /// keeps arriving until the peer closes its side too.
    pub fn shutdown_write(&mut self) {
        self.core.shutdown_write(self.slot);
    }

    /// Stops delivering input until [`resume_reading`](Context::resume_reading). The kernel
    /// buffers what the peer sends, then TCP flow control makes the peer wait.
    pub fn pause_reading(&mut self) {
        self.core.set_reading(self.slot, true);
    }

    /// Delivers input again, starting with input kept while paused.
    pub fn resume_reading(&mut self) {
        self.core.set_reading(self.slot, false);
    }

    /// Calls [`Handler::on_timer`](crate::Handler::on_timer) after `delay`, in this loop.
    /// Timers of a closed connection never fire.
    pub fn set_timer(&mut self, delay: Duration) -> TimerId {
        self.core.set_timer(self.slot, delay)
    }

    /// Cancels a timer; returns whether it was still pending.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.cancel_timer(timer)
    }

    /// Closes this connection gracefully ([`CloseReason::IdleTimeout`]) once it has read and
    /// written nothing for `timeout`; `None` turns that off. Replaces the reactor default
    /// [`Config::idle_timeout`](crate::Config::idle_timeout).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.core.set_idle_timeout(self.slot, timeout);
    }

    /// The reactor's configuration: water marks, limits, timeouts.
    pub fn config(&self) -> &crate::Config {
        &self.core.config
    }

    /// Bytes written but not yet taken by the kernel.
    pub fn buffered_output(&self) -> usize {
        self.core
            .conn_ref(self.slot)
            .map_or(0, |conn| conn.output.len())
    }

    /// Bytes kept from earlier [`on_data`](crate::Handler::on_data) calls that were not
    /// consumed. In [`on_eof`](crate::Handler::on_eof), non-zero means the peer stopped in
    /// the middle of a message.
    pub fn buffered_input(&self) -> usize {
        self.core
            .conn_ref(self.slot)
            .map_or(0, |conn| conn.input.len())
    }

    /// Opens an outbound TCP connection in this reactor, served by `handler`.
    /// Failure to connect is reported to its `on_close`.
    pub fn connect(&mut self, addr: SocketAddr, handler: impl Handler) -> io::Result<ConnId> {
        self.core
            .connect(vec![PeerAddr::Tcp(addr)], Box::new(handler))
            .map_err(|(err, _)| err)
    }

    /// Opens an outbound Unix-domain stream connection in this reactor.
    pub fn connect_unix(
        &mut self,
        path: impl AsRef<Path>,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        self.core.connect_unix(path.as_ref(), Box::new(handler))
    }

    /// Asks the reactor to shut down, as a [`ShutdownHandle`](crate::ShutdownHandle) would.
    pub fn shutdown_reactor(&mut self) {
        self.core.request_shutdown();
    }

    /// Whether the reactor is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.core.is_shutting_down()
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id())
            .field("peer", self.peer_addr())
            .finish()
    }
}

//! Any pollable descriptor as an event of the loop: what a watch's handler is given.
//!
//! A pipe, a child process's standard output, standard input when it is a pipe or a
//! terminal, a timerfd, an inotify descriptor, a socket made by another library, Unix signals
//! (`signals.rs`): anything epoll can poll can be watched by the same loop that serves the
//! connections, with a small readiness handler, as libuv's `uv_poll`, asyncio's `add_reader`
//! and Twisted's `addReader` do. The reactor keeps the source and hands it to the handler
//! with what the events said; reading and writing it is the handler's business. The slab
//! entry and its dispatch are in `watch.rs`.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::context::WriteError;
use crate::core::Core;
use crate::id::{ConnId, LoopTimerId, Slot, WatchId};
use crate::loop_timers::Every;

/// What the readiness events of a watched source said since its handler last ran.
///
/// mio is edge-triggered: a readable source stays readable until a read returns
/// `WouldBlock`, and no new event comes for bytes that were already there. A handler reads
/// (or writes) until `WouldBlock`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    readable: bool,
    writable: bool,
    closed: bool,
    error: bool,
}

impl Readiness {
    /// The source may be read without blocking (or a read will report EOF or an error).
    pub fn is_readable(&self) -> bool {
        self.readable
    }

    /// The source may be written without blocking.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The other end closed: a pipe's last writer (`EPOLLHUP`) or reader (`EPOLLERR` on the
    /// write end), a socket's peer (`EPOLLRDHUP`). Reading still returns what is buffered,
    /// then EOF.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The source reported an error (`EPOLLERR`); the next read or write returns it.
    pub fn is_error(&self) -> bool {
        self.error
    }

    /// Adds what one event says.
    pub(crate) fn merge(&mut self, event: &Event) {
        self.readable |= event.is_readable();
        self.writable |= event.is_writable();
        self.closed |= event.is_read_closed() || event.is_write_closed();
        self.error |= event.is_error();
    }
}

impl fmt::Display for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.readable, "readable"),
            (self.writable, "writable"),
            (self.closed, "closed"),
            (self.error, "error"),
        ];
        let said: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        if said.is_empty() {
            f.write_str("nothing")
        } else {
            f.write_str(&said.join(", "))
        }
    }
}

/// Handles readiness of one watched source of type `S`; see
/// [`Reactor::watch`](crate::Reactor::watch).
///
/// A closure `FnMut(&mut S, Readiness, &mut WatchContext<'_>)` is one.
pub trait WatchHandler<S>: 'static {
    /// The source is ready as `readiness` says: read (or write) it until `WouldBlock`.
    fn on_ready(&mut self, source: &mut S, readiness: Readiness, ctx: &mut WatchContext<'_>);
}

impl<S, F> WatchHandler<S> for F
where
    F: FnMut(&mut S, Readiness, &mut WatchContext<'_>) + 'static,
{
    fn on_ready(&mut self, source: &mut S, readiness: Readiness, ctx: &mut WatchContext<'_>) {
        self(source, readiness, ctx)
    }
}

/// What a watch's handler can do: end the watch, reach connections by id, stop the reactor.
pub struct WatchContext<'a> {
    pub(crate) core: &'a mut Core,
    slot: Slot,
}

impl<'a> WatchContext<'a> {
    pub(crate) fn new(core: &'a mut Core, slot: Slot) -> WatchContext<'a> {
        WatchContext { core, slot }
    }

    /// This watch's id.
    pub fn id(&self) -> WatchId {
        WatchId(self.slot)
    }

    /// The time this turn began.
    pub fn now(&self) -> Instant {
        self.core.now()
    }

    /// Ends this watch: at the end of the turn the source is deregistered and dropped (which
    /// closes a descriptor it owns), and the handler with it. Its handler is not called again.
    pub fn unwatch(&mut self) {
        self.core.unwatch(self.slot);
    }

    /// Writes to the connection `id`, as its own [`Context::write`](crate::Context::write)
    /// would: a line read from standard input sent to a peer, a child process's output
    /// relayed.
    ///
    /// # Errors
    /// As [`Context::write_to`](crate::Context::write_to):
    /// [`NoSuchConnection`](WriteError::NoSuchConnection) if `id` names no connection,
    /// [`Closed`](WriteError::Closed) if it no longer takes output,
    /// [`LimitExceeded`](WriteError::LimitExceeded) if the write passed its output limit
    /// (the connection is then closed).
    pub fn write_to(&mut self, id: ConnId, data: &[u8]) -> Result<(), WriteError> {
        self.core.write_conn(id.0, data)
    }

    /// Sets a timer of the loop, which belongs to no connection: `callback` runs once after
    /// `delay`, with a [`LoopContext`](crate::LoopContext), even if this watch has ended or its source closed
    /// meanwhile. As [`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer).
    ///
    /// # Examples
    /// A signal that arms a timer: SIGUSR1 asks for a shutdown 5 ms later.
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.on_signals(&[libc::SIGUSR1], |_, ctx| {
    ///     ctx.set_loop_timer(Duration::from_millis(5), |lc, _| lc.shutdown_reactor());
    /// })?;
    /// signal_hook::low_level::raise(libc::SIGUSR1)?;
    /// reactor.run()?;
    /// assert_eq!(reactor.stats().loop_timers_fired, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_loop_timer(
        &mut self,
        delay: Duration,
        callback: impl FnMut(&mut crate::LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_timer(delay, None, Box::new(callback))
    }

    /// Sets a periodic timer of the loop: `callback` runs every period as `every` says,
    /// until cancelled. As [`Reactor::set_loop_interval`](crate::Reactor::set_loop_interval).
    pub fn set_loop_interval(
        &mut self,
        every: Every,
        callback: impl FnMut(&mut crate::LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_interval(every, Box::new(callback))
    }

    /// Cancels a timer of the loop, whoever set it; returns whether it was pending. As
    /// [`Reactor::cancel_loop_timer`](crate::Reactor::cancel_loop_timer).
    pub fn cancel_loop_timer(&mut self, id: LoopTimerId) -> bool {
        self.core.cancel_loop_timer(id)
    }

    /// Asks the reactor to shut down, as a [`ShutdownHandle`](crate::ShutdownHandle) does:
    /// the first request drains gracefully, the second aborts what is left. Seen at the start
    /// of the next turn.
    pub fn shutdown_reactor(&mut self) {
        self.core.lifecycle.request_shutdown();
    }

    /// Whether the reactor is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.core.lifecycle.is_shutting_down()
    }
}

impl fmt::Debug for WatchContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchContext")
            .field("id", &self.id())
            .finish()
    }
}

/// Makes anything with a descriptor ([`AsRawFd`]) a [`Source`] that can be watched: standard
/// input, a timerfd or inotify descriptor from another crate, a socket made elsewhere.
///
/// The descriptor must be in non-blocking mode (`O_NONBLOCK`) for the handler's reads to
/// stop at `WouldBlock` instead of blocking the loop; mio's own types
/// ([`mio::unix::pipe::Receiver`], which also wraps a child's `ChildStdout`) already are, and
/// do not need this wrapper. It owns `T`: dropping the watch drops `T`.
#[derive(Debug)]
pub struct FdSource<T: AsRawFd>(pub T);

impl<T: AsRawFd> Source for FdSource<T> {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

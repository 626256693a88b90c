//! Stopping a reactor from any thread.
//!
//! The loop is blocked in `epoll_wait`, so a flag alone would not be seen until the next
//! event. A [`mio::Waker`] makes `poll` return. Wakes coalesce (ten wakes may produce one
//! event), so the request itself is a counter the loop reads every turn, not the event.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mio::Waker;

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::listen::remove_listener;

/// A `Send + Clone` handle that asks a [`Reactor`](crate::Reactor) to shut down.
///
/// The first request stops accepting, asks every handler to finish
/// ([`Handler::on_shutdown`](crate::Handler::on_shutdown)) and gives connections until
/// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout) to close; then
/// [`Reactor::run`](crate::Reactor::run) returns. A second request aborts what is left at once.
///
/// # Examples
/// ```
/// use mio_reactor::Reactor;
///
/// let mut reactor = Reactor::new()?;
/// let handle = reactor.shutdown_handle();
/// std::thread::spawn(move || handle.shutdown());
/// reactor.run()?; // returns once the request is seen
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    /// One per reactor this handle stops: its request counter and its waker.
    targets: Arc<[(Arc<AtomicUsize>, Arc<Waker>)]>,
}

impl ShutdownHandle {
    pub(crate) fn new(requests: Arc<AtomicUsize>, waker: Arc<Waker>) -> ShutdownHandle {
        ShutdownHandle {
            targets: Arc::new([(requests, waker)]),
        }
    }

    /// One handle that stops every reactor the given handles stop (one reactor per core).
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor, ShutdownHandle};
    ///
    /// struct Discard;
    /// impl Handler for Discard {
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    ///
    /// let mut reactors = Vec::new();
    /// for _ in 0..2 {
    ///     let mut reactor = Reactor::new()?;
    ///     reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Discard))?;
    ///     reactors.push(reactor);
    /// }
    /// let all = ShutdownHandle::all(reactors.iter().map(Reactor::shutdown_handle));
    /// all.shutdown();
    /// for reactor in &mut reactors {
    ///     reactor.run()?; // each stops listening, and returns
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn all(handles: impl IntoIterator<Item = ShutdownHandle>) -> ShutdownHandle {
        let targets: Vec<_> = handles
            .into_iter()
            .flat_map(|handle| handle.targets.iter().cloned().collect::<Vec<_>>())
            .collect();
        ShutdownHandle {
            targets: targets.into(),
        }
    }

    /// Requests a graceful shutdown unless one was requested already: unlike
    /// [`shutdown`](ShutdownHandle::shutdown), never an abort. For triggers that may come
    /// after a signal started the drain (standard input closing, a supervisor's stop
    /// request): the drain goes on to its deadline instead of being cut short.
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.shutdown_handle();
    /// handle.shutdown(); // say, from SIGTERM
    /// handle.shutdown_gracefully(); // say, standard input closed: the drain goes on
    /// reactor.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_gracefully(&self) {
        for (requests, waker) in self.targets.iter() {
            let first = requests
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
            if first {
                wake(waker);
            }
        }
    }

    /// Requests a shutdown: graceful the first time, an abort the second.
    pub fn shutdown(&self) {
        for (requests, waker) in self.targets.iter() {
            requests.fetch_add(1, Ordering::SeqCst);
            wake(waker);
        }
    }
}

fn wake(waker: &Waker) {
    if let Err(err) = waker.wake() {
        // The loop still sees the counter on its next turn; nothing else to do.
        log::error!("could not wake the reactor for shutdown: {err}");
    }
}

/// Where the reactor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// Listeners are gone; connections are finishing.
    Draining,
    /// Every connection was aborted.
    Aborted,
}

/// The loop's part that knows where the reactor is in its life: its phase, and the counter
/// of shutdown requests that [`ShutdownHandle`]s, contexts and the inbox share.
///
/// Only the shutdown sequence below moves the phase, and only forward.
pub(crate) struct Lifecycle {
    phase: Phase,
    requests: Arc<AtomicUsize>,
    /// The listeners went to an upgrade's successor (`upgrade.rs`): the shutdown that
    /// follows is an upgrade's drain, which handlers may tell apart.
    upgraded: bool,
}

impl Lifecycle {
    pub(crate) fn new() -> Lifecycle {
        Lifecycle {
            phase: Phase::Running,
            requests: Arc::new(AtomicUsize::new(0)),
            upgraded: false,
        }
    }

    /// The shared request counter, for a [`ShutdownHandle`] or the inbox.
    pub(crate) fn requests(&self) -> Arc<AtomicUsize> {
        self.requests.clone()
    }

    /// Asks for a shutdown from inside the loop; seen at the start of the next turn.
    pub(crate) fn request_shutdown(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether a request came that the shutdown sequence has not acted on yet (one made
    /// from a callback that ran before the poll: a timer's, the before-sleep hook's), so
    /// that the poll does not block before the next turn acts on it.
    pub(crate) fn has_unseen_request(&self) -> bool {
        let requests = self.requests.load(Ordering::SeqCst);
        match self.phase {
            Phase::Running => requests >= 1,
            Phase::Draining => requests >= 2,
            Phase::Aborted => false,
        }
    }

    /// Marks the listeners as given to an upgrade's successor, and asks for the drain.
    pub(crate) fn upgraded(&mut self) {
        self.upgraded = true;
        self.request_shutdown();
    }

    /// Whether the listeners went to an upgrade's successor.
    pub(crate) fn is_upgrading(&self) -> bool {
        self.upgraded
    }

    /// Whether a shutdown has begun (draining or aborted).
    #[inline]
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }
}

/// The shutdown sequence, as the loop carries it out: the first request stops the listeners
/// and asks every handler to finish ([`Handler::on_shutdown`](crate::Handler::on_shutdown))
/// before a deadline; the second request, or the deadline, aborts what is left.
impl Core {
    /// Reads the shutdown counter: the first request drains, the second aborts.
    pub(crate) fn check_shutdown(&mut self) {
        let requests = self.lifecycle.requests.load(Ordering::SeqCst);
        if requests >= 1 && self.lifecycle.phase == Phase::Running {
            self.begin_shutdown();
        }
        if requests >= 2 && self.lifecycle.phase == Phase::Draining {
            self.abort_all();
        }
        // Nothing to drain but watches (a signal watch, say): `run` may return now.
        self.end_watches_if_alone();
    }

    fn begin_shutdown(&mut self) {
        self.lifecycle.phase = Phase::Draining;
        for key in self.entries.listener_keys(|_| true) {
            remove_listener(&mut self.entries, key);
        }
        let conns = self.entries.conn_slots();
        log::info!(
            "shutting down: {} connections to finish within {:?}",
            conns.len(),
            self.config().shutdown_timeout
        );
        for slot in conns {
            match self.entries.conn(slot) {
                // No handler yet to finish its work, and none will be made now.
                Some(c) if c.awaits_proxy_header() => self.close_now(slot, CloseReason::Shutdown),
                Some(c) if c.state().is_active() => {
                    self.with_handler(slot, |h, ctx| h.on_shutdown(ctx));
                    self.queue(slot);
                }
                _ => {}
            }
        }
        for slot in self.entries.udp_slots() {
            self.with_datagram_handler(slot, |h, ctx| h.on_shutdown(ctx));
        }
        let deadline = self.now() + self.config().shutdown_timeout;
        self.timers.insert(deadline, TimerTask::ShutdownDeadline);
    }

    pub(crate) fn abort_all(&mut self) {
        if self.lifecycle.phase == Phase::Aborted {
            return;
        }
        self.lifecycle.phase = Phase::Aborted;
        let conns = self.entries.conn_slots();
        log::info!("aborting {} connections", conns.len());
        for slot in conns {
            self.close_now(slot, CloseReason::ShutdownAborted);
        }
        for slot in self.entries.udp_slots() {
            self.finish_udp(slot, CloseReason::ShutdownAborted);
        }
    }
}

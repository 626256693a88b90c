//! The reactor's state apart from `mio::Poll` itself, composed of parts.
//!
//! It is split from [`Reactor`](crate::Reactor) so that a [`Context`] can borrow all of it
//! mutably while a handler runs; the handler itself is taken out of its slab entry for the
//! duration of the call. Each part owns its state behind private fields, in its own file:
//! the slab and the registry ([`Entries`], `entries.rs`), the ready, unflushed, closed and
//! paused lists ([`Queues`], `queues.rs`), the timers (`timer.rs`), the phase and shutdown
//! requests ([`Lifecycle`], `shutdown.rs`), the trace ([`Trace`], `trace.rs`), the posted work
//! ([`Inbox`], `post.rs`), the listens ([`Listens`], `listen.rs`), the callbacks of the
//! loop's own timers ([`LoopTimers`], `loop_timers.rs`), the per-turn hook
//! ([`BeforeSleep`], `before_sleep.rs`), and the counters ([`Stats`]). This file composes them, and keeps the clock, the configuration and the one
//! read buffer private.
//!
//! Here too: queueing an entry, running a handler (`with_handler`), a connection's timers and
//! their dispatch, and the end-of-turn removals. What happens to a ready connection is in
//! `dispatch.rs`, to a ready listener in `accept.rs`; `docs/architecture.md` ("Parts, and what
//! is left of the circle") says why those files still extend `Core`.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry};

use crate::before_sleep::BeforeSleep;
use crate::close_reason::CloseReason;
use crate::config::Config;
use crate::connection::Connection;
use crate::context::Context;
use crate::entries::{Entries, Entry};
use crate::handler::Handler;
use crate::id::{ConnId, LoopTimerId, Slot, TimerId, UdpId};
use crate::listen::Listens;
use crate::loop_timers::LoopTimers;
use crate::net::PeerAddr;
use crate::output_limits::OutputLimits;
use crate::panics::call_user;
use crate::post::Inbox;
use crate::queues::Queues;
use crate::shutdown::Lifecycle;
use crate::state::State;
use crate::stats::Stats;
use crate::timer::Timers;
use crate::trace::{trace_record, Record, TimerKind, TimerTarget, Trace};
use crate::transport::Transport;
use crate::udp::recv_batch::RecvBatch;
use crate::udp::send_batch::SendBatch;

/// What a timer does when it fires.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimerTask {
    /// A connection handler's own timer.
    User(Slot),
    /// A datagram handler's own timer (its own variant so that traces name a `UdpId`).
    UdpUser(Slot),
    /// Check whether the connection has been idle for its idle timeout.
    Idle(Slot),
    /// Give up an outbound connect.
    ConnectDeadline(Slot),
    /// Turn a graceful close that is taking too long into an abort.
    CloseDeadline(Slot),
    /// Let a listener that ran out of descriptors try again.
    AcceptBackoff(Slot),
    /// Abort whatever is left of a graceful shutdown.
    ShutdownDeadline,
    /// A timer of the loop (`loop_timers.rs`), which belongs to no connection.
    Loop(LoopTimerId),
    /// Close a connection whose PROXY protocol header is taking too long.
    ProxyHeaderDeadline(Slot),
    /// Close a connection whose TLS handshake is taking too long.
    #[cfg(feature = "tls")]
    HandshakeDeadline(Slot),
    /// Close a connection whose output stayed above its soft limit for too long
    /// (`output_limits.rs`).
    SoftOutputLimit(Slot),
}

impl TimerTask {
    /// How a trace record describes this timer firing.
    fn record(self) -> Record {
        let conn = |slot| Some(TimerTarget::Conn(ConnId(slot)));
        let (kind, target) = match self {
            TimerTask::User(slot) => (TimerKind::User, conn(slot)),
            TimerTask::UdpUser(slot) => (TimerKind::User, Some(TimerTarget::Udp(UdpId(slot)))),
            TimerTask::Idle(slot) => (TimerKind::Idle, conn(slot)),
            TimerTask::ConnectDeadline(slot) => (TimerKind::ConnectDeadline, conn(slot)),
            TimerTask::CloseDeadline(slot) => (TimerKind::CloseDeadline, conn(slot)),
            TimerTask::AcceptBackoff(slot) => (
                TimerKind::AcceptBackoff,
                Some(TimerTarget::Listener(slot.key)),
            ),
            TimerTask::ShutdownDeadline => (TimerKind::ShutdownDeadline, None),
            TimerTask::Loop(id) => (TimerKind::Loop, Some(TimerTarget::Loop(id))),
            TimerTask::ProxyHeaderDeadline(slot) => (TimerKind::ProxyHeaderDeadline, conn(slot)),
            #[cfg(feature = "tls")]
            TimerTask::HandshakeDeadline(slot) => (TimerKind::TlsHandshakeDeadline, conn(slot)),
            TimerTask::SoftOutputLimit(slot) => (TimerKind::SoftOutputLimit, conn(slot)),
        };
        Record::TimerFired { kind, target }
    }
}

/// The loop's state, as parts: each owns its state behind private fields and is changed
/// only through its methods, so a function's signature says which part it may change.
///
/// Twelve parts are visible to the other files of the crate; the clock, the configuration and
/// the read buffer are not: they are read through [`now`](Core::now) and
/// [`config`](Core::config), the clock is set only by [`read_clock`](Core::read_clock), and
/// the buffer is lent by [`take_read_buf`](Core::take_read_buf).
pub(crate) struct Core {
    /// The slab of entries, their generations and the registry (`entries.rs`).
    pub(crate) entries: Entries,
    /// Connection, socket and loop timers (`timer.rs`; what they do: [`TimerTask`]).
    pub(crate) timers: Timers<TimerTask>,
    /// The ready, unflushed, closed and paused lists (`queues.rs`).
    pub(crate) queues: Queues,
    /// Running, draining or aborted, and the shutdown requests (`shutdown.rs`).
    pub(crate) lifecycle: Lifecycle,
    /// Who listens to trace records (`trace.rs`).
    pub(crate) trace: Trace,
    /// Work and messages posted from other threads (`post.rs`).
    pub(crate) inbox: Inbox,
    /// The listen ids given out and the `handover:` listen (`listen.rs`).
    pub(crate) listens: Listens,
    /// Counters only: each is added to where its event happens, and no decision reads them
    /// but `open_connections` (the connection cap), which only `insert_conn` and
    /// `remove_conn` change. Behind methods they would read no better.
    pub(crate) stats: Stats,
    /// The callbacks of the loop's own timers (`loop_timers.rs`; their deadlines are in
    /// `timers`).
    pub(crate) loop_timers: LoopTimers,
    /// The hook that runs once per turn before the poll (`before_sleep.rs`).
    pub(crate) before_sleep: BeforeSleep,
    /// The clock, read once per turn.
    now: Instant,
    /// Set when the reactor is made; never changed.
    config: Config,
    /// The one read buffer every connection reads into.
    read_buf: Vec<u8>,
    /// The slots every UDP socket receives its datagrams into (`udp/recv_batch.rs`), lent for
    /// one dispatch as `read_buf` is.
    pub(crate) recv_batch: RecvBatch,
    /// Whether datagrams leave in batches (`udp/send_batch.rs`).
    pub(crate) send_batch: SendBatch,
}

impl Core {
    pub(crate) fn new(registry: Registry, config: Config, waker: Arc<mio::Waker>) -> Core {
        let lifecycle = Lifecycle::new();
        let inbox = Inbox::new(waker, lifecycle.requests(), config.post_queue_capacity);
        Core {
            entries: Entries::new(registry),
            timers: Timers::default(),
            queues: Queues::default(),
            lifecycle,
            trace: Trace::default(),
            inbox,
            listens: Listens::default(),
            stats: Stats::default(),
            loop_timers: LoopTimers::default(),
            before_sleep: BeforeSleep::default(),
            now: Instant::now(),
            read_buf: vec![0; config.read_buffer_size],
            recv_batch: RecvBatch::new(config.datagram_batches),
            send_batch: SendBatch::new(config.datagram_batches),
            config,
        }
    }

    /// The time at the start of this turn (or of the call into the reactor).
    #[inline]
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// Reads the clock, once per turn (and once per call into the reactor from outside a
    /// turn), and returns what it read.
    pub(crate) fn read_clock(&mut self) -> Instant {
        self.now = Instant::now();
        self.now
    }

    /// The configuration the reactor was made with.
    #[inline]
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Lends the one read buffer; give it back with [`return_read_buf`](Core::return_read_buf).
    /// (Taken rather than borrowed, because what is read is handed to a callback that
    /// borrows the whole core.)
    #[inline]
    pub(crate) fn take_read_buf(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.read_buf)
    }

    #[inline]
    pub(crate) fn return_read_buf(&mut self, buf: Vec<u8>) {
        self.read_buf = buf;
    }

    /// Puts an entry in the ready queue unless it is there already.
    #[inline]
    pub(crate) fn queue(&mut self, slot: Slot) {
        if self.entries.mark_queued(slot) {
            self.queues.push_ready(slot);
        }
    }

    /// Registers a new connection with its output `limits` (`None`: the reactor's) and its
    /// handler (`None`: the factory makes it later, see `proxy_stage.rs`), and puts it in
    /// the slab; on error the handler is handed back.
    pub(crate) fn insert_conn<H: Into<Option<Box<dyn Handler>>>>(
        &mut self,
        mut transport: Transport,
        (peer, limits): (PeerAddr, Option<OutputLimits>),
        handler: H,
        state: State,
    ) -> Result<Slot, (io::Error, H)> {
        let slot = self.entries.next_slot();
        // Both interests, once: toggling interest per message costs a syscall each time and
        // risks losing an edge. Readiness flags in the transport decide what to do.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(err) = self.entries.register(&mut transport, slot, interest) {
            return Err((err, handler));
        }
        let limits = limits.unwrap_or_else(|| OutputLimits::from(self.config()));
        let handler = handler.into();
        let conn = Connection::new(slot, transport, peer, handler, state, (limits, self.now()));
        self.entries.insert(slot, Entry::Conn(conn));
        self.stats.open_connections += 1;
        Ok(slot)
    }

    /// Runs `f` with the connection's handler and a context for it.
    ///
    /// Returns `None` if the connection is gone or its handler is already running (a callback
    /// never re-enters its own handler), or if the handler panicked: the panic is caught
    /// here (see `panics.rs`), the handler dropped and the connection aborted.
    pub(crate) fn with_handler<R>(
        &mut self,
        slot: Slot,
        f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
    ) -> Option<R> {
        let mut handler = self.entries.conn(slot)?.handler.take()?;
        let called = call_user(self.config().catch_panics, || {
            f(handler.as_mut(), &mut Context::new(self, slot))
        });
        match called {
            Ok(result) => {
                if let Some(conn) = self.entries.conn(slot) {
                    conn.handler = Some(handler);
                }
                Some(result)
            }
            Err(message) => {
                drop(handler); // never called again, not even `on_close`
                self.handler_panicked(slot, message);
                None
            }
        }
    }

    /// A connection's handler panicked (and was dropped): abort the connection with a reset,
    /// report it once, log it, count it.
    pub(crate) fn handler_panicked(&mut self, slot: Slot, message: String) {
        log::error!(
            "{} handler panicked: {message}; the connection is aborted",
            ConnId(slot)
        );
        self.stats.handler_panics += 1;
        self.close_now(slot, CloseReason::HandlerPanicked(message));
    }

    /// The connection is established: start its idle clock and tell the handler.
    pub(crate) fn open(&mut self, slot: Slot) {
        let idle = self.config().idle_timeout;
        if let Some(conn) = self.entries.conn(slot) {
            log::debug!("{} open, peer {}", conn.id(), conn.peer());
        }
        self.set_idle_timeout(slot, idle);
        #[cfg(feature = "tls")]
        self.arm_handshake_deadline(slot);
        self.with_handler(slot, |h, ctx| h.on_open(ctx));
        self.queue(slot);
    }

    /// Cancels a handler's timer; a timer of another connection is left alone.
    pub(crate) fn cancel_timer(&mut self, owner: Slot, timer: TimerId) -> bool {
        match self.timers.get(timer.0) {
            Some(TimerTask::User(slot) | TimerTask::UdpUser(slot)) if *slot == owner => {
                self.forget_user_timer(owner, timer.0);
                self.timers.cancel(timer.0).is_some()
            }
            _ => false,
        }
    }

    /// Arms a connection handler's timer; the connection keeps its id so that removing the
    /// connection cancels it.
    pub(crate) fn set_timer(&mut self, slot: Slot, delay: Duration) -> TimerId {
        let id = self
            .timers
            .insert(self.now() + delay, TimerTask::User(slot));
        if let Some(conn) = self.entries.conn(slot) {
            conn.user_timers.push(id);
        }
        TimerId(id)
    }

    /// A connection's timer fired or was cancelled: it no longer needs cancelling on removal.
    fn forget_user_timer(&mut self, slot: Slot, id: u64) {
        if let Some(conn) = self.entries.conn(slot) {
            conn.user_timers.retain(|pending| *pending != id);
        }
    }

    /// Sets (or clears) the idle timeout and re-arms its timer from the last activity.
    pub(crate) fn set_idle_timeout(&mut self, slot: Slot, timeout: Option<Duration>) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.idle_timeout = timeout;
        let old = conn.idle_timer.take();
        let deadline = timeout.map(|t| conn.last_active + t);
        if let Some(old) = old {
            self.timers.cancel(old);
        }
        if let Some(deadline) = deadline {
            let timer = self.timers.insert(deadline, TimerTask::Idle(slot));
            if let Some(conn) = self.entries.conn(slot) {
                conn.idle_timer = Some(timer);
            }
        }
    }

    /// Fires every timer that is due.
    pub(crate) fn fire_timers(&mut self) {
        while let Some((id, task)) = self.timers.pop_due(self.now()) {
            trace_record!(self, task.record());
            match task {
                TimerTask::User(slot) => {
                    self.forget_user_timer(slot, id);
                    self.fire_user_timer(slot, TimerId(id));
                }
                TimerTask::UdpUser(slot) => self.fire_udp_timer(slot, TimerId(id)),
                TimerTask::Idle(slot) => self.idle_timer_fired(slot),
                TimerTask::ConnectDeadline(slot) => self.connect_deadline_passed(slot),
                TimerTask::CloseDeadline(slot) => self.close_deadline_passed(slot),
                TimerTask::AcceptBackoff(slot) => {
                    if let Some(listener) = self.entries.listener(slot) {
                        listener.backing_off = false;
                        self.queue(slot);
                    }
                }
                TimerTask::ShutdownDeadline => self.abort_all(),
                TimerTask::Loop(id) => self.fire_loop_timer(id),
                TimerTask::ProxyHeaderDeadline(slot) => self.proxy_header_deadline_passed(slot),
                #[cfg(feature = "tls")]
                TimerTask::HandshakeDeadline(slot) => self.handshake_deadline_passed(slot),
                TimerTask::SoftOutputLimit(slot) => self.soft_limit_timer_fired(slot),
            }
        }
    }

    fn fire_user_timer(&mut self, slot: Slot, timer: TimerId) {
        if matches!(self.entries.conn(slot), Some(c) if c.state().is_active()) {
            self.with_handler(slot, |h, ctx| h.on_timer(ctx, timer));
            self.queue(slot);
        }
    }

    /// Removes the entries that finished this turn: `on_close`, deregister, drop; and the
    /// watches, if a shutdown left nothing else.
    ///
    /// Deferred to the end of the turn so that an event later in the same batch can never
    /// reach a new entry that reused the key.
    pub(crate) fn remove_finished(&mut self) {
        while let Some(slot) = self.queues.pop_closed() {
            match self.entries.get(slot.key) {
                Some(Entry::Udp(_)) => self.remove_udp(slot),
                Some(Entry::Watch(_)) => self.remove_watch(slot),
                _ => self.remove_conn(slot),
            }
        }
        self.resume_listeners();
        self.end_watches_if_alone();
    }

    /// How long `poll` may block: not at all if work is queued (entries to dispatch,
    /// connections a timer just closed, to be removed after the poll, or posted items beyond
    /// the last turn's budget, or a shutdown request from a timer or the before-sleep hook
    /// that the next turn must act on), else until the next timer.
    pub(crate) fn poll_timeout(&mut self, max_wait: Option<Duration>) -> Option<Duration> {
        if self.queues.has_work() || self.inbox.has_more() || self.lifecycle.has_unseen_request() {
            return Some(Duration::ZERO);
        }
        let until_timer = self
            .timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(self.now()));
        match (until_timer, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Nothing is left that could ever produce an event, no loop timer is pending (or a
    /// shutdown has begun: loop timers fire while it drains, but do not hold it), no posted
    /// item waits, and none can come (no [`LoopHandle`](crate::LoopHandle) left, or a
    /// shutdown begun).
    pub(crate) fn is_finished(&self) -> bool {
        let shutting_down = self.lifecycle.is_shutting_down();
        self.entries.is_empty()
            && (shutting_down || self.loop_timers.is_empty())
            && self.inbox.is_done(shutting_down)
    }
}

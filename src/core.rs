//! The reactor's state apart from `mio::Poll` itself: the slab, the timers, the ready queue.
//!
//! It is split from [`Reactor`](crate::Reactor) so that a [`Context`] can borrow all of it
//! mutably while a handler runs; the handler itself is taken out of its slab entry for the
//! duration of the call. This file holds the bookkeeping; what happens to a ready connection is
//! in `dispatch.rs`, what happens to a ready listener in `accept.rs`.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::close_reason::CloseReason;
use crate::config::Config;
use crate::connection::Connection;
use crate::context::Context;
use crate::handler::Handler;
use crate::id::{ConnId, Slot, TimerId, UdpId};
use crate::listener::Listener;
use crate::net::{PeerAddr, Stream};
use crate::state::State;
use crate::stats::Stats;
use crate::timer::Timers;
use crate::trace::{trace_record, Observer, Record, TimerKind, TimerTarget, TARGET};
use crate::udp::Udp;

/// What the slab holds: the key of an entry is its `mio::Token`.
pub(crate) enum Entry {
    Listener(Listener),
    Conn(Connection),
    Udp(Udp),
}

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
        };
        Record::TimerFired { kind, target }
    }
}

/// Where the reactor is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    /// Listeners are gone; connections are finishing.
    Draining,
    /// Every connection was aborted.
    Aborted,
}

pub(crate) struct Core {
    pub(crate) registry: Registry,
    pub(crate) slab: Slab<Entry>,
    pub(crate) timers: Timers<TimerTask>,
    /// Entries to dispatch this turn, each at most once (see the `queued` flags).
    pub(crate) ready: VecDeque<Slot>,
    /// Connections to remove at the end of the turn.
    pub(crate) finished: Vec<Slot>,
    /// Listeners waiting for a connection slot (`max_connections`).
    pub(crate) paused_listeners: Vec<Slot>,
    /// The one read buffer every connection reads into.
    pub(crate) read_buf: Vec<u8>,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    /// The clock, read once per turn.
    pub(crate) now: Instant,
    pub(crate) phase: Phase,
    pub(crate) shutdown_requests: Arc<AtomicUsize>,
    /// Whether anyone listens to trace records (an observer, or `log` at trace level for
    /// `mio_reactor::trace`); refreshed every turn so that records cost nothing otherwise.
    pub(crate) tracing: bool,
    pub(crate) observer: Option<Box<dyn Observer>>,
    next_generation: u32,
}

impl Core {
    pub(crate) fn new(registry: Registry, config: Config) -> Core {
        Core {
            registry,
            slab: Slab::new(),
            timers: Timers::default(),
            ready: VecDeque::new(),
            finished: Vec::new(),
            paused_listeners: Vec::new(),
            read_buf: vec![0; config.read_buffer_size],
            config,
            stats: Stats::default(),
            now: Instant::now(),
            phase: Phase::Running,
            shutdown_requests: Arc::new(AtomicUsize::new(0)),
            tracing: false,
            observer: None,
            next_generation: 0,
        }
    }

    /// Re-reads whether trace records are wanted.
    pub(crate) fn refresh_tracing(&mut self) {
        self.tracing =
            self.observer.is_some() || log::log_enabled!(target: TARGET, log::Level::Trace);
    }

    /// Hands a record to the log and the observer. Call through `trace_record!`.
    pub(crate) fn emit(&mut self, record: Record) {
        log::trace!(target: TARGET, "{record}");
        if let Some(observer) = &mut self.observer {
            observer.record(self.now, &record);
        }
    }

    /// The connection `slot` names, if it is still the one living there.
    pub(crate) fn conn(&mut self, slot: Slot) -> Option<&mut Connection> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Conn(conn)) if conn.slot.generation == slot.generation => Some(conn),
            _ => None,
        }
    }

    pub(crate) fn conn_ref(&self, slot: Slot) -> Option<&Connection> {
        match self.slab.get(slot.key) {
            Some(Entry::Conn(conn)) if conn.slot.generation == slot.generation => Some(conn),
            _ => None,
        }
    }

    pub(crate) fn listener(&mut self, slot: Slot) -> Option<&mut Listener> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Listener(l)) if l.slot.generation == slot.generation => Some(l),
            _ => None,
        }
    }

    /// The slot a new entry will get.
    pub(crate) fn next_slot(&mut self) -> Slot {
        self.next_generation = self.next_generation.wrapping_add(1);
        Slot {
            key: self.slab.vacant_key(),
            generation: self.next_generation,
        }
    }

    /// Puts an entry in the ready queue unless it is there already.
    pub(crate) fn queue(&mut self, slot: Slot) {
        let queued = match self.slab.get_mut(slot.key) {
            Some(Entry::Conn(c)) if c.slot == slot => &mut c.queued,
            Some(Entry::Listener(l)) if l.slot == slot => &mut l.queued,
            Some(Entry::Udp(u)) if u.slot == slot => &mut u.queued,
            _ => return,
        };
        if !*queued {
            *queued = true;
            self.ready.push_back(slot);
        }
    }

    /// Registers a new connection and puts it in the slab; on error the handler is handed
    /// back.
    pub(crate) fn insert_conn(
        &mut self,
        mut stream: Stream,
        peer: PeerAddr,
        handler: Box<dyn Handler>,
        state: State,
    ) -> Result<Slot, (io::Error, Box<dyn Handler>)> {
        let slot = self.next_slot();
        // Both interests, once: toggling interest per message costs a syscall each time and
        // risks losing an edge. Readiness flags in the connection decide what to do.
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(err) = self
            .registry
            .register(&mut stream, Token(slot.key), interest)
        {
            return Err((err, handler));
        }
        let mut conn = Connection::new(slot, stream, peer, handler, state, self.now);
        // An accepted socket's send buffer is empty: write at once instead of waiting a turn
        // for the writable edge. (A connect in progress is not writable until it completes.)
        conn.writable = state != State::Connecting;
        self.slab.insert(Entry::Conn(conn));
        self.stats.open_connections += 1;
        Ok(slot)
    }

    /// Applies the per-socket options of the config: `TCP_NODELAY` and the kernel buffer
    /// sizes. A failure is logged, not fatal: the connection works without them.
    pub(crate) fn configure_socket(&self, stream: &Stream, peer: &PeerAddr) {
        let config = &self.config;
        if let Err(err) = stream.set_nodelay(config.nodelay) {
            log::debug!("TCP_NODELAY for {peer}: {err}");
        }
        if let Err(err) =
            stream.set_buffer_sizes(config.socket_send_buffer, config.socket_recv_buffer)
        {
            log::debug!("socket buffer sizes for {peer}: {err}");
        }
    }

    /// Runs `f` with the connection's handler and a context for it.
    ///
    /// Returns `None` if the connection is gone or its handler is already running (a callback
    /// never re-enters its own handler).
    pub(crate) fn with_handler<R>(
        &mut self,
        slot: Slot,
        f: impl FnOnce(&mut dyn Handler, &mut Context<'_>) -> R,
    ) -> Option<R> {
        let mut handler = self.conn(slot)?.handler.take()?;
        let result = f(handler.as_mut(), &mut Context::new(self, slot));
        if let Some(conn) = self.conn(slot) {
            conn.handler = Some(handler);
        }
        Some(result)
    }

    /// The connection is established: start its idle clock and tell the handler.
    pub(crate) fn open(&mut self, slot: Slot) {
        let idle = self.config.idle_timeout;
        if let Some(conn) = self.conn(slot) {
            log::debug!("{} open, peer {}", conn.id(), conn.peer);
        }
        self.set_idle_timeout(slot, idle);
        self.with_handler(slot, |h, ctx| h.on_open(ctx));
        self.queue(slot);
    }

    /// Starts an outbound connect to the first of `addrs` that accepts a connect attempt;
    /// the rest are kept to try in order if it fails. On error the handler is handed back.
    pub(crate) fn connect(
        &mut self,
        addrs: Vec<PeerAddr>,
        handler: Box<dyn Handler>,
    ) -> Result<ConnId, (io::Error, Box<dyn Handler>)> {
        let mut last_error =
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
        let mut addrs = addrs.into_iter();
        while let Some(addr) = addrs.next() {
            let stream = match Stream::connect(&addr) {
                Ok(stream) => stream,
                Err(err) => {
                    log::debug!("connect to {addr}: {err}");
                    last_error = err;
                    continue;
                }
            };
            log::debug!("connecting to {addr}");
            // Before the handshake completes, so that the receive window is the capped one.
            self.configure_socket(&stream, &addr);
            let peer = addr.clone();
            let slot = self.insert_conn(stream, addr, handler, State::Connecting)?;
            trace_record!(
                self,
                Record::Connecting {
                    conn: ConnId(slot),
                    peer
                }
            );
            let deadline = self.now + self.config.connect_timeout;
            let timer = self
                .timers
                .insert(deadline, TimerTask::ConnectDeadline(slot));
            if let Some(conn) = self.conn(slot) {
                conn.deadline_timer = Some(timer);
                conn.fallbacks = addrs.collect();
            }
            return Ok(ConnId(slot));
        }
        Err((last_error, handler))
    }

    /// Starts an outbound Unix-domain connect.
    pub(crate) fn connect_unix(
        &mut self,
        path: &Path,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        let addr = PeerAddr::Unix(Some(path.to_path_buf()));
        self.connect(vec![addr], handler).map_err(|(err, _)| err)
    }

    /// A connect failed or timed out: try the next address with the same handler, or close.
    pub(crate) fn connect_failed(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.conn(slot) else { return };
        let fallbacks = std::mem::take(&mut conn.fallbacks);
        if !fallbacks.is_empty() {
            if let Some(handler) = conn.handler.take() {
                let failed = conn.peer.clone();
                self.retry_connect(slot, failed, &reason, fallbacks, handler);
            }
        }
        // Without its handler (it moved on to the next address) no `on_close` is called.
        self.close_now(slot, reason);
    }

    /// Moves `handler` on to the next addresses; if none can be tried, hands it back to the
    /// failed connection so that it hears `on_close`.
    fn retry_connect(
        &mut self,
        slot: Slot,
        failed: PeerAddr,
        reason: &CloseReason,
        fallbacks: Vec<PeerAddr>,
        handler: Box<dyn Handler>,
    ) {
        match self.connect(fallbacks, handler) {
            Ok(next) => log::debug!("connect to {failed}: {reason}; trying again as {next}"),
            Err((err, handler)) => {
                log::debug!("no address left to try: {err}");
                if let Some(conn) = self.conn(slot) {
                    conn.handler = Some(handler);
                }
            }
        }
    }

    /// Asks for a shutdown from inside the loop; seen at the start of the next turn.
    pub(crate) fn request_shutdown(&mut self) {
        self.shutdown_requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Cancels a handler's timer; a timer of another connection is left alone.
    pub(crate) fn cancel_timer(&mut self, owner: Slot, timer: TimerId) -> bool {
        match self.timers.get(timer.0) {
            Some(TimerTask::User(slot) | TimerTask::UdpUser(slot)) if *slot == owner => {
                self.timers.cancel(timer.0).is_some()
            }
            _ => false,
        }
    }

    pub(crate) fn set_timer(&mut self, slot: Slot, delay: Duration) -> TimerId {
        TimerId(self.timers.insert(self.now + delay, TimerTask::User(slot)))
    }

    /// Sets (or clears) the idle timeout and re-arms its timer from the last activity.
    pub(crate) fn set_idle_timeout(&mut self, slot: Slot, timeout: Option<Duration>) {
        let Some(conn) = self.conn(slot) else { return };
        conn.idle_timeout = timeout;
        let old = conn.idle_timer.take();
        let deadline = timeout.map(|t| conn.last_active + t);
        if let Some(old) = old {
            self.timers.cancel(old);
        }
        if let Some(deadline) = deadline {
            let timer = self.timers.insert(deadline, TimerTask::Idle(slot));
            if let Some(conn) = self.conn(slot) {
                conn.idle_timer = Some(timer);
            }
        }
    }

    /// Fires every timer that is due.
    pub(crate) fn fire_timers(&mut self) {
        while let Some((id, task)) = self.timers.pop_due(self.now) {
            trace_record!(self, task.record());
            match task {
                TimerTask::User(slot) => self.fire_user_timer(slot, TimerId(id)),
                TimerTask::UdpUser(slot) => self.fire_udp_timer(slot, TimerId(id)),
                TimerTask::Idle(slot) => self.check_idle(slot),
                TimerTask::ConnectDeadline(slot) => {
                    if matches!(self.conn(slot), Some(c) if c.state == State::Connecting) {
                        self.connect_failed(slot, CloseReason::ConnectTimeout);
                    }
                }
                TimerTask::CloseDeadline(slot) => self.close_deadline_passed(slot),
                TimerTask::AcceptBackoff(slot) => {
                    if let Some(listener) = self.listener(slot) {
                        listener.backing_off = false;
                        self.queue(slot);
                    }
                }
                TimerTask::ShutdownDeadline => self.abort_all(),
            }
        }
    }

    fn fire_user_timer(&mut self, slot: Slot, timer: TimerId) {
        if matches!(self.conn(slot), Some(c) if c.state.is_active()) {
            self.with_handler(slot, |h, ctx| h.on_timer(ctx, timer));
            self.queue(slot);
        }
    }

    fn check_idle(&mut self, slot: Slot) {
        let now = self.now;
        let Some(conn) = self.conn(slot) else { return };
        conn.idle_timer = None;
        let (Some(timeout), true) = (conn.idle_timeout, conn.state.is_active()) else {
            return;
        };
        let deadline = conn.last_active + timeout;
        if now >= deadline {
            log::debug!("{} idle for {:?}", conn.id(), timeout);
            self.request_close(slot, CloseReason::IdleTimeout);
        } else {
            // Activity since the timer was armed: rather than re-arming on every read and
            // write, check lazily and sleep again until the new deadline.
            let timer = self.timers.insert(deadline, TimerTask::Idle(slot));
            if let Some(conn) = self.conn(slot) {
                conn.idle_timer = Some(timer);
            }
        }
    }

    fn close_deadline_passed(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        conn.deadline_timer = None;
        if !matches!(conn.state, State::Closing { .. }) {
            return;
        }
        // Flushed and FIN sent: only the peer's EOF is missing, and nothing was lost.
        let reason = if conn.output.is_empty() && conn.fin_sent {
            conn.close_reason.take().unwrap_or(CloseReason::Local)
        } else {
            CloseReason::CloseTimeout
        };
        self.close_now(slot, reason);
    }

    /// Reads the shutdown counter: the first request drains, the second aborts.
    pub(crate) fn check_shutdown(&mut self) {
        let requests = self.shutdown_requests.load(Ordering::SeqCst);
        if requests >= 1 && self.phase == Phase::Running {
            self.begin_shutdown();
        }
        if requests >= 2 && self.phase == Phase::Draining {
            self.abort_all();
        }
    }

    fn begin_shutdown(&mut self) {
        self.phase = Phase::Draining;
        let listeners: Vec<usize> = self.keys(|e| matches!(e, Entry::Listener(_)));
        for key in listeners {
            if let Entry::Listener(mut listener) = self.slab.remove(key) {
                log::info!("stopped listening on {}", listener.socket.describe());
                if let Err(err) = self.registry.deregister(&mut listener.socket) {
                    log::debug!("deregistering a listener: {err}");
                }
            }
        }
        let conns = self.conn_slots();
        log::info!(
            "shutting down: {} connections to finish within {:?}",
            conns.len(),
            self.config.shutdown_timeout
        );
        for slot in conns {
            if matches!(self.conn(slot), Some(c) if c.state.is_active()) {
                self.with_handler(slot, |h, ctx| h.on_shutdown(ctx));
                self.queue(slot);
            }
        }
        for slot in self.udp_slots() {
            self.with_datagram_handler(slot, |h, ctx| h.on_shutdown(ctx));
        }
        let deadline = self.now + self.config.shutdown_timeout;
        self.timers.insert(deadline, TimerTask::ShutdownDeadline);
    }

    fn abort_all(&mut self) {
        if self.phase == Phase::Aborted {
            return;
        }
        self.phase = Phase::Aborted;
        let conns = self.conn_slots();
        log::info!("aborting {} connections", conns.len());
        for slot in conns {
            self.close_now(slot, CloseReason::ShutdownAborted);
        }
        for slot in self.udp_slots() {
            self.finish_udp(slot, CloseReason::ShutdownAborted);
        }
    }

    fn keys(&self, keep: impl Fn(&Entry) -> bool) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, e)| keep(e))
            .map(|(k, _)| k)
            .collect()
    }

    fn udp_slots(&self) -> Vec<Slot> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Udp(u) if !u.finished => Some(u.slot),
                _ => None,
            })
            .collect()
    }

    fn conn_slots(&self) -> Vec<Slot> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Conn(c) if !c.finished => Some(c.slot),
                _ => None,
            })
            .collect()
    }

    /// Removes the entries that finished this turn: `on_close`, deregister, drop.
    ///
    /// Deferred to the end of the turn so that an event later in the same batch can never
    /// reach a new entry that reused the key.
    pub(crate) fn remove_finished(&mut self) {
        while let Some(slot) = self.finished.pop() {
            if self.udp(slot).is_some() {
                self.remove_udp(slot);
            } else {
                self.remove_conn(slot);
            }
        }
        self.resume_listeners();
    }

    fn remove_conn(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        let reason = conn.close_reason.clone().unwrap_or(CloseReason::Local);
        let timers = [conn.idle_timer.take(), conn.deadline_timer.take()];
        for timer in timers.into_iter().flatten() {
            self.timers.cancel(timer);
        }
        self.with_handler(slot, |h, ctx| h.on_close(ctx, &reason));
        let Entry::Conn(mut conn) = self.slab.remove(slot.key) else {
            return;
        };
        if let Err(err) = self.registry.deregister(&mut conn.stream) {
            log::debug!("{} deregister: {err}", conn.id());
        }
        self.stats.open_connections -= 1;
        self.stats.closed.record(&reason);
        trace_record!(
            self,
            Record::Closed {
                conn: ConnId(slot),
                reason: reason.clone(),
                bytes_in: conn.bytes_in,
                bytes_out: conn.bytes_out,
            }
        );
        log::debug!(
            "{} closed: {reason} (peer {}, {} B in, {} B out, {:?})",
            conn.id(),
            conn.peer,
            conn.bytes_in,
            conn.bytes_out,
            self.now.saturating_duration_since(conn.opened_at)
        );
    }

    /// How long `poll` may block: not at all if work is queued (entries to dispatch, or
    /// connections a timer just closed, to be removed after the poll), else until the next
    /// timer.
    pub(crate) fn poll_timeout(&mut self, max_wait: Option<Duration>) -> Option<Duration> {
        if !self.ready.is_empty() || !self.finished.is_empty() {
            return Some(Duration::ZERO);
        }
        let until_timer = self
            .timers
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(self.now));
        match (until_timer, max_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Nothing is left that could ever produce an event.
    pub(crate) fn is_finished(&self) -> bool {
        self.slab.is_empty()
    }
}

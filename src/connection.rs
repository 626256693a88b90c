//! One connection's record in the slab: its transport, state, pauses and bookkeeping.
//!
//! The connection owns its readiness (inside its [`Transport`]) and its [`State`]: both are
//! private, and change only through methods named for what happened (an event arrived, a
//! state machine input, the handler paused reading, backpressure started). What to *do* about
//! it is decided in `decisions.rs` and carried out by `dispatch.rs`, `close.rs` and
//! `connect.rs`, which see the rest of the reactor.

use std::time::{Duration, Instant};

use mio::event::Event;

use crate::close_reason::CloseReason;
use crate::dead_peers::DeadPeerDetection;
use crate::decisions::{reoffer_due, WaterMarks};
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::net::PeerAddr;
use crate::output_limits::{OutputLimits, SoftLimit};
use crate::proxy_stage::ProxyStage;
use crate::state::{Input, State};
use crate::transport::{Security, Transport};

/// Everything the reactor keeps for one connection.
pub(crate) struct Connection {
    slot: Slot,
    transport: Transport,
    peer: PeerAddr,
    state: State,
    /// Delivery paused by the handler (`Context::pause_reading`).
    paused_by_handler: bool,
    /// Delivery paused because output rose above the high water mark.
    paused_by_backpressure: bool,
    /// Offer the kept input again on the next dispatch (reading resumed: no new bytes may
    /// ever come to trigger it).
    reoffer_input: bool,
    fin_sent: bool,
    /// In the reactor's ready queue.
    queued: bool,
    /// In the reactor's list of connections holding gathered output to flush before the
    /// dispatch ends.
    flush_listed: bool,
    /// Why the connection is closing (set by the first close request) or closed.
    close_reason: Option<CloseReason>,
    /// `None` while one of its callbacks runs (the handler is taken out of the slab so that
    /// its `Context` may borrow the whole reactor), and before the factory made it (while
    /// a PROXY protocol header is read).
    pub(crate) handler: Option<Box<dyn Handler>>,
    /// Input the handler has not consumed yet. Empty (and unallocated) most of the time:
    /// fresh bytes are offered straight from the reactor's shared read buffer.
    pub(crate) input: Vec<u8>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) idle_timer: Option<u64>,
    /// The connect or close deadline, whichever the state has.
    pub(crate) deadline_timer: Option<u64>,
    pub(crate) last_active: Instant,
    pub(crate) opened_at: Instant,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// Addresses to try, in order, if this connect fails (a name with several addresses).
    pub(crate) fallbacks: Vec<PeerAddr>,
    /// What secures the transport of a fallback connect: the same as this one's.
    pub(crate) security: Security,
    /// The keepalive and user timeout of a fallback connect (`None`: the reactor's).
    pub(crate) dead_peers: Option<DeadPeerDetection>,
    /// The deadline of the stage before the handler's bytes flow: the PROXY protocol
    /// header's, then the TLS handshake's (one at a time: the header comes first).
    pub(crate) stage_timer: Option<u64>,
    /// The PROXY protocol header: being read, or what it said (`proxy_stage.rs`).
    pub(crate) proxy: Option<ProxyStage>,
    /// Timers the handler set that have not fired or been cancelled. They are cancelled
    /// when the connection is removed: otherwise a handler that arms a one-hour timer per
    /// connection lets a peer that opens and closes connections grow the timer heap for an
    /// hour, and a timer that outlives its connection can only fire into nothing.
    pub(crate) user_timers: Vec<u64>,
    /// Its output water marks and hard cap: copied once when it opens (from its listen's
    /// or connect's options, or the reactor's `Config`), compared on every write and flush.
    pub(crate) marks: WaterMarks,
    /// Its soft output limit, if any: `None` costs the write path one comparison.
    pub(crate) soft_limit: Option<SoftLimit>,
    /// The soft limit's timer, armed while output is above the soft limit.
    pub(crate) soft_timer: Option<u64>,
}

/// A state change: the state left and the state entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) from: State,
    pub(crate) to: State,
}

impl Connection {
    pub(crate) fn new(
        slot: Slot,
        transport: Transport,
        peer: PeerAddr,
        handler: Option<Box<dyn Handler>>,
        state: State,
        (limits, now): (OutputLimits, Instant),
    ) -> Connection {
        Connection {
            slot,
            transport,
            peer,
            state,
            paused_by_handler: false,
            paused_by_backpressure: false,
            reoffer_input: false,
            fin_sent: false,
            queued: false,
            flush_listed: false,
            close_reason: None,
            handler,
            input: Vec::new(),
            idle_timeout: None,
            idle_timer: None,
            deadline_timer: None,
            last_active: now,
            opened_at: now,
            bytes_in: 0,
            bytes_out: 0,
            fallbacks: Vec::new(),
            security: Security::default(),
            dead_peers: None,
            stage_timer: None,
            proxy: None,
            user_timers: Vec::new(),
            marks: limits.marks,
            soft_limit: limits.soft,
            soft_timer: None,
        }
    }

    pub(crate) fn id(&self) -> ConnId {
        ConnId(self.slot)
    }

    pub(crate) fn slot(&self) -> Slot {
        self.slot
    }

    pub(crate) fn peer(&self) -> &PeerAddr {
        &self.peer
    }

    /// The peer is not who the socket says: a PROXY protocol header named the client.
    pub(crate) fn set_peer(&mut self, peer: PeerAddr) {
        self.peer = peer;
    }

    /// Whether the connection still waits for its PROXY protocol header.
    pub(crate) fn awaits_proxy_header(&self) -> bool {
        matches!(self.proxy, Some(ProxyStage::Reading(_)))
    }

    /// The transport and the PROXY protocol stage, for the stage to read with.
    pub(crate) fn transport_and_proxy(&mut self) -> (&mut Transport, &mut Option<ProxyStage>) {
        (&mut self.transport, &mut self.proxy)
    }

    /// Input arrived before the handler existed (after a PROXY header, in its segment):
    /// keep it and offer it on the next dispatch, as no new edge may announce it.
    pub(crate) fn keep_early_input(&mut self, input: Vec<u8>) {
        self.reoffer_input = !input.is_empty();
        self.input = input;
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    /// The socket, its buffers and its readiness.
    pub(crate) fn transport(&mut self) -> &mut Transport {
        &mut self.transport
    }

    /// The socket, its buffers and its readiness, to look at.
    pub(crate) fn transport_ref(&self) -> &Transport {
        &self.transport
    }

    /// Bytes written by the handler that the kernel has not taken yet.
    pub(crate) fn buffered_output(&self) -> usize {
        self.transport.buffered()
    }

    /// Its output limits as they are now.
    pub(crate) fn output_limits(&self) -> OutputLimits {
        OutputLimits {
            marks: self.marks,
            soft: self.soft_limit,
        }
    }

    /// A readiness event for this connection arrived.
    pub(crate) fn on_event(&mut self, event: &Event) {
        self.transport.on_event(event);
    }

    /// Feeds one input to the state machine ([`State::on`]); returns the change, if any.
    /// Called only by `Core::transition`, which carries out what the change means.
    pub(crate) fn step(&mut self, input: Input) -> Option<Change> {
        let from = self.state;
        self.state = from.on(input);
        (self.state != from).then_some(Change {
            from,
            to: self.state,
        })
    }

    /// Whether delivering input to the handler is paused.
    pub(crate) fn reading_paused(&self) -> bool {
        self.paused_by_handler || self.paused_by_backpressure
    }

    /// The handler paused or resumed delivery; returns whether that changed anything.
    pub(crate) fn handler_paused(&mut self, paused: bool) -> bool {
        let changed = self.paused_by_handler != paused;
        self.paused_by_handler = paused;
        if changed && !paused {
            self.reoffer_input = true;
        }
        changed
    }

    pub(crate) fn paused_by_backpressure(&self) -> bool {
        self.paused_by_backpressure
    }

    /// Output rose above the high water mark.
    pub(crate) fn backpressure_started(&mut self) {
        self.paused_by_backpressure = true;
    }

    /// Output fell to the low water mark.
    pub(crate) fn backpressure_lifted(&mut self) {
        self.paused_by_backpressure = false;
        self.reoffer_input = true;
    }

    /// Whether the input kept while paused is due to be offered again; clears the request.
    pub(crate) fn take_reoffer(&mut self) -> bool {
        let due = reoffer_due(self.reoffer_input, self.reading_paused(), self.state);
        if due {
            self.reoffer_input = false;
        }
        due
    }

    pub(crate) fn fin_sent(&self) -> bool {
        self.fin_sent
    }

    /// Our FIN went out.
    pub(crate) fn sent_fin(&mut self) {
        self.fin_sent = true;
    }

    /// Puts the connection in the ready queue's books; false if it was there already.
    pub(crate) fn enqueue(&mut self) -> bool {
        !std::mem::replace(&mut self.queued, true)
    }

    /// The ready queue handed the connection out for dispatch.
    pub(crate) fn dequeue(&mut self) {
        self.queued = false;
    }

    /// Puts the connection in the books of those with gathered output to flush; false if it
    /// was there already.
    pub(crate) fn list_for_flush(&mut self) -> bool {
        !std::mem::replace(&mut self.flush_listed, true)
    }

    /// The flush list handed the connection out.
    pub(crate) fn unlist_for_flush(&mut self) {
        self.flush_listed = false;
    }

    pub(crate) fn close_reason(&self) -> Option<&CloseReason> {
        self.close_reason.as_ref()
    }

    /// Records why the connection closes; a later reason replaces it only when `replace`.
    pub(crate) fn set_close_reason(&mut self, reason: CloseReason, replace: bool) {
        if replace || self.close_reason.is_none() {
            self.close_reason = Some(reason);
        }
    }
}

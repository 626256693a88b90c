//! Closing a connection: the request, the deadline, the abort and the removal.
//!
//! Every state change goes through [`Core::transition`], the one door to the state machine:
//! entering `Closing` arms the close deadline, reaching `Closed` discards what is buffered
//! (with a reset when bytes are lost) and lists the connection for removal at the end of the
//! turn. A connection is listed exactly once, because `Closed` is final. What each request or
//! deadline means in each state is decided in `decisions.rs`.

use crate::close_reason::CloseReason;
use crate::connection::Change;
use crate::core::{Core, TimerTask};
use crate::decisions::{close_deadline, close_request, idle_check, resets, CloseStep, IdleStep};
use crate::id::{ConnId, Slot};
use crate::state::{Input, State};
use crate::trace::{trace_record, Record};

impl Core {
    /// Applies a state machine input and what the change means for the reactor.
    pub(crate) fn transition(&mut self, slot: Slot, input: Input) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let Some(change) = conn.step(input) else {
            return;
        };
        let Change { from, to } = change;
        let conn = ConnId(slot);
        trace_record!(
            self,
            Record::Transition {
                conn,
                from,
                input,
                to
            }
        );
        match to {
            State::Closing { .. } if !matches!(from, State::Closing { .. }) => {
                self.arm_close_deadline(slot);
            }
            State::Closed => self.list_closed(slot),
            _ => {}
        }
    }

    /// Starts a graceful close: flush, FIN, wait for EOF, all before a deadline.
    pub(crate) fn request_close(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        match close_request(conn.state(), reason) {
            CloseStep::EndNow(reason) => self.close_now(slot, reason),
            CloseStep::Graceful(reason) => {
                conn.set_close_reason(reason, false);
                self.transition(slot, Input::Close);
                self.queue(slot);
            }
            CloseStep::Ignore => {}
        }
    }

    /// Shuts down our write side once the output is flushed.
    pub(crate) fn shutdown_write(&mut self, slot: Slot) {
        if matches!(self.entries.conn(slot), Some(c) if c.state().may_write()) {
            self.transition(slot, Input::ShutdownWrite);
            self.queue(slot);
        }
    }

    /// Ends the connection now with `reason` (an error, an abort, a deadline); it is removed
    /// at the end of the turn.
    pub(crate) fn close_now(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        if conn.state() != State::Closed {
            conn.set_close_reason(reason, true);
            self.transition(slot, Input::Fail);
        }
    }

    /// Closes the connection `slot` names gracefully, if it is open (not closing or closed):
    /// another connection's handler or posted work asking. Returns whether it was.
    pub(crate) fn close_conn(&mut self, slot: Slot) -> bool {
        let open = self
            .entries
            .conn_ref(slot)
            .is_some_and(|c| c.state().is_active());
        if open {
            self.request_close(slot, CloseReason::Local);
        }
        open
    }

    /// Aborts the connection `slot` names, if it is not closed yet. Returns whether it was.
    pub(crate) fn abort_conn(&mut self, slot: Slot) -> bool {
        let live = self.is_live(slot);
        if live {
            self.abort(slot);
        }
        live
    }

    /// Aborts at a handler's request. What the handler gathered before it leaves first (the
    /// writes came before the abort), then the rest of the output is discarded with a reset.
    pub(crate) fn abort(&mut self, slot: Slot) {
        self.flush_gathered();
        self.close_now(slot, CloseReason::Aborted);
    }

    /// Whether the connection `slot` names is still there and not closed.
    pub(crate) fn is_live(&self, slot: Slot) -> bool {
        self.entries
            .conn_ref(slot)
            .is_some_and(|c| c.state() != State::Closed)
    }

    /// Entering `Closing`: the close must finish before a deadline.
    fn arm_close_deadline(&mut self, slot: Slot) {
        let deadline = self.now() + self.config().close_timeout;
        let timer = self.timers.insert(deadline, TimerTask::CloseDeadline(slot));
        if let Some(conn) = self.entries.conn(slot) {
            // A close the peer began (its EOF, then ours) has no reason of our own.
            conn.set_close_reason(CloseReason::PeerClosed, false);
            conn.deadline_timer = Some(timer);
        }
    }

    /// Reaching `Closed`: drop the buffers and list the connection for removal.
    fn list_closed(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let reason = conn.close_reason().cloned().unwrap_or(CloseReason::Local);
        // Whatever is still buffered is discarded: say so with a reset, not a FIN the peer
        // would take for a complete stream.
        conn.transport().discard(resets(&reason));
        conn.input = Vec::new();
        conn.set_close_reason(reason, true);
        self.queues.list_closed(slot);
    }

    /// The close deadline fired.
    pub(crate) fn close_deadline_passed(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.deadline_timer = None;
        let reason = close_deadline(
            conn.state(),
            conn.buffered_output(),
            conn.fin_sent(),
            conn.close_reason().cloned(),
        );
        if let Some(reason) = reason {
            self.close_now(slot, reason);
        }
    }

    /// The idle timer fired.
    pub(crate) fn idle_timer_fired(&mut self, slot: Slot) {
        let now = self.now();
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.idle_timer = None;
        match idle_check(conn.state(), conn.idle_timeout, conn.last_active, now) {
            IdleStep::Close => {
                log::debug!("{} idle for {:?}", conn.id(), conn.idle_timeout);
                self.request_close(slot, CloseReason::IdleTimeout);
            }
            IdleStep::Rearm(deadline) => {
                let timer = self.timers.insert(deadline, TimerTask::Idle(slot));
                if let Some(conn) = self.entries.conn(slot) {
                    conn.idle_timer = Some(timer);
                }
            }
            IdleStep::Nothing => {}
        }
    }

    /// Removes a closed connection: its timers, `on_close`, deregister, drop.
    pub(crate) fn remove_conn(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let reason = conn.close_reason().cloned().unwrap_or(CloseReason::Local);
        let timers = [
            conn.idle_timer.take(),
            conn.deadline_timer.take(),
            conn.stage_timer.take(),
            conn.soft_timer.take(),
        ];
        for timer in timers.into_iter().flatten() {
            self.timers.cancel(timer);
        }
        self.with_handler(slot, |h, ctx| h.on_close(ctx, &reason));
        let Some(mut conn) = self.entries.take_conn(slot) else {
            return;
        };
        // After on_close, which may still have armed one.
        for timer in conn.user_timers.drain(..) {
            self.timers.cancel(timer);
        }
        if let Err(err) = self.entries.deregister(conn.transport()) {
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
            conn.peer(),
            conn.bytes_in,
            conn.bytes_out,
            self.now().saturating_duration_since(conn.opened_at)
        );
    }
}

//! What happens when a connection is ready: connect completion, reads, handler calls, writes,
//! backpressure, half-close and close. Each step is one small method on [`Core`].
//!
//! The order inside [`Core::drive`] matters: flush first (which may free room and resume
//! reading), then read and deliver, then settle what the handler did (flush its output, send
//! a FIN, finish a close).

use std::mem;

use crate::close_reason::{CloseReason, Limit};
use crate::context::WriteError;
use crate::core::Core;
use crate::decisions::{
    after_flush, after_write, backpressure_lifts, gather_limit, next_read, offer_again, truncation,
    FinStep, ReadStep, WriteStep,
};
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::panics::call_user;
use crate::state::{Input, State};
use crate::trace::{trace_record, Record};
use crate::transport::{ReadOutcome, Sent, GATHER_CAP};

impl Core {
    /// Dispatches one ready connection.
    pub(crate) fn drive(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        match conn.state() {
            State::Closed => return,
            State::Open if conn.awaits_proxy_header() => return self.read_proxy_header(slot),
            State::Connecting => {
                self.check_connect(slot);
                if !matches!(self.entries.conn(slot), Some(c) if c.state() == State::Open) {
                    return;
                }
            }
            _ => {}
        }
        self.settle(slot);
        self.reoffer_input(slot);
        self.read(slot);
        self.settle(slot);
    }

    /// Reads until the socket is drained, the budget is spent, or reading should stop.
    fn read(&mut self, slot: Slot) {
        let (mut budget, now) = (self.config().read_budget, self.now());
        let mut buf = self.take_read_buf();
        while let Some(conn) = self.entries.conn(slot) {
            let state = conn.state();
            let outcome = match next_read(
                conn.transport().is_readable(),
                state,
                conn.reading_paused(),
                budget,
            ) {
                ReadStep::Read => conn.transport().read(&mut buf),
                // Paused delivery must not stall a TLS handshake: it yields no plaintext,
                // and what was written before it can only leave once it is over.
                ReadStep::Stop if state.may_read() => match conn.transport().read_handshake() {
                    Some(outcome) => outcome,
                    None => break,
                },
                ReadStep::Stop => break,
                ReadStep::Requeue => {
                    // Fairness: others get their turn.
                    self.queue(slot);
                    break;
                }
            };
            match outcome {
                ReadOutcome::Data { len, wire, drained } => {
                    conn.bytes_in += wire as u64;
                    conn.last_active = now;
                    self.stats.bytes_in += wire as u64;
                    budget = budget.saturating_sub(wire);
                    if len == 0 {
                        // TLS records that held no plaintext yet (a handshake).
                        continue;
                    }
                    let conn = ConnId(slot);
                    trace_record!(
                        self,
                        Record::Read {
                            conn,
                            bytes: len,
                            drained
                        }
                    );
                    if state.delivers_data() {
                        self.deliver(slot, &buf[..len]);
                        // The replies leave now, before the next read: one system call
                        // per connection written to, however many pieces.
                        self.flush_gathered();
                    }
                }
                ReadOutcome::Eof => self.peer_eof(slot),
                ReadOutcome::Truncated => match truncation(state) {
                    Some(reason) => self.close_now(slot, reason),
                    None => self.peer_eof(slot),
                },
                ReadOutcome::WouldBlock => {
                    let conn = ConnId(slot);
                    trace_record!(self, Record::ReadWouldBlock { conn });
                }
                ReadOutcome::Failed(reason) => {
                    log::debug!("{}: {reason}", ConnId(slot));
                    self.close_now(slot, reason);
                }
            }
        }
        self.return_read_buf(buf);
    }

    /// Offers the handler all unconsumed input: kept bytes first, then `fresh`.
    ///
    /// In the common case nothing is kept and `fresh` (a slice of the shared read buffer) is
    /// offered without a copy; only what the handler leaves is copied into the connection.
    fn deliver(&mut self, slot: Slot, fresh: &[u8]) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let mut kept = mem::take(&mut conn.input);
        let Some(mut handler) = conn.handler.take() else {
            conn.input = kept;
            return;
        };
        let from_kept = !kept.is_empty();
        if from_kept {
            kept.extend_from_slice(fresh);
        }
        let offered: &[u8] = if from_kept { &kept } else { fresh };
        let consumed = match self.offer(slot, handler.as_mut(), offered) {
            Ok(consumed) => consumed,
            Err(message) => {
                drop(handler); // never called again; the kept input goes with the connection
                return self.handler_panicked(slot, message);
            }
        };
        if from_kept {
            kept.drain(..consumed);
        } else {
            // Copies nothing (and allocates nothing) when everything was consumed.
            kept = fresh[consumed..].to_vec();
        }
        if kept.is_empty() {
            kept = Vec::new(); // an idle connection holds no buffer
        }
        let max_input = self.config().max_input;
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.handler = Some(handler);
        conn.input = kept;
        if conn.input.len() > max_input {
            log::warn!(
                "{} from {}: {} B of unconsumed input exceed the limit of {max_input} B",
                conn.id(),
                conn.peer(),
                conn.input.len()
            );
            self.close_now(slot, CloseReason::LimitExceeded(Limit::Input));
        }
    }

    /// Calls `on_data` with what is left of `data` for as long as the handler makes progress
    /// and still takes input, so that a handler may consume one message per call without
    /// stalling whole messages behind it until more bytes arrive. Returns the bytes consumed,
    /// or the message of a panic in `on_data` (caught here, as in `Core::with_handler`).
    fn offer(
        &mut self,
        slot: Slot,
        handler: &mut dyn Handler,
        data: &[u8],
    ) -> Result<usize, String> {
        let mut consumed = 0;
        let catch = self.config().catch_panics;
        loop {
            let rest = &data[consumed..];
            let took = call_user(catch, || {
                handler.on_data(&mut crate::Context::new(self, slot), rest)
            })?
            .min(rest.len());
            consumed += took;
            let more = self.entries.conn_ref(slot).is_some_and(|c| {
                offer_again(took, consumed, data.len(), c.state(), c.reading_paused())
            });
            if !more {
                return Ok(consumed);
            }
        }
    }

    /// After reading resumed, offer input kept while paused: no new bytes may ever come.
    fn reoffer_input(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        if conn.take_reoffer() && !conn.input.is_empty() {
            self.deliver(slot, &[]);
        }
    }

    /// The peer sent its FIN.
    fn peer_eof(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let was = conn.state();
        let conn = ConnId(slot);
        trace_record!(
            self,
            Record::Read {
                conn,
                bytes: 0,
                drained: true
            }
        );
        self.transition(slot, Input::PeerEof);
        if was == State::Open {
            self.with_handler(slot, |h, ctx| h.on_eof(ctx));
        }
    }

    /// Flushes output, lifts backpressure, sends the FIN and finishes a graceful close, as
    /// far as the socket allows right now.
    pub(crate) fn settle(&mut self, slot: Slot) {
        if !self.flush_output(slot) {
            return;
        }
        self.lift_backpressure(slot);
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        match after_flush(conn.state(), conn.buffered_output(), conn.fin_sent()) {
            FinStep::Wait => {}
            FinStep::SendFin => {
                conn.sent_fin();
                if let Err(err) = conn.transport().shutdown_write() {
                    return self.close_now(slot, CloseReason::from_io(&err));
                }
                trace_record!(self, Record::FinSent { conn: ConnId(slot) });
                // Over TLS the FIN waits for `close_notify` to be written: until then
                // the output is not flushed, and a later settle says so.
                if self
                    .entries
                    .conn(slot)
                    .is_some_and(|c| c.buffered_output() == 0)
                {
                    self.transition(slot, Input::Flushed);
                }
            }
            FinStep::Flushed => self.transition(slot, Input::Flushed),
        }
    }

    /// Sends what handlers wrote during the callback or dispatch that just ended, to every
    /// connection they wrote to: one system call each, however many pieces.
    ///
    /// Called where a callback or a dispatch ends (after input was delivered, after each
    /// ready entry, after timers and shutdown callbacks, after the removals' `on_close`), so
    /// that no write waits past the dispatch that made it.
    pub(crate) fn flush_gathered(&mut self) {
        while let Some(slot) = self.queues.pop_unflushed() {
            if let Some(conn) = self.entries.conn(slot) {
                conn.unlist_for_flush();
                self.flush_output(slot);
            } else {
                self.flush_udp(slot); // datagrams a handler sent (`udp_send`)
            }
        }
    }

    /// One flush of the connection's buffered output, counted. Returns whether the
    /// connection still takes output (it is open, and the write did not fail).
    fn flush_output(&mut self, slot: Slot) -> bool {
        let Some(conn) = self.entries.conn(slot) else {
            return false;
        };
        if matches!(conn.state(), State::Closed | State::Connecting) {
            return false;
        }
        match conn.transport().flush() {
            Ok(written) => {
                self.count_written(slot, written);
                true
            }
            Err(err) => {
                self.close_now(slot, CloseReason::from_io(&err));
                false
            }
        }
    }

    /// Counts one write system call that handed `written` bytes to the kernel (`None`: no
    /// call was made).
    fn count_written(&mut self, slot: Slot, written: Option<usize>) {
        let now = self.now();
        let Some(written) = written else { return };
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.bytes_out += written as u64;
        conn.last_active = now;
        let buffered = conn.buffered_output();
        let would_block = !conn.transport().is_writable();
        if conn.soft_limit.is_some() || conn.soft_timer.is_some() {
            self.track_soft_limit(slot);
        }
        self.stats.bytes_out += written as u64;
        trace_record!(
            self,
            Record::Write {
                conn: ConnId(slot),
                bytes: written,
                buffered,
                would_block,
            }
        );
    }

    /// Output fell to the low water mark: read again, and tell the handler.
    fn lift_backpressure(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let marks = conn.marks;
        if !backpressure_lifts(conn.buffered_output(), conn.paused_by_backpressure(), marks) {
            return;
        }
        conn.backpressure_lifted();
        let active = conn.state().is_active();
        trace_record!(self, Record::ReadingResumed { conn: ConnId(slot) });
        // Bytes that arrived while paused raised no new edge: queue the connection by hand.
        self.queue(slot);
        if active {
            // After a close the handler hears only `on_close`.
            self.with_handler(slot, |h, ctx| h.on_drain(ctx));
        }
    }

    /// Writes for a handler: held until the callback returns (or sent at once with what is
    /// held, past the gather limit), with the limits applied to everything buffered.
    pub(crate) fn write_conn(&mut self, slot: Slot, data: &[u8]) -> Result<(), WriteError> {
        let conn = self
            .entries
            .conn(slot)
            .ok_or(WriteError::NoSuchConnection)?;
        if !conn.state().may_write() {
            return Err(WriteError::Closed);
        }
        let marks = conn.marks;
        let limit = gather_limit(GATHER_CAP, marks);
        let sent = match conn.transport().send(data, limit) {
            Ok(sent) => sent,
            Err(err) => {
                self.close_now(slot, CloseReason::from_io(&err));
                return Err(WriteError::Closed);
            }
        };
        let buffered = conn.buffered_output();
        let paused = conn.paused_by_backpressure();
        let soft = conn.soft_limit.is_some();
        match sent {
            Sent::Written(written) => self.count_written(slot, Some(written)),
            Sent::Held { gathered } => {
                if gathered && conn.list_for_flush() {
                    self.queues.list_unflushed(slot);
                }
                let (conn, bytes) = (ConnId(slot), data.len());
                trace_record!(
                    self,
                    Record::Buffered {
                        conn,
                        bytes,
                        buffered,
                        gathered
                    }
                );
            }
        }
        // Held bytes count against the marks at once, as if the kernel had refused them.
        match after_write(buffered, paused, marks) {
            WriteStep::OverLimit => {
                if let Some(conn) = self.entries.conn_ref(slot) {
                    log::warn!(
                        "{} to {}: {buffered} B of output exceed the limit of {} B",
                        conn.id(),
                        conn.peer(),
                        marks.max
                    );
                }
                self.close_now(slot, CloseReason::LimitExceeded(Limit::Output));
                return Err(WriteError::LimitExceeded);
            }
            WriteStep::PauseReading => {
                if let Some(conn) = self.entries.conn(slot) {
                    conn.backpressure_started();
                }
                self.stats.read_pauses += 1;
                let conn = ConnId(slot);
                trace_record!(self, Record::ReadingPaused { conn, buffered });
            }
            WriteStep::Carry => {}
        }
        if soft {
            self.track_soft_limit(slot);
        }
        Ok(())
    }

    /// Pauses or resumes delivering input at the handler's request.
    pub(crate) fn set_reading(&mut self, slot: Slot, paused: bool) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        if conn.handler_paused(paused) && !paused {
            self.queue(slot);
        }
    }
}

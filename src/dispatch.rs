//! What happens when a connection is ready: connect completion, reads, handler calls, writes,
//! backpressure, half-close and close. Each step is one small method on [`Core`].
//!
//! The order inside [`Core::drive`] matters: flush first (which may free room and resume
//! reading), then read and deliver, then settle what the handler did (flush its output, send
//! a FIN, finish a close).

use std::io::{self, Read};
use std::mem;

use crate::close_reason::{CloseReason, Limit};
use crate::context::WriteError;
use crate::core::{Core, TimerTask};
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::state::{Input, State};
use crate::trace::{trace_record, Record};

impl Core {
    /// Dispatches one ready connection.
    pub(crate) fn drive(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        match conn.state {
            State::Closed => return,
            State::Connecting => {
                self.check_connect(slot);
                if !matches!(self.conn(slot), Some(c) if c.state == State::Open) {
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

    /// A non-blocking connect reports completion as writability, and failure too: ask the
    /// socket which it was (`SO_ERROR`, then whether it has a peer).
    fn check_connect(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        if !conn.writable && !conn.readable {
            return;
        }
        let outcome = match conn.stream.take_error() {
            Ok(Some(err)) | Err(err) => Err(err),
            Ok(None) => conn.stream.peer_addr().map(|_| ()),
        };
        match outcome {
            Ok(()) => {
                if let Some(timer) = conn.deadline_timer.take() {
                    self.timers.cancel(timer);
                }
                self.transition(slot, Input::Connected);
                self.stats.connected += 1;
                self.open(slot);
            }
            // A spurious wake-up: the handshake is still in progress.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                conn.writable = false;
                conn.readable = false;
            }
            Err(err) => {
                log::debug!("{} connect to {} failed: {err}", conn.id(), conn.peer);
                self.connect_failed(slot, CloseReason::ConnectFailed(err.kind()));
            }
        }
    }

    /// Reads until the socket is drained, the budget is spent, or reading should stop.
    fn read(&mut self, slot: Slot) {
        let (mut budget, now) = (self.config.read_budget, self.now);
        let mut buf = mem::take(&mut self.read_buf);
        while let Some(conn) = self.conn(slot) {
            let delivering = conn.state.delivers_data();
            if !conn.readable || !conn.state.may_read() || (delivering && conn.reading_paused()) {
                break;
            }
            if budget == 0 {
                // Fairness: others get their turn. No new edge will come for bytes already
                // in the kernel, so the connection must be queued again by hand.
                self.queue(slot);
                break;
            }
            match conn.stream.read(&mut buf) {
                Ok(0) => self.peer_eof(slot),
                Ok(n) => {
                    // A short read means the socket was drained at that moment; a new edge
                    // will announce more (epoll(7) signals every arrival on an edge-triggered
                    // socket; mio only promises "read until WouldBlock", tokio relies on the
                    // same kernel behaviour). Reading again just to hear `WouldBlock` would cost
                    // a syscall per message. But if the peer also closed, read on for the EOF,
                    // which no further edge would announce.
                    if n < buf.len() && !conn.read_closed {
                        conn.readable = false;
                    }
                    let drained = !conn.readable;
                    conn.bytes_in += n as u64;
                    conn.last_active = now;
                    self.stats.bytes_in += n as u64;
                    budget = budget.saturating_sub(n);
                    let conn = ConnId(slot);
                    trace_record!(
                        self,
                        Record::Read {
                            conn,
                            bytes: n,
                            drained
                        }
                    );
                    if delivering {
                        self.deliver(slot, &buf[..n]);
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    conn.readable = false;
                    let conn = ConnId(slot);
                    trace_record!(self, Record::ReadWouldBlock { conn });
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => self.close_now(slot, CloseReason::from_io(&err)),
            }
        }
        self.read_buf = buf;
    }

    /// Offers the handler all unconsumed input: kept bytes first, then `fresh`.
    ///
    /// In the common case nothing is kept and `fresh` (a slice of the shared read buffer) is
    /// offered without a copy; only what the handler leaves is copied into the connection.
    fn deliver(&mut self, slot: Slot, fresh: &[u8]) {
        let Some(conn) = self.conn(slot) else { return };
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
        let consumed = self.offer(slot, handler.as_mut(), offered);
        if from_kept {
            kept.drain(..consumed);
        } else {
            // Copies nothing (and allocates nothing) when everything was consumed.
            kept = fresh[consumed..].to_vec();
        }
        if kept.is_empty() {
            kept = Vec::new(); // an idle connection holds no buffer
        }
        let max_input = self.config.max_input;
        let Some(conn) = self.conn(slot) else { return };
        conn.handler = Some(handler);
        conn.input = kept;
        if conn.input.len() > max_input {
            log::warn!(
                "{} from {}: {} B of unconsumed input exceed the limit of {max_input} B",
                conn.id(),
                conn.peer,
                conn.input.len()
            );
            self.close_now(slot, CloseReason::LimitExceeded(Limit::Input));
        }
    }

    /// Calls `on_data` with what is left of `data` for as long as the handler makes progress
    /// and still takes input, so that a handler may consume one message per call without
    /// stalling whole messages behind it until more bytes arrive. Returns the bytes consumed.
    fn offer(&mut self, slot: Slot, handler: &mut dyn Handler, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            let rest = &data[consumed..];
            let took = handler
                .on_data(&mut crate::Context::new(self, slot), rest)
                .min(rest.len());
            consumed += took;
            let more = took > 0
                && consumed < data.len()
                && matches!(self.conn(slot), Some(c) if c.state.delivers_data() && !c.reading_paused());
            if !more {
                return consumed;
            }
        }
    }

    /// After reading resumed, offer input kept while paused: no new bytes may ever come.
    fn reoffer_input(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        let due = conn.reoffer_input && !conn.reading_paused() && conn.state.delivers_data();
        if due {
            conn.reoffer_input = false;
            if !conn.input.is_empty() {
                self.deliver(slot, &[]);
            }
        }
    }

    /// The peer sent its FIN.
    fn peer_eof(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
        conn.readable = false;
        let was = conn.state;
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
        let Some(conn) = self.conn(slot) else { return };
        if conn.finished || conn.state == State::Connecting {
            return;
        }
        match conn.flush() {
            Ok(written) => self.count_written(slot, written, 0),
            Err(err) => return self.close_now(slot, CloseReason::from_io(&err)),
        }
        self.lift_backpressure(slot);
        let Some(conn) = self.conn(slot) else { return };
        if conn.state.wants_fin() && conn.output.is_empty() {
            if !conn.fin_sent {
                conn.fin_sent = true;
                if let Err(err) = conn.stream.shutdown_write() {
                    return self.close_now(slot, CloseReason::from_io(&err));
                }
                trace_record!(self, Record::FinSent { conn: ConnId(slot) });
            }
            self.transition(slot, Input::Flushed);
        }
    }

    /// Counts a write of `written` bytes out of `attempted` more than were buffered before.
    fn count_written(&mut self, slot: Slot, written: usize, attempted: usize) {
        let now = self.now;
        let Some(conn) = self.conn(slot) else { return };
        if written == 0 && attempted == 0 {
            return;
        }
        conn.bytes_out += written as u64;
        conn.last_active = now;
        let (buffered, would_block) = (conn.output.len(), !conn.writable);
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
        let low_water = self.config.low_water;
        let Some(conn) = self.conn(slot) else { return };
        if !conn.paused_by_backpressure || conn.output.len() > low_water {
            return;
        }
        conn.paused_by_backpressure = false;
        conn.reoffer_input = true;
        let active = conn.state.is_active();
        trace_record!(self, Record::ReadingResumed { conn: ConnId(slot) });
        // Bytes that arrived while paused raised no new edge: queue the connection by hand.
        self.queue(slot);
        if active {
            // After a close the handler hears only `on_close`.
            self.with_handler(slot, |h, ctx| h.on_drain(ctx));
        }
    }

    /// Writes for a handler: straight through if nothing is queued, with the limits applied.
    pub(crate) fn write_conn(&mut self, slot: Slot, data: &[u8]) -> Result<(), WriteError> {
        let (high_water, max_output) = (self.config.high_water, self.config.max_output);
        let conn = self.conn(slot).ok_or(WriteError::NoSuchConnection)?;
        if !conn.state.may_write() {
            return Err(WriteError::Closed);
        }
        let written = match conn.send(data) {
            Ok(written) => written,
            Err(err) => {
                self.close_now(slot, CloseReason::from_io(&err));
                return Err(WriteError::Closed);
            }
        };
        let buffered = conn.output.len();
        if buffered > max_output {
            log::warn!(
                "{} to {}: {buffered} B of output exceed the limit of {max_output} B",
                conn.id(),
                conn.peer
            );
            self.close_now(slot, CloseReason::LimitExceeded(Limit::Output));
            return Err(WriteError::LimitExceeded);
        }
        if buffered > high_water && !conn.paused_by_backpressure {
            conn.paused_by_backpressure = true;
            self.stats.read_pauses += 1;
            let conn = ConnId(slot);
            trace_record!(self, Record::ReadingPaused { conn, buffered });
        }
        self.count_written(slot, written, data.len());
        Ok(())
    }

    /// Starts a graceful close: flush, FIN, wait for EOF, all before a deadline.
    pub(crate) fn request_close(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.conn(slot) else { return };
        match conn.state {
            State::Connecting => self.close_now(slot, reason),
            state if state.is_active() => {
                // After the peer's EOF, a close completes an exchange the peer ended.
                let reason = match (state, reason) {
                    (State::PeerHalfClosed, CloseReason::Local) => CloseReason::PeerClosed,
                    (_, reason) => reason,
                };
                conn.close_reason.get_or_insert(reason);
                self.transition(slot, Input::Close);
                self.queue(slot);
            }
            _ => {}
        }
    }

    /// Shuts down our write side once the output is flushed.
    pub(crate) fn shutdown_write(&mut self, slot: Slot) {
        if matches!(self.conn(slot), Some(c) if c.state.may_write()) {
            self.transition(slot, Input::ShutdownWrite);
            self.queue(slot);
        }
    }

    /// Applies a state machine input and the reactor's side of it: arming the close deadline
    /// on entering `Closing`, listing the connection for removal on reaching `Closed`.
    pub(crate) fn transition(&mut self, slot: Slot, input: Input) {
        let Some(conn) = self.conn(slot) else { return };
        let from = conn.transition(input);
        let to = conn.state;
        if to != from {
            self.trace_transition(slot, from, input, to);
        }
        let Some(conn) = self.conn(slot) else { return };
        let was_closing = matches!(from, State::Closing { .. });
        match conn.state {
            State::Closing { .. } if !was_closing => {
                if conn.close_reason.is_none() {
                    conn.close_reason = Some(CloseReason::PeerClosed);
                }
                let deadline = self.now + self.config.close_timeout;
                let timer = self.timers.insert(deadline, TimerTask::CloseDeadline(slot));
                if let Some(conn) = self.conn(slot) {
                    conn.deadline_timer = Some(timer);
                }
            }
            State::Closed => {
                let reason = conn.close_reason.take().unwrap_or(CloseReason::Local);
                self.close_now(slot, reason);
            }
            _ => {}
        }
    }

    fn trace_transition(&mut self, slot: Slot, from: State, input: Input, to: State) {
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
    }

    /// Ends the connection now with `reason`; it is removed at the end of the turn.
    pub(crate) fn close_now(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.conn(slot) else { return };
        if conn.finished {
            return;
        }
        conn.finished = true;
        let from = conn.transition(Input::Fail);
        if matches!(
            reason,
            CloseReason::Aborted
                | CloseReason::LimitExceeded(_)
                | CloseReason::CloseTimeout
                | CloseReason::ShutdownAborted
        ) {
            // Whatever is still buffered is discarded: say so with a reset, not a FIN the
            // peer would take for a complete stream.
            conn.stream.set_reset_on_close();
        }
        conn.output.clear();
        conn.input = Vec::new();
        conn.close_reason = Some(reason);
        self.finished.push(slot);
        if from != State::Closed {
            self.trace_transition(slot, from, Input::Fail, State::Closed);
        }
    }

    /// Pauses or resumes delivering input at the handler's request.
    pub(crate) fn set_reading(&mut self, slot: Slot, paused: bool) {
        let Some(conn) = self.conn(slot) else { return };
        if conn.paused_by_handler == paused {
            return;
        }
        conn.paused_by_handler = paused;
        if !paused {
            conn.reoffer_input = true;
            self.queue(slot);
        }
    }
}

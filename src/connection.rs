//! One connection's record in the slab: its socket, state, buffers and readiness flags.
//!
//! This file holds what a connection knows about itself and the socket calls that touch only
//! it. Decisions that involve the rest of the reactor (calling the handler, timers, closing)
//! live in `dispatch.rs`.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::net::{PeerAddr, Stream};
use crate::output::OutputBuffer;
use crate::state::{Input, State};

/// Everything the reactor keeps for one connection.
pub(crate) struct Connection {
    pub(crate) slot: Slot,
    pub(crate) stream: Stream,
    pub(crate) peer: PeerAddr,
    pub(crate) state: State,
    /// `None` only while one of its callbacks runs: the handler is taken out of the slab so
    /// that its `Context` may borrow the whole reactor.
    pub(crate) handler: Option<Box<dyn Handler>>,
    /// Input the handler has not consumed yet. Empty (and unallocated) most of the time:
    /// fresh bytes are offered straight from the reactor's shared read buffer.
    pub(crate) input: Vec<u8>,
    pub(crate) output: OutputBuffer,
    /// Edge-triggered readiness: set by an event, cleared only when the kernel says
    /// `WouldBlock` (or a short read/write proves the socket drained or full).
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    /// The event said the peer closed its side: read on after a short read to see the EOF.
    pub(crate) read_closed: bool,
    /// In the reactor's ready queue.
    pub(crate) queued: bool,
    pub(crate) paused_by_handler: bool,
    pub(crate) paused_by_backpressure: bool,
    /// Offer the kept input again on the next dispatch (after reading resumed).
    pub(crate) reoffer_input: bool,
    pub(crate) fin_sent: bool,
    /// Listed for removal at the end of the turn.
    pub(crate) finished: bool,
    /// Why the connection is closing (set by the first close request) or closed.
    pub(crate) close_reason: Option<CloseReason>,
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
}

impl Connection {
    pub(crate) fn new(
        slot: Slot,
        stream: Stream,
        peer: PeerAddr,
        handler: Box<dyn Handler>,
        state: State,
        now: Instant,
    ) -> Connection {
        Connection {
            slot,
            stream,
            peer,
            state,
            handler: Some(handler),
            input: Vec::new(),
            output: OutputBuffer::default(),
            readable: false,
            writable: false,
            read_closed: false,
            queued: false,
            paused_by_handler: false,
            paused_by_backpressure: false,
            reoffer_input: false,
            fin_sent: false,
            finished: false,
            close_reason: None,
            idle_timeout: None,
            idle_timer: None,
            deadline_timer: None,
            last_active: now,
            opened_at: now,
            bytes_in: 0,
            bytes_out: 0,
            fallbacks: Vec::new(),
        }
    }

    pub(crate) fn id(&self) -> ConnId {
        ConnId(self.slot)
    }

    /// Applies one state machine input; returns the state it left.
    pub(crate) fn transition(&mut self, input: Input) -> State {
        let from = self.state;
        self.state = from.on(input);
        from
    }

    /// Whether delivering input to the handler is paused.
    pub(crate) fn reading_paused(&self) -> bool {
        self.paused_by_handler || self.paused_by_backpressure
    }

    /// Sends `data`, straight to the socket when nothing is queued before it, buffering
    /// whatever the kernel does not take. Returns the bytes the kernel took.
    pub(crate) fn send(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.output.is_empty() || !self.writable {
            self.output.push(data);
            return Ok(0);
        }
        let written = self.write_some(data)?;
        if written < data.len() {
            self.output.push(&data[written..]);
        }
        Ok(written)
    }

    /// Writes buffered output until it is empty or the socket is full. Returns bytes written.
    pub(crate) fn flush(&mut self) -> io::Result<usize> {
        let mut total = 0;
        while self.writable && !self.output.is_empty() {
            let pending = self.output.len();
            let written = write_some(&mut self.stream, &mut self.writable, self.output.as_slice())?;
            self.output.consume(written);
            total += written;
            if written < pending {
                break;
            }
        }
        Ok(total)
    }

    fn write_some(&mut self, data: &[u8]) -> io::Result<usize> {
        write_some(&mut self.stream, &mut self.writable, data)
    }
}

/// One `write` call, with the edge-triggered bookkeeping: `WouldBlock` and short writes mean
/// the send buffer is full, so `writable` is cleared until the next writable edge.
fn write_some(stream: &mut Stream, writable: &mut bool, data: &[u8]) -> io::Result<usize> {
    loop {
        match stream.write(data) {
            Ok(0) if !data.is_empty() => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                if n < data.len() {
                    *writable = false;
                }
                return Ok(n);
            }
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                *writable = false;
                return Ok(0);
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
}

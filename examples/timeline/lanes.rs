//! From a list of records to lanes: what the picture shows, before any drawing.
//!
//! The observer hands us a flat list of `(Instant, Record)`. A timeline needs the same facts
//! grouped by connection and turned into intervals:
//!
//! - a connection's **states** are spans between its `Transition` records, from `Accepted`
//!   (always `Open`: the reactor only hands over a connection once it is established) to
//!   `Closed`;
//! - **reading paused** is a span from `ReadingPaused` to `ReadingResumed` (or the close);
//! - readiness events, reads, writes, EOF, FIN and timers are instants (**marks**); a
//!   readiness event names a slab key (the token), which is the connection living there;
//! - a **turn** is the span its `poll` blocked, then the instant it woke up.
//!
//! Times are milliseconds since the session started. They come from the reactor's clock,
//! which it reads when a turn starts and again when `poll` returns: everything one turn does
//! after waking shares one instant. That is honest (the loop really handles the whole batch
//! "at once" from the point of view of the clock), and it is why marks stack in columns.

use std::collections::HashMap;
use std::time::Instant;

use mio_reactor::{CloseReason, ConnId, Input, PeerAddr, Record, State, TimerKind, TimerTarget};

/// Everything the picture shows.
#[derive(Debug)]
pub struct Timeline {
    /// From the start of the session to the last record, in ms.
    pub duration: f64,
    /// The loop's turns, in order.
    pub turns: Vec<Turn>,
    /// One lane per accepted connection, in the order they were accepted.
    pub lanes: Vec<Lane>,
}

/// One turn of the loop.
#[derive(Debug, Clone)]
pub struct Turn {
    /// The turn's number.
    pub number: u64,
    /// When `poll` was called.
    pub polled_at: f64,
    /// When `poll` returned, and the turn did its work.
    pub woke_at: f64,
    /// Readiness events `poll` returned.
    pub events: usize,
}

/// One connection's life.
#[derive(Debug, Clone)]
pub struct Lane {
    /// Its id.
    pub conn: ConnId,
    /// The scripted role of its client ("slow reader"), or its peer address.
    pub role: String,
    /// Its states, back to back.
    pub spans: Vec<Span>,
    /// When the reactor was not reading it (backpressure).
    pub paused: Vec<Paused>,
    /// Reads, writes and the like, in order.
    pub marks: Vec<Mark>,
    /// How it ended, if it did during the session.
    pub end: Option<End>,
}

/// A state held from `from` to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// The state.
    pub state: State,
    /// When it was entered, in ms.
    pub from: f64,
    /// When it was left, in ms.
    pub to: f64,
}

/// Reading paused from `from` to `to`.
#[derive(Debug, Clone, Copy)]
pub struct Paused {
    /// When it paused.
    pub from: f64,
    /// When it resumed (or the connection closed).
    pub to: f64,
    /// Output buffered when it paused.
    pub buffered: usize,
}

/// Something that happened at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    /// When, in ms.
    pub at: f64,
    /// What.
    pub what: What,
}

/// The kinds of [`Mark`].
#[derive(Debug, Clone, Copy)]
pub enum What {
    /// `poll` reported the socket ready: the loop woke up for this connection.
    Readiness {
        /// Readable bit.
        readable: bool,
        /// Writable bit.
        writable: bool,
    },
    /// `read` returned bytes.
    Read {
        /// How many.
        bytes: usize,
    },
    /// `read` returned 0: the peer's FIN.
    Eof,
    /// `read` returned `WouldBlock`.
    ReadWouldBlock,
    /// `write` handed bytes to the kernel.
    Write {
        /// How many.
        bytes: usize,
        /// The kernel refused the rest: the socket is full.
        would_block: bool,
    },
    /// Our FIN went out.
    Fin,
    /// A state change (the spans show the states; the mark keeps the input that caused it).
    Transition {
        /// Before.
        from: State,
        /// What happened.
        input: Input,
        /// After.
        to: State,
    },
    /// A timer of the reactor fired for this connection.
    Timer(TimerKind),
}

/// How a connection ended.
#[derive(Debug, Clone)]
pub struct End {
    /// When it was removed, in ms.
    pub at: f64,
    /// Why.
    pub reason: CloseReason,
    /// Bytes read over its life.
    pub bytes_in: u64,
    /// Bytes written over its life.
    pub bytes_out: u64,
}

/// A state's name without its fields: `Closing { peer_eof: true }` is drawn as `Closing`.
pub fn state_name(state: State) -> &'static str {
    state.name()
}

impl Timeline {
    /// Groups `records` (stamped by the observer) by connection, with times measured from
    /// `start`. `role_of` names a connection's client from its peer address.
    pub fn build(
        start: Instant,
        records: &[(Instant, Record)],
        role_of: impl Fn(&PeerAddr) -> Option<String>,
    ) -> Timeline {
        let ms = |at: Instant| at.saturating_duration_since(start).as_secs_f64() * 1e3;
        let mut lanes: Vec<Lane> = Vec::new();
        let mut lane_of: HashMap<ConnId, usize> = HashMap::new();
        // Readiness names a token, the slab key of whatever lives there now.
        let mut lane_at_key: HashMap<usize, usize> = HashMap::new();
        let mut turns = Vec::new();
        let mut polling: Option<(u64, f64)> = None;
        let mut duration: f64 = 0.0;

        for (at, record) in records {
            let at = ms(*at);
            duration = duration.max(at);
            if let Record::Accepted { conn, peer } = record {
                lane_of.insert(*conn, lanes.len());
                lane_at_key.insert(conn.key(), lanes.len());
                let role = role_of(peer).unwrap_or_else(|| peer.to_string());
                lanes.push(Lane::new(*conn, role, at));
                continue;
            }
            match record {
                Record::TurnStart { turn, .. } => polling = Some((*turn, at)),
                Record::Readiness {
                    token,
                    readable,
                    writable,
                    ..
                } => {
                    if let Some(&index) = lane_at_key.get(token) {
                        let (readable, writable) = (*readable, *writable);
                        lanes[index].mark(at, What::Readiness { readable, writable });
                    }
                }
                Record::Closed { conn, .. } => {
                    lane_at_key.remove(&conn.key());
                }
                Record::TurnEnd { turn, events, .. } => {
                    if let Some((started, polled_at)) = polling.take() {
                        if started == *turn {
                            turns.push(Turn {
                                number: *turn,
                                polled_at,
                                woke_at: at,
                                events: *events,
                            });
                        }
                    }
                }
                _ => {}
            }
            let Some(conn) = conn_of(record) else {
                continue;
            };
            let Some(&index) = lane_of.get(&conn) else {
                continue; // not accepted here (an outbound connection): not in this picture
            };
            lanes[index].apply(at, record);
        }
        for lane in &mut lanes {
            lane.finish(duration);
        }
        Timeline {
            duration,
            turns,
            lanes,
        }
    }
}

/// The connection a record is about, if any.
fn conn_of(record: &Record) -> Option<ConnId> {
    match record {
        Record::Read { conn, .. }
        | Record::ReadWouldBlock { conn }
        | Record::Write { conn, .. }
        | Record::Transition { conn, .. }
        | Record::ReadingPaused { conn, .. }
        | Record::ReadingResumed { conn }
        | Record::FinSent { conn }
        | Record::Closed { conn, .. } => Some(*conn),
        Record::TimerFired {
            target: Some(TimerTarget::Conn(conn)),
            ..
        } => Some(*conn),
        _ => None,
    }
}

impl Lane {
    fn new(conn: ConnId, role: String, at: f64) -> Lane {
        Lane {
            conn,
            role,
            spans: vec![Span {
                state: State::Open,
                from: at,
                to: at,
            }],
            paused: Vec::new(),
            marks: Vec::new(),
            end: None,
        }
    }

    /// When the connection was accepted.
    pub fn opened(&self) -> f64 {
        self.spans[0].from
    }

    /// The end of the lane: its close, or the end of the session.
    pub fn closed(&self) -> f64 {
        self.spans.last().map_or(0.0, |span| span.to)
    }

    fn mark(&mut self, at: f64, what: What) {
        self.marks.push(Mark { at, what });
    }

    fn apply(&mut self, at: f64, record: &Record) {
        match *record {
            Record::Read { bytes: 0, .. } => self.mark(at, What::Eof),
            Record::Read { bytes, .. } => self.mark(at, What::Read { bytes }),
            Record::ReadWouldBlock { .. } => self.mark(at, What::ReadWouldBlock),
            Record::Write {
                bytes, would_block, ..
            } => self.mark(at, What::Write { bytes, would_block }),
            Record::FinSent { .. } => self.mark(at, What::Fin),
            Record::TimerFired { kind, .. } => self.mark(at, What::Timer(kind)),
            Record::Transition {
                from, input, to, ..
            } => {
                self.mark(at, What::Transition { from, input, to });
                if let Some(last) = self.spans.last_mut() {
                    last.to = at;
                }
                self.spans.push(Span {
                    state: to,
                    from: at,
                    to: at,
                });
            }
            Record::ReadingPaused { buffered, .. } => self.paused.push(Paused {
                from: at,
                to: f64::NAN, // until resumed
                buffered,
            }),
            Record::ReadingResumed { .. } => self.resume(at),
            Record::Closed {
                ref reason,
                bytes_in,
                bytes_out,
                ..
            } => {
                self.end = Some(End {
                    at,
                    reason: reason.clone(),
                    bytes_in,
                    bytes_out,
                });
                self.finish(at);
            }
            _ => {}
        }
    }

    fn resume(&mut self, at: f64) {
        if let Some(paused) = self.paused.last_mut().filter(|p| p.to.is_nan()) {
            paused.to = at;
        }
    }

    /// Ends the last span (and a pause still running) at `at`, unless already ended.
    fn finish(&mut self, at: f64) {
        if self.end.as_ref().is_some_and(|end| end.at < at) {
            return;
        }
        self.resume(at);
        if let Some(last) = self.spans.last_mut() {
            last.to = last.to.max(at);
        }
    }
}

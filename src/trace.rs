//! The reactor's life as structured records, for learning, debugging and tools.
//!
//! Every step of the loop that a student of non-blocking I/O would want to see (a turn, a
//! readiness event, an accept, a read or write with its byte count and `WouldBlock`, a state
//! transition, a timer, a close) is described by one [`Record`]. Records go to two places:
//!
//! - an [`Observer`] installed with [`Reactor::set_observer`](crate::Reactor::set_observer),
//!   which receives them as values (the `timeline` example draws them);
//! - the `log` facade at trace level, one readable line each, under the target
//!   `mio_reactor::trace`: `RUST_LOG=mio_reactor=trace`.
//!
//! When neither is on, no record is even built: each site checks one flag, refreshed once
//! per turn.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::id::{ConnId, LoopTimerId, UdpId, WatchId};
use crate::net::PeerAddr;
use crate::state::{Input, State};
use crate::watch_handler::Readiness;

/// The `log` target trace records are written under.
pub(crate) const TARGET: &str = "mio_reactor::trace";

/// What a timer was for.
///
/// # Examples
/// The reactor's own timers at work: an idle connection is closed gracefully, and as its
/// peer never answers the FIN, the close deadline ends the wait.
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::{Duration, Instant};
/// use mio_reactor::{Config, Context, Handler, ListenOptions, Reactor, Record, TimerKind};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.len()
///     }
/// }
///
/// let fired = Rc::new(RefCell::new(Vec::new()));
/// let sink = fired.clone();
/// let config = Config::default()
///     .idle_timeout(Some(Duration::from_millis(20)))
///     .close_timeout(Duration::from_millis(20));
/// let mut reactor = Reactor::with_config(config)?;
/// reactor.set_observer(move |_: Instant, record: &Record| {
///     if let Record::TimerFired { kind, .. } = record {
///         sink.borrow_mut().push(*kind);
///     }
/// });
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Quiet))?.local_addr()?;
/// let _silent = std::net::TcpStream::connect(addr)?; // says nothing, closes nothing
/// for _ in 0..1000 {
///     if reactor.stats().closed.total() == 1 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// assert_eq!(*fired.borrow(), [TimerKind::Idle, TimerKind::CloseDeadline]);
/// assert_eq!(reactor.stats().closed.idle_timeout, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerKind {
    /// A handler's own timer.
    User,
    /// An idle-timeout check.
    Idle,
    /// An outbound connect's deadline.
    ConnectDeadline,
    /// A graceful close's deadline.
    CloseDeadline,
    /// A listener's retry after running out of descriptors.
    AcceptBackoff,
    /// The reactor's shutdown deadline.
    ShutdownDeadline,
    /// A TLS handshake's deadline.
    TlsHandshakeDeadline,
    /// A PROXY protocol header's deadline
    /// ([`ProxyProtocol::header_timeout`](crate::ProxyProtocol::header_timeout)).
    ProxyHeaderDeadline,
    /// A timer of the loop, which belongs to no connection
    /// ([`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer)); its target is
    /// [`TimerTarget::Loop`].
    Loop,
    /// A connection's output stayed above its soft limit
    /// ([`OutputLimits::soft_limit`](crate::OutputLimits::soft_limit)) for the limit's
    /// duration.
    SoftOutputLimit,
}

/// What a timer that fired belongs to, in [`Record::TimerFired`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimerTarget {
    /// A connection: its handler's own timer, or its idle, connect or close deadline.
    Conn(ConnId),
    /// A UDP socket: its handler's own timer.
    Udp(UdpId),
    /// A listener backing off ([`TimerKind::AcceptBackoff`]); listeners have no public id,
    /// so this is its slab key (the `token` of [`Record::AcceptBackoff`]).
    Listener(usize),
    /// A timer of the loop ([`TimerKind::Loop`]).
    Loop(LoopTimerId),
}

impl fmt::Display for TimerTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimerTarget::Conn(conn) => write!(f, "{conn}"),
            TimerTarget::Udp(socket) => write!(f, "{socket}"),
            TimerTarget::Listener(token) => write!(f, "listener token={token}"),
            TimerTarget::Loop(id) => write!(f, "{id}"),
        }
    }
}

/// One step in the reactor's life, as handed to an [`Observer`] and written to the log at
/// trace level (target `mio_reactor::trace`, one line each: the `Display` form).
///
/// # Notes
/// The enum is `#[non_exhaustive]`: new kinds of records may be added. The exact sequence
/// of records depends on timing (how many turns, how the kernel splits reads): match the
/// kinds you need and ignore the rest.
///
/// # Examples
/// The life of one connection, as the lines `RUST_LOG=mio_reactor=trace` would print:
/// ```
/// use std::cell::RefCell;
/// use std::io::Write;
/// use std::net::Shutdown;
/// use std::rc::Rc;
/// use std::time::{Duration, Instant};
/// use mio_reactor::{Context, Handler, ListenOptions, Reactor, Record};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         ctx.write(data);
///         data.len()
///     }
/// }
///
/// let lines = Rc::new(RefCell::new(Vec::new()));
/// let sink = lines.clone();
/// let mut reactor = Reactor::new()?;
/// reactor.set_observer(move |_: Instant, record: &Record| match record {
///     // The loop's own records are many: keep what happens to connections.
///     Record::TurnStart { .. } | Record::TurnEnd { .. } | Record::Readiness { .. } => {}
///     record => sink.borrow_mut().push(record.to_string()),
/// });
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?.local_addr()?;
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"hi")?;
/// client.shutdown(Shutdown::Write)?;
/// for _ in 0..1000 {
///     if reactor.stats().closed.total() == 1 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
///
/// let lines = lines.borrow();
/// for line in lines.iter() {
///     println!("{line}"); // "#1.2 read 2 B", "#1.2 Open --PeerEof--> PeerHalfClosed", ...
/// }
/// assert!(lines[0].starts_with("#1.2 accepted from 127.0.0.1:"));
/// assert_eq!(lines.last().unwrap(), "#1.2 closed: peer closed (2 B in, 2 B out)");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// A turn begins; `poll` will block for at most `timeout` (`None`: until an event).
    TurnStart {
        /// The turn's number, from 0.
        turn: u64,
        /// The poll timeout.
        timeout: Option<Duration>,
    },
    /// A turn ends.
    TurnEnd {
        /// The turn's number.
        turn: u64,
        /// Readiness events the poll returned.
        events: usize,
        /// Time spent blocked in `poll`.
        blocked: Duration,
        /// Time spent after `poll` returned: dispatching, handlers, closes.
        busy: Duration,
    },
    /// `poll` reported readiness for an entry (`token` is its slab key).
    Readiness {
        /// The slab key.
        token: usize,
        /// The event's readable bit.
        readable: bool,
        /// The event's writable bit.
        writable: bool,
        /// The peer closed its side (a hint, not an EOF).
        read_closed: bool,
        /// An error is pending on the socket (a hint).
        error: bool,
    },
    /// A listener accepted a connection and its factory gave it a handler.
    Accepted {
        /// The new connection.
        conn: ConnId,
        /// Its peer.
        peer: PeerAddr,
    },
    /// A connection's PROXY protocol header was read: from now on its peer is `client`
    /// (the balancer's own address when the header names no client).
    ProxyHeader {
        /// The connection.
        conn: ConnId,
        /// The peer the header names.
        client: PeerAddr,
    },
    /// A listener's factory refused a peer.
    Refused {
        /// The refused peer.
        peer: PeerAddr,
    },
    /// A listener ran out of descriptors and backs off.
    AcceptBackoff {
        /// The listener's slab key.
        token: usize,
        /// The error `accept` returned.
        error: io::ErrorKind,
    },
    /// An outbound connect started.
    Connecting {
        /// The connection.
        conn: ConnId,
        /// Where to.
        peer: PeerAddr,
    },
    /// A `read` returned bytes (`bytes > 0`) or EOF (`bytes == 0`).
    Read {
        /// The connection.
        conn: ConnId,
        /// Bytes read; 0 is EOF.
        bytes: usize,
        /// The kernel had nothing more (`WouldBlock`, or a short read).
        drained: bool,
    },
    /// A `read` returned `WouldBlock`: the socket is drained until the next readiness edge.
    ReadWouldBlock {
        /// The connection.
        conn: ConnId,
    },
    /// One `write` (or `writev`) system call: bytes were handed to the kernel, held output
    /// first, then (when a piece was too large to hold) the piece itself. Exactly one record
    /// per call, so counting them counts the calls.
    Write {
        /// The connection.
        conn: ConnId,
        /// Bytes the kernel took.
        bytes: usize,
        /// Bytes still buffered after the write.
        buffered: usize,
        /// The kernel refused some (`WouldBlock`, or a short write): the socket is full.
        would_block: bool,
    },
    /// A handler wrote bytes that were buffered without a system call: `gathered` to leave
    /// with the rest of the callback's output when it returns (in one [`Record::Write`]), or
    /// queued behind a full socket until the next writable edge.
    Buffered {
        /// The connection.
        conn: ConnId,
        /// Bytes the handler wrote.
        bytes: usize,
        /// Bytes buffered now, these included.
        buffered: usize,
        /// Held for the end of the callback, rather than queued behind a full socket.
        gathered: bool,
    },
    /// A connection changed state.
    Transition {
        /// The connection.
        conn: ConnId,
        /// The state before.
        from: State,
        /// What happened.
        input: Input,
        /// The state after.
        to: State,
    },
    /// Reading paused because buffered output passed the high water mark.
    ReadingPaused {
        /// The connection.
        conn: ConnId,
        /// Buffered output at the time.
        buffered: usize,
    },
    /// Reading resumed because buffered output fell to the low water mark.
    ReadingResumed {
        /// The connection.
        conn: ConnId,
    },
    /// Our FIN was sent (`shutdown(Write)`).
    FinSent {
        /// The connection.
        conn: ConnId,
    },
    /// A timer fired.
    TimerFired {
        /// What it was for.
        kind: TimerKind,
        /// The connection, UDP socket, listener or loop timer it belongs to; `None` for
        /// the reactor's own (the shutdown deadline). The entry may be gone already: a handler's timer
        /// still fires (and is ignored) after its connection or socket closed.
        target: Option<TimerTarget>,
    },
    /// A datagram was received (`incoming`) or sent.
    Datagram {
        /// The UDP socket.
        socket: UdpId,
        /// The datagram's size.
        bytes: usize,
        /// The sender or the destination.
        peer: SocketAddr,
        /// Received rather than sent.
        incoming: bool,
    },
    /// A watched source was ready, and its handler is called with this readiness.
    WatchReady {
        /// The watch.
        watch: WatchId,
        /// What the events since the last call said.
        readiness: Readiness,
    },
    /// A watch ended (its handler or the reactor unwatched it, its handler panicked, or the
    /// reactor finished) and its source was deregistered and dropped.
    Unwatched {
        /// The watch.
        watch: WatchId,
    },
    /// A connection was removed, after `on_close`.
    Closed {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: CloseReason,
        /// Bytes read over its life.
        bytes_in: u64,
        /// Bytes written over its life.
        bytes_out: u64,
    },
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Record::TurnStart { turn, timeout } => match timeout {
                Some(t) => write!(f, "turn {turn}: poll (timeout {t:?})"),
                None => write!(f, "turn {turn}: poll (no timeout)"),
            },
            Record::TurnEnd {
                turn,
                events,
                blocked,
                busy,
            } => write!(
                f,
                "turn {turn}: done, {events} events, blocked {blocked:?}, busy {busy:?}"
            ),
            Record::Readiness {
                token,
                readable,
                writable,
                read_closed,
                error,
            } => {
                write!(f, "event token={token}")?;
                for (set, name) in [
                    (readable, "readable"),
                    (writable, "writable"),
                    (read_closed, "read-closed"),
                    (error, "error"),
                ] {
                    if *set {
                        write!(f, " {name}")?;
                    }
                }
                Ok(())
            }
            Record::Accepted { conn, peer } => write!(f, "{conn} accepted from {peer}"),
            Record::ProxyHeader { conn, client } => {
                write!(f, "{conn} PROXY header: client {client}")
            }
            Record::Refused { peer } => write!(f, "refused {peer}"),
            Record::AcceptBackoff { token, error } => {
                write!(f, "listener {token}: accept failed ({error}), backing off")
            }
            Record::Connecting { conn, peer } => write!(f, "{conn} connecting to {peer}"),
            Record::Read { conn, bytes: 0, .. } => write!(f, "{conn} read: EOF"),
            Record::ReadWouldBlock { conn } => write!(f, "{conn} read: would block"),
            Record::Read {
                conn,
                bytes,
                drained,
            } => {
                let drained = if *drained { ", drained" } else { "" };
                write!(f, "{conn} read {bytes} B{drained}")
            }
            Record::Write {
                conn,
                bytes,
                buffered,
                would_block,
            } => {
                let full = if *would_block { ", socket full" } else { "" };
                write!(f, "{conn} wrote {bytes} B ({buffered} B buffered{full})")
            }
            Record::Buffered {
                conn,
                bytes,
                buffered,
                gathered,
            } => {
                let why = if *gathered { "gathered" } else { "socket full" };
                write!(
                    f,
                    "{conn} buffered {bytes} B ({buffered} B buffered, {why})"
                )
            }
            Record::Transition {
                conn,
                from,
                input,
                to,
            } => write!(f, "{conn} {from:?} --{input:?}--> {to:?}"),
            Record::ReadingPaused { conn, buffered } => {
                write!(f, "{conn} reading paused ({buffered} B buffered)")
            }
            Record::ReadingResumed { conn } => write!(f, "{conn} reading resumed"),
            Record::FinSent { conn } => write!(f, "{conn} FIN sent"),
            Record::TimerFired { kind, target } => match target {
                Some(target) => write!(f, "timer fired: {kind:?} for {target}"),
                None => write!(f, "timer fired: {kind:?}"),
            },
            Record::Datagram {
                socket,
                bytes,
                peer,
                incoming: true,
            } => write!(f, "{socket} datagram of {bytes} B from {peer}"),
            Record::Datagram {
                socket,
                bytes,
                peer,
                incoming: false,
            } => write!(f, "{socket} datagram of {bytes} B to {peer}"),
            Record::WatchReady { watch, readiness } => write!(f, "{watch} ready: {readiness}"),
            Record::Unwatched { watch } => write!(f, "{watch} unwatched"),
            Record::Closed {
                conn,
                reason,
                bytes_in,
                bytes_out,
            } => write!(
                f,
                "{conn} closed: {reason} ({bytes_in} B in, {bytes_out} B out)"
            ),
        }
    }
}

/// Receives the reactor's [`Record`]s as they happen, with the turn's clock.
///
/// Any `FnMut(Instant, &Record)` closure is an observer. It runs inside the loop: keep it
/// short (push to a `Vec`, count, write to a buffer).
///
/// # Examples
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use mio_reactor::{ListenOptions, Reactor, Record};
///
/// let turns = Rc::new(RefCell::new(0));
/// let counter = turns.clone();
/// let mut reactor = Reactor::new()?;
/// reactor.set_observer(move |_at: std::time::Instant, record: &Record| {
///     if let Record::TurnEnd { .. } = record {
///         *counter.borrow_mut() += 1;
///     }
/// });
/// # struct Quiet;
/// # impl mio_reactor::Handler for Quiet {
/// #     fn on_data(&mut self, _: &mut mio_reactor::Context<'_>, d: &[u8]) -> usize { d.len() }
/// # }
/// reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Quiet))?;
/// reactor.turn(Some(std::time::Duration::ZERO))?;
/// assert_eq!(*turns.borrow(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Observer: 'static {
    /// One record, stamped with the current turn's clock.
    fn record(&mut self, at: Instant, record: &Record);
}

impl<F: FnMut(Instant, &Record) + 'static> Observer for F {
    fn record(&mut self, at: Instant, record: &Record) {
        self(at, record)
    }
}

/// Who listens to trace records: the loop's part that owns the observer.
///
/// Whether anyone listens (an observer, or `log` at trace level for `mio_reactor::trace`) is
/// re-read every turn ([`refresh`](Trace::refresh)), so that a record costs one test of a
/// flag when nobody does.
#[derive(Default)]
pub(crate) struct Trace {
    on: bool,
    observer: Option<Box<dyn Observer>>,
}

impl Trace {
    /// Whether records are wanted this turn.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Re-reads whether records are wanted.
    pub(crate) fn refresh(&mut self) {
        self.on = self.observer.is_some() || log::log_enabled!(target: TARGET, log::Level::Trace);
    }

    /// Replaces the observer (`None` removes it).
    pub(crate) fn set_observer(&mut self, observer: Option<Box<dyn Observer>>) {
        self.observer = observer;
        self.refresh();
    }

    /// Hands a record, stamped `now`, to the log and the observer. Call through
    /// `trace_record!`.
    pub(crate) fn emit(&mut self, now: Instant, record: Record) {
        log::trace!(target: TARGET, "{record}");
        if let Some(observer) = &mut self.observer {
            observer.record(now, &record);
        }
    }
}

/// Builds and emits a record only when someone listens: the record expression is not
/// evaluated otherwise. `$core` is the `Core`, whose clock stamps the record.
macro_rules! trace_record {
    ($core:expr, $record:expr) => {
        if $core.trace.is_on() {
            let record = $record;
            let now = $core.now();
            $core.trace.emit(now, record);
        }
    };
}
pub(crate) use trace_record;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Slot;

    fn conn() -> ConnId {
        ConnId(Slot {
            key: 3,
            generation: 7,
        })
    }

    #[test]
    fn records_read_as_one_line_each() {
        let lines = [
            (
                Record::Read {
                    conn: conn(),
                    bytes: 512,
                    drained: true,
                },
                "#3.7 read 512 B, drained",
            ),
            (
                Record::Read {
                    conn: conn(),
                    bytes: 0,
                    drained: true,
                },
                "#3.7 read: EOF",
            ),
            (
                Record::Write {
                    conn: conn(),
                    bytes: 100,
                    buffered: 412,
                    would_block: true,
                },
                "#3.7 wrote 100 B (412 B buffered, socket full)",
            ),
            (
                Record::Buffered {
                    conn: conn(),
                    bytes: 12,
                    buffered: 30,
                    gathered: true,
                },
                "#3.7 buffered 12 B (30 B buffered, gathered)",
            ),
            (
                Record::Transition {
                    conn: conn(),
                    from: State::Open,
                    input: Input::PeerEof,
                    to: State::PeerHalfClosed,
                },
                "#3.7 Open --PeerEof--> PeerHalfClosed",
            ),
            (
                Record::Readiness {
                    token: 3,
                    readable: true,
                    writable: false,
                    read_closed: true,
                    error: false,
                },
                "event token=3 readable read-closed",
            ),
        ];
        for (record, line) in lines {
            assert_eq!(record.to_string(), line);
        }
    }
}

//! The load generator: one thread, one `mio::Poll`, many client connections, every echoed
//! byte checked.
//!
//! Two shapes of load:
//! * **closed loop**: each connection keeps `depth` messages in flight, sending the next one
//!   as soon as an echo completes; the server's speed sets the rate;
//! * **paced** (open loop): messages leave at a fixed total rate, round-robin over the
//!   connections, whatever the server does; the figure is what that rate costs the server.
//!   `epoll_wait` sleeps in whole milliseconds, so the pace is kept per millisecond: each
//!   wake-up sends what fell due since the last one.
//!
//! * **connection churn** (`reconnect`): each connection echoes one message and closes, and
//!   a new connection takes its place at once; over TLS each echo then includes a full
//!   handshake, so the count of echoes is a count of handshakes.
//!
//! A run has a warm-up, then the measurement window. At the window's edges the generator
//! calls `mark`, which samples the server (and starts or stops syscall counting); only
//! echoes completed inside the window count, and only their latencies are recorded. A
//! latency is from when a message was queued (and written, if the socket had room) to when
//! its last byte came back.

use std::io;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use crate::client::{self, ClientConn, Target};
use crate::histogram::Histogram;
use crate::pattern::{Pattern, CHUNK};
use crate::window::{Edge, Window};
use crate::Fallible;

/// What load to put on a server.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// Messages in flight per connection (closed loop).
    pub depth: usize,
    /// Total messages per second (paced); `None` for a closed loop.
    pub rate: Option<f64>,
    /// Each connection echoes one message, closes, and is replaced by a new one.
    pub reconnect: bool,
    pub warmup: Duration,
    pub duration: Duration,
}

/// The edges of the measurement window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Start,
    End,
}

/// What the load generator saw inside the window.
#[derive(Clone)]
pub struct LoadOutcome {
    /// Echoes completed in the window (over UDP: datagrams echoed).
    pub messages: u64,
    /// Datagrams given up on in the window (not echoed within the loss timeout); 0 on
    /// streams, where nothing may be lost.
    pub lost: u64,
    pub window: Duration,
    pub latency: Histogram,
    /// The load generator's own CPU time in the window.
    pub client_cpu_ns: u64,
}

/// No echo for this long, with messages in flight, is a failure, not a slow server.
const STALL: Duration = Duration::from_secs(10);

pub fn run(
    target: &Target,
    spec: &LoadSpec,
    mut mark: impl FnMut(Mark) -> Fallible<()>,
) -> Fallible<LoadOutcome> {
    let pattern = Pattern::new();
    let mut poll = Poll::new()?;
    let mut conns = client::open_many(&mut poll, target, spec.conns, spec.size, None, 0)?;
    // Numbers for the connections that replace closed ones (connection churn).
    let mut next_index = conns.len();
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; CHUNK];

    let started = Instant::now();
    let mut window = Window::new(started, spec.warmup, spec.duration);
    let mut completed_at_open = 0;
    let mut latency = Histogram::default();
    let mut completed: u64 = 0;
    let mut last_progress = started;

    // Paced: message k goes to connection k % conns at `next_due`.
    let interval = spec.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
    let mut next_due = started;
    let mut next_conn = 0;
    if interval.is_none() {
        for conn in conns.iter_mut() {
            for _ in 0..spec.depth {
                conn.queue(started);
            }
            conn.flush(&pattern)?;
        }
    }

    loop {
        let now = Instant::now();
        match window.step(now, &mut mark)? {
            Edge::Inside => {}
            Edge::Opened(opened) => {
                completed_at_open = completed;
                // Do not make up for the time `mark` took with a burst.
                next_due = next_due.max(opened);
                continue;
            }
            Edge::Closed(span) => {
                return Ok(LoadOutcome {
                    messages: completed - completed_at_open,
                    lost: 0,
                    window: span.length,
                    latency,
                    client_cpu_ns: span.client_cpu_ns,
                });
            }
        }

        let mut wake_at = window.phase_ends();
        if let Some(interval) = interval {
            while next_due <= now {
                let conn = &mut conns[next_conn];
                conn.queue(now);
                conn.flush(&pattern)?;
                next_conn = (next_conn + 1) % conns.len();
                next_due += interval;
            }
            wake_at = wake_at.min(next_due);
        }

        match poll.poll(&mut events, Some(wake_at.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        let now = Instant::now();
        let recording = window.is_open();
        for event in events.iter() {
            let token = event.token();
            let conn = &mut conns[token.0];
            if event.is_writable() {
                conn.set_writable();
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let mut echoed = 0;
                conn.read(&pattern, &mut buf, |sent_at| {
                    echoed += 1;
                    if recording {
                        latency.record(now.saturating_duration_since(sent_at).as_nanos() as u64);
                    }
                })?;
                if echoed > 0 {
                    completed += echoed;
                    last_progress = now;
                    if spec.reconnect {
                        // Its one echo is back: a new connection takes over its token.
                        let mut fresh =
                            ClientConn::open(&poll, token, target, None, next_index, spec.size)?;
                        next_index += 1;
                        fresh.queue(now); // written once the connect completes
                        std::mem::replace(conn, fresh).close(&poll)?;
                        continue;
                    }
                    if interval.is_none() {
                        for _ in 0..echoed {
                            conn.queue(now);
                        }
                    }
                }
            }
            conn.flush(&pattern)?;
        }
        if now.duration_since(last_progress) > STALL && conns.iter().any(|c| c.in_flight() > 0) {
            return Err(format!("no echo for {STALL:?} with messages in flight: stalled").into());
        }
    }
}

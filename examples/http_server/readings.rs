//! The reactor's [`Stats`] as a list of named numbers: the one place that names them, for
//! `/stats` (JSON, keyed by the `Stats` field names) and `/metrics` (Prometheus names).

use mio_reactor::Stats;

/// How a number behaves over time (Prometheus' metric types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down (open connections).
    Gauge,
    /// Only grows (everything else).
    Counter,
}

/// A count, or seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Count(u64),
    Seconds(f64),
}

impl Number {
    pub fn add(self, other: Number) -> Number {
        match (self, other) {
            (Number::Count(a), Number::Count(b)) => Number::Count(a + b),
            (a, b) => Number::Seconds(a.as_f64() + b.as_f64()),
        }
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Number::Count(n) => n as f64,
            Number::Seconds(s) => s,
        }
    }
}

/// One number of one reactor's stats.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// The `Stats` field it comes from: the JSON key.
    pub field: &'static str,
    /// The closing reason, for the `closed` counts (a JSON object, a Prometheus label).
    pub reason: Option<&'static str>,
    /// The Prometheus metric name, without the `mio_reactor_` prefix.
    pub metric: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub value: Number,
}

const fn reading(
    field: &'static str,
    metric: &'static str,
    kind: Kind,
    help: &'static str,
    value: Number,
) -> Reading {
    Reading {
        field,
        reason: None,
        metric,
        help,
        kind,
        value,
    }
}

/// Every reading of `stats`, always in the same order.
pub fn readings(stats: &Stats) -> Vec<Reading> {
    use Kind::{Counter, Gauge};
    use Number::{Count, Seconds};
    let mut list = vec![
        reading(
            "open_connections",
            "open_connections",
            Gauge,
            "Connections open now.",
            Count(stats.open_connections as u64),
        ),
        reading(
            "accepted",
            "accepted_connections_total",
            Counter,
            "Connections accepted and given a handler.",
            Count(stats.accepted),
        ),
        reading(
            "refused",
            "refused_connections_total",
            Counter,
            "Connections accepted but refused by the listener's factory.",
            Count(stats.refused),
        ),
    ];
    for (reason, count) in stats.closed.by_reason() {
        list.push(Reading {
            reason: Some(reason),
            ..reading(
                "closed",
                "closed_connections_total",
                Counter,
                "Connections closed, by reason.",
                Count(count),
            )
        });
    }
    list.extend([
        reading(
            "bytes_in",
            "received_bytes_total",
            Counter,
            "Bytes read from connections.",
            Count(stats.bytes_in),
        ),
        reading(
            "bytes_out",
            "sent_bytes_total",
            Counter,
            "Bytes written to connections.",
            Count(stats.bytes_out),
        ),
        reading(
            "turns",
            "turns_total",
            Counter,
            "Iterations of the event loop.",
            Count(stats.turns),
        ),
        reading(
            "time_blocked",
            "blocked_seconds_total",
            Counter,
            "Time spent blocked in poll, waiting for events.",
            Seconds(stats.time_blocked.as_secs_f64()),
        ),
        reading(
            "accept_errors",
            "accept_errors_total",
            Counter,
            "accept calls that failed.",
            Count(stats.accept_errors),
        ),
        reading(
            "accept_backoffs",
            "accept_backoffs_total",
            Counter,
            "Times a listener backed off after running out of file descriptors.",
            Count(stats.accept_backoffs),
        ),
        reading(
            "read_pauses",
            "read_pauses_total",
            Counter,
            "Times a connection stopped being read because its output passed the high water mark.",
            Count(stats.read_pauses),
        ),
        reading(
            "pending_timers",
            "pending_timers",
            Gauge,
            "Timers pending now: handlers' own and the reactor's deadlines.",
            Count(stats.pending_timers as u64),
        ),
    ]);
    list
}

/// The readings of several reactors added up, reading by reading.
pub fn total(per_reactor: &[Vec<Reading>]) -> Vec<Reading> {
    let mut sum = per_reactor.first().cloned().unwrap_or_default();
    for readings in per_reactor.iter().skip(1) {
        for (into, reading) in sum.iter_mut().zip(readings) {
            into.value = into.value.add(reading.value);
        }
    }
    sum
}

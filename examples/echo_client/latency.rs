//! Round-trip times, kept in fixed memory however long the run.
//!
//! Keeping every sample and sorting at the end costs 8 bytes a message: a `--duration 600`
//! run at 200k messages/s would hold about 1 GB. An HDR histogram (the structure `wrk` and
//! most load generators report from) keeps counts in buckets a thousandth wide at every
//! magnitude instead: a few hundred KiB whatever the count, and percentiles to 3
//! significant digits.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest round trip recorded as itself; longer ones count as this (the run's own
/// timeout ends it well before).
const LONGEST: Duration = Duration::from_secs(600);

/// Latencies of the whole run, and of the current one-second interval (`--duration`).
pub struct Latency {
    run: Histogram<u64>,
    interval: Histogram<u64>,
    /// Bytes echoed in the current interval.
    interval_bytes: u64,
}

impl Default for Latency {
    fn default() -> Latency {
        let histogram = || {
            // 1 ns to LONGEST, 3 significant digits: valid bounds, so this cannot fail.
            Histogram::new_with_bounds(1, LONGEST.as_nanos() as u64, 3).expect("valid bounds")
        };
        Latency {
            run: histogram(),
            interval: histogram(),
            interval_bytes: 0,
        }
    }
}

impl Latency {
    /// Records one echoed message: its round trip and its length.
    pub fn record(&mut self, round_trip: Duration, bytes: usize) {
        let nanos = (round_trip.as_nanos() as u64).max(1);
        self.run.saturating_record(nanos);
        self.interval.saturating_record(nanos);
        self.interval_bytes += bytes as u64;
    }

    /// Messages echoed over the whole run.
    pub fn messages(&self) -> u64 {
        self.run.len()
    }

    /// `p50 .., p99 .., p99.9 .., max .., min ..` of the whole run (the minimum last, so
    /// that what reads the line from its start is unchanged).
    pub fn summary(&self) -> String {
        if self.run.is_empty() {
            return "p50 -, p99 -, p99.9 -, max -, min -".to_string();
        }
        let at = |q: f64| micros(self.run.value_at_quantile(q));
        format!(
            "p50 {}, p99 {}, p99.9 {}, max {}, min {}",
            at(0.50),
            at(0.99),
            at(0.999),
            micros(self.run.max()),
            micros(self.run.min())
        )
    }

    /// One line for the interval that just ended (`elapsed` since the start, `length` long),
    /// and a fresh interval.
    pub fn interval_line(&mut self, elapsed: Duration, length: Duration) -> String {
        let secs = length.as_secs_f64().max(1e-9);
        let h = &self.interval;
        let line = if h.is_empty() {
            format!("{:>5.0} s  no echo in this interval", elapsed.as_secs_f64())
        } else {
            format!(
                "{:>5.0} s  {:>8.0} messages/s  {:>7.1} MB/s  p50 {}  p99 {}  max {}",
                elapsed.as_secs_f64(),
                h.len() as f64 / secs,
                self.interval_bytes as f64 / secs / 1e6,
                micros(h.value_at_quantile(0.50)),
                micros(h.value_at_quantile(0.99)),
                micros(h.max())
            )
        };
        self.interval.reset();
        self.interval_bytes = 0;
        line
    }
}

/// Nanoseconds, shown in microseconds.
fn micros(nanos: u64) -> String {
    format!("{:.0} µs", nanos as f64 / 1000.0)
}

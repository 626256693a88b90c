//! Round-trip latencies in fixed memory: an HDR histogram (the structure wrk-style load
//! generators report from), 1 ns to a minute at 3 significant digits, a few hundred KiB
//! however many messages a run echoes. Recording is an index computation and an increment:
//! nothing the load generator could notice.

use hdrhistogram::Histogram as Hdr;

/// Longer round trips are recorded as this; the load generator calls a run stalled after
/// 10 s without an echo, long before.
const LONGEST_NS: u64 = 60_000_000_000;

/// Counts of latencies, in nanoseconds.
#[derive(Clone)]
pub struct Histogram(Hdr<u64>);

impl Default for Histogram {
    fn default() -> Histogram {
        // Valid bounds (1 <= low, high >= 2 * low, 3 significant digits): cannot fail.
        Histogram(Hdr::new_with_bounds(1, LONGEST_NS, 3).expect("valid histogram bounds"))
    }
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        self.0.saturating_record(nanos.max(1));
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values fall, in ns; 0
    /// when nothing was recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            return 0;
        }
        self.0.value_at_quantile(q)
    }
}

/// Checks the bounds and the precision this benchmark relies on, before any measurement
/// does (a harness-less bench runs no `#[test]`s, so the instruments test themselves at
/// start-up, in milliseconds).
pub fn self_check() {
    let mut h = Histogram::default();
    (1..=1000).for_each(|v| h.record(v * 1000));
    let p99 = h.quantile(0.99);
    assert!(p99.abs_diff(990_000) <= 990, "histogram: p99 {p99}");
    h.record(LONGEST_NS * 2);
    assert_eq!(
        h.quantile(1.0),
        h.0.highest_equivalent(LONGEST_NS),
        "histogram: max"
    );
}

//! A log-linear latency histogram: fixed memory, about 3 % precision, cheap to record.
//!
//! Values (nanoseconds) below 64 get a bucket each. Above, every power of two is split into
//! 32 equal buckets, so a bucket is never wider than 1/32 of the values in it. Recording is
//! a `leading_zeros`, a shift and an increment: it costs the load generator nothing it
//! could notice, however many messages a run echoes.

/// Buckets per power of two (the precision: 1/32, about 3 %).
const SUB_BUCKETS: u64 = 32;
/// Enough buckets for 2^63 ns: more than any run lasts.
const BUCKETS: usize = 64 * SUB_BUCKETS as usize;

/// Counts of latencies, in nanoseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < 2 * SUB_BUCKETS {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros() as u64; // >= 6
    let shift = top_bit - 5; // keep the 6 top bits: 32..=63
    let mantissa = value >> shift;
    ((shift + 1) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

/// The middle of a bucket: what a quantile falling in it reports.
fn value_of(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < 2 * SUB_BUCKETS {
        return bucket;
    }
    let shift = bucket / SUB_BUCKETS - 1;
    let mantissa = bucket % SUB_BUCKETS + SUB_BUCKETS;
    (mantissa << shift) + (1 << shift) / 2
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        self.counts[bucket_of(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// The value below which a fraction `q` (0..=1) of the recorded values fall, in ns.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value_of(bucket).min(self.max);
            }
        }
        self.max
    }
}

/// Checks the bucket arithmetic before any measurement relies on it (a harness-less bench
/// runs no `#[test]`s, so the instruments test themselves at start-up, in milliseconds).
pub fn self_check() {
    let mut last = 0;
    for value in 1..1_000_000u64 {
        let bucket = bucket_of(value);
        assert!(
            bucket == last || bucket == last + 1,
            "histogram: gap at {value}"
        );
        last = bucket;
        let middle = value_of(bucket);
        assert!(
            middle.abs_diff(value) * 32 <= value.max(32),
            "histogram: {value} vs {middle}"
        );
    }
    let mut h = Histogram::default();
    (1..=1000).for_each(|v| h.record(v * 1000));
    let p99 = h.quantile(0.99);
    assert!(p99.abs_diff(990_000) < 990_000 / 32, "histogram: p99 {p99}");
}

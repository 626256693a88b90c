//! The bytes the load generator sends, chosen so that every echoed byte can be checked.
//!
//! Each connection sends an endless stream whose byte at offset `o` is
//! `TABLE[(start + o) % PERIOD]`, with a different `start` per connection. So the reply can
//! be checked byte for byte with a `memcmp` against the table, wherever TCP happens to split
//! it, and a byte delivered to the wrong connection, dropped, duplicated or reordered shows
//! up as a mismatch. The table is longer than the period by one chunk, so any chunk of up to
//! [`CHUNK`] bytes is one contiguous slice: no wrapping in the hot path.

/// The longest slice [`Pattern::slice`] hands out; reads and writes are at most this long.
pub const CHUNK: usize = 64 * 1024;
/// A prime (2^17 - 1), so that the streams of different connections do not line up; longer
/// than [`CHUNK`], so that the table's tail can repeat its head.
const PERIOD: usize = 131_071;

/// The shared table of pseudo-random bytes.
pub struct Pattern {
    table: Vec<u8>,
}

impl Pattern {
    pub fn new() -> Pattern {
        // xorshift64: any fixed sequence that is not periodic with a short period will do.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let table = (0..PERIOD + CHUNK)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 24) as u8
            })
            .collect::<Vec<u8>>();
        let mut pattern = Pattern { table };
        // Make the tail repeat the head so that a slice may run past PERIOD.
        let (head, tail) = pattern.table.split_at_mut(PERIOD);
        tail.copy_from_slice(&head[..CHUNK]);
        pattern
    }

    /// Where connection number `conn` starts in the table.
    pub fn start_of(conn: usize) -> usize {
        conn.wrapping_mul(7_919) % PERIOD
    }

    /// `len` (at most [`CHUNK`]) bytes of the stream that starts at `start`, from `offset`.
    pub fn slice(&self, start: usize, offset: u64, len: usize) -> &[u8] {
        debug_assert!(len <= CHUNK);
        let at = ((start as u64 + offset) % PERIOD as u64) as usize;
        &self.table[at..at + len]
    }

    /// Checks `received` against the stream at `offset`; on a mismatch returns the index
    /// of the first wrong byte.
    pub fn check(&self, start: usize, offset: u64, received: &[u8]) -> Result<(), usize> {
        let mut done = 0;
        while done < received.len() {
            let len = (received.len() - done).min(CHUNK);
            let expected = self.slice(start, offset + done as u64, len);
            let got = &received[done..done + len];
            if expected != got {
                let at = expected.iter().zip(got).position(|(a, b)| a != b);
                return Err(done + at.unwrap_or(0));
            }
            done += len;
        }
        Ok(())
    }
}

/// Checks that slices wrap seamlessly and that a single flipped bit is caught, before the
/// benchmark trusts [`Pattern::check`] to catch bad echoes.
pub fn self_check() {
    let pattern = Pattern::new();
    let start = Pattern::start_of(3);
    let whole: Vec<u8> = (0..200_000u64)
        .map(|o| pattern.slice(start, o, 1)[0])
        .collect();
    assert_eq!(
        pattern.slice(start, 130_000, 4_000),
        &whole[130_000..134_000]
    );
    assert!(pattern.check(start, 1_000, &whole[1_000..150_000]).is_ok());
    let mut wrong = whole[10..20].to_vec();
    wrong[4] ^= 1;
    assert_eq!(
        pattern.check(start, 10, &wrong),
        Err(4),
        "pattern: a flipped bit went unseen"
    );
    let other = Pattern::start_of(4);
    assert!(
        pattern.check(other, 10, &whole[10..20]).is_err(),
        "pattern: streams collide"
    );
}

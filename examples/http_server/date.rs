//! The `Date` header, formatted once per second instead of once per response.
//!
//! Every response carries `Date` (RFC 9110 section 6.6.1; TechEmpower requires it), and
//! formatting a calendar date costs more than the rest of a small response. The string only
//! changes once a second, so each reactor thread keeps the current one and the instant at
//! which the wall clock reaches the next second. That instant is compared with the turn's
//! clock ([`mio_reactor::Context::now`], read once per turn by the reactor), so a response
//! costs no clock read at all: the string may be late by at most one turn.

use std::cell::Cell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An IMF-fixdate is always this long: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// The current `Date` value, refreshed when the second changes.
#[derive(Debug)]
pub struct DateCache {
    value: Cell<[u8; DATE_LEN]>,
    /// When the wall clock reaches the next whole second; `None` before the first use.
    next_second: Cell<Option<Instant>>,
}

impl DateCache {
    pub fn new() -> DateCache {
        DateCache {
            value: Cell::new([b' '; DATE_LEN]),
            next_second: Cell::new(None),
        }
    }

    /// The `Date` value for a response sent at `now` (the turn's clock).
    pub fn at(&self, now: Instant) -> [u8; DATE_LEN] {
        if self.next_second.get().is_none_or(|next| now >= next) {
            self.refresh(now);
        }
        self.value.get()
    }

    fn refresh(&self, now: Instant) {
        let wall = SystemTime::now();
        let formatted = httpdate::fmt_http_date(wall);
        let mut value = [b' '; DATE_LEN];
        // Always 29 bytes; copy what fits rather than panic if a future format differs.
        let len = formatted.len().min(DATE_LEN);
        value[..len].copy_from_slice(&formatted.as_bytes()[..len]);
        self.value.set(value);
        let into_second = wall
            .duration_since(UNIX_EPOCH)
            .map_or(Duration::ZERO, |since| {
                Duration::from_nanos(u64::from(since.subsec_nanos()))
            });
        self.next_second
            .set(Some(now + (Duration::from_secs(1) - into_second)));
    }
}

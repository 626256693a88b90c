//! The active expiry cycle: keys that expire while nobody looks them up are removed anyway,
//! as Redis's `activeExpireCycle` (expire.c) removes them, on a timer of the loop.
//!
//! Every tick (`--hz` times a second) the cycle samples keys that have an expiry, 20 at a
//! time, and removes those that have expired; it samples again while more than 10 % of a
//! sample had expired (Redis 7.0's `ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`; Redis before 6.0
//! said 25 %), and stops when its time budget for the tick is spent: a quarter of the tick
//! (`ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`), so that expiring never takes the loop from the
//! clients for long. A cursor walks the index of keys with an expiry, continuing where the
//! previous tick stopped, as Redis's cursor walks the buckets of its `expires` dictionary.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{Every, Reactor};

use crate::keyspace::Keyspace;
use crate::server::{unix_millis, Server};

/// Keys looked at per sample (`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
const KEYS_PER_SAMPLE: usize = 20;
/// Sample again while more than this percentage of a sample had expired.
const ACCEPTABLE_STALE_PERCENT: usize = 10;
/// The share of each tick the cycle may take (`ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`).
const TIME_PERCENT: u32 = 25;

/// Where the cycle goes on from, between ticks.
#[derive(Debug, Default)]
pub struct ExpiryCursor {
    position: usize,
}

/// What one run of the cycle did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub sampled: usize,
    pub expired: usize,
}

impl ExpiryCursor {
    /// One cycle over `keys` at `now` (Unix ms), until few of a sample expire or `budget`
    /// has passed since `started`.
    pub fn run(
        &mut self,
        keys: &mut Keyspace,
        now: i64,
        started: Instant,
        budget: Duration,
    ) -> Swept {
        let mut swept = Swept::default();
        loop {
            let (sampled, expired) = self.sample(keys, now);
            swept.sampled += sampled;
            swept.expired += expired;
            if sampled == 0
                || expired * 100 <= sampled * ACCEPTABLE_STALE_PERCENT
                || started.elapsed() >= budget
            {
                return swept;
            }
        }
    }

    /// Looks at up to [`KEYS_PER_SAMPLE`] keys from the cursor on; returns how many it
    /// looked at and how many of those had expired (and are gone).
    fn sample(&mut self, keys: &mut Keyspace, now: i64) -> (usize, usize) {
        let mut sampled = 0;
        let mut expired = 0;
        while sampled < KEYS_PER_SAMPLE && keys.volatile_len() > 0 {
            if self.position >= keys.volatile_len() {
                self.position = 0;
            }
            sampled += 1;
            if keys.expire_at_position(self.position, now) {
                expired += 1; // the last key moved here: look at this position again
            } else {
                self.position += 1;
            }
        }
        (sampled, expired)
    }
}

/// Runs the cycle on `server`'s keyspace `hz` times a second, on a timer of `reactor`'s
/// loop (Redis runs it from `serverCron`, which `hz` paces).
pub fn start(reactor: &mut Reactor, server: Rc<RefCell<Server>>, hz: u32) {
    let tick = Duration::from_secs(1) / hz;
    let budget = tick * TIME_PERCENT / 100;
    let mut cursor = ExpiryCursor::default();
    reactor.set_loop_interval(Every::Rate(tick), move |_, _| {
        let started = Instant::now();
        let mut server = server.borrow_mut();
        cursor.run(&mut server.keyspace, unix_millis(), started, budget);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    fn keyspace(expiring: usize, lasting: usize) -> Keyspace {
        let mut keys = Keyspace::default();
        for i in 0..expiring {
            keys.set(
                format!("e{i}").as_bytes(),
                Value::Integer(0),
                Some(10),
                false,
            );
        }
        for i in 0..lasting {
            keys.set(
                format!("l{i}").as_bytes(),
                Value::Integer(0),
                Some(1000),
                false,
            );
        }
        keys
    }

    #[test]
    fn one_cycle_removes_keys_that_expired_together() {
        let mut keys = keyspace(1000, 0);
        let swept = ExpiryCursor::default().run(&mut keys, 20, Instant::now(), Duration::MAX);
        assert_eq!(swept.expired, 1000);
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn a_cycle_stops_when_few_of_a_sample_expire() {
        let mut keys = keyspace(0, 1000);
        let swept = ExpiryCursor::default().run(&mut keys, 20, Instant::now(), Duration::MAX);
        assert_eq!(
            swept,
            Swept {
                sampled: KEYS_PER_SAMPLE,
                expired: 0
            }
        );
    }

    #[test]
    fn a_cycle_stops_at_its_time_budget() {
        let mut keys = keyspace(1000, 0);
        let swept = ExpiryCursor::default().run(&mut keys, 20, Instant::now(), Duration::ZERO);
        assert_eq!(swept.sampled, KEYS_PER_SAMPLE);
    }
}

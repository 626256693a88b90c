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
//!
//! When a tick's cycle stopped with work left (its budget spent, or the last sample still
//! stale), Redis also runs a *fast* cycle before the loop sleeps (`beforeSleep`): at most
//! 1 ms, and not more often than every 2 ms. Here that is the reactor's
//! [`before_sleep`](mio_reactor::Reactor::before_sleep) hook.

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
/// A fast cycle's budget (`ACTIVE_EXPIRE_CYCLE_FAST_DURATION`); it runs at most once per
/// two of them.
const FAST_BUDGET: Duration = Duration::from_millis(1);

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
    /// It stopped with expired keys likely left: its budget spent while samples were
    /// still stale.
    pub work_left: bool,
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
            if sampled == 0 || expired * 100 <= sampled * ACCEPTABLE_STALE_PERCENT {
                return swept;
            }
            if started.elapsed() >= budget {
                swept.work_left = true;
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

/// The slow cycle of each tick and the fast cycles between them.
#[derive(Debug, Default)]
pub struct ActiveExpiry {
    cursor: ExpiryCursor,
    /// The last cycle stopped with work left: fast cycles may help.
    work_left: bool,
    last_fast: Option<Instant>,
}

impl ActiveExpiry {
    /// A tick's cycle, with `budget` for it.
    pub fn slow(&mut self, keys: &mut Keyspace, now: i64, budget: Duration) -> Swept {
        let swept = self.cursor.run(keys, now, Instant::now(), budget);
        self.work_left = swept.work_left;
        swept
    }

    /// A fast cycle starting at `started`, if the last cycle left work and none started in
    /// the 2 ms before.
    pub fn fast(&mut self, keys: &mut Keyspace, now: i64, started: Instant) -> Option<Swept> {
        let recent = self
            .last_fast
            .is_some_and(|last| started.duration_since(last) < FAST_BUDGET * 2);
        if !self.work_left || recent {
            return None;
        }
        self.last_fast = Some(started);
        let swept = self.cursor.run(keys, now, started, FAST_BUDGET);
        self.work_left = swept.work_left;
        Some(swept)
    }
}

/// Runs the cycle on `server`'s keyspace `hz` times a second, on a timer of `reactor`'s
/// loop (Redis runs it from `serverCron`, which `hz` paces); returns the fast cycle, for the
/// loop's [`before_sleep`](mio_reactor::Reactor::before_sleep) hook to run.
pub fn start(reactor: &mut Reactor, server: Rc<RefCell<Server>>, hz: u32) -> impl FnMut() {
    let tick = Duration::from_secs(1) / hz;
    let budget = tick * TIME_PERCENT / 100;
    let expiry = Rc::new(RefCell::new(ActiveExpiry::default()));
    let (slow, fast) = (expiry.clone(), expiry);
    let keys = server.clone();
    reactor.set_loop_interval(Every::Rate(tick), move |_, _| {
        let keyspace = &mut keys.borrow_mut().keyspace;
        slow.borrow_mut().slow(keyspace, unix_millis(), budget);
    });
    move || {
        let mut fast = fast.borrow_mut();
        if fast.work_left {
            fast.fast(
                &mut server.borrow_mut().keyspace,
                unix_millis(),
                Instant::now(),
            );
        }
    }
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
                expired: 0,
                work_left: false,
            }
        );
    }

    #[test]
    fn a_cycle_stops_at_its_time_budget() {
        let mut keys = keyspace(1000, 0);
        let swept = ExpiryCursor::default().run(&mut keys, 20, Instant::now(), Duration::ZERO);
        assert_eq!(swept.sampled, KEYS_PER_SAMPLE);
        assert!(swept.work_left);
    }

    #[test]
    fn fast_cycles_run_only_after_a_cycle_that_left_work_and_2_ms_apart() {
        let mut keys = keyspace(1000, 0);
        let mut expiry = ActiveExpiry::default();
        // Started long ago: each fast cycle has spent its 1 ms after one sample.
        let start = Instant::now() - Duration::from_secs(10);
        assert_eq!(expiry.fast(&mut keys, 20, start), None, "no work left yet");
        expiry.slow(&mut keys, 20, Duration::ZERO);
        assert!(expiry.fast(&mut keys, 20, start).is_some());
        let soon = start + Duration::from_millis(1);
        assert_eq!(expiry.fast(&mut keys, 20, soon), None, "within 2 ms");
        let later = start + Duration::from_millis(2);
        assert!(expiry.fast(&mut keys, 20, later).is_some());
    }
}

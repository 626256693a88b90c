//! Timers of the loop: one-shot and periodic callbacks that belong to no connection.
//!
//! Redis's `serverCron`, libuv's `uv_timer_t`, asyncio's `call_later` and Netty's
//! `EventLoop.schedule`: work the loop does on a clock of its own (expiring keys, sweeping a
//! cache, a heartbeat to every subscriber). The deadlines live in the one `Timers` heap with
//! every other deadline (`TimerTask::Loop`); this part keeps only the callbacks and how each
//! repeats, keyed by a [`LoopTimerId`] that stays the same across the periods of a periodic
//! timer (each period is a new heap entry).
//!
//! A callback is taken out of its entry while it runs, so that it may set and cancel loop
//! timers (itself included) through its [`LoopContext`]; it is put back, and re-armed if it
//! repeats, only if its entry is still there when it returns.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::core::{Core, TimerTask};
use crate::id::LoopTimerId;
use crate::panics::call_user;
use crate::post::LoopContext;

/// How a periodic loop timer repeats
/// ([`Reactor::set_loop_interval`](crate::Reactor::set_loop_interval)).
///
/// Neither kind piles up: a loop that was busy (a handler that blocked, a long turn) for
/// several periods gets **one** call when it comes back, never one per missed period, and a
/// periodic timer fires at most once per turn. A period shorter than 1 ms is taken as 1 ms.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::Every;
///
/// // A clock tick (Redis's `hz`): at 0, 100, 200 ms... after it was set, whatever each call costs.
/// let cron = Every::Rate(Duration::from_millis(100));
/// // A poll that needs a pause between its runs: 100 ms from the end of one to the next.
/// let sweep = Every::Delay(Duration::from_millis(100));
/// assert_eq!(cron.period(), sweep.period());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// **Fixed rate** (Netty's `scheduleAtFixedRate`, Twisted's `LoopingCall`): the `n`th
    /// call is due at `start + n × period`, so the time a call takes does not make the
    /// schedule drift. When the loop was busy past one or more due times, the timer fires
    /// once, late, and the next call is due at the first `start + n × period` that is still
    /// in the future: the missed periods are skipped, not made up.
    Rate(Duration),
    /// **Fixed delay** (Netty's `scheduleWithFixedDelay`, libuv's `uv_timer_t` repeat): the
    /// next call is due `period` after the previous call *returned* (the clock is read again
    /// when it returns), so calls are always at least `period` apart and a busy loop only
    /// pushes them later.
    Delay(Duration),
}

impl Every {
    /// The period, at least 1 ms.
    pub fn period(&self) -> Duration {
        let (Every::Rate(period) | Every::Delay(period)) = *self;
        period.max(MIN_PERIOD)
    }
}

/// The shortest period: a periodic timer of zero would keep the loop from ever blocking.
const MIN_PERIOD: Duration = Duration::from_millis(1);

/// A loop timer's callback.
pub(crate) type LoopCallback = Box<dyn FnMut(&mut LoopContext<'_>, LoopTimerId)>;

/// One loop timer.
struct LoopTimer {
    /// Taken out while it runs.
    callback: Option<LoopCallback>,
    /// `None` for a one-shot.
    every: Option<Every>,
    /// The deadline of the current period, and its entry in the `Timers` heap.
    due: Instant,
    armed: u64,
}

/// The loop's part that keeps the callbacks of its own timers.
#[derive(Default)]
pub(crate) struct LoopTimers {
    timers: HashMap<u64, LoopTimer>,
    next_id: u64,
}

impl LoopTimers {
    /// Whether no loop timer is pending (or running).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

impl fmt::Debug for LoopTimers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopTimers")
            .field("pending", &self.timers.len())
            .finish()
    }
}

/// Setting, cancelling and firing loop timers: the loop's side.
impl Core {
    /// Arms a loop timer: `callback` runs after `delay`, then as `every` says.
    pub(crate) fn set_loop_timer(
        &mut self,
        delay: Duration,
        every: Option<Every>,
        callback: LoopCallback,
    ) -> LoopTimerId {
        let id = LoopTimerId(self.loop_timers.next_id);
        self.loop_timers.next_id += 1;
        let due = self.now() + delay;
        let armed = self.timers.insert(due, TimerTask::Loop(id));
        let timer = LoopTimer {
            callback: Some(callback),
            every,
            due,
            armed,
        };
        self.loop_timers.timers.insert(id.0, timer);
        id
    }

    /// Arms a periodic loop timer: its first call one period from now.
    pub(crate) fn set_loop_interval(
        &mut self,
        every: Every,
        callback: LoopCallback,
    ) -> LoopTimerId {
        self.set_loop_timer(every.period(), Some(every), callback)
    }

    /// Cancels a loop timer (a periodic one for good); returns whether it was pending. A
    /// timer cancelled from its own callback is not called again.
    pub(crate) fn cancel_loop_timer(&mut self, id: LoopTimerId) -> bool {
        match self.loop_timers.timers.remove(&id.0) {
            Some(timer) => {
                self.timers.cancel(timer.armed);
                true
            }
            None => false,
        }
    }

    /// A loop timer is due: run its callback (a panic is caught, reported and ends the
    /// timer), then re-arm it if it repeats.
    pub(crate) fn fire_loop_timer(&mut self, id: LoopTimerId) {
        let Some(mut callback) = self
            .loop_timers
            .timers
            .get_mut(&id.0)
            .and_then(|timer| timer.callback.take())
        else {
            return;
        };
        self.stats.loop_timers_fired += 1;
        let catch = self.config().catch_panics;
        let called = call_user(catch, || callback(&mut LoopContext { core: self }, id));
        if let Err(message) = called {
            log::error!("{id} panicked: {message}; the timer is cancelled");
            self.stats.handler_panics += 1;
            self.cancel_loop_timer(id);
            return;
        }
        let now = self.now();
        let Some(timer) = self.loop_timers.timers.get_mut(&id.0) else {
            return; // cancelled by its own callback
        };
        let Some(every) = timer.every else {
            self.loop_timers.timers.remove(&id.0);
            return;
        };
        timer.callback = Some(callback);
        timer.due = next_due(every, timer.due, now, Instant::now());
        timer.armed = self.timers.insert(timer.due, TimerTask::Loop(id));
    }
}

/// When a periodic timer that was due at `due` and ran in the turn that began at `now`
/// (its callback returning at `returned`) is due next: always after `now`, so it fires at
/// most once per turn, and never once per missed period.
fn next_due(every: Every, due: Instant, now: Instant, returned: Instant) -> Instant {
    let period = every.period();
    match every {
        Every::Rate(_) => {
            let next = due + period;
            if next > now {
                return next;
            }
            // Busy past one or more periods: skip to the first due time still ahead.
            let behind = now.duration_since(due).as_nanos();
            let periods = behind / period.as_nanos() + 1;
            let skip = u32::try_from(periods).unwrap_or(u32::MAX);
            due + period.saturating_mul(skip)
        }
        Every::Delay(_) => returned.max(now) + period,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_rate_on_time_keeps_its_schedule() {
        let start = Instant::now();
        let due = start + 100 * MS;
        let late = due + 3 * MS; // the call ran a little late and took a while
        assert_eq!(
            next_due(Every::Rate(100 * MS), due, late, late + 20 * MS),
            due + 100 * MS
        );
    }

    #[test]
    fn a_rate_busy_for_several_periods_skips_them() {
        let due = Instant::now();
        let now = due + 350 * MS; // periods at 100, 200, 300 were missed
        let next = next_due(Every::Rate(100 * MS), due, now, now);
        assert_eq!(next, due + 400 * MS);
    }

    #[test]
    fn a_rate_exactly_on_a_period_goes_to_the_next() {
        let due = Instant::now();
        let now = due + 200 * MS;
        assert_eq!(
            next_due(Every::Rate(100 * MS), due, now, now),
            due + 300 * MS
        );
    }

    #[test]
    fn a_delay_counts_from_when_the_call_returned() {
        let due = Instant::now();
        let returned = due + 30 * MS;
        assert_eq!(
            next_due(Every::Delay(100 * MS), due, due, returned),
            returned + 100 * MS
        );
    }

    #[test]
    fn a_zero_period_is_one_millisecond() {
        let due = Instant::now();
        assert_eq!(
            next_due(Every::Rate(Duration::ZERO), due, due, due),
            due + MS
        );
        assert_eq!(Every::Delay(Duration::ZERO).period(), MS);
    }
}

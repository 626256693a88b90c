//! Where each reactor publishes its [`Stats`] for the `/stats`, `/metrics` and `/` routes
//! to read.
//!
//! A handler gets a [`Context`](mio_reactor::Context), which has no way to read its
//! reactor's stats: the reactor is busy running the handler. So each reactor copies its
//! stats here from a [`before_sleep`](mio_reactor::Reactor::before_sleep) hook, once per
//! turn before it polls (a ~200-byte copy under an uncontended lock). A reader sees each
//! reactor as of the start of its latest turn: the request being answered is not yet
//! counted.

use std::sync::{Arc, Mutex, PoisonError};

use mio_reactor::Stats;

/// The latest stats of every reactor, one slot per reactor.
#[derive(Debug, Clone)]
pub struct StatsBoard {
    slots: Arc<[Mutex<Stats>]>,
}

impl StatsBoard {
    pub fn new(reactors: usize) -> StatsBoard {
        StatsBoard {
            slots: (0..reactors)
                .map(|_| Mutex::new(Stats::default()))
                .collect(),
        }
    }

    /// Replaces reactor `index`'s stats.
    pub fn publish(&self, index: usize, stats: Stats) {
        // A poisoned slot only means a reader panicked mid-copy; the value is whole.
        *self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stats;
    }

    /// Every reactor's latest stats, in reactor order.
    pub fn snapshot(&self) -> Vec<Stats> {
        self.slots
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }
}

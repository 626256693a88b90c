//! Where each reactor thread publishes its [`Stats`] for the `/stats`, `/metrics` and `/`
//! routes to read.
//!
//! A handler gets a [`Context`](mio_reactor::Context), which has no way to read its
//! reactor's stats: only [`Reactor::stats`](mio_reactor::Reactor::stats) does, and the
//! reactor is busy running the handler. So each thread drives its reactor with
//! [`Reactor::turn`](mio_reactor::Reactor::turn) and copies the stats here after every turn
//! (a ~200-byte copy under an uncontended lock). A reader sees each reactor as of the end of
//! its latest turn: the request being answered is not yet counted.

use std::sync::{Arc, Mutex, PoisonError};

use mio_reactor::Stats;

/// The latest stats of every reactor thread, one slot per thread.
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

    /// Every reactor's latest stats, in thread order.
    pub fn snapshot(&self) -> Vec<Stats> {
        self.slots
            .iter()
            .map(|slot| slot.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }
}

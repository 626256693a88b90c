//! Deadlines inside the loop: user timers, idle checks, connect, close and shutdown deadlines.
//!
//! There is no timer thread. The loop asks [`Timers::next_deadline`] how long `poll` may
//! block, and fires what is due at the start of each turn. Cancelling is lazy: a cancelled
//! timer is forgotten in the index at once and its heap entry is skipped when it surfaces,
//! which keeps both operations O(log n). The heap is rebuilt if cancelled entries pile up.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

/// A priority queue of deadlines, each with a payload saying what to do.
#[derive(Debug)]
pub(crate) struct Timers<T> {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    live: HashMap<u64, T>,
    next_id: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_id: 0,
        }
    }
}

impl<T> Timers<T> {
    /// Schedules `payload` for `deadline` and returns the timer's id.
    pub(crate) fn insert(&mut self, deadline: Instant, payload: T) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.heap.push(Reverse((deadline, id)));
        self.live.insert(id, payload);
        id
    }

    /// Cancels a timer; returns its payload if it had not fired yet.
    pub(crate) fn cancel(&mut self, id: u64) -> Option<T> {
        let payload = self.live.remove(&id);
        if self.heap.len() > 64 && self.heap.len() > 4 * self.live.len() {
            let live = &self.live;
            self.heap.retain(|Reverse((_, id))| live.contains_key(id));
        }
        payload
    }

    /// The payload of a pending timer.
    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        self.live.get(&id)
    }

    /// The earliest deadline still pending.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_cancelled();
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Removes and returns one timer due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(u64, T)> {
        self.skip_cancelled();
        match self.heap.peek() {
            Some(Reverse((deadline, _))) if *deadline <= now => {
                let Reverse((_, id)) = self.heap.pop()?;
                self.live.remove(&id).map(|payload| (id, payload))
            }
            _ => None,
        }
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.live.len()
    }

    fn skip_cancelled(&mut self) {
        while let Some(Reverse((_, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                break;
            }
            self.heap.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_order() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.insert(now + Duration::from_millis(30), "c");
        timers.insert(now + Duration::from_millis(10), "a");
        timers.insert(now + Duration::from_millis(20), "b");
        let later = now + Duration::from_millis(100);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(later).map(|(_, p)| p)).collect();
        assert_eq!(fired, ["a", "b", "c"]);
    }

    #[test]
    fn nothing_fires_before_its_deadline() {
        let now = Instant::now();
        let mut timers = Timers::default();
        timers.insert(now + Duration::from_millis(10), ());
        assert!(timers.pop_due(now).is_none());
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(10))
        );
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let id = timers.insert(now, "cancelled");
        timers.insert(now + Duration::from_millis(5), "kept");
        assert_eq!(timers.cancel(id), Some("cancelled"));
        assert_eq!(timers.next_deadline(), Some(now + Duration::from_millis(5)));
        let later = now + Duration::from_secs(1);
        assert_eq!(timers.pop_due(later).map(|(_, p)| p), Some("kept"));
        assert!(timers.pop_due(later).is_none());
    }

    #[test]
    fn cancelling_many_keeps_the_heap_small() {
        let now = Instant::now();
        let mut timers = Timers::default();
        for i in 0..10_000u64 {
            let id = timers.insert(now + Duration::from_secs(i), ());
            timers.cancel(id);
        }
        assert_eq!(timers.len(), 0);
        assert!(
            timers.heap.len() <= 64,
            "heap kept {} dead entries",
            timers.heap.len()
        );
    }
}

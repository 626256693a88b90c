//! The loop's lists of entries to come back to: the ready queue, the connections holding
//! gathered output, the entries that closed this turn, and the listeners paused at the
//! connection cap.
//!
//! Each list holds [`Slot`]s only; the flags that keep an entry from being listed twice live
//! in the entry (`Connection::enqueue`, `list_for_flush`, the `Closed` state, a listener's
//! `paused`), so that listing is a push and nothing here searches.

use std::collections::VecDeque;

use crate::id::Slot;

#[derive(Default)]
pub(crate) struct Queues {
    /// Entries to dispatch this turn, each at most once (see the `queued` flags).
    ready: VecDeque<Slot>,
    /// Connections holding output that handlers wrote during the current callback or
    /// dispatch, to send before it ends (`Core::flush_gathered`), each listed once; UDP
    /// sockets whenever their send queue turns non-empty, so possibly more than once in a
    /// dispatch (a spare flush of an empty queue is one lookup).
    unflushed: Vec<Slot>,
    /// Entries that closed this turn, to remove at its end.
    closed: Vec<Slot>,
    /// Listeners waiting for a connection slot (`max_connections`).
    paused_listeners: Vec<Slot>,
}

impl Queues {
    /// Lists an entry to dispatch; the caller has checked it is not listed already.
    #[inline]
    pub(crate) fn push_ready(&mut self, slot: Slot) {
        self.ready.push_back(slot);
    }

    /// How many entries wait to be dispatched.
    #[inline]
    pub(crate) fn ready_len(&self) -> usize {
        self.ready.len()
    }

    /// The next entry to dispatch, first listed first.
    #[inline]
    pub(crate) fn pop_ready(&mut self) -> Option<Slot> {
        self.ready.pop_front()
    }

    /// Lists a connection whose handler gathered output; the caller has checked it is not
    /// listed already.
    #[inline]
    pub(crate) fn list_unflushed(&mut self, slot: Slot) {
        self.unflushed.push(slot);
    }

    #[inline]
    pub(crate) fn pop_unflushed(&mut self) -> Option<Slot> {
        self.unflushed.pop()
    }

    /// Lists an entry that finished, for removal at the end of the turn.
    pub(crate) fn list_closed(&mut self, slot: Slot) {
        self.closed.push(slot);
    }

    pub(crate) fn pop_closed(&mut self) -> Option<Slot> {
        self.closed.pop()
    }

    /// Lists a listener that stopped accepting at the connection cap.
    pub(crate) fn pause_listener(&mut self, slot: Slot) {
        self.paused_listeners.push(slot);
    }

    pub(crate) fn has_paused_listeners(&self) -> bool {
        !self.paused_listeners.is_empty()
    }

    /// Takes every paused listener off the list.
    pub(crate) fn take_paused_listeners(&mut self) -> Vec<Slot> {
        std::mem::take(&mut self.paused_listeners)
    }

    /// Whether the next poll must not block: entries wait to be dispatched or removed.
    pub(crate) fn has_work(&self) -> bool {
        !self.ready.is_empty() || !self.closed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(key: usize) -> Slot {
        Slot { key, generation: 1 }
    }

    #[test]
    fn ready_entries_are_dispatched_first_listed_first() {
        let mut queues = Queues::default();
        assert!(!queues.has_work());
        queues.push_ready(slot(2));
        queues.push_ready(slot(1));
        assert!(queues.has_work());
        assert_eq!(queues.ready_len(), 2);
        assert_eq!(queues.pop_ready(), Some(slot(2)));
        assert_eq!(queues.pop_ready(), Some(slot(1)));
        assert_eq!(queues.pop_ready(), None);
        assert!(!queues.has_work());
    }

    #[test]
    fn a_closed_entry_keeps_the_next_poll_from_blocking() {
        let mut queues = Queues::default();
        queues.list_closed(slot(4));
        assert!(queues.has_work());
        assert_eq!(queues.pop_closed(), Some(slot(4)));
        assert!(!queues.has_work());
    }

    #[test]
    fn paused_listeners_are_taken_all_at_once() {
        let mut queues = Queues::default();
        queues.pause_listener(slot(0));
        queues.pause_listener(slot(1));
        assert!(queues.has_paused_listeners());
        assert_eq!(queues.take_paused_listeners(), vec![slot(0), slot(1)]);
        assert!(!queues.has_paused_listeners());
    }
}

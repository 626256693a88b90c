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
    /// dispatch, to send before it ends (`Core::flush_gathered`), each listed once.
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

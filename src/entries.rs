//! The entries part of the loop: the slab of listeners, connections, UDP sockets and
//! watches, the generation counter that makes their [`Slot`]s unique, and the `mio::Registry`
//! they are registered with.
//!
//! A slab key is an entry's `mio::Token`; a [`Slot`] is a key plus a generation, and every
//! lookup by slot checks both, so that an id that outlived its entry misses instead of
//! reaching a new entry that reused the key. Only this file adds entries to the slab or
//! takes them out; other files change an entry through the typed accessors (`conn`,
//! `listener`, `udp`, `watch`), and register or deregister its source here, so that the
//! registry and the slab cannot disagree about who owns a token.

use std::io;

use mio::event::Source;
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::connection::Connection;
use crate::id::Slot;
use crate::listener::Listener;
use crate::state::State;
use crate::udp::Udp;
use crate::watch::Watch;

/// What the slab holds: the key of an entry is its `mio::Token`.
// Connections are nearly every entry, so they stay inline: boxing them would cost an
// allocation per connection and a pointer chase per event to shrink the rare listener,
// UDP socket and watch entries.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Entry {
    Listener(Listener),
    Conn(Connection),
    Udp(Udp),
    Watch(Watch),
}

/// The slab, its generations and the registry (see the module docs).
pub(crate) struct Entries {
    registry: Registry,
    slab: Slab<Entry>,
    next_generation: u32,
}

impl Entries {
    pub(crate) fn new(registry: Registry) -> Entries {
        Entries {
            registry,
            slab: Slab::new(),
            next_generation: 0,
        }
    }

    /// The slot the next entry will get: register its source under `Token(slot.key)`, then
    /// [`insert`](Entries::insert) it, with nothing inserted in between.
    pub(crate) fn next_slot(&mut self) -> Slot {
        self.next_generation = self.next_generation.wrapping_add(1);
        Slot {
            key: self.slab.vacant_key(),
            generation: self.next_generation,
        }
    }

    /// Registers the source of the entry that will get `slot`.
    pub(crate) fn register<S: Source + ?Sized>(
        &self,
        source: &mut S,
        slot: Slot,
        interest: Interest,
    ) -> io::Result<()> {
        self.registry.register(source, Token(slot.key), interest)
    }

    /// Changes the readiness a UDP socket is registered for (`EPOLL_CTL_MOD`); nothing for a
    /// slot that is not one.
    pub(crate) fn reregister_udp(&mut self, slot: Slot, interest: Interest) -> io::Result<()> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Udp(udp)) if udp.slot == slot => {
                self.registry
                    .reregister(&mut udp.socket, Token(slot.key), interest)
            }
            _ => Ok(()),
        }
    }

    /// Deregisters the source of an entry taken out of the slab.
    pub(crate) fn deregister<S: Source + ?Sized>(&self, source: &mut S) -> io::Result<()> {
        self.registry.deregister(source)
    }

    /// Puts the entry of `slot` in the slab, at the key [`next_slot`](Entries::next_slot)
    /// gave it.
    pub(crate) fn insert(&mut self, slot: Slot, entry: Entry) {
        let key = self.slab.insert(entry);
        debug_assert_eq!(key, slot.key, "an entry was inserted after next_slot");
    }

    /// The entry at `key`, whoever it is (a readiness event knows only the key).
    #[inline]
    pub(crate) fn get(&self, key: usize) -> Option<&Entry> {
        self.slab.get(key)
    }

    /// The entry at `key`, whoever it is (a readiness event knows only the key).
    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Entry> {
        self.slab.get_mut(key)
    }

    /// The connection `slot` names, if it is still the one living there.
    #[inline]
    pub(crate) fn conn(&mut self, slot: Slot) -> Option<&mut Connection> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Conn(conn)) if conn.slot() == slot => Some(conn),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn conn_ref(&self, slot: Slot) -> Option<&Connection> {
        match self.slab.get(slot.key) {
            Some(Entry::Conn(conn)) if conn.slot() == slot => Some(conn),
            _ => None,
        }
    }

    pub(crate) fn listener(&mut self, slot: Slot) -> Option<&mut Listener> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Listener(l)) if l.slot.generation == slot.generation => Some(l),
            _ => None,
        }
    }

    pub(crate) fn udp(&mut self, slot: Slot) -> Option<&mut Udp> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Udp(udp)) if udp.slot == slot => Some(udp),
            _ => None,
        }
    }

    pub(crate) fn udp_ref(&self, slot: Slot) -> Option<&Udp> {
        match self.slab.get(slot.key) {
            Some(Entry::Udp(udp)) if udp.slot == slot => Some(udp),
            _ => None,
        }
    }

    pub(crate) fn watch(&mut self, slot: Slot) -> Option<&mut Watch> {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Watch(watch)) if watch.slot == slot => Some(watch),
            _ => None,
        }
    }

    /// Sets the entry's `queued` flag; returns whether it was down (the entry must then be
    /// put in the ready queue), `false` also if `slot` names no live entry.
    #[inline]
    pub(crate) fn mark_queued(&mut self, slot: Slot) -> bool {
        match self.slab.get_mut(slot.key) {
            Some(Entry::Conn(c)) if c.slot() == slot => c.enqueue(),
            Some(Entry::Listener(l)) if l.slot == slot => !std::mem::replace(&mut l.queued, true),
            Some(Entry::Udp(u)) if u.slot == slot => !std::mem::replace(&mut u.queued, true),
            Some(Entry::Watch(w)) if w.slot == slot => !std::mem::replace(&mut w.queued, true),
            _ => false,
        }
    }

    /// Takes a connection out of the slab (its source is still registered).
    pub(crate) fn take_conn(&mut self, slot: Slot) -> Option<Connection> {
        self.conn(slot)?;
        match self.slab.remove(slot.key) {
            Entry::Conn(conn) => Some(conn),
            _ => None,
        }
    }

    /// Takes the listener at `key` out of the slab (its source is still registered).
    pub(crate) fn take_listener(&mut self, key: usize) -> Option<Listener> {
        match self.slab.get(key) {
            Some(Entry::Listener(_)) => match self.slab.remove(key) {
                Entry::Listener(listener) => Some(listener),
                _ => None,
            },
            _ => None,
        }
    }

    /// Takes a UDP socket out of the slab (its source is still registered).
    pub(crate) fn take_udp(&mut self, slot: Slot) -> Option<Udp> {
        self.udp(slot)?;
        match self.slab.remove(slot.key) {
            Entry::Udp(udp) => Some(udp),
            _ => None,
        }
    }

    /// Takes a watch out of the slab (its source is still registered).
    pub(crate) fn take_watch(&mut self, slot: Slot) -> Option<Watch> {
        self.watch(slot)?;
        match self.slab.remove(slot.key) {
            Entry::Watch(watch) => Some(watch),
            _ => None,
        }
    }

    /// How many entries there are.
    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Whether every entry left is a watch (and there is at least one).
    pub(crate) fn only_watches(&self) -> bool {
        !self.slab.is_empty() && self.slab.iter().all(|(_, e)| matches!(e, Entry::Watch(_)))
    }

    /// The listeners, in key order.
    pub(crate) fn listeners(&self) -> impl Iterator<Item = &Listener> {
        self.slab.iter().filter_map(|(_, e)| match e {
            Entry::Listener(l) => Some(l),
            _ => None,
        })
    }

    /// The keys of the listeners `keep` accepts.
    pub(crate) fn listener_keys(&self, keep: impl Fn(&Listener) -> bool) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Listener(l) if keep(l)))
            .map(|(k, _)| k)
            .collect()
    }

    /// The connections not yet closed.
    pub(crate) fn conn_slots(&self) -> Vec<Slot> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Conn(c) if c.state() != State::Closed => Some(c.slot()),
                _ => None,
            })
            .collect()
    }

    /// The UDP sockets not yet finished.
    pub(crate) fn udp_slots(&self) -> Vec<Slot> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Udp(u) if !u.finished => Some(u.slot),
                _ => None,
            })
            .collect()
    }

    /// Every watch.
    pub(crate) fn watch_slots(&self) -> Vec<Slot> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Watch(watch) => Some(watch.slot),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::net::UdpSocket;

    fn udp_entry(entries: &mut Entries) -> Slot {
        let mut socket = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let local = socket.local_addr().unwrap();
        let slot = entries.next_slot();
        entries
            .register(&mut socket, slot, Interest::READABLE)
            .unwrap();
        entries.insert(slot, Entry::Udp(Udp::new(slot, socket, local)));
        slot
    }

    #[test]
    fn a_slot_that_outlived_its_entry_misses_the_entry_that_reused_its_key() {
        let poll = mio::Poll::new().unwrap();
        let mut entries = Entries::new(poll.registry().try_clone().unwrap());
        let old = udp_entry(&mut entries);
        let mut taken = entries.take_udp(old).expect("the entry is there");
        entries.deregister(&mut taken.socket).unwrap();
        assert!(entries.is_empty());

        let new = udp_entry(&mut entries);
        assert_eq!(new.key, old.key, "the slab reuses the key");
        assert_ne!(new.generation, old.generation);
        assert!(entries.udp_ref(old).is_none());
        assert!(entries.take_udp(old).is_none());
        assert!(!entries.mark_queued(old));
        assert!(entries.udp_ref(new).is_some());
    }

    #[test]
    fn an_entry_is_marked_queued_once() {
        let poll = mio::Poll::new().unwrap();
        let mut entries = Entries::new(poll.registry().try_clone().unwrap());
        let slot = udp_entry(&mut entries);
        assert!(entries.mark_queued(slot));
        assert!(!entries.mark_queued(slot));
        assert_eq!(entries.udp_slots(), vec![slot]);
        assert!(
            entries.conn_ref(slot).is_none(),
            "a UDP slot names no connection"
        );
    }
}

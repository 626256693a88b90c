//! Public identities of connections and timers.
//!
//! A slab reuses keys: once connection 7 is removed, the next accepted connection may get key 7
//! too. A bare key held by a timer, a chat room or another thread would then silently point at a
//! stranger. So every public id carries the *generation* of the slot it names, and a lookup
//! succeeds only when both match.

use std::fmt;

/// A slab key together with the generation of the entry that lived there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub(crate) key: usize,
    pub(crate) generation: u32,
}

/// Identifies one connection for its whole life, and never another one.
///
/// Use it to write to another connection ([`Context::write_to`](crate::Context::write_to)),
/// or to remember peers in shared state (a chat room). Once the connection is closed its id
/// stops matching anything, even after the reactor reuses the connection's slab key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Slot);

impl ConnId {
    /// The slab key, which is also the `mio::Token` of the connection's socket.
    ///
    /// Useful in logs; two live connections never share a key, but a key is reused after close.
    pub fn key(&self) -> usize {
        self.0.key
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}.{})", self.0.key, self.0.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.0.key, self.0.generation)
    }
}

/// Identifies one timer set with [`Context::set_timer`](crate::Context::set_timer).
///
/// It is handed back to [`Handler::on_timer`](crate::Handler::on_timer) when the timer fires
/// and can be passed to [`Context::cancel_timer`](crate::Context::cancel_timer) before that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

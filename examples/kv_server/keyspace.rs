//! The keyspace: keys to values with an optional expiry time, Redis's one database.
//!
//! Values are shared immutable bytes (`bytes::Bytes`): a reply that is too large to copy
//! into a connection's output at once holds a reference to the value and sends it in pieces
//! as the client reads, and a `SET` that replaces the value meanwhile does not disturb it.
//! A counter that `INCR` made is kept as an integer, as Redis keeps its `int` encoding.
//!
//! Expiry is lazy, as in Redis (`expireIfNeeded` in db.c): a key past its time is removed
//! when a command looks it up; until then it is still counted by `DBSIZE`. The keys that
//! have an expiry are also kept in their own index, which the active cycle samples
//! (`expiry.rs`).
//!
//! Hashing: std's `RandomState`, SipHash-1-3 with a random key per process, the same
//! family of keyed hash Redis uses for its dictionaries (siphash), and for the same reason:
//! keys come from clients, and an unkeyed fast hash lets a client pick keys that collide
//! (hash flooding).

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexSet;

/// A stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Bytes as a client sent them.
    Bytes(Bytes),
    /// A counter: what `INCR` and its kind leave (Redis's `OBJ_ENCODING_INT`).
    Integer(i64),
}

/// What [`Keyspace::peek`] found.
#[derive(Debug)]
pub enum Lookup<'a> {
    Missing,
    /// Past its expiry, not removed yet.
    Expired,
    /// The value and its expiry (Unix ms), if any.
    Live(&'a Value, Option<i64>),
}

/// A key's value and when it expires.
#[derive(Debug)]
struct Entry {
    value: Value,
    /// Unix time in milliseconds, as Redis keeps it.
    expires_at: Option<i64>,
}

/// The map and the index of keys with an expiry.
#[derive(Debug, Default)]
pub struct Keyspace {
    entries: HashMap<Bytes, Entry>,
    /// The keys that have an expiry, for the active cycle to sample by position.
    volatile: IndexSet<Bytes>,
}

impl Keyspace {
    /// Keys, including those past their expiry that nothing has removed yet (`DBSIZE`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Keys that have an expiry.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Removes every key (`FLUSHALL`).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.volatile.clear();
    }

    /// What a look-up found, without changing anything: the caller removes an expired key.
    /// One hash and probe for the common case, where a `&mut` look-up that may remove
    /// would need two (the borrow checker cannot return a borrow from one branch and
    /// mutate in the other).
    pub fn peek(&self, key: &[u8], now: i64) -> Lookup<'_> {
        match self.entries.get(key) {
            None => Lookup::Missing,
            Some(entry) if entry.expires_at.is_some_and(|at| at <= now) => Lookup::Expired,
            Some(entry) => Lookup::Live(&entry.value, entry.expires_at),
        }
    }

    /// Removes `key` if it is past its expiry at `now` (Unix ms); whether it is (still) there.
    fn live(&mut self, key: &[u8], now: i64) -> bool {
        match self.peek(key, now) {
            Lookup::Missing => false,
            Lookup::Expired => {
                self.remove(key);
                false
            }
            Lookup::Live(..) => true,
        }
    }

    /// A copy of `key`'s value (its bytes shared), unless it is missing or expired (then
    /// removed).
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<Value> {
        match self.peek(key, now) {
            Lookup::Missing => None,
            Lookup::Expired => {
                self.remove(key);
                None
            }
            Lookup::Live(value, _) => Some(value.clone()),
        }
    }

    /// The value of `key` to change in place, unless it is missing or expired (then
    /// removed). Its expiry stays.
    pub fn get_mut(&mut self, key: &[u8], now: i64) -> Option<&mut Value> {
        if !self.live(key, now) {
            return None;
        }
        self.entries.get_mut(key).map(|entry| &mut entry.value)
    }

    /// Whether `key` exists (and has not expired).
    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.live(key, now)
    }

    /// The expiry of `key`: `None` if it is missing, `Some(None)` if it has none.
    pub fn expiry(&mut self, key: &[u8], now: i64) -> Option<Option<i64>> {
        match self.peek(key, now) {
            Lookup::Missing => None,
            Lookup::Expired => {
                self.remove(key);
                None
            }
            Lookup::Live(_, expires_at) => Some(expires_at),
        }
    }

    /// Sets `key` to `value`; the expiry becomes `expires_at`, or stays as it was with
    /// `keep_ttl` (`SET ... KEEPTTL`).
    pub fn set(&mut self, key: &[u8], value: Value, expires_at: Option<i64>, keep_ttl: bool) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.value = value;
            if !keep_ttl && entry.expires_at != expires_at {
                entry.expires_at = expires_at;
                Self::index(&mut self.volatile, key, expires_at.is_some());
            }
            return;
        }
        let key = Bytes::copy_from_slice(key);
        let expires_at = if keep_ttl { None } else { expires_at };
        if expires_at.is_some() {
            self.volatile.insert(key.clone());
        }
        self.entries.insert(key, Entry { value, expires_at });
    }

    /// Gives an existing key an expiry (or none: `PERSIST`). Returns whether it exists.
    pub fn set_expiry(&mut self, key: &[u8], expires_at: Option<i64>) -> bool {
        match self.entries.get_mut(key) {
            Some(entry) => {
                entry.expires_at = expires_at;
                Self::index(&mut self.volatile, key, expires_at.is_some());
                true
            }
            None => false,
        }
    }

    fn index(volatile: &mut IndexSet<Bytes>, key: &[u8], has_expiry: bool) {
        if has_expiry {
            if !volatile.contains(key) {
                volatile.insert(Bytes::copy_from_slice(key));
            }
        } else {
            volatile.swap_remove(key);
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let entry = self.entries.remove(key)?;
        if entry.expires_at.is_some() {
            self.volatile.swap_remove(key);
        }
        Some(entry.value)
    }

    /// Looks at the key with an expiry at position `at` of the index (which must be below
    /// [`volatile_len`](Keyspace::volatile_len)) and removes it if it has expired at `now`:
    /// then the last key of the index moves to `at`. Returns whether it was removed.
    pub fn expire_at_position(&mut self, at: usize, now: i64) -> bool {
        let key = &self.volatile[at];
        let expired = self
            .entries
            .get(key)
            .is_some_and(|entry| entry.expires_at.is_some_and(|when| when <= now));
        if expired {
            let key = self
                .volatile
                .swap_remove_index(at)
                .expect("position in range");
            self.entries.remove(&key);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        Value::Bytes(Bytes::copy_from_slice(text.as_bytes()))
    }

    #[test]
    fn an_expired_key_counts_until_it_is_looked_up() {
        let mut keys = Keyspace::default();
        keys.set(b"k", value("v"), Some(100), false);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys.get(b"k", 99), Some(value("v")));
        assert_eq!(keys.get(b"k", 100), None);
        assert_eq!(keys.len(), 0);
        assert_eq!(keys.volatile_len(), 0);
    }

    #[test]
    fn keep_ttl_keeps_the_expiry_and_set_clears_it() {
        let mut keys = Keyspace::default();
        keys.set(b"k", value("a"), Some(500), false);
        keys.set(b"k", value("b"), None, true);
        assert_eq!(keys.expiry(b"k", 0), Some(Some(500)));
        keys.set(b"k", value("c"), None, false);
        assert_eq!(keys.expiry(b"k", 0), Some(None));
        assert_eq!(keys.volatile_len(), 0);
    }
}

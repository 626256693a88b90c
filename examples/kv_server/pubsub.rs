//! Publish/subscribe: who listens to which channel or pattern, the messages they get, and
//! Redis's glob rules for patterns.
//!
//! The server keeps, for each channel and each pattern, the connections subscribed to it;
//! each connection keeps its own channels and patterns (`Subscriptions`), in the order it
//! subscribed, for the counts in the replies and for unsubscribing from everything at once.
//! A message is framed once and written to each receiver's connection
//! ([`Context::write_to`](mio_reactor::Context::write_to)); a receiver that does not read
//! is held to the pub/sub output limits (`client.rs`), not the publisher.

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexSet;
use mio_reactor::ConnId;

use crate::resp::reply;

/// Who listens where, for one server.
#[derive(Debug, Default)]
pub struct Registry {
    channels: HashMap<Bytes, Vec<ConnId>>,
    /// Patterns in the order first subscribed, as Redis keeps its `pubsub_patterns`.
    patterns: indexmap::IndexMap<Bytes, Vec<ConnId>>,
}

/// One connection's channels and patterns.
#[derive(Debug, Default)]
pub struct Subscriptions {
    pub channels: IndexSet<Bytes>,
    pub patterns: IndexSet<Bytes>,
}

impl Subscriptions {
    /// Channels and patterns together: the count every (un)subscribe reply carries.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// Which map a (un)subscription is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
}

impl Kind {
    fn names(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Kind::Channel => (b"subscribe", b"unsubscribe"),
            Kind::Pattern => (b"psubscribe", b"punsubscribe"),
        }
    }
}

/// A message framed for each receiver: which connection, and the bytes to write to it.
#[derive(Debug, Default)]
pub struct Deliveries {
    pub frames: Vec<u8>,
    pub targets: Vec<(ConnId, usize, usize)>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut dyn SubscriberMap {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }

    /// Subscribes `id` to each name (channels or patterns) and writes the replies.
    pub fn subscribe<'a>(
        &mut self,
        kind: Kind,
        id: ConnId,
        own: &mut Subscriptions,
        names: impl Iterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
    ) {
        for name in names {
            let mine = own.of(kind);
            if !mine.contains(name) {
                let name = Bytes::copy_from_slice(name);
                mine.insert(name.clone());
                self.map(kind).add(name, id);
            }
            write_event(out, kind.names().0, Some(name), own.count());
        }
    }

    /// Unsubscribes `id` from each name, or from all of its kind when there are none, and
    /// writes the replies (one with a null name if it had none, as Redis does).
    pub fn unsubscribe(
        &mut self,
        kind: Kind,
        id: ConnId,
        own: &mut Subscriptions,
        names: Vec<Bytes>,
        out: &mut Vec<u8>,
    ) {
        let names = if names.is_empty() {
            own.of(kind).iter().cloned().collect()
        } else {
            names
        };
        if names.is_empty() {
            write_event(out, kind.names().1, None, own.count());
        }
        for name in names {
            if own.of(kind).shift_remove(&name) {
                self.map(kind).remove(&name, id);
            }
            write_event(out, kind.names().1, Some(&name), own.count());
        }
    }

    /// Forgets a connection that closed.
    pub fn forget(&mut self, id: ConnId, own: &Subscriptions) {
        for channel in &own.channels {
            SubscriberMap::remove(&mut self.channels, channel, id);
        }
        for pattern in &own.patterns {
            SubscriberMap::remove(&mut self.patterns, pattern, id);
        }
    }

    /// Forgets a connection whose subscriptions this side cannot see (another client's, as
    /// one evicted): every channel and pattern is searched, so only for rare events. Its
    /// `forget` at close then finds nothing left to remove.
    pub fn forget_everywhere(&mut self, id: ConnId) {
        self.channels.retain(|_, ids| {
            ids.retain(|&other| other != id);
            !ids.is_empty()
        });
        self.patterns.retain(|_, ids| {
            ids.retain(|&other| other != id);
            !ids.is_empty()
        });
    }

    /// Frames `message` for everyone subscribed to `channel` or to a pattern that matches
    /// it (one frame per pattern matched, as Redis sends).
    pub fn deliveries(&self, channel: &[u8], message: &[u8]) -> Deliveries {
        let mut deliveries = Deliveries::default();
        if let Some(ids) = self.channels.get(channel) {
            let start = deliveries.frames.len();
            reply::array(&mut deliveries.frames, 3);
            reply::bulk(&mut deliveries.frames, b"message");
            reply::bulk(&mut deliveries.frames, channel);
            reply::bulk(&mut deliveries.frames, message);
            let end = deliveries.frames.len();
            deliveries
                .targets
                .extend(ids.iter().map(|&id| (id, start, end)));
        }
        for (pattern, ids) in &self.patterns {
            if !glob_match(pattern, channel) {
                continue;
            }
            let start = deliveries.frames.len();
            reply::array(&mut deliveries.frames, 4);
            reply::bulk(&mut deliveries.frames, b"pmessage");
            reply::bulk(&mut deliveries.frames, pattern);
            reply::bulk(&mut deliveries.frames, channel);
            reply::bulk(&mut deliveries.frames, message);
            let end = deliveries.frames.len();
            deliveries
                .targets
                .extend(ids.iter().map(|&id| (id, start, end)));
        }
        deliveries
    }
}

impl Subscriptions {
    fn of(&mut self, kind: Kind) -> &mut IndexSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
        }
    }
}

/// A map from names to subscribers, whichever collection holds it.
trait SubscriberMap {
    fn add(&mut self, name: Bytes, id: ConnId);
    fn remove(&mut self, name: &[u8], id: ConnId);
}

impl SubscriberMap for HashMap<Bytes, Vec<ConnId>> {
    fn add(&mut self, name: Bytes, id: ConnId) {
        self.entry(name).or_default().push(id);
    }
    fn remove(&mut self, name: &[u8], id: ConnId) {
        if let Some(ids) = self.get_mut(name) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                HashMap::remove(self, name);
            }
        }
    }
}

impl SubscriberMap for indexmap::IndexMap<Bytes, Vec<ConnId>> {
    fn add(&mut self, name: Bytes, id: ConnId) {
        self.entry(name).or_default().push(id);
    }
    fn remove(&mut self, name: &[u8], id: ConnId) {
        if let Some(ids) = self.get_mut(name) {
            ids.retain(|&other| other != id);
            if ids.is_empty() {
                self.shift_remove(name);
            }
        }
    }
}

/// `*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n`: a (un)subscription's reply.
fn write_event(out: &mut Vec<u8>, event: &[u8], name: Option<&[u8]>, count: usize) {
    reply::array(out, 3);
    reply::bulk(out, event);
    match name {
        Some(name) => reply::bulk(out, name),
        None => out.extend_from_slice(reply::NULL),
    }
    reply::integer(out, count as i64);
}

/// Whether `text` matches the glob `pattern` as Redis's `stringmatchlen` (util.c) decides:
/// `*` any run of bytes, `?` one byte, `[abc]`, `[^abc]` and `[a-z]` classes (an
/// unterminated class ends at the end of the pattern), `\` quotes the next byte.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: its pattern position and the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
            continue;
        }
        if let Some(next) = match_one(pattern, p, text[t]) {
            p = next;
            t += 1;
            continue;
        }
        match star {
            Some((star_p, star_t)) => {
                star = Some((star_p, star_t + 1));
                p = star_p + 1;
                t = star_t + 1;
            }
            None => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&b| b == b'*')
}

/// If the single-byte token at `pattern[p..]` matches `byte`, where the next token starts.
fn match_one(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern.get(p)? {
        b'?' => Some(p + 1),
        b'[' => match_class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        &literal => (literal == byte).then_some(p + 1),
    }
}

/// A `[...]` class whose body starts at `pattern[p..]`.
fn match_class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(p) {
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                p += 1;
                matched |= pattern[p] == byte;
            }
            Some(&low) if p + 2 < pattern.len() && pattern[p + 1] == b'-' => {
                let high = pattern[p + 2];
                let (low, high) = if low > high { (high, low) } else { (low, high) };
                matched |= (low..=high).contains(&byte);
                p += 2;
            }
            Some(&literal) => matched |= literal == byte,
        }
        p += 1;
    }
    (matched != negated).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_as_redis_patterns_do() {
        let cases: [(&str, &str, bool); 12] = [
            ("news.*", "news.art", true),
            ("news.*", "news", false),
            ("h?llo", "hello", true),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("*a*b", "xaxxb", true),
            ("*", "", true),
            ("a[bc", "ab", true),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern.as_bytes(), text.as_bytes()),
                expected,
                "{pattern} ~ {text}"
            );
        }
    }
}

//! A connection's buffered output: bytes the handler wrote that the kernel has not taken yet.
//!
//! It holds two kinds of bytes, oldest first: what the kernel refused (a partial write), and
//! what a handler wrote during the current callback, gathered here to leave in one system
//! call when the callback returns (see `transport.rs`). The buffer is a
//! `Vec` plus a read offset, so consuming from the front is O(1); the unread part is moved
//! to the front only when that is cheap relative to what was sent. An empty buffer frees its
//! memory, so an idle connection holds none.

/// Bytes waiting to be written to one socket, oldest first.
#[derive(Debug, Default)]
pub(crate) struct OutputBuffer {
    bytes: Vec<u8>,
    /// Bytes before this offset were already written.
    start: usize,
}

impl OutputBuffer {
    /// Number of bytes waiting.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The waiting bytes, to hand to `write`.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Queues `data` behind what is already waiting.
    pub(crate) fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.len() {
            // More has been sent than is left: moving the rest to the front is cheaper than
            // letting the vector grow forever under a steady trickle.
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Marks `n` bytes from the front as written.
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.len());
        self.start += n.min(self.len());
        if self.is_empty() {
            self.clear();
        }
    }

    /// Drops everything and releases the memory.
    pub(crate) fn clear(&mut self) {
        self.bytes = Vec::new();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_bytes_in_order_across_partial_consumes() {
        let mut out = OutputBuffer::default();
        out.push(b"hello ");
        out.push(b"world");
        out.consume(3);
        assert_eq!(out.as_slice(), b"lo world");
        out.push(b"!");
        out.consume(2);
        assert_eq!(out.as_slice(), b" world!");
        assert_eq!(out.len(), 7);
    }

    #[test]
    fn compacts_when_most_was_sent() {
        let mut out = OutputBuffer::default();
        out.push(&[1; 100]);
        out.consume(90);
        out.push(&[2; 5]);
        assert_eq!(out.start, 0, "the sent prefix was dropped");
        assert_eq!(out.as_slice(), [[1; 10].as_slice(), &[2; 5]].concat());
    }

    #[test]
    fn releases_memory_when_drained() {
        let mut out = OutputBuffer::default();
        out.push(&[7; 4096]);
        out.consume(4096);
        assert!(out.is_empty());
        assert_eq!(out.bytes.capacity(), 0);
    }

    #[test]
    fn an_empty_buffer_is_empty() {
        let out = OutputBuffer::default();
        assert!(out.is_empty());
        assert_eq!(out.as_slice(), b"");
    }
}

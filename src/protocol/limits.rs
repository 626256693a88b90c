//! [`Limits`]: how large a header and a content a peer may announce.

use crate::protocol::LEN_PREFIX;

/// Upper bounds on what a peer may announce, enforced by the
/// [`Decoder`](crate::protocol::Decoder) before it waits for (and so before the caller
/// buffers) the bytes.
///
/// # Examples
///
/// ```
/// use mio_reactor::protocol::Limits;
///
/// let limits = Limits::default();
/// assert_eq!(limits.max_frame(), 2 + 16 * 1024 + 1024 * 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted JSON header, in bytes. Default 16 KiB. Values above `u16::MAX` have
    /// no effect, since the prefix cannot announce more.
    pub max_header: usize,
    /// Largest accepted content, in bytes. Default 1 MiB.
    pub max_content: usize,
}

impl Limits {
    /// Default [`max_header`](Limits::max_header): 16 KiB.
    pub const DEFAULT_MAX_HEADER: usize = 16 * 1024;
    /// Default [`max_content`](Limits::max_content): 1 MiB.
    pub const DEFAULT_MAX_CONTENT: usize = 1024 * 1024;

    /// The largest frame these limits admit: prefix + header + content.
    ///
    /// A reactor can use this as its cap on unconsumed input: a peer that buffers more than
    /// this without completing a frame is misbehaving. Saturates instead of overflowing.
    pub fn max_frame(&self) -> usize {
        LEN_PREFIX
            .saturating_add(self.max_header)
            .saturating_add(self.max_content)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header: Self::DEFAULT_MAX_HEADER,
            max_content: Self::DEFAULT_MAX_CONTENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_frame_saturates() {
        let huge = Limits {
            max_header: usize::MAX,
            max_content: usize::MAX,
        };
        assert_eq!(huge.max_frame(), usize::MAX);
    }
}

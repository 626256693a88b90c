//! Generic receive offload for UDP (`UDP_GRO`, Linux 5.0; `udp(7)`): with it on, one
//! received message may carry several datagrams of one sender, back to back, all of one size
//! but the last (which may be shorter), with that size in a control message (`SOL_UDP`,
//! `UDP_GRO`). The kernel coalesces them in its GRO engine, or keeps whole the message a
//! sender built with `UDP_SEGMENT` (GSO) when it stays on the host (loopback), so one slot
//! of a [`RecvBatch`](super::recv_batch::RecvBatch) then holds up to 64 datagrams: fewer
//! system calls, and fewer per-packet trips through the stack. QUIC stacks (quinn-udp,
//! msquic) receive the same way.
//!
//! Only a receive that reads control messages can split such a message: a socket with GRO
//! on must never be read with a plain `recvfrom(2)`, which would hand the coalesced bytes as
//! one datagram. So GRO is turned on only where datagrams are received in batches
//! (`recvmmsg` with control space); if the kernel later refuses `recvmmsg`, such a socket is
//! read one message at a time with `recvmsg`, which still carries the segment size (turning
//! GRO off then would not split the messages already queued coalesced).

use std::ops::Range;

use mio::net::UdpSocket;

/// Whether one socket has GRO on.
#[derive(Debug, Default)]
pub(crate) struct Gro {
    on: bool,
}

impl Gro {
    /// Turns GRO on for `socket`; off (and logged at debug) where the kernel lacks it
    /// (`ENOPROTOOPT` before Linux 5.0) or the platform has no such option.
    pub(crate) fn enable(socket: &UdpSocket) -> Gro {
        match set_on(socket) {
            Ok(()) => Gro { on: true },
            Err(err) => {
                log::debug!("UDP_GRO: {err}; datagrams are received one per message");
                Gro { on: false }
            }
        }
    }

    /// Whether received messages may hold many datagrams.
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_on(socket: &UdpSocket) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::UdpGroSegment};
    Ok(setsockopt(socket, UdpGroSegment, &true)?)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_on(_: &UdpSocket) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

/// The datagrams of one received message: where each lies in the bytes copied, and how many
/// were lost to truncation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segments {
    /// Bytes of whole datagrams at the start of the message.
    whole: usize,
    /// Each datagram's length but the last's.
    size: usize,
    /// Datagrams of the message not delivered: cut by a truncation.
    pub(crate) lost: usize,
}

impl Segments {
    /// Splits a message of `total` bytes, of which `copied` fit the slot, coalesced by GRO
    /// into datagrams of `segment_size` bytes (`None`: one datagram). A truncated message
    /// keeps its whole datagrams; the cut one and those after it are lost. (With 64 KiB
    /// slots a truncation needs a kernel that coalesces more than UDP's 16-bit length, as
    /// none does today, or a datagram larger than UDP carries.)
    pub(crate) fn split(copied: usize, total: usize, segment_size: Option<usize>) -> Segments {
        let size = match segment_size {
            Some(size) if size > 0 && size < total => size,
            _ => total.max(1),
        };
        let whole = if copied < total {
            copied / size * size
        } else {
            total
        };
        let count = |bytes: usize| bytes.div_ceil(size);
        Segments {
            whole,
            size,
            lost: count(total) - count(whole),
        }
    }

    /// The byte ranges of the datagrams delivered, in order.
    pub(crate) fn ranges(&self) -> impl Iterator<Item = Range<usize>> {
        let (whole, size) = (self.whole, self.size);
        // An empty datagram is a datagram too: one empty range, unless it was lost.
        let count = match whole {
            0 => usize::from(self.lost == 0),
            _ => whole.div_ceil(size),
        };
        (0..count).map(move |i| i * size..whole.min((i + 1) * size))
    }

    /// A message none of whose datagrams can be delivered (no sender, or coalesced with its
    /// segment size lost): one lost, since how many it held is unknown.
    pub(crate) fn none() -> Segments {
        Segments {
            whole: 0,
            size: 1,
            lost: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ranges as (start, end) pairs.
    fn ranges(segments: Segments) -> Vec<(usize, usize)> {
        segments.ranges().map(|r| (r.start, r.end)).collect()
    }

    #[test]
    fn a_message_without_a_segment_size_is_one_datagram() {
        let segments = Segments::split(1_000, 1_000, None);
        assert_eq!((ranges(segments), segments.lost), (vec![(0, 1_000)], 0));
    }

    #[test]
    fn an_empty_datagram_is_still_one_datagram() {
        let segments = Segments::split(0, 0, None);
        assert_eq!((ranges(segments), segments.lost), (vec![(0, 0)], 0));
    }

    #[test]
    fn a_coalesced_message_splits_at_the_segment_size_and_the_last_may_be_shorter() {
        let segments = Segments::split(10_500, 10_500, Some(1_000));
        let expected: Vec<(usize, usize)> = (0..10)
            .map(|i| (i * 1_000, (i + 1) * 1_000))
            .chain([(10_000, 10_500)])
            .collect();
        assert_eq!((ranges(segments), segments.lost), (expected, 0));
    }

    #[test]
    fn a_segment_size_as_large_as_the_message_is_one_datagram() {
        let segments = Segments::split(1_000, 1_000, Some(1_000));
        assert_eq!(ranges(segments), vec![(0, 1_000)]);
    }

    #[test]
    fn a_truncated_coalesced_message_keeps_its_whole_datagrams_and_counts_the_rest_lost() {
        // 70 datagrams of 1,000 bytes, 65,536 copied: 65 whole, the 66th cut, 4 more after.
        let segments = Segments::split(65_536, 70_000, Some(1_000));
        assert_eq!(ranges(segments).len(), 65);
        assert_eq!(segments.ranges().last(), Some(64_000..65_000));
        assert_eq!(segments.lost, 5);
    }

    #[test]
    fn a_truncated_single_datagram_is_lost_whole() {
        let segments = Segments::split(65_536, 70_000, None);
        assert_eq!((ranges(segments).len(), segments.lost), (0, 1));
    }
}

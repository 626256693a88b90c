//! Segmentation offload on send (UDP GSO, Linux 4.18+, `udp(7)` `UDP_SEGMENT`): several
//! datagrams to one destination leave as one message, which the kernel splits into
//! datagrams of the *segment size* (the last may be shorter), so the stack is walked once
//! per message instead of once per datagram.
//!
//! This file holds the rules for grouping queued datagrams into such messages, as a pure
//! function ([`plan`]), and the segment size each socket is set to ([`SocketGso`]). The
//! rules are the kernel's (`udp_send_skb`, `__udp_gso_segment`), as quinn-udp also follows
//! them:
//! - every datagram of a message but the last is exactly the segment size; the last may be
//!   shorter, never longer (a shorter datagram therefore ends its message);
//! - at most [`MAX_SEGMENTS`] datagrams (`UDP_MAX_SEGMENTS`) per message;
//! - a message's payload within one IP datagram's: [`max_payload`];
//! - an empty datagram is a message of its own (as the last segment it would vanish).
//!
//! Datagrams to different destinations interleave in a queue (the replies to one received
//! batch). A message gathers one destination's datagrams across the others, and each
//! destination's datagrams keep their order (UDP promises none, but a peer that sent in
//! order gets its replies in order): a datagram only ever joins its destination's *last*
//! message, and messages go out in the order of their first datagram. Destinations keep no
//! order among themselves.
//!
//! The segment size is one socket option (`UDP_SEGMENT`) for all the messages of one
//! `sendmmsg(2)` call, not a control message per message: no safe Rust binding passes a
//! different control message to each message of a `sendmmsg` (nix shares one list across
//! them, rustix has no `UDP_SEGMENT`). A message of one datagram no longer than the
//! segment size leaves unsplit, so one segment size serves a call: the largest datagram's
//! among the first [`SLOTS`]; a longer datagram waits for the next call. With datagrams of
//! one size (an echo, a stream of full packets) the option is set once per socket.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::recv_batch::SLOTS;

/// Datagrams one message may carry (`UDP_MAX_SEGMENTS` in the kernel's `include/linux/udp.h`).
pub(crate) const MAX_SEGMENTS: usize = 64;

/// The largest payload of one message to `to`: one IP datagram's, 65,535 bytes less the
/// UDP header and, over IPv4, the IPv4 header (65,507), over IPv6 only the UDP header, as
/// the IPv6 header is outside the payload length (65,527; jumbograms aside). An
/// IPv4-mapped address leaves as IPv4.
pub(crate) fn max_payload(to: &SocketAddr) -> usize {
    match to {
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_none() => 65_535 - 8,
        _ => 65_535 - 8 - 20,
    }
}

/// One message of a call: datagrams to one destination, by their positions in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) to: SocketAddr,
    /// Queue positions, ascending.
    pub(crate) positions: Vec<usize>,
    /// The payload: the datagrams' lengths summed.
    pub(crate) bytes: usize,
}

impl Message {
    fn new(position: usize, len: usize, to: SocketAddr) -> Message {
        Message {
            to,
            positions: vec![position],
            bytes: len,
        }
    }

    /// Whether a datagram of `len` bytes may follow this message's last, whose length is
    /// `last`, under segment size `segment`.
    fn takes(&self, last: usize, len: usize, segment: usize) -> bool {
        last == segment
            && len > 0
            && len <= segment
            && self.positions.len() < MAX_SEGMENTS
            && self.bytes + len <= max_payload(&self.to)
    }
}

/// The segment size for a call over `datagrams` (length and destination, queue order):
/// the largest of the first [`SLOTS`]' lengths; `None` (no segmentation) when that is 0 or
/// above `cap` (a segment the route's MTU refused before).
pub(crate) fn segment_size(
    datagrams: impl Iterator<Item = (usize, SocketAddr)>,
    cap: usize,
) -> Option<usize> {
    let largest = datagrams.take(SLOTS).map(|(len, _)| len).max()?;
    (largest > 0 && largest <= cap).then_some(largest)
}

/// Groups the front of a queue into the messages of one call (at most [`SLOTS`]), in the
/// order they must be sent. Under `segment` (`Some`), a destination's consecutive
/// datagrams share a message by the rules above, and the walk stops at the first datagram
/// longer than the segment; with `None`, each datagram is a message. The positions taken
/// are a prefix of the queue (each exactly once).
pub(crate) fn plan(
    datagrams: impl Iterator<Item = (usize, SocketAddr)>,
    segment: Option<usize>,
) -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::new();
    // The length of each message's last datagram.
    let mut lasts: Vec<usize> = Vec::new();
    for (position, (len, to)) in datagrams.enumerate() {
        if let Some(segment) = segment {
            if len > segment {
                break;
            }
            let joined = messages
                .iter()
                .rposition(|m| m.to == to)
                .filter(|&i| messages[i].takes(lasts[i], len, segment));
            if let Some(i) = joined {
                messages[i].positions.push(position);
                messages[i].bytes += len;
                lasts[i] = len;
                continue;
            }
        }
        if messages.len() == SLOTS {
            break;
        }
        messages.push(Message::new(position, len, to));
        lasts.push(len);
    }
    messages
}

/// The segment size a socket's `UDP_SEGMENT` option holds, as far as this reactor knows.
#[derive(Debug, Default)]
pub(crate) struct SocketGso {
    /// `None` until read (a socket may arrive inherited with the option set); 0 = off.
    segment: Option<usize>,
}

impl SocketGso {
    /// Sets the socket's segment size to `segment` (0: no segmentation), unless it holds
    /// that already (one `getsockopt` the first time, one `setsockopt` per change).
    ///
    /// # Errors
    /// Those of `setsockopt(2)`/`getsockopt(2)`: `ENOPROTOOPT` from a kernel before 4.18,
    /// which knows no `UDP_SEGMENT`.
    pub(crate) fn set(&mut self, socket: &UdpSocket, segment: usize) -> io::Result<()> {
        let current = match self.segment {
            Some(current) => current,
            None => {
                // Not asked again if the kernel knows no such option.
                self.segment = Some(0);
                read(socket)?
            }
        };
        self.segment = Some(current);
        if current != segment {
            write(socket, segment)?;
            self.segment = Some(segment);
        }
        Ok(())
    }

    /// Readies the socket for a call under `segment` (0: none) at the least cost: a call
    /// whose messages are all single datagrams (not `grouped`) needs only that the option be
    /// 0 or no shorter than each datagram (`segment` is the longest), so it keeps a known
    /// value that is.
    ///
    /// # Errors
    /// Those of [`set`](SocketGso::set).
    pub(crate) fn prepare(
        &mut self,
        socket: &UdpSocket,
        segment: usize,
        grouped: bool,
    ) -> io::Result<()> {
        match self.segment {
            Some(current) if !grouped && (current == 0 || current >= segment) => Ok(()),
            _ => self.set(socket, segment),
        }
    }

    /// Whether the socket segments, as far as this reactor knows (it set the option).
    pub(crate) fn is_segmenting(&self) -> bool {
        matches!(self.segment, Some(segment) if segment > 0)
    }
}

#[cfg(target_os = "linux")]
fn read(socket: &UdpSocket) -> io::Result<usize> {
    use nix::sys::socket::{getsockopt, sockopt::UdpGsoSegment};
    Ok(usize::try_from(getsockopt(socket, UdpGsoSegment)?).unwrap_or(0))
}

#[cfg(target_os = "linux")]
fn write(socket: &UdpSocket, segment: usize) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::UdpGsoSegment};
    let segment = i32::try_from(segment).map_err(|_| io::ErrorKind::InvalidInput)?;
    Ok(setsockopt(socket, UdpGsoSegment, &segment)?)
}

#[cfg(not(target_os = "linux"))]
fn read(_: &UdpSocket) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(not(target_os = "linux"))]
fn write(_: &UdpSocket, _: usize) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// Whether a send error under segmentation says the kernel cannot segment here, for good:
/// `EIO` (the device lacks checksum offload, or the route is IPsec), `EINVAL`/`ENOPROTOOPT`
/// (a kernel that refuses the option or `SO_NO_CHECK` on the socket), as `udp(7)` and
/// quinn-udp read them. Only once the same datagram went without segmentation.
pub(crate) fn kernel_cannot_segment(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
        || matches!(
            err.raw_os_error(),
            Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::ENOPROTOOPT)
        )
}

/// Whether a send error under segmentation is the route's MTU refusing the segment size
/// (`EMSGSIZE`: a segment is never fragmented, a datagram sent alone may be).
pub(crate) fn segment_too_large(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EMSGSIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The messages' positions, for datagrams given as (length, port).
    fn grouped(datagrams: &[(usize, u16)], segment: Option<usize>) -> Vec<Vec<usize>> {
        plan(
            datagrams.iter().map(|&(len, port)| (len, at(port))),
            segment,
        )
        .into_iter()
        .map(|m| m.positions)
        .collect()
    }

    #[test]
    fn equal_datagrams_to_one_destination_are_one_message() {
        assert_eq!(grouped(&[(10, 1); 4], Some(10)), [vec![0, 1, 2, 3]]);
    }

    #[test]
    fn a_shorter_datagram_ends_its_message() {
        let datagrams = [(10, 1), (10, 1), (4, 1), (10, 1)];
        assert_eq!(grouped(&datagrams, Some(10)), [vec![0, 1, 2], vec![3]]);
    }

    #[test]
    fn a_longer_datagram_than_the_segment_ends_the_call() {
        let datagrams = [(4, 1), (10, 1), (4, 2)];
        assert_eq!(grouped(&datagrams, Some(4)), [vec![0]]);
    }

    #[test]
    fn a_message_carries_at_most_64_datagrams() {
        let sizes: Vec<usize> = grouped(&[(1, 1); 130], Some(1))
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [64, 64, 2]);
    }

    #[test]
    fn a_message_stays_within_one_ip_datagram() {
        let datagrams = [(30_000, 1); 3];
        assert_eq!(grouped(&datagrams, Some(30_000)), [vec![0, 1], vec![2]]);
        let v6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 1));
        assert_eq!(max_payload(&v6), 65_527);
        assert_eq!(max_payload(&at(1)), 65_507);
    }

    #[test]
    fn destinations_interleaved_are_grouped_each_in_its_order() {
        let datagrams = [(5, 1), (5, 2), (5, 1), (5, 3), (5, 2), (5, 1)];
        assert_eq!(
            grouped(&datagrams, Some(5)),
            [vec![0, 2, 5], vec![1, 4], vec![3]]
        );
    }

    #[test]
    fn a_datagram_never_joins_an_earlier_message_of_its_destination() {
        // The second message to port 1 started after a short one: the fourth datagram
        // follows it, not the first message.
        let datagrams = [(5, 1), (2, 1), (5, 1), (5, 1)];
        assert_eq!(grouped(&datagrams, Some(5)), [vec![0, 1], vec![2, 3]]);
    }

    #[test]
    fn an_empty_datagram_is_a_message_of_its_own() {
        let datagrams = [(5, 1), (0, 1), (5, 1)];
        assert_eq!(grouped(&datagrams, Some(5)), [vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn a_call_has_at_most_slots_messages() {
        let datagrams: Vec<(usize, u16)> = (0..40).map(|port| (5, port)).collect();
        assert_eq!(grouped(&datagrams, Some(5)).len(), SLOTS);
    }

    #[test]
    fn without_a_segment_size_each_datagram_is_a_message() {
        assert_eq!(grouped(&[(5, 1); 3], None), [vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn the_segment_size_is_the_largest_of_the_first_slots_datagrams_within_the_cap() {
        let lens = |lens: &[usize]| lens.iter().map(|&len| (len, at(1))).collect::<Vec<_>>();
        assert_eq!(segment_size(lens(&[3, 9, 4]).into_iter(), 65_507), Some(9));
        assert_eq!(segment_size(lens(&[3, 9, 4]).into_iter(), 8), None);
        assert_eq!(segment_size(lens(&[0, 0]).into_iter(), 65_507), None);
        let mut late = vec![1; SLOTS];
        late.push(50);
        assert_eq!(segment_size(lens(&late).into_iter(), 65_507), Some(1));
    }
}

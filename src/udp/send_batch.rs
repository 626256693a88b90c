//! Datagrams sent in batches: one `sendmmsg(2)` call hands the kernel up to
//! [`SLOTS`](super::recv_batch::SLOTS) messages, each to its own destination, where
//! `sendto(2)` hands it one (as gathered writes do for a stream). With segmentation
//! offload ([`gso`](super::gso)) a message carries several datagrams to one destination,
//! which the kernel splits.
//!
//! `sendmmsg` stops at the first message that fails and reports how many went before it;
//! the next call, starting at that message, reports its error, so a failing message is
//! found, its datagrams counted and dropped, and the rest still go. `EINVAL` is either a
//! kernel without the call or one datagram the kernel refuses (port 0, say): the datagram
//! is retried alone with `sendto`, and only if that succeeds does the reactor stop
//! batching, as it does at once on `ENOSYS`. Likewise a message that fails while the
//! socket segments is retried as one datagram without segmentation: if that goes, the
//! error was segmentation's (see [`gso::kernel_cannot_segment`]), which is then off for
//! the reactor's life, or the segment size too large for the route's MTU (`EMSGSIZE`),
//! which then caps the segment size.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::gso::{self, Message, SocketGso};
use super::recv_batch::kernel_lacks_it;

/// A send that failed: the error, and the queue positions of the datagrams it dooms (those
/// of the failing message; none for `WouldBlock` or `Interrupted`).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) error: io::Error,
    pub(crate) dropped: Vec<usize>,
}

impl Failed {
    /// The front datagram's failure, sent alone: it is dropped.
    fn front(error: io::Error) -> Failed {
        Failed {
            error,
            dropped: vec![0],
        }
    }

    fn retry(error: io::Error) -> Failed {
        Failed {
            error,
            dropped: Vec::new(),
        }
    }
}

/// Whether sends go out in batches and segmented: off when configured so or when the
/// kernel refused them.
pub(crate) struct SendBatch {
    batches: bool,
    segmentation: bool,
    /// Segment sizes above this went alone before (`EMSGSIZE` under segmentation).
    segment_cap: usize,
}

impl SendBatch {
    /// `batches` turns segmentation on too: it needs `sendmmsg` to pay off.
    pub(crate) fn new(batches: bool) -> SendBatch {
        SendBatch {
            batches,
            segmentation: batches,
            segment_cap: usize::MAX,
        }
    }

    /// Sends datagrams from the front of `queue` (at least one, at most `SLOTS` messages)
    /// in one system call; returns the queue positions of those the kernel took
    /// (ascending, at least one).
    ///
    /// # Errors
    /// When the kernel took none: `WouldBlock` when the socket's buffer is full, or an
    /// error about the front message alone, with its datagrams' positions.
    pub(crate) fn send(
        &mut self,
        socket: &UdpSocket,
        socket_gso: &mut SocketGso,
        queue: &VecDeque<(Vec<u8>, SocketAddr)>,
    ) -> Result<Vec<usize>, Failed> {
        if !self.batches {
            return send_front(socket, queue).map_err(Failed::front);
        }
        let messages = self.plan(socket, socket_gso, queue);
        match send_many(socket, queue, &messages) {
            Ok(count) => Ok(positions(&messages[..count])),
            Err(err) if is_retry(&err) => Err(Failed::retry(err)),
            Err(err)
                if socket_gso.is_segmenting()
                    && (gso::kernel_cannot_segment(&err) || gso::segment_too_large(&err)) =>
            {
                self.send_unsegmented(socket, socket_gso, queue, &messages[0], err)
            }
            Err(err) if kernel_lacks_it(&err) => {
                let alone = send_front(socket, queue);
                if alone.is_ok() || err.raw_os_error() != Some(libc::EINVAL) {
                    log::info!("sendmmsg: {err}; one sendto per datagram from now on");
                    self.batches = false;
                    self.segmentation = false;
                }
                alone.map_err(Failed::front)
            }
            Err(error) => Err(Failed {
                error,
                dropped: messages[0].positions.clone(),
            }),
        }
    }

    /// The messages of the next call, with the socket's segment size set for them.
    fn plan(
        &mut self,
        socket: &UdpSocket,
        socket_gso: &mut SocketGso,
        queue: &VecDeque<(Vec<u8>, SocketAddr)>,
    ) -> Vec<Message> {
        let datagrams = || queue.iter().map(|(data, to)| (data.len(), *to));
        if self.segmentation {
            if let Some(segment) = gso::segment_size(datagrams(), self.segment_cap) {
                let messages = gso::plan(datagrams(), Some(segment));
                let grouped = messages.iter().any(|m| m.positions.len() > 1);
                match socket_gso.prepare(socket, segment, grouped) {
                    Ok(()) => return messages,
                    Err(err) => {
                        log::info!("UDP_SEGMENT: {err}; no segmentation from now on");
                        self.segmentation = false;
                    }
                }
            }
        }
        self.unsegment(socket, socket_gso);
        gso::plan(datagrams(), None)
    }

    /// Turns the socket's segmentation off, if this reactor turned it on.
    fn unsegment(&mut self, socket: &UdpSocket, socket_gso: &mut SocketGso) {
        if socket_gso.is_segmenting() {
            if let Err(err) = socket_gso.set(socket, 0) {
                // Then the next call fails the same way and drops its datagrams.
                log::debug!("UDP_SEGMENT 0: {err}");
            }
        }
    }

    /// After `err` for `message` under segmentation: sends its first datagram alone,
    /// unsegmented, and if that goes, learns what segmentation cannot do here.
    fn send_unsegmented(
        &mut self,
        socket: &UdpSocket,
        socket_gso: &mut SocketGso,
        queue: &VecDeque<(Vec<u8>, SocketAddr)>,
        message: &Message,
        err: io::Error,
    ) -> Result<Vec<usize>, Failed> {
        let segment = queue[message.positions[0]].0.len();
        self.unsegment(socket, socket_gso);
        let (data, to) = &queue[message.positions[0]];
        match socket.send_to(data, *to) {
            Ok(_) if gso::segment_too_large(&err) => {
                log::debug!(
                    "UDP_SEGMENT {segment}: {err}; segments up to {} from now on",
                    segment - 1
                );
                self.segment_cap = segment - 1;
                Ok(vec![message.positions[0]])
            }
            Ok(_) => {
                log::info!("UDP_SEGMENT: {err}; no segmentation from now on");
                self.segmentation = false;
                Ok(vec![message.positions[0]])
            }
            Err(error) if is_retry(&error) => Err(Failed::retry(error)),
            Err(error) => Err(Failed {
                error,
                dropped: message.positions.clone(),
            }),
        }
    }
}

/// Removes the datagrams at `positions` (ascending) from `queue` and returns them, in order;
/// the others keep theirs.
pub(crate) fn take_positions(
    queue: &mut VecDeque<(Vec<u8>, SocketAddr)>,
    positions: &[usize],
) -> Vec<(Vec<u8>, SocketAddr)> {
    let Some(&last) = positions.last() else {
        return Vec::new();
    };
    if last + 1 == positions.len() {
        return queue.drain(..=last).collect(); // a prefix: the usual case
    }
    let mut taken = Vec::with_capacity(positions.len());
    let mut kept = Vec::new();
    let mut wanted = positions.iter().peekable();
    for (position, datagram) in queue.drain(..=last).enumerate() {
        if wanted.next_if_eq(&&position).is_some() {
            taken.push(datagram);
        } else {
            kept.push(datagram);
        }
    }
    for datagram in kept.into_iter().rev() {
        queue.push_front(datagram);
    }
    taken
}

fn is_retry(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// The queue positions of `messages`' datagrams, ascending.
fn positions(messages: &[Message]) -> Vec<usize> {
    let mut positions: Vec<usize> = messages
        .iter()
        .flat_map(|m| m.positions.iter().copied())
        .collect();
    positions.sort_unstable();
    positions
}

fn send_front(
    socket: &UdpSocket,
    queue: &VecDeque<(Vec<u8>, SocketAddr)>,
) -> io::Result<Vec<usize>> {
    let (data, to) = queue.front().expect("a datagram to send");
    socket.send_to(data, *to).map(|_| vec![0])
}

/// Sends `messages` in one `sendmmsg`, each message's datagrams gathered (one iovec each);
/// returns how many messages went.
#[cfg(target_os = "linux")]
fn send_many(
    socket: &UdpSocket,
    queue: &VecDeque<(Vec<u8>, SocketAddr)>,
    messages: &[Message],
) -> io::Result<usize> {
    use rustix::net::addr::SocketAddrArg;
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
    use std::io::IoSlice;

    // One datagram alone (every send of a ping-pong): `sendto`, without the vectors and
    // the headers a batch needs.
    if let [Message { to, positions, .. }] = messages {
        if let [position] = positions[..] {
            return socket.send_to(&queue[position].0, *to).map(|_| 1);
        }
    }
    let addrs: Vec<_> = messages.iter().map(|m| m.to.as_any()).collect();
    let iovs: Vec<Vec<IoSlice<'_>>> = messages
        .iter()
        .map(|m| {
            m.positions
                .iter()
                .map(|&p| IoSlice::new(&queue[p].0))
                .collect()
        })
        .collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut headers: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(&mut controls)
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    Ok(sendmmsg(socket, &mut headers, SendFlags::empty())?)
}

#[cfg(not(target_os = "linux"))]
fn send_many(
    _: &UdpSocket,
    _: &VecDeque<(Vec<u8>, SocketAddr)>,
    _: &[Message],
) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(n: u8) -> VecDeque<(Vec<u8>, SocketAddr)> {
        (0..n)
            .map(|i| (vec![i], SocketAddr::from(([127, 0, 0, 1], 1))))
            .collect()
    }

    fn firsts(datagrams: impl IntoIterator<Item = (Vec<u8>, SocketAddr)>) -> Vec<u8> {
        datagrams.into_iter().map(|(data, _)| data[0]).collect()
    }

    #[test]
    fn taking_positions_keeps_the_others_in_order() {
        let mut q = queue(6);
        assert_eq!(firsts(take_positions(&mut q, &[0, 2, 3])), [0, 2, 3]);
        assert_eq!(firsts(q), [1, 4, 5]);
    }

    #[test]
    fn taking_a_prefix_drains_it() {
        let mut q = queue(4);
        assert_eq!(firsts(take_positions(&mut q, &[0, 1])), [0, 1]);
        assert_eq!(firsts(q), [2, 3]);
    }
}

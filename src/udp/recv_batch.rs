//! Datagrams received in batches: one `recvmmsg(2)` call takes up to [`SLOTS`] datagrams
//! off a UDP socket, where `recvfrom(2)` takes one.
//!
//! Every slot is [`MAX_DATAGRAM`] (64 KiB) long, so no datagram is ever truncated (the
//! largest UDP payload is 65,507 bytes over IPv4, 65,527 over IPv6 without jumbograms):
//! small slots would need `MSG_TRUNC` detection, and by then the kernel has already
//! discarded the datagram's tail, so the fallback read it calls for cannot exist. A slot
//! may hold several datagrams coalesced by GRO ([`super::gro`]), at most 64 KiB of them too;
//! should a kernel ever coalesce more, the whole ones are delivered and the rest counted as
//! dropped. Each slot also has 48 bytes of control-message space (the GRO segment size and
//! the `SO_RXQ_OVFL` drop count, [`super::kernel_drops`]). The
//! price is address space, not memory: the 32 slots are 2 MiB of one zeroed allocation
//! (pages the kernel maps on first touch), and a slot's pages become resident only as deep
//! as the datagrams written to it (small datagrams touch the first page of each slot:
//! 128 KiB). One batch serves every socket of the reactor, lent for one dispatch.
//!
//! Where the kernel lacks `recvmmsg` (`ENOSYS`, or `EINVAL` from an emulation that knows
//! the call but not its use here), the batch falls back to one call per message for the
//! rest of the reactor's life (`recvmsg` on a socket with GRO on, else `recvfrom`), as
//! [`Config::datagram_batches(false)`](crate::Config::datagram_batches) asks from the start.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;

use mio::net::UdpSocket;

use super::gro::{Gro, Segments};
use crate::udp::MAX_DATAGRAM;

/// Datagrams one call may take.
pub(crate) const SLOTS: usize = 32;

/// Control-message space of one slot: a GRO segment size (`int`) and a drop count (`u32`),
/// each `CMSG_SPACE(4)` = 24 bytes on 64-bit Linux, so 48 bytes a slot, 1,536 a batch.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn control_space() -> Vec<u8> {
    nix::cmsg_space!(i32, u32)
}

/// One received message: a datagram, or several of one sender coalesced by GRO.
#[derive(Debug)]
pub(crate) struct Message {
    /// The sender; `None` (never from a UDP socket) to skip the message.
    pub(crate) from: Option<SocketAddr>,
    /// The datagrams it holds, and those lost to truncation.
    pub(crate) segments: Segments,
    /// The socket's drop count when this message was queued (`SO_RXQ_OVFL`), if not 0.
    pub(crate) kernel_drops: Option<u32>,
}

/// The slots of one batch and what the last call put in them.
pub(crate) struct RecvBatch {
    /// `SLOTS` slots of `MAX_DATAGRAM` bytes, allocated on the first receive.
    buf: Vec<u8>,
    /// The messages of the last call, in arrival order; slot `i` holds message `i`.
    received: Vec<Message>,
    /// How many messages the last call asked for.
    asked: usize,
    /// Whether to try `recvmmsg`: off when configured so or when the kernel refused it.
    batches: bool,
}

impl RecvBatch {
    pub(crate) fn new(batches: bool) -> RecvBatch {
        RecvBatch {
            buf: Vec::new(),
            received: Vec::new(),
            asked: 0,
            batches,
        }
    }

    /// Whether messages are received in batches (with control messages), so that a socket
    /// may turn GRO on.
    pub(crate) fn in_batches(&self) -> bool {
        self.batches
    }

    /// Receives up to `max` messages (at least one, at most [`SLOTS`]) in one system call.
    /// Without batches (configured so, or the kernel refused them) the call takes one: a
    /// `recvmsg` with control messages on a socket with GRO on (its queue may hold coalesced
    /// messages, which only the segment size splits), else a `recvfrom`.
    ///
    /// # Errors
    /// Those of `recvmmsg(2)` or `recvfrom(2)`: `WouldBlock` when nothing is queued.
    pub(crate) fn receive(&mut self, socket: &UdpSocket, gro: &Gro, max: usize) -> io::Result<()> {
        self.received.clear();
        if self.buf.is_empty() {
            self.buf = vec![0; SLOTS * MAX_DATAGRAM];
        }
        if self.batches {
            self.asked = max.clamp(1, SLOTS);
            match self.receive_many(socket, gro, self.asked) {
                Err(err) if kernel_lacks_it(&err) => {
                    log::info!("recvmmsg: {err}; one message per call from now on");
                    self.batches = false;
                }
                done => return done,
            }
        }
        self.asked = 1;
        if gro.is_on() {
            return self.receive_one(socket);
        }
        let (len, from) = socket.recv_from(&mut self.buf[..MAX_DATAGRAM])?;
        self.received.push(Message {
            from: Some(from),
            segments: Segments::split(len, len, None),
            kernel_drops: None,
        });
        Ok(())
    }

    /// One message with its control messages (`recvmsg(2)`): the fallback of a socket with
    /// GRO on, where the kernel refused `recvmmsg`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn receive_one(&mut self, socket: &UdpSocket) -> io::Result<()> {
        use nix::sys::socket::{recvmsg, MsgFlags, SockaddrStorage};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let mut slot = [IoSliceMut::new(&mut self.buf[..MAX_DATAGRAM])];
        let mut control = control_space();
        let fd = socket.as_raw_fd();
        let message =
            recvmsg::<SockaddrStorage>(fd, &mut slot, Some(&mut control), MsgFlags::MSG_TRUNC)?;
        self.received.push(message_of(&message, true));
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn receive_one(&mut self, _: &UdpSocket) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn receive_many(&mut self, socket: &UdpSocket, gro: &Gro, max: usize) -> io::Result<()> {
        use nix::sys::socket::SockaddrStorage;
        use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let mut slots: Vec<[IoSliceMut<'_>; 1]> = self
            .buf
            .chunks_mut(MAX_DATAGRAM)
            .take(max)
            .map(|slot| [IoSliceMut::new(slot)])
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(max, Some(control_space()));
        let fd = socket.as_raw_fd();
        // MSG_TRUNC: each message's length is its whole length, not what fit the slot
        // (`udp(7)`), so that a truncation says how many datagrams it cut.
        let flags = MsgFlags::MSG_TRUNC;
        let results = recvmmsg(fd, &mut headers, slots.iter_mut(), flags, None)?;
        for message in results {
            self.received.push(message_of(&message, gro.is_on()));
        }
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn receive_many(&mut self, _: &UdpSocket, _: &Gro, _: usize) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// The messages of the last call, in arrival order.
    pub(crate) fn messages(&self) -> &[Message] {
        &self.received
    }

    /// Whether the last call took fewer messages than it asked for: the socket's queue was
    /// empty then (`recvmmsg` on a non-blocking socket stops at the first `EAGAIN`). Never
    /// after a `recvfrom`, which asks for one.
    pub(crate) fn was_short(&self) -> bool {
        self.received.len() < self.asked
    }

    /// The bytes of one datagram of message `i`: `range` from its segments.
    pub(crate) fn datagram(&self, i: usize, range: Range<usize>) -> &[u8] {
        let start = i * MAX_DATAGRAM;
        &self.buf[start + range.start..start + range.end]
    }
}

/// What one received message holds: its sender, its datagrams (split at the GRO segment
/// size, if any) and the drop count it carries. MSG_TRUNC was asked for, so `bytes` is the
/// message's whole length, not what fit the slot (`udp(7)`): a truncation says how many
/// datagrams it cut.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn message_of(
    message: &nix::sys::socket::RecvMsg<'_, '_, nix::sys::socket::SockaddrStorage>,
    gro_on: bool,
) -> Message {
    use nix::sys::socket::ControlMessageOwned;

    let total = message.bytes;
    let copied = total.min(MAX_DATAGRAM);
    let (mut segment_size, mut kernel_drops) = (None, None);
    let control = message.cmsgs();
    let control_truncated = control.is_err();
    for control in control.into_iter().flatten() {
        match control {
            ControlMessageOwned::UdpGroSegments(size) => {
                segment_size = usize::try_from(size).ok();
            }
            ControlMessageOwned::RxqOvfl(count) => kernel_drops = Some(count),
            _ => {}
        }
    }
    let from = message.address.as_ref().and_then(socket_addr);
    let segments = if control_truncated && gro_on {
        // MSG_CTRUNC (other control messages an inherited socket asks for): the segment
        // size may be lost, and the message cannot be split safely.
        log::debug!("recvmmsg: control messages truncated; a message dropped");
        Segments::none()
    } else if from.is_none() {
        log::debug!("recvmmsg: a message without a sender");
        Segments::none()
    } else {
        Segments::split(copied, total, segment_size)
    };
    Message {
        from,
        segments,
        kernel_drops,
    }
}

/// `ENOSYS` (no such call) or `EINVAL` (a kernel or emulation that refuses it), as
/// `sendmmsg(2)`'s and `recvmmsg(2)`'s man pages and QUIC stacks (quinn-udp) treat them;
/// `Unsupported` where this crate has no batch call at all.
pub(crate) fn kernel_lacks_it(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Unsupported
        || matches!(err.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EINVAL))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn socket_addr(addr: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    addr.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

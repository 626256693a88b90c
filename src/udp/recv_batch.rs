//! Datagrams received in batches: one `recvmmsg(2)` call takes up to [`SLOTS`] datagrams
//! off a UDP socket, where `recvfrom(2)` takes one.
//!
//! Every slot is [`MAX_DATAGRAM`] (64 KiB) long, so no datagram is ever truncated (the
//! largest UDP payload is 65,507 bytes over IPv4, 65,527 over IPv6 without jumbograms):
//! small slots would need `MSG_TRUNC` detection, and by then the kernel has already
//! discarded the datagram's tail, so the fallback read it calls for cannot exist. The
//! price is address space, not memory: the 32 slots are 2 MiB of one zeroed allocation
//! (pages the kernel maps on first touch), and a slot's pages become resident only as deep
//! as the datagrams written to it (small datagrams touch the first page of each slot:
//! 128 KiB). One batch serves every socket of the reactor, lent for one dispatch.
//!
//! Where the kernel lacks `recvmmsg` (`ENOSYS`, or `EINVAL` from an emulation that knows
//! the call but not its use here), the batch falls back to one `recvfrom` per datagram
//! for the rest of the reactor's life, as
//! [`Config::datagram_batches(false)`](crate::Config::datagram_batches) asks from the start.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use crate::udp::MAX_DATAGRAM;

/// Datagrams one call may take.
pub(crate) const SLOTS: usize = 32;

/// The slots of one batch and what the last call put in them.
pub(crate) struct RecvBatch {
    /// `SLOTS` slots of `MAX_DATAGRAM` bytes, allocated on the first receive.
    buf: Vec<u8>,
    /// Length and sender of each datagram of the last call, in arrival order; slot `i` holds
    /// datagram `i`.
    received: Vec<(usize, SocketAddr)>,
    /// Whether to try `recvmmsg`: off when configured so or when the kernel refused it.
    batches: bool,
}

impl RecvBatch {
    pub(crate) fn new(batches: bool) -> RecvBatch {
        RecvBatch {
            buf: Vec::new(),
            received: Vec::new(),
            batches,
        }
    }

    /// Receives up to `max` datagrams (at least one, at most [`SLOTS`]) in one system call.
    ///
    /// # Errors
    /// Those of `recvmmsg(2)` or `recvfrom(2)`: `WouldBlock` when nothing is queued.
    pub(crate) fn receive(&mut self, socket: &UdpSocket, max: usize) -> io::Result<()> {
        self.received.clear();
        if self.buf.is_empty() {
            self.buf = vec![0; SLOTS * MAX_DATAGRAM];
        }
        if self.batches {
            match self.receive_many(socket, max.clamp(1, SLOTS)) {
                Err(err) if kernel_lacks_it(&err) => {
                    log::info!("recvmmsg: {err}; one recvfrom per datagram from now on");
                    self.batches = false;
                }
                done => return done,
            }
        }
        let (len, from) = socket.recv_from(&mut self.buf[..MAX_DATAGRAM])?;
        self.received.push((len, from));
        Ok(())
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn receive_many(&mut self, socket: &UdpSocket, max: usize) -> io::Result<()> {
        use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        let mut slots: Vec<[IoSliceMut<'_>; 1]> = self
            .buf
            .chunks_mut(MAX_DATAGRAM)
            .take(max)
            .map(|slot| [IoSliceMut::new(slot)])
            .collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(max, None);
        let fd = socket.as_raw_fd();
        let results = recvmmsg(fd, &mut headers, slots.iter_mut(), MsgFlags::empty(), None)?;
        for message in results {
            let from = message.address.as_ref().and_then(socket_addr);
            match from {
                // A slot is larger than any UDP payload: MSG_TRUNC cannot happen here.
                Some(from) if !message.flags.contains(MsgFlags::MSG_TRUNC) => {
                    self.received.push((message.bytes, from));
                }
                // Kept in place so that slot `i` stays datagram `i`; skipped when delivered.
                _ => {
                    log::debug!("recvmmsg: a datagram truncated or without a sender");
                    self.received
                        .push((usize::MAX, SocketAddr::from(([0; 4], 0))));
                }
            }
        }
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn receive_many(&mut self, _: &UdpSocket, _: usize) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// How many datagrams the last call received.
    pub(crate) fn len(&self) -> usize {
        self.received.len()
    }

    /// Datagram `i` of the last call and its sender; `None` for one to skip (truncated or
    /// without a sender, which a UDP socket never gives).
    pub(crate) fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let (len, from) = self.received[i];
        let start = i * MAX_DATAGRAM;
        (len <= MAX_DATAGRAM).then(|| (&self.buf[start..start + len], from))
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

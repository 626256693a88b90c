//! Datagrams sent in batches: one `sendmmsg(2)` call hands the kernel up to
//! [`SLOTS`](crate::recv_batch::SLOTS) queued datagrams, each to its own destination, where
//! `sendto(2)` hands it one (as gathered writes do for a stream).
//!
//! `sendmmsg` stops at the first datagram that fails and reports how many went before it;
//! the next call, starting at that datagram, reports its error, so a failing datagram is
//! found, counted and skipped, and the rest still go. `EINVAL` is either a kernel without
//! the call or one datagram the kernel refuses (port 0, say): the datagram is retried alone
//! with `sendto`, and only if that succeeds does the reactor stop batching, as it does at
//! once on `ENOSYS`.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use super::recv_batch::{kernel_lacks_it, SLOTS};

/// Whether sends go out in batches: off when configured so or when the kernel refused them.
pub(crate) struct SendBatch {
    batches: bool,
}

impl SendBatch {
    pub(crate) fn new(batches: bool) -> SendBatch {
        SendBatch { batches }
    }

    /// Sends datagrams from the front of `queue` (at least one, at most `SLOTS`) in one
    /// system call; returns how many the kernel took, at least one.
    ///
    /// # Errors
    /// The front datagram's, when the kernel took none: `WouldBlock` when the socket's buffer
    /// is full, or an error about that datagram alone.
    pub(crate) fn send(
        &mut self,
        socket: &UdpSocket,
        queue: &VecDeque<(Vec<u8>, SocketAddr)>,
    ) -> io::Result<usize> {
        if self.batches && queue.len() > 1 {
            match send_many(socket, queue) {
                Err(err) if kernel_lacks_it(&err) => {
                    let alone = send_front(socket, queue);
                    if alone.is_ok() || err.raw_os_error() != Some(libc::EINVAL) {
                        log::info!("sendmmsg: {err}; one sendto per datagram from now on");
                        self.batches = false;
                    }
                    return alone;
                }
                done => return done,
            }
        }
        send_front(socket, queue)
    }
}

fn send_front(socket: &UdpSocket, queue: &VecDeque<(Vec<u8>, SocketAddr)>) -> io::Result<usize> {
    let (data, to) = queue.front().expect("a datagram to send");
    socket.send_to(data, *to).map(|_| 1)
}

#[cfg(target_os = "linux")]
fn send_many(socket: &UdpSocket, queue: &VecDeque<(Vec<u8>, SocketAddr)>) -> io::Result<usize> {
    use rustix::net::addr::SocketAddrArg;
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
    use std::io::IoSlice;

    let batch = queue.iter().take(SLOTS);
    let addrs: Vec<_> = batch.clone().map(|(_, to)| to.as_any()).collect();
    let iovs: Vec<[IoSlice<'_>; 1]> = batch.map(|(data, _)| [IoSlice::new(data)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut messages: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(&mut controls)
        .map(|((addr, iov), control)| MMsgHdr::new_with_addr(addr, iov, control))
        .collect();
    Ok(sendmmsg(socket, &mut messages, SendFlags::empty())?)
}

#[cfg(not(target_os = "linux"))]
fn send_many(_: &UdpSocket, _: &VecDeque<(Vec<u8>, SocketAddr)>) -> io::Result<usize> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

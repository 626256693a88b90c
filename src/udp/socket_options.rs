//! A UDP socket's kernel buffers (`SO_RCVBUF`, `SO_SNDBUF`; `socket(7)`), sized per socket
//! from its handler ([`DatagramContext`](crate::DatagramContext)), and a snapshot of the
//! socket ([`DatagramSocketStats`]).
//!
//! The receive buffer is what absorbs a burst while the loop is busy elsewhere: past it the
//! kernel drops datagrams ([`Stats::datagram_receive_overflows`](crate::Stats::datagram_receive_overflows)).
//! Linux's default (`net.core.rmem_default`, 208 KiB) holds about 300 small datagrams,
//! since each costs its buffer's whole truesize, not its payload.

use std::io;

use mio::net::UdpSocket;
use socket2::SockRef;

use crate::core::Core;
use crate::id::Slot;

/// A snapshot of one UDP socket, from
/// [`DatagramContext::socket_stats`](crate::DatagramContext::socket_stats).
///
/// # Examples
/// A socket sizes its receive buffer when it opens, and reads back what the kernel set:
/// ```
/// use std::net::SocketAddr;
/// use mio_reactor::{DatagramContext, DatagramHandler, Reactor};
///
/// struct Sized;
/// impl DatagramHandler for Sized {
///     fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
///         ctx.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
///         let stats = ctx.socket_stats().expect("an open socket");
///         // Linux doubles the value asked for (socket(7)); other kernels keep it.
///         assert!(stats.recv_buffer_size >= 64 * 1024);
///         assert_eq!((stats.kernel_drops, stats.send_queue), (0, 0));
///     }
///     fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.bind_udp("udp:127.0.0.1:0", Sized)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramSocketStats {
    /// The kernel's receive buffer, in bytes (`SO_RCVBUF`, as the kernel reports it).
    pub recv_buffer_size: usize,
    /// The kernel's send buffer, in bytes (`SO_SNDBUF`, as the kernel reports it).
    pub send_buffer_size: usize,
    /// Messages the kernel dropped on arrival at this socket, its receive buffer being full
    /// (datagrams, a GRO-coalesced train counting once), as learned so far: this socket's share of
    /// [`Stats::datagram_receive_overflows`](crate::Stats::datagram_receive_overflows), with
    /// the same delay (learned when a later datagram is received).
    pub kernel_drops: u64,
    /// Datagrams queued in the reactor for sending now
    /// ([`DatagramContext::send_to`](crate::DatagramContext::send_to)).
    pub send_queue: usize,
}

/// Which of a socket's two kernel buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Buffer {
    Recv,
    Send,
}

impl Core {
    /// The socket behind `slot`, while it is open.
    fn open_udp_socket(&self, slot: Slot) -> io::Result<&UdpSocket> {
        self.entries
            .udp_ref(slot)
            .filter(|udp| !udp.finished)
            .map(|udp| &udp.socket)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket closed"))
    }

    /// Sets one of the socket's kernel buffers.
    pub(crate) fn set_udp_buffer_size(
        &self,
        slot: Slot,
        buffer: Buffer,
        bytes: usize,
    ) -> io::Result<()> {
        let socket = SockRef::from(self.open_udp_socket(slot)?);
        // setsockopt takes a C int: a larger value would wrap (2^32 to 0, the kernel's
        // minimum) where the caller asked for the most; the kernel caps it anyway.
        let bytes = bytes.min(i32::MAX as usize);
        match buffer {
            Buffer::Recv => socket.set_recv_buffer_size(bytes),
            Buffer::Send => socket.set_send_buffer_size(bytes),
        }
    }

    /// One of the socket's kernel buffers, in bytes, as the kernel reports it.
    pub(crate) fn udp_buffer_size(&self, slot: Slot, buffer: Buffer) -> io::Result<usize> {
        let socket = SockRef::from(self.open_udp_socket(slot)?);
        match buffer {
            Buffer::Recv => socket.recv_buffer_size(),
            Buffer::Send => socket.send_buffer_size(),
        }
    }

    /// A snapshot of the socket.
    pub(crate) fn udp_socket_stats(&self, slot: Slot) -> io::Result<DatagramSocketStats> {
        let recv_buffer_size = self.udp_buffer_size(slot, Buffer::Recv)?;
        let send_buffer_size = self.udp_buffer_size(slot, Buffer::Send)?;
        let udp = self.entries.udp_ref(slot).expect("checked open above");
        Ok(DatagramSocketStats {
            recv_buffer_size,
            send_buffer_size,
            kernel_drops: udp.kernel_drops.total,
            send_queue: udp.send_queue.len(),
        })
    }
}

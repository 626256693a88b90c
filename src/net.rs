//! Platform glue: the sockets a reactor drives, their addresses and their error classes.
//!
//! The rest of the crate sees one [`Stream`] and one [`ListenerSocket`] type whether the
//! bytes travel over TCP or a Unix-domain socket, so the loop reads as plain logic.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::config::Config;
use crate::dead_peers::DeadPeerDetection;
use crate::endpoint::Endpoint;
use crate::options::ListenOptions;

/// The address of a connection's peer.
///
/// A [`Factory`](crate::Factory) receives it before the connection gets a handler, and
/// [`Context::peer_addr`](crate::Context::peer_addr) returns it afterwards.
///
/// # Examples
/// ```
/// use mio_reactor::PeerAddr;
///
/// let peer = PeerAddr::Tcp("192.0.2.7:40000".parse().unwrap());
/// assert_eq!(peer.tcp().map(|addr| addr.port()), Some(40000));
/// assert_eq!(peer.to_string(), "192.0.2.7:40000");
///
/// // A Unix-domain client rarely binds a path of its own.
/// let peer = PeerAddr::Unix(None);
/// assert_eq!(peer.tcp(), None);
/// assert_eq!(peer.to_string(), "unix:(unnamed)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// A TCP peer (IPv4 or IPv6).
    Tcp(SocketAddr),
    /// A Unix-domain peer: its path, if it bound one (clients usually do not).
    Unix(Option<PathBuf>),
}

impl PeerAddr {
    /// The TCP address, if this is a TCP peer.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Tcp(addr) => Some(*addr),
            PeerAddr::Unix(_) => None,
        }
    }

    fn from_unix(addr: &std::os::unix::net::SocketAddr) -> PeerAddr {
        PeerAddr::Unix(addr.as_pathname().map(Path::to_path_buf))
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(addr) => write!(f, "{addr}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:(unnamed)"),
        }
    }
}

/// A connected, non-blocking byte stream.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects without blocking; completion is reported as writability.
    pub(crate) fn connect(addr: &PeerAddr) -> io::Result<Stream> {
        match addr {
            PeerAddr::Tcp(addr) => TcpStream::connect(*addr).map(Stream::Tcp),
            PeerAddr::Unix(Some(path)) => UnixStream::connect(path).map(Stream::Unix),
            PeerAddr::Unix(None) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect to an unnamed Unix socket",
            )),
        }
    }

    /// The pending socket error, which is how a failed non-blocking connect reports itself.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// Succeeds once a connect has completed; `NotConnected` while it is still in progress.
    pub(crate) fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(PeerAddr::Tcp),
            Stream::Unix(s) => s.peer_addr().map(|a| PeerAddr::from_unix(&a)),
        }
    }

    /// Applies the per-socket options of `config`: `TCP_NODELAY`, the kernel buffer sizes,
    /// and keepalive and the user timeout (`dead_peers`, or else the config's; TCP only). A
    /// failure is logged, not fatal: the connection works without them.
    pub(crate) fn configure(
        &self,
        config: &Config,
        dead_peers: Option<DeadPeerDetection>,
        peer: &PeerAddr,
    ) {
        if let Err(err) = self.set_nodelay(config.nodelay) {
            log::debug!("TCP_NODELAY for {peer}: {err}");
        }
        if let Err(err) =
            self.set_buffer_sizes(config.socket_send_buffer, config.socket_recv_buffer)
        {
            log::debug!("socket buffer sizes for {peer}: {err}");
        }
        if let Stream::Tcp(s) = self {
            let dead_peers = dead_peers.unwrap_or(config.dead_peer_detection);
            dead_peers.apply(socket2::SockRef::from(s), peer);
        }
    }

    fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(nodelay),
            Stream::Unix(_) => Ok(()),
        }
    }

    /// Caps the kernel's send and receive buffers for this socket (`SO_SNDBUF`, `SO_RCVBUF`).
    fn set_buffer_sizes(&self, send: Option<usize>, recv: Option<usize>) -> io::Result<()> {
        let socket = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s),
            Stream::Unix(s) => socket2::SockRef::from(s),
        };
        if let Some(size) = send {
            socket.set_send_buffer_size(size)?;
        }
        if let Some(size) = recv {
            socket.set_recv_buffer_size(size)?;
        }
        Ok(())
    }

    /// Sends our FIN: the peer reads EOF once it has read everything before it.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Write),
            Stream::Unix(s) => s.shutdown(Shutdown::Write),
        }
    }

    /// Makes the coming close send a reset instead of a FIN (`SO_LINGER` with a zero time).
    pub(crate) fn set_reset_on_close(&self) {
        let result = match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_linger(Some(Duration::ZERO)),
            Stream::Unix(_) => Ok(()),
        };
        if let Err(err) = result {
            log::debug!("could not set SO_LINGER for an abort: {err}");
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    /// Forwarded, or `Write`'s default would send only the first non-empty buffer: one
    /// `writev` is how held output and a new piece leave in one system call.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Forwards `mio::event::Source` to whichever socket an enum holds.
macro_rules! forward_source {
    ($ty:ident { $($variant:ident),+ }) => {
        impl Source for $ty {
            fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self { $($ty::$variant(s, ..) => s.register(r, t, i),)+ }
            }
            fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
                match self { $($ty::$variant(s, ..) => s.reregister(r, t, i),)+ }
            }
            fn deregister(&mut self, r: &Registry) -> io::Result<()> {
                match self { $($ty::$variant(s, ..) => s.deregister(r),)+ }
            }
        }
    };
}

forward_source!(Stream { Tcp, Unix });
forward_source!(ListenerSocket { Tcp, Unix });

/// A listening socket. A Unix listener remembers its path so it can remove the file later.
#[derive(Debug)]
pub(crate) enum ListenerSocket {
    Tcp(TcpListener),
    /// The path is the file to remove on drop: `None` for a socket made elsewhere.
    Unix(UnixListener, Option<PathBuf>),
}

impl ListenerSocket {
    pub(crate) fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            ListenerSocket::Tcp(l) => l
                .accept()
                .map(|(s, addr)| (Stream::Tcp(s), PeerAddr::Tcp(addr))),
            ListenerSocket::Unix(l, _) => l
                .accept()
                .map(|(s, addr)| (Stream::Unix(s), PeerAddr::from_unix(&addr))),
        }
    }

    /// Where the listener listens: `tcp:ADDR:PORT` with the port bound, `unix:PATH`, or
    /// `fd:N` for an unnamed socket made elsewhere.
    pub(crate) fn local_endpoint(&self) -> Endpoint {
        let local = match self {
            ListenerSocket::Tcp(l) => l.local_addr().ok().map(Endpoint::Tcp),
            ListenerSocket::Unix(_, Some(path)) => Some(Endpoint::Unix(path.clone())),
            ListenerSocket::Unix(l, None) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| Endpoint::Unix(p.to_path_buf()))),
        };
        local.unwrap_or_else(|| Endpoint::Fd(self.raw_fd()))
    }

    /// A second descriptor for the same socket (`dup(2)`): one for a successor to inherit.
    /// The socket, its accept queue included, lives while either is open.
    pub(crate) fn try_clone_fd(&self) -> io::Result<std::os::fd::OwnedFd> {
        use std::os::fd::AsFd;
        match self {
            ListenerSocket::Tcp(l) => l.as_fd().try_clone_to_owned(),
            ListenerSocket::Unix(l, _) => l.as_fd().try_clone_to_owned(),
        }
    }

    /// Leaves a Unix socket's file in place when this socket drops: it is not ours to
    /// remove any more (a successor listens on it).
    pub(crate) fn forget_path(&mut self) {
        if let ListenerSocket::Unix(_, path) = self {
            *path = None;
        }
    }

    /// The listening socket's descriptor.
    pub(crate) fn raw_fd(&self) -> RawFd {
        match self {
            ListenerSocket::Tcp(l) => l.as_raw_fd(),
            ListenerSocket::Unix(l, _) => l.as_raw_fd(),
        }
    }
}

impl Drop for ListenerSocket {
    /// A Unix listener's file would outlive it and block the next `bind`: remove it.
    fn drop(&mut self) {
        if let ListenerSocket::Unix(_, Some(path)) = self {
            crate::unix_path::remove_socket_file(path);
        }
    }
}

/// `err`, from binding or listening on `addr`, with the address in front of its message
/// ("listen on 127.0.0.1:7000: Address already in use"): the operating system's message
/// alone does not say which of a program's addresses failed. The kind is kept, so callers
/// still match on [`AddrInUse`](io::ErrorKind::AddrInUse) and the like.
pub(crate) fn listen_error(addr: impl fmt::Display, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("listen on {addr}: {err}"))
}

/// A non-blocking TCP socket bound to `addr` with `SO_REUSEADDR` (as mio's `bind` sets it,
/// so that connections of an earlier server in TIME-WAIT do not block a restart), and
/// `SO_REUSEPORT` if asked; not yet listening.
fn bound_tcp_socket(addr: SocketAddr, reuse_port: bool) -> io::Result<socket2::Socket> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP socket bound to `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`, not listening: it
/// holds a port (picked by the kernel for port 0) that several reactors' listening sockets
/// then share, without ever being handed a connection. Errors name `addr`.
pub(crate) fn port_placeholder(addr: SocketAddr) -> io::Result<socket2::Socket> {
    bound_tcp_socket(addr, true).map_err(|err| listen_error(Endpoint::Tcp(addr), err))
}

/// A non-blocking TCP listener on `addr` with `SO_REUSEADDR`, and the backlog and
/// `SO_REUSEPORT` of `options`. Errors name `addr`.
pub(crate) fn tcp_listener(addr: SocketAddr, options: &ListenOptions) -> io::Result<TcpListener> {
    let listening = || {
        let socket = bound_tcp_socket(addr, options.is_reuse_port())?;
        socket.listen(backlog(options))?;
        Ok(TcpListener::from_std(socket.into()))
    };
    listening().map_err(|err| listen_error(Endpoint::Tcp(addr), err))
}

/// The backlog `listen(2)` takes (an `int`; the kernel caps it at `somaxconn` anyway).
pub(crate) fn backlog(options: &ListenOptions) -> i32 {
    i32::try_from(options.backlog_len()).unwrap_or(i32::MAX)
}

/// What a failed `accept` means for the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AcceptFailure {
    /// The queue is empty: wait for the next readiness edge.
    Drained,
    /// One pending connection failed (it was reset before we took it...): skip it, go on.
    SkipOne,
    /// The process or system is out of descriptors or memory. Retrying at once would spin
    /// (the pending connection stays queued, so the listener stays readable); waiting for a
    /// new edge could stall forever. Back off with a timer, then try again.
    Exhausted,
}

pub(crate) fn classify_accept_error(err: &io::Error) -> AcceptFailure {
    match err.kind() {
        io::ErrorKind::WouldBlock => return AcceptFailure::Drained,
        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {
            return AcceptFailure::SkipOne
        }
        _ => {}
    }
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            AcceptFailure::Exhausted
        }
        // Errors accept(2) passes on from the new socket (EPROTO, EPERM from a firewall,
        // ENETDOWN...) concern that one connection.
        _ => AcceptFailure::SkipOne,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_exhaustion_backs_off() {
        let err = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(classify_accept_error(&err), AcceptFailure::Exhausted);
        let err = io::Error::from_raw_os_error(libc::ENFILE);
        assert_eq!(classify_accept_error(&err), AcceptFailure::Exhausted);
    }

    #[test]
    fn an_aborted_handshake_is_skipped() {
        let err = io::Error::from_raw_os_error(libc::ECONNABORTED);
        assert_eq!(classify_accept_error(&err), AcceptFailure::SkipOne);
        let err = io::Error::from_raw_os_error(libc::EPROTO);
        assert_eq!(classify_accept_error(&err), AcceptFailure::SkipOne);
    }

    #[test]
    fn would_block_means_drained() {
        let err = io::Error::from(io::ErrorKind::WouldBlock);
        assert_eq!(classify_accept_error(&err), AcceptFailure::Drained);
    }

    #[test]
    fn peer_addresses_display_readably() {
        let addr: SocketAddr = "[::1]:8080".parse().unwrap();
        assert_eq!(PeerAddr::Tcp(addr).to_string(), "[::1]:8080");
        assert_eq!(
            PeerAddr::Unix(Some("/tmp/x.sock".into())).to_string(),
            "unix:/tmp/x.sock"
        );
    }
}

//! Sockets made elsewhere, handed to a reactor: a listener or a connected stream created by
//! another thread, inherited from a parent or from systemd (`LISTEN_FDS`), or accepted by
//! another reactor; and the balancer that lets one acceptor spread connections over several
//! reactors, each to the least loaded.
//!
//! A socket is just a descriptor: whoever made it, the reactor sets it non-blocking and
//! registers it like one of its own. What must cross threads is the socket, never a handler
//! (handlers are not `Send`): the receiving reactor makes the handler on its own thread,
//! with the factory given to [`Reactor::accept_handovers`](crate::Reactor::accept_handovers).

use std::fmt;
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::net::TcpStream as StdTcpStream;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};

use crate::core::Core;
use crate::handler::{Factory, Handler};
use crate::id::ConnId;
use crate::net::{ListenerSocket, PeerAddr, Stream};
use crate::post::{LoopHandle, PostError};
use crate::state::State;
use crate::transport::Security;

/// A connected stream made outside the reactor, to be served by it: a `std` TCP or
/// Unix-domain stream (`From` each). It is set non-blocking when adopted.
#[derive(Debug)]
pub enum AdoptedStream {
    /// A connected TCP stream.
    Tcp(StdTcpStream),
    /// A connected Unix-domain stream.
    Unix(StdUnixStream),
}

impl From<StdTcpStream> for AdoptedStream {
    fn from(stream: StdTcpStream) -> AdoptedStream {
        AdoptedStream::Tcp(stream)
    }
}

impl From<StdUnixStream> for AdoptedStream {
    fn from(stream: StdUnixStream) -> AdoptedStream {
        AdoptedStream::Unix(stream)
    }
}

impl AdoptedStream {
    /// The non-blocking stream the reactor drives, and its peer.
    pub(crate) fn into_stream(self) -> io::Result<(Stream, PeerAddr)> {
        let stream = match self {
            AdoptedStream::Tcp(s) => {
                s.set_nonblocking(true)?;
                Stream::Tcp(mio::net::TcpStream::from_std(s))
            }
            AdoptedStream::Unix(s) => {
                s.set_nonblocking(true)?;
                Stream::Unix(mio::net::UnixStream::from_std(s))
            }
        };
        // A stream that is not connected has no peer: refuse it rather than serve nothing.
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }
}

/// A listening socket made outside the reactor (`From` a `std` TCP or Unix-domain
/// listener): inherited from systemd socket activation, bound with options the reactor does
/// not set, or bound before dropping privileges. It is set non-blocking when adopted.
#[derive(Debug)]
pub enum AdoptedListener {
    /// A listening TCP socket.
    Tcp(StdTcpListener),
    /// A listening Unix-domain socket. Its file is not removed when the reactor closes it:
    /// whoever made the socket owns the path.
    Unix(StdUnixListener),
}

impl From<StdTcpListener> for AdoptedListener {
    fn from(listener: StdTcpListener) -> AdoptedListener {
        AdoptedListener::Tcp(listener)
    }
}

impl From<StdUnixListener> for AdoptedListener {
    fn from(listener: StdUnixListener) -> AdoptedListener {
        AdoptedListener::Unix(listener)
    }
}

impl AdoptedListener {
    pub(crate) fn into_socket(self) -> io::Result<ListenerSocket> {
        Ok(match self {
            AdoptedListener::Tcp(l) => {
                l.set_nonblocking(true)?;
                ListenerSocket::Tcp(mio::net::TcpListener::from_std(l))
            }
            AdoptedListener::Unix(l) => {
                l.set_nonblocking(true)?;
                ListenerSocket::Unix(mio::net::UnixListener::from_std(l), None)
            }
        })
    }
}

/// Registering adopted streams.
impl Core {
    /// Registers a connected stream, secured by `security`, and opens it with the handler
    /// `make` gives for its peer (`None` refuses it: the stream is closed and counted as
    /// refused).
    pub(crate) fn adopt(
        &mut self,
        stream: Stream,
        peer: PeerAddr,
        security: &Security,
        make: impl FnOnce(&mut Core, &PeerAddr) -> Option<Box<dyn Handler>>,
    ) -> io::Result<Option<ConnId>> {
        let Some(handler) = make(self, &peer) else {
            log::debug!("refused a handed-over connection from {peer}");
            self.stats.refused += 1;
            return Ok(None);
        };
        self.configure_socket(&stream, &peer);
        log::debug!("adopted a connection from {peer}");
        // An adopted stream is connected, its send buffer empty: writable at once. Over TLS
        // it is the server's side: the handshake starts with the client's first bytes.
        let transport = security.transport(stream, true)?;
        let slot = self
            .insert_conn(transport, peer, handler, State::Open)
            .map_err(|(err, _)| err)?;
        self.stats.adopted += 1;
        self.open(slot);
        Ok(Some(ConnId(slot)))
    }

    /// A plaintext stream made elsewhere, served by `handler` (whose `on_open` runs now).
    pub(crate) fn adopt_stream(
        &mut self,
        stream: AdoptedStream,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        let (stream, peer) = stream.into_stream()?;
        let adopted = self.adopt(stream, peer, &Security::default(), |_, _| Some(handler))?;
        Ok(adopted.expect("a handler was given"))
    }

    /// A stream handed over with [`LoopHandle::hand_over`]: served by the handover factory,
    /// secured as [`Reactor::accept_handovers`](crate::Reactor::accept_handovers) (or its
    /// TLS twin) said.
    pub(crate) fn adopt_handed_over(&mut self, stream: Stream, peer: PeerAddr) {
        // A clone (an `Arc` for TLS): `adopt` borrows the core whole.
        let security = self.handover_security.clone();
        let adopted = self.adopt(stream, peer, &security, |core, peer| {
            match &mut core.handover_factory {
                Some(factory) => factory.new_handler(peer),
                None => {
                    log::warn!("a connection was handed over, but this reactor takes none");
                    None
                }
            }
        });
        if let Err(err) = adopted {
            log::warn!("could not register a handed-over connection: {err}");
        }
    }
}

impl LoopHandle {
    /// Hands a connected stream to this handle's reactor, which serves it with the factory
    /// given to [`Reactor::accept_handovers`](crate::Reactor::accept_handovers) (a reactor
    /// without one refuses it). The stream counts in [`load`](LoopHandle::load) until the
    /// reactor has registered it.
    ///
    /// # Errors
    /// The stream is handed back on [`PostError::Full`] and [`PostError::ShuttingDown`], as
    /// for [`post`](LoopHandle::post).
    pub fn hand_over(
        &self,
        stream: impl Into<AdoptedStream>,
    ) -> Result<(), PostError<AdoptedStream>> {
        let stream = stream.into();
        // Converted on the loop's thread, where a failure can be logged with the rest.
        self.push_handover(stream, |stream| {
            move |lc: &mut crate::LoopContext<'_>| match stream.into_stream() {
                Ok((stream, peer)) => lc.core.adopt_handed_over(stream, peer),
                Err(err) => log::warn!("a handed-over stream was not usable: {err}"),
            }
        })
    }

    /// Hands over a stream a listener of this crate accepted (already non-blocking).
    pub(crate) fn hand_over_accepted(
        &self,
        stream: Stream,
        peer: PeerAddr,
    ) -> Result<(), PostError<(Stream, PeerAddr)>> {
        self.push_handover((stream, peer), |(stream, peer)| {
            move |lc: &mut crate::LoopContext<'_>| lc.core.adopt_handed_over(stream, peer)
        })
    }
}

/// An acceptor's side of spreading connections: the reactors it feeds.
pub(crate) struct Balancer {
    targets: Vec<LoopHandle>,
    /// Where the search for the least loaded starts, so that ties rotate.
    next: usize,
}

impl Balancer {
    pub(crate) fn new(targets: Vec<LoopHandle>) -> Balancer {
        Balancer { targets, next: 0 }
    }

    /// Hands `stream` to the least loaded reactor (ties go round-robin). If that one's
    /// queue is full the next least loaded is tried; if none takes it, it is closed.
    pub(crate) fn hand_over(&mut self, stream: Stream, peer: PeerAddr) -> bool {
        let count = self.targets.len();
        let mut order: Vec<usize> = (0..count).map(|i| (self.next + i) % count).collect();
        // Stable: among equal loads the rotation order decides.
        order.sort_by_key(|&i| self.targets[i].load());
        self.next = (self.next + 1) % count.max(1);
        let mut item = (stream, peer);
        for i in order {
            match self.targets[i].hand_over_accepted(item.0, item.1) {
                Ok(()) => return true,
                Err(err) => item = err.into_inner(),
            }
        }
        log::warn!("no reactor took the connection from {}: closed", item.1);
        false
    }
}

impl fmt::Debug for Balancer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Balancer")
            .field("targets", &self.targets.len())
            .finish()
    }
}

/// What a listener does with a connection it accepted.
pub(crate) enum Destination {
    /// Serve it here, with a handler from this factory.
    Here(Box<dyn Factory>),
    /// Hand it to the least loaded of other reactors.
    Elsewhere(Balancer),
}

//! Sockets made elsewhere, handed to a reactor: a listener or a connected stream created by
//! another thread, inherited from a parent or from systemd (`LISTEN_FDS`), or accepted by
//! another reactor; and the balancer that lets one acceptor spread connections over several
//! reactors, each to the least loaded.
//!
//! A socket is just a descriptor: whoever made it, the reactor sets it non-blocking and
//! registers it like one of its own. What must cross threads is the socket, never a handler
//! (handlers are not `Send`): the receiving reactor makes the handler on its own thread,
//! with the factory of its `handover:` listen ([`Reactor::listen`](crate::Reactor::listen)).

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::TcpListener as StdTcpListener;
use std::net::TcpStream as StdTcpStream;
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream as StdUnixStream};
use std::rc::Rc;

use crate::core::Core;
use crate::handler::{Factory, Handler};
use crate::id::ConnId;
use crate::net::{ListenerSocket, PeerAddr, Stream};
use crate::options::{ConnectionSettings, StreamOptions};
use crate::post::{LoopContext, LoopHandle, PostError};
use crate::reactor::Reactor;
use crate::state::State;

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
/// listener), or inherited (`fd:N`). It is set non-blocking when adopted.
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
    /// Its descriptor, to name it in errors (`fd:N`).
    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            AdoptedListener::Tcp(l) => l.as_raw_fd(),
            AdoptedListener::Unix(l) => l.as_raw_fd(),
        }
    }

    /// The non-blocking listener the reactor drives.
    ///
    /// # Errors
    /// `InvalidInput` for a socket that does not listen (`SO_ACCEPTCONN` unset: a connected
    /// or merely bound socket, which `accept` would fail on forever); the operating system's
    /// error setting it non-blocking.
    pub(crate) fn into_socket(self) -> io::Result<ListenerSocket> {
        let listening = match &self {
            AdoptedListener::Tcp(l) => socket2::SockRef::from(l).is_listener(),
            AdoptedListener::Unix(l) => socket2::SockRef::from(l).is_listener(),
        };
        if !listening? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a listening socket (it was never given to listen(2))",
            ));
        }
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
    /// Registers a connected stream, secured and limited as `settings` say, and opens it
    /// with the handler `make` gives for its peer (`None` refuses it: the stream is closed
    /// and counted as refused).
    pub(crate) fn adopt(
        &mut self,
        stream: Stream,
        peer: PeerAddr,
        settings: &ConnectionSettings,
        make: impl FnOnce(&mut Core, &PeerAddr) -> Option<Box<dyn Handler>>,
    ) -> io::Result<Option<ConnId>> {
        settings.validate()?;
        let Some(handler) = make(self, &peer) else {
            log::debug!("refused a handed-over connection from {peer}");
            self.stats.refused += 1;
            return Ok(None);
        };
        stream.configure(self.config(), settings.dead_peers, &peer);
        log::debug!("adopted a connection from {peer}");
        // An adopted stream is connected, its send buffer empty: writable at once. Over TLS
        // it is the server's side: the handshake starts with the client's first bytes.
        let transport = settings.security.transport(stream, true)?;
        let slot = self
            .insert_conn(
                transport,
                (peer, settings.output_limits),
                handler,
                State::Open,
            )
            .map_err(|(err, _)| err)?;
        self.stats.adopted += 1;
        self.open(slot);
        Ok(Some(ConnId(slot)))
    }

    /// A stream made elsewhere, secured as `options` say and served by `handler` (whose
    /// `on_open` runs now).
    pub(crate) fn adopt_stream(
        &mut self,
        stream: AdoptedStream,
        options: &impl StreamOptions,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        if options.proxy_protocol() {
            return Err(crate::listen::proxy_protocol_unsupported("adopt"));
        }
        let (stream, peer) = stream.into_stream()?;
        let settings = options.connection_settings();
        let adopted = self.adopt(stream, peer, &settings, |_, _| Some(handler))?;
        Ok(adopted.expect("a handler was given"))
    }

    /// A stream handed over with [`LoopHandle::hand_over`]: served by the factory of the
    /// `handover:` listen, secured as its options say.
    pub(crate) fn adopt_handed_over(&mut self, stream: Stream, peer: PeerAddr) {
        let Some(handover) = self.listens.handover() else {
            // Refused like a peer no factory wants: counted, traced, its socket closed.
            log::warn!("{peer} was handed over, but this reactor has no handover: listen");
            return self.refuse(peer);
        };
        // Clones (an `Rc` and an `Arc`): `adopt` borrows the core whole.
        let (destination, settings) = (
            handover.destination.clone(),
            handover.options.connection_settings(),
        );
        let adopted = self.adopt(stream, peer, &settings, |_, peer| {
            destination.new_handler(peer)
        });
        if let Err(err) = adopted {
            log::warn!("could not register a handed-over connection: {err}");
        }
    }
}

impl Reactor {
    /// Serves a connected stream made elsewhere (a `std` TCP or Unix-domain stream: from a
    /// blocking connect, another thread, another reactor, a parent process) with `handler`,
    /// whose [`on_open`](Handler::on_open) runs at once. `options` says which side this is
    /// and how it is secured: [`ListenOptions`](crate::ListenOptions) for a stream accepted
    /// elsewhere (with TLS, as the server), [`ConnectOptions`](crate::ConnectOptions) for one
    /// connected elsewhere (as the client). The stream is set non-blocking, with the config's
    /// socket options.
    ///
    /// # Errors
    /// [`NotConnected`](io::ErrorKind::NotConnected) for a stream without a peer; the
    /// operating system's error setting it non-blocking or registering it with epoll. The
    /// stream and the handler are dropped without any callback.
    ///
    /// # Examples
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use mio_reactor::{ConnectOptions, Context, Handler, Reactor};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         ctx.write(b"hello");
    ///         ctx.close();
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    ///
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let ours = std::net::TcpStream::connect(server.local_addr()?)?; // a blocking connect
    /// let (mut theirs, _) = server.accept()?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.adopt(ours, ConnectOptions::default(), Hello)?;
    /// while reactor.stats().bytes_out < 5 {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// let mut heard = [0; 5];
    /// theirs.read_exact(&mut heard)?;
    /// assert_eq!(&heard, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn adopt(
        &mut self,
        stream: impl Into<AdoptedStream>,
        options: impl StreamOptions,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        self.core.read_clock();
        self.core
            .adopt_stream(stream.into(), &options, Box::new(handler))
    }
}

impl LoopContext<'_> {
    /// Serves a connected stream made elsewhere with `handler`, as
    /// [`Reactor::adopt`] does.
    ///
    /// # Errors
    /// Those of [`Reactor::adopt`].
    pub fn adopt(
        &mut self,
        stream: impl Into<AdoptedStream>,
        options: impl StreamOptions,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        self.core
            .adopt_stream(stream.into(), &options, Box::new(handler))
    }
}

impl LoopHandle {
    /// Hands a connected stream to this handle's reactor, which serves it with the factory
    /// and options of its `handover:` listen ([`Reactor::listen`]; a reactor without one
    /// closes the stream and logs a warning). The stream counts in [`load`](LoopHandle::load) until the
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
#[derive(Clone)]
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
#[derive(Clone)]
pub(crate) enum Destination {
    /// Serve it here, with a handler from this factory (one factory for every socket of a
    /// listen: a name that resolved to two addresses shares it).
    Here(Rc<RefCell<Box<dyn Factory>>>),
    /// Hand it to the least loaded of other reactors.
    Elsewhere(Balancer),
}

impl Destination {
    /// A handler for `peer` from the factory; `None` if it refuses the peer, or if
    /// connections go elsewhere.
    pub(crate) fn new_handler(&self, peer: &PeerAddr) -> Option<Box<dyn Handler>> {
        match self {
            // A factory never reaches its own listener while it runs: no second borrow.
            Destination::Here(factory) => factory.borrow_mut().new_handler(peer),
            Destination::Elsewhere(_) => None,
        }
    }
}

//! The one door for accepting connections: [`Reactor::listen`] takes an endpoint, options
//! and a factory, opens the sockets the endpoint names, and returns a [`Listening`] that says
//! what it bound; [`Reactor::stop_listening`] closes them again and
//! [`Reactor::listeners`] lists them.
//!
//! Whatever the endpoint (an address to bind, a name to resolve, a path, an inherited
//! descriptor, a socket made elsewhere), the result is the same: listening sockets in the
//! slab, each with the listen's id, endpoint, options and factory. So the accept path
//! (`accept.rs`) knows nothing of where a socket came from.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use mio::Interest;

use crate::adopt::{AdoptedListener, Destination};
use crate::core::Core;
use crate::endpoint::{Endpoint, EndpointError, IntoEndpoint};
use crate::entries::{Entries, Entry};
use crate::handler::{Factory, Handler};
use crate::id::ListenerId;
use crate::inherited::{self, InheritedSocket};
use crate::listener::Listener;
use crate::net::{self, ListenerSocket, PeerAddr};
use crate::options::ListenOptions;
use crate::post::LoopContext;
use crate::reactor::Reactor;
use crate::threads::first_tcp_addr;
use crate::unix_path::bind_unix;
use crate::watch_handler::WatchContext;

/// What a [`Reactor::listen`] opened: its id, the endpoint it was given, and the address of
/// every socket it bound.
///
/// # Examples
/// ```
/// use mio_reactor::{Context, Endpoint, Handler, ListenOptions, Reactor};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         ctx.write(data);
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let listening = reactor.listen("tcp:127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?;
/// let addr = listening.local_addr()?; // with the port the kernel picked
/// assert_eq!(listening.endpoint().to_string(), "tcp:127.0.0.1:0"); // as asked
/// assert_eq!(listening.bound(), [Endpoint::Tcp(addr)]); // as bound
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    id: ListenerId,
    endpoint: Endpoint,
    bound: Vec<Endpoint>,
}

impl Listening {
    /// The listen's id, for [`Reactor::stop_listening`].
    pub fn id(&self) -> ListenerId {
        self.id
    }

    /// The endpoint the listen was given (a name stays a name; port 0 stays 0).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The local address of each socket the listen opened, in the order a name resolved:
    /// `tcp:` with the port the kernel picked, `unix:` with the path. One for an address or
    /// a path; one per address for a host name.
    pub fn bound(&self) -> &[Endpoint] {
        &self.bound
    }

    /// The first TCP address bound, with the port the kernel picked for port 0.
    ///
    /// # Errors
    /// [`NotFound`](io::ErrorKind::NotFound) for a listen that bound no TCP socket (a
    /// Unix-domain path, `handover:`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        first_tcp_addr(&self.bound)
    }
}

/// One listening socket of a reactor, as [`Reactor::listeners`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenerInfo {
    /// The listen that opened it.
    pub id: ListenerId,
    /// The endpoint that listen was given.
    pub endpoint: Endpoint,
    /// The socket's own address (`tcp:127.0.0.1:7000`, `unix:/run/app.sock`).
    pub local: Endpoint,
    /// Its descriptor; `None` for `handover:`, which has no socket.
    pub fd: Option<RawFd>,
}

/// What [`Reactor::listen`] accepts: everything [`IntoEndpoint`] does (an [`Endpoint`], a
/// string in its grammar, a [`SocketAddr`]), and a `std` listening socket made elsewhere (a
/// [`std::net::TcpListener`] or a [`std::os::unix::net::UnixListener`]: bound with options
/// the reactor does not set, or before dropping privileges), which is set non-blocking and
/// listed as `fd:N`. Whoever made a Unix socket owns its path: the reactor never removes it.
///
/// Sealed: implemented here only.
pub trait IntoListener: private::Sealed {}

/// Where a listen's sockets come from. (`pub` only for the sealed trait: this module is
/// private.)
#[derive(Debug)]
pub enum Source {
    Named(Endpoint),
    Made(AdoptedListener),
}

mod private {
    use super::Source;
    use crate::endpoint::EndpointError;

    pub trait Sealed {
        fn into_source(self) -> Result<Source, EndpointError>;
    }
}

macro_rules! listen_on_endpoints {
    ($($ty:ty),*) => {$(
        impl private::Sealed for $ty {
            fn into_source(self) -> Result<Source, EndpointError> {
                self.into_endpoint().map(Source::Named)
            }
        }
        impl IntoListener for $ty {}
    )*};
}

listen_on_endpoints!(Endpoint, &Endpoint, &str, String, &String, SocketAddr);

macro_rules! listen_on_sockets {
    ($($ty:ty),*) => {$(
        impl private::Sealed for $ty {
            fn into_source(self) -> Result<Source, EndpointError> {
                Ok(Source::Made(self.into()))
            }
        }
        impl IntoListener for $ty {}
    )*};
}

listen_on_sockets!(std::net::TcpListener, std::os::unix::net::UnixListener);

impl Reactor {
    /// Listens where `on` says, with `options`, and serves each accepted connection with a
    /// handler from `factory`, a closure such as `|_| Some(Echo)` or `|peer| ...` (see
    /// [`Factory`] for refusing peers). Returns what it bound.
    ///
    /// `on` is an [`Endpoint`] or its text (`"tcp:127.0.0.1:0"`, `"127.0.0.1:0"`,
    /// `"[::1]:7000"`, `"tcp:localhost:7000"`, `"unix:/run/app.sock"`, `"fd:3"`,
    /// `"systemd:web"`, `"handover:"`), a [`SocketAddr`], or a `std` listener made
    /// elsewhere ([`IntoListener`]). Port 0 picks a free port. A host name is resolved here,
    /// before the loop runs, and listened on at every address it resolves to, with one
    /// factory for all of them. A Unix-domain path replaces a stale socket file but never a
    /// live one, and the file is removed when the listener closes. `handover:` takes the
    /// streams other threads hand over ([`LoopHandle::hand_over`](crate::LoopHandle::hand_over)).
    ///
    /// `options` compose: TLS, `SO_REUSEPORT`, the backlog, a Unix socket's mode
    /// ([`ListenOptions`]).
    ///
    /// The closure bound is spelled out here, not as `impl Factory`, so that Rust infers a
    /// closure's argument type from it.
    ///
    /// # Errors
    /// Each names the endpoint ("listen on tcp:127.0.0.1:7000: Address already in use"):
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput): text outside the endpoint grammar;
    ///   an endpoint that cannot listen (`udp:` belongs to
    ///   [`bind_udp`](Reactor::bind_udp)); an inherited UDP socket;
    /// - a name that does not resolve (the resolver's error);
    /// - [`AddrInUse`](io::ErrorKind::AddrInUse): the address is taken (without
    ///   `SO_REUSEPORT` on both sockets), or a Unix path is a live socket or not a socket;
    ///   a second `handover:` listen ([`AlreadyExists`](io::ErrorKind::AlreadyExists));
    /// - [`AddrNotAvailable`](io::ErrorKind::AddrNotAvailable): the address is not this
    ///   host's; [`PermissionDenied`](io::ErrorKind::PermissionDenied): a port below 1024
    ///   without the privilege, or a path in a directory we may not write;
    /// - [`NotFound`](io::ErrorKind::NotFound): `fd:N` or `systemd:NAME` names nothing this
    ///   process inherited (the message lists what it did);
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput) too for a socket made elsewhere or
    ///   inherited that does not listen (bound or connected, never given to `listen(2)`);
    /// - [`Other`](io::ErrorKind::Other): the reactor is shutting down (its listeners are
    ///   closed, and no new one is opened);
    /// - the operating system's errors registering with epoll (`ENOMEM`, `ENOSPC`).
    ///
    /// A name that resolves to several addresses listens on all or none: a failure closes
    /// the sockets already opened.
    ///
    /// # Examples
    /// A plaintext port and a Unix socket, one factory each:
    /// ```
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data);
    ///         data.len()
    ///     }
    /// }
    ///
    /// let dir = std::env::temp_dir().join(format!("listen-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("echo.sock");
    ///
    /// let mut reactor = Reactor::new()?;
    /// let tcp = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?;
    /// let unix = reactor.listen(
    ///     format!("unix:{}", path.display()),
    ///     ListenOptions::default().unix_mode(0o600),
    ///     |_| Some(Echo),
    /// )?;
    /// assert_eq!(reactor.listeners().len(), 2);
    ///
    /// // A bad endpoint is an error that names it.
    /// let err = reactor.listen("tpc:127.0.0.1:0", ListenOptions::default(), |_| Some(Echo)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// assert!(err.to_string().contains("unknown scheme `tpc`"));
    ///
    /// assert!(reactor.stop_listening(unix.id())); // the file goes with the socket
    /// assert!(!path.exists());
    /// assert!(reactor.stop_listening(tcp.id()));
    /// # std::fs::remove_dir(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen<L, F, H>(
        &mut self,
        on: L,
        options: ListenOptions,
        factory: F,
    ) -> io::Result<Listening>
    where
        L: IntoListener,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        let source = on.into_source()?;
        self.core.read_clock();
        self.core
            .listen(source, options, Destination::here(Box::new(factory)))
    }

    /// Stops the listen `id`: its sockets are deregistered and closed at once (a Unix
    /// socket's file removed), so the port is free afterwards; connections it accepted
    /// go on. Connections still in the kernel's accept queue are reset, as closing any
    /// listening socket does. Returns `false` if no such listen is open.
    pub fn stop_listening(&mut self, id: ListenerId) -> bool {
        self.core.stop_listening(id)
    }

    /// Every listening socket of this reactor, in the order they were opened, with its
    /// listen's id and endpoint, its own address and its descriptor.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.core.listener_infos()
    }
}

impl LoopContext<'_> {
    /// Stops the listen `id`, as [`Reactor::stop_listening`] does.
    pub fn stop_listening(&mut self, id: ListenerId) -> bool {
        self.core.stop_listening(id)
    }

    /// This reactor's listening sockets, as [`Reactor::listeners`] lists them.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.core.listener_infos()
    }
}

impl WatchContext<'_> {
    /// Stops the listen `id`, as [`Reactor::stop_listening`] does (from a signal's handler,
    /// say).
    pub fn stop_listening(&mut self, id: ListenerId) -> bool {
        self.core.stop_listening(id)
    }

    /// This reactor's listening sockets, as [`Reactor::listeners`] lists them.
    pub fn listeners(&self) -> Vec<ListenerInfo> {
        self.core.listener_infos()
    }
}

/// Opens the listening sockets `endpoint` names. Blocks to resolve a host name.
fn open_sockets(endpoint: &Endpoint, options: &ListenOptions) -> io::Result<Vec<ListenerSocket>> {
    let named = |err: io::Error| net::listen_error(endpoint, err);
    let from_predecessor = inherited::take_from_predecessor(endpoint);
    if !from_predecessor.is_empty() {
        return from_predecessor
            .into_iter()
            .map(|socket| adopt_from_predecessor(endpoint, socket).map_err(named))
            .collect();
    }
    match endpoint {
        Endpoint::Tcp(_) | Endpoint::TcpName { .. } => endpoint
            .resolve()?
            .into_iter()
            .map(|addr| net::tcp_listener(addr, options).map(ListenerSocket::Tcp))
            .collect(),
        Endpoint::Unix(path) => {
            let listener = bind_unix(path, options)?;
            Ok(vec![ListenerSocket::Unix(listener, Some(path.clone()))])
        }
        Endpoint::Fd(_) | Endpoint::Systemd(_) => {
            let socket = match inherited::take(endpoint).map_err(named)? {
                InheritedSocket::Tcp(listener) => AdoptedListener::Tcp(listener),
                InheritedSocket::Unix(listener) => AdoptedListener::Unix(listener),
                InheritedSocket::Udp(_) => {
                    return Err(named(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a UDP socket: bind_udp takes it",
                    )))
                }
            };
            Ok(vec![socket.into_socket().map_err(named)?])
        }
        Endpoint::Udp(_) | Endpoint::UdpName { .. } => Err(named(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a datagram endpoint cannot listen: Reactor::bind_udp binds it",
        ))),
        // `Core::listen` serves `handover:` without a socket; nothing else asks.
        Endpoint::Handover => Err(named(io::Error::new(
            io::ErrorKind::InvalidInput,
            "handover: has no socket to open",
        ))),
    }
}

/// A listener the predecessor listened on `endpoint` with (an upgrade, `upgrade.rs`), as
/// this process's own: a Unix socket's file is this process's to remove when it stops, as if
/// it had bound it. Its socket options (backlog, `SO_REUSEPORT`, a Unix mode) are those it
/// was made with.
fn adopt_from_predecessor(
    endpoint: &Endpoint,
    socket: InheritedSocket,
) -> io::Result<ListenerSocket> {
    log::info!("adopting the listener on {endpoint} from the predecessor");
    let adopted = match socket {
        InheritedSocket::Tcp(listener) => AdoptedListener::Tcp(listener),
        InheritedSocket::Unix(listener) => AdoptedListener::Unix(listener),
        InheritedSocket::Udp(_) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the predecessor handed over a UDP socket",
            ))
        }
    };
    let mut socket = adopted.into_socket()?;
    if let (ListenerSocket::Unix(_, path), Endpoint::Unix(listened_on)) = (&mut socket, endpoint) {
        *path = Some(listened_on.clone());
    }
    Ok(socket)
}

/// The factory and security of the `handover:` listen, if any: what serves the streams
/// other threads hand to this reactor.
pub(crate) struct Handover {
    pub(crate) id: ListenerId,
    pub(crate) destination: Destination,
    pub(crate) options: ListenOptions,
}

/// The loop's part that keeps what a listen is beyond its sockets: the `handover:` listen,
/// which has no socket and so no slab entry; and the ids it gives out.
#[derive(Default)]
pub(crate) struct Listens {
    /// The `handover:` listen, which serves streams other threads hand over (`adopt.rs`).
    handover: Option<Handover>,
}

impl Listens {
    /// The `handover:` listen, if there is one.
    pub(crate) fn handover(&self) -> Option<&Handover> {
        self.handover.as_ref()
    }

    /// A new id, unique in the process: an id of another reactor (another thread of a
    /// `ReactorThreads`, say) never stops one of this reactor's listens.
    fn next_id(&mut self) -> ListenerId {
        static LAST: AtomicU64 = AtomicU64::new(0);
        ListenerId(LAST.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

impl fmt::Debug for Handover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handover").field("id", &self.id).finish()
    }
}

/// Listening, inside the loop's state.
impl Core {
    /// Opens `source`'s sockets with `options`, registers each with `destination` (shared
    /// by all of them), and says what it bound.
    pub(crate) fn listen(
        &mut self,
        source: Source,
        options: ListenOptions,
        destination: Destination,
    ) -> io::Result<Listening> {
        if self.lifecycle.is_shutting_down() {
            // The shutdown closed the listeners it found; a new one would keep the loop
            // waiting for connections it will never be allowed to serve.
            return Err(io::Error::other("listen: the reactor is shutting down"));
        }
        options.connection_settings().validate()?;
        let (endpoint, sockets) = match source {
            Source::Named(Endpoint::Handover) => {
                if options.get_proxy_protocol().is_some() {
                    return Err(proxy_protocol_unsupported("a handover: listen"));
                }
                return self.listen_for_handovers(options, destination);
            }
            Source::Named(endpoint) => {
                let sockets = open_sockets(&endpoint, &options)?;
                (endpoint, sockets)
            }
            Source::Made(listener) => {
                let fd = Endpoint::Fd(listener.raw_fd());
                let socket = listener
                    .into_socket()
                    .map_err(|err| net::listen_error(fd, err))?;
                (socket.local_endpoint(), vec![socket])
            }
        };
        let id = self.listens.next_id();
        let bound: Vec<Endpoint> = sockets.iter().map(ListenerSocket::local_endpoint).collect();
        for socket in sockets {
            let registered = insert_listener(
                &mut self.entries,
                socket,
                id,
                endpoint.clone(),
                destination.clone(),
                &options,
            );
            if let Err(err) = registered {
                self.stop_listening(id);
                return Err(net::listen_error(&endpoint, err));
            }
        }
        Ok(Listening {
            id,
            endpoint,
            bound,
        })
    }

    fn listen_for_handovers(
        &mut self,
        options: ListenOptions,
        destination: Destination,
    ) -> io::Result<Listening> {
        if self.listens.handover.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "listen on handover:: this reactor takes handovers already",
            ));
        }
        let id = self.listens.next_id();
        self.listens.handover = Some(Handover {
            id,
            destination,
            options,
        });
        Ok(Listening {
            id,
            endpoint: Endpoint::Handover,
            bound: vec![Endpoint::Handover],
        })
    }

    /// Closes every socket of the listen `id`; `false` if it had none.
    pub(crate) fn stop_listening(&mut self, id: ListenerId) -> bool {
        let mut stopped = false;
        if self.listens.handover.as_ref().is_some_and(|h| h.id == id) {
            self.listens.handover = None;
            stopped = true;
        }
        for key in self.entries.listener_keys(|l| l.id == id) {
            remove_listener(&mut self.entries, key);
            stopped = true;
        }
        stopped
    }

    pub(crate) fn listener_infos(&self) -> Vec<ListenerInfo> {
        let mut infos: Vec<(ListenerId, ListenerInfo)> = self
            .entries
            .listeners()
            .map(|l| {
                (
                    l.id,
                    ListenerInfo {
                        id: l.id,
                        endpoint: l.endpoint.clone(),
                        local: l.socket.local_endpoint(),
                        fd: Some(l.socket.raw_fd()),
                    },
                )
            })
            .collect();
        if let Some(handover) = self.listens.handover() {
            infos.push((
                handover.id,
                ListenerInfo {
                    id: handover.id,
                    endpoint: Endpoint::Handover,
                    local: Endpoint::Handover,
                    fd: None,
                },
            ));
        }
        // Slab order is key order, and keys are reused: the ids say what came first.
        infos.sort_by_key(|(id, _)| *id);
        infos.into_iter().map(|(_, info)| info).collect()
    }
}

/// The error of a way in that would hand a PROXY protocol header to handlers as data: its
/// streams were accepted elsewhere, where no header was read.
pub(crate) fn proxy_protocol_unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("the PROXY protocol is read only by a listen that accepts: not by {what}"),
    )
}

/// Registers a listening socket of the listen `id` and puts it in the slab.
pub(crate) fn insert_listener(
    entries: &mut Entries,
    mut socket: ListenerSocket,
    id: ListenerId,
    endpoint: Endpoint,
    destination: Destination,
    options: &ListenOptions,
) -> io::Result<()> {
    let slot = entries.next_slot();
    entries.register(&mut socket, slot, Interest::READABLE)?;
    log::info!("listening on {}", socket.local_endpoint());
    let connections = (options.connection_settings(), options.proxy());
    let listener = Listener::new(slot, (id, endpoint), socket, destination, connections);
    entries.insert(slot, Entry::Listener(listener));
    Ok(())
}

/// Deregisters and closes the listening socket at `key` (a Unix socket's file is removed as
/// it drops).
pub(crate) fn remove_listener(entries: &mut Entries, key: usize) {
    if let Some(listener) = entries.take_listener(key) {
        close_listener(entries, listener);
    }
}

/// Deregisters and closes every listening socket, leaving a Unix socket's file in place:
/// after an upgrade, the successor listens on the same sockets, at the same paths.
pub(crate) fn release_listeners(entries: &mut Entries) {
    for key in entries.listener_keys(|_| true) {
        if let Some(mut listener) = entries.take_listener(key) {
            listener.socket.forget_path();
            close_listener(entries, listener);
        }
    }
}

fn close_listener(entries: &mut Entries, mut listener: Listener) {
    log::info!("stopped listening on {}", listener.socket.local_endpoint());
    if let Err(err) = entries.deregister(&mut listener.socket) {
        log::debug!("deregistering a listener: {err}");
    }
}

impl Destination {
    /// Serve here, with handlers from `factory`.
    pub(crate) fn here(factory: Box<dyn Factory>) -> Destination {
        Destination::Here(Rc::new(RefCell::new(factory)))
    }
}

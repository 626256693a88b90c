//! One reactor per core: N threads, each running its own single-threaded loop, sharing a
//! listening port through `SO_REUSEPORT`.
//!
//! Nothing is shared between the loops: no lock, no queue, no work stealing. The kernel
//! spreads incoming connections across the listening sockets of the group (by a hash of the
//! connection's addresses), and each connection then lives its whole life on one thread.
//! That is how nginx, Envoy and tokio-based servers with `SO_REUSEPORT` scale, and it keeps
//! every handler single-threaded: `Rc`, `RefCell` and no `Send` bound.
//!
//! The cost: connections are spread by hash, not by load, so one thread can get busier than
//! another; and state shared across connections on different threads (a chat room) needs
//! its own cross-thread channel. For such servers, one reactor is the simpler choice.
//!
//! Or one acceptor thread spreads connections by load ([`Spread::LeastLoaded`]), handing
//! each socket (never a handler) to the least loaded reactor.
//!
//! With TLS in the listen's options, every reactor's connections are secured: the one
//! rustls config is shared, each session lives in its connection's transport, on its
//! connection's thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;

use crate::adopt::{Balancer, Destination};
use crate::config::Config;
use crate::endpoint::{Endpoint, IntoEndpoints};
use crate::handler::Handler;
use crate::listen::Source;
use crate::net::PeerAddr;
use crate::options::ListenOptions;
use crate::post::LoopHandle;
use crate::reactor::Reactor;
use crate::shutdown::ShutdownHandle;
use crate::stats::Stats;

/// N reactors on N threads, stopped together by one [`ShutdownHandle`].
///
/// # Examples
/// Two echo reactors sharing one port:
/// ```
/// use mio_reactor::{Config, Context, Handler, ListenOptions, ReactorThreads, Spread};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         ctx.write(data);
///         data.len()
///     }
/// }
///
/// let options = ListenOptions::default();
/// let threads = ReactorThreads::serve(2, Config::default(), "127.0.0.1:0", options, Spread::ReusePort, |_reactor, _thread| {
///     |_: &_| Some(Echo)
/// })?;
/// let mut stream = std::net::TcpStream::connect(threads.local_addr()?)?;
/// # use std::io::{Read, Write};
/// stream.write_all(b"hi")?;
/// let mut reply = [0; 2];
/// stream.read_exact(&mut reply)?;
/// drop(stream);
/// threads.shutdown_handle().shutdown();
/// let stats = threads.join()?;
/// assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ReactorThreads {
    shutdown: ShutdownHandle,
    threads: Vec<JoinHandle<io::Result<Stats>>>,
    bound: Vec<Endpoint>,
}

impl ReactorThreads {
    /// Starts `count` threads. Each builds a reactor from `config` and calls
    /// `setup(&mut reactor, index)` to register its listeners (typically
    /// [`Reactor::listen`] with `SO_REUSEPORT` on a shared address), then runs it. Returns once every
    /// setup succeeded, or with the first setup error (after stopping the threads started).
    ///
    /// `setup` runs on the reactor's own thread, so the handlers it makes need not be `Send`;
    /// only `setup` itself crosses threads.
    ///
    /// # Errors
    /// The first of these, with the threads started before it shut down and joined first:
    /// - the error of creating a thread (`std::thread::Builder::spawn`: the process's thread
    ///   or memory limit);
    /// - a thread's [`Reactor::with_config`] error: an invalid `config`
    ///   ([`InvalidInput`](io::ErrorKind::InvalidInput), found by the first thread), or the
    ///   operating system refusing the epoll instance, `eventfd` or `dup`;
    /// - the first error `setup` returns (a [`Reactor::listen`] error, say);
    /// - [`Other`](io::ErrorKind::Other), "a reactor thread died during setup", if `setup`
    ///   panicked.
    ///
    /// # Examples
    /// Each reactor on a port of its own, its address sent back from the setup:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::mpsc;
    /// use mio_reactor::{Config, Context, Handler, ListenOptions, ReactorThreads};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data);
    ///         data.len()
    ///     }
    /// }
    ///
    /// let (tx, rx) = mpsc::channel();
    /// let threads = ReactorThreads::spawn(2, Config::default(), move |reactor, index| {
    ///     let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?.local_addr()?;
    ///     tx.send((index, addr)).expect("the receiver is alive");
    ///     Ok(())
    /// })?;
    /// let mut addrs: Vec<_> = rx.try_iter().collect(); // every setup has run by now
    /// addrs.sort();
    /// for (_, addr) in &addrs {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    ///     stream.write_all(b"hi")?;
    ///     let mut echo = [0; 2];
    ///     stream.read_exact(&mut echo)?;
    /// }
    /// threads.shutdown_handle().shutdown();
    /// let accepted: Vec<u64> = threads.join()?.iter().map(|stats| stats.accepted).collect();
    /// assert_eq!(accepted, [1, 1]);
    ///
    /// // A failing setup is spawn's error.
    /// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let addr = taken.local_addr()?;
    /// let err = ReactorThreads::spawn(2, Config::default(), move |reactor, _| {
    ///     reactor.listen(addr, ListenOptions::default(), |_| Some(Echo)).map(drop)
    /// })
    /// .unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<S>(count: usize, config: Config, setup: S) -> io::Result<ReactorThreads>
    where
        S: Fn(&mut Reactor, usize) -> io::Result<()> + Send + Sync + 'static,
    {
        let setup = std::sync::Arc::new(setup);
        let mut started = ReactorThreads {
            bound: Vec::new(),
            shutdown: ShutdownHandle::all([]),
            threads: Vec::with_capacity(count),
        };
        for index in 0..count {
            let (ready_tx, ready) = mpsc::channel();
            let (config, setup) = (config.clone(), setup.clone());
            let thread = std::thread::Builder::new()
                .name(format!("reactor-{index}"))
                .spawn(move || {
                    let mut reactor = match Reactor::with_config(config) {
                        Ok(reactor) => reactor,
                        Err(err) => {
                            let _ = ready_tx.send(Err(err));
                            return Ok(Stats::default());
                        }
                    };
                    let outcome = setup(&mut reactor, index).map(|()| reactor.shutdown_handle());
                    let failed = outcome.is_err();
                    let _ = ready_tx.send(outcome);
                    if failed {
                        return Ok(reactor.stats());
                    }
                    reactor.run().map(|()| reactor.stats())
                })?;
            started.threads.push(thread);
            let handle = ready
                .recv()
                .map_err(|_| io::Error::other("a reactor thread died during setup"))
                .and_then(|outcome| outcome);
            match handle {
                Ok(handle) => {
                    started.shutdown = ShutdownHandle::all([started.shutdown.clone(), handle])
                }
                Err(err) => {
                    started.shutdown.shutdown();
                    let _ = started.join();
                    return Err(err);
                }
            }
        }
        Ok(started)
    }

    /// Starts `count` reactors that serve the connections of one listen: at `endpoints`
    /// (one, or several: [`IntoEndpoints`]), with `options` (TLS, backlog...), spread over
    /// the reactors as `spread` says. Returns once every reactor listens;
    /// [`bound`](ReactorThreads::bound) and [`local_addr`](ReactorThreads::local_addr) say
    /// where (port 0 picks one free port per address, the same for every reactor).
    ///
    /// Each reactor is set up on its own thread, before it listens, by
    /// `make_factory(&mut reactor, index)` (`index` from 0 to `count - 1`), which returns
    /// the factory of that reactor's handlers and may prepare the reactor for them: a
    /// [`before_sleep`](Reactor::before_sleep) hook, [loop timers](Reactor::set_loop_timer),
    /// an observer. Whatever it makes there stays on that thread, so it need not be `Send`.
    ///
    /// - [`Spread::ReusePort`]: each reactor listens on its own socket with `SO_REUSEPORT`
    ///   and the kernel spreads connections by a hash of their addresses. Only for `tcp:`
    ///   endpoints (a name listens at each of its addresses). With one reactor nothing is
    ///   shared: it listens as [`Reactor::listen`] does, on any endpoint, with `options` as
    ///   given (`SO_REUSEPORT` only if they ask for it).
    /// - [`Spread::LeastLoaded`]: one more reactor, on one more thread, only accepts, and
    ///   hands each connection to the reactor with the fewest open connections plus
    ///   handovers in flight (ties in turn), which serves it with its `handover:` listen
    ///   ([`LoopHandle::hand_over`](crate::LoopHandle::hand_over)). Any endpoint a listen
    ///   takes. The acceptor moves only sockets: a TLS handshake, and every record after it,
    ///   is handled by the reactor that serves the connection. `make_factory` is not called
    ///   for the acceptor.
    ///
    /// `SO_REUSEPORT`'s hash evens out over many short connections but can give one thread
    /// most of a few long-lived ones; the acceptor looks at the load, for one more thread
    /// and a cross-thread handover per connection (a post and, when the target sleeps, a
    /// wake). [`join`](ReactorThreads::join) returns one [`Stats`] per reactor in order,
    /// then, with [`Spread::LeastLoaded`], the acceptor's (its [`Stats::handed_over`]).
    ///
    /// # Errors
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput): `count` is 0; no endpoint; text
    ///   outside the endpoint grammar; [`Spread::ReusePort`] on more than one reactor with
    ///   an endpoint that is not `tcp:`;
    /// - for [`Spread::ReusePort`], binding the placeholder socket that holds the port
    ///   while the reactors bind it: the errors of [`Reactor::listen`]
    ///   ([`AddrInUse`](io::ErrorKind::AddrInUse) when a socket without `SO_REUSEPORT`, or
    ///   of another user, holds the port...);
    /// - then those of [`spawn`](ReactorThreads::spawn), whose setup is `make_factory` and
    ///   each reactor's listens (with one reactor, the errors of [`Reactor::listen`]); with
    ///   [`Spread::LeastLoaded`], the acceptor's [`Reactor::listen`] errors.
    ///
    /// # Examples
    /// Two echo reactors sharing one port through `SO_REUSEPORT`, then two behind an
    /// acceptor:
    /// ```
    /// use std::io::{Read, Write};
    /// use mio_reactor::{Config, Context, Handler, ListenOptions, ReactorThreads, Spread};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data);
    ///         data.len()
    ///     }
    /// }
    ///
    /// for spread in [Spread::ReusePort, Spread::LeastLoaded] {
    ///     let threads = ReactorThreads::serve(
    ///         2,
    ///         Config::default(),
    ///         "tcp:127.0.0.1:0",
    ///         ListenOptions::default(),
    ///         spread,
    ///         |_reactor, _thread| |_: &_| Some(Echo),
    ///     )?;
    ///     let mut clients = Vec::new();
    ///     for _ in 0..4 {
    ///         let mut client = std::net::TcpStream::connect(threads.local_addr()?)?;
    ///         client.write_all(b"hi")?;
    ///         let mut echo = [0; 2];
    ///         client.read_exact(&mut echo)?; // served
    ///         clients.push(client);
    ///     }
    ///     threads.shutdown_handle().shutdown();
    ///     let stats = threads.join()?;
    ///     if spread == Spread::LeastLoaded {
    ///         let served: Vec<u64> = stats[..2].iter().map(|s| s.adopted).collect();
    ///         assert_eq!(served, [2, 2]); // four long-lived connections, two each
    ///         assert_eq!(stats[2].handed_over, 4);
    ///     } else {
    ///         assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 4);
    ///     }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve<M, F, H>(
        count: usize,
        config: Config,
        endpoints: impl IntoEndpoints,
        options: ListenOptions,
        spread: Spread,
        make_factory: M,
    ) -> io::Result<ReactorThreads>
    where
        M: Fn(&mut Reactor, usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        if count == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "serve with 0 reactors: nothing would accept or serve a connection",
            ));
        }
        let endpoints = endpoints.into_endpoints()?;
        if endpoints.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "serve with no endpoint: nothing would be listened on",
            ));
        }
        let make = move |reactor: &mut Reactor, index| {
            Destination::here(Box::new(make_factory(reactor, index)))
        };
        match spread {
            Spread::ReusePort if count == 1 => serve_alone(config, endpoints, options, make),
            Spread::ReusePort => serve_reuseport(count, config, endpoints, options, make),
            Spread::LeastLoaded => serve_least_loaded(count, config, endpoints, options, make),
        }
    }

    /// Where the reactors listen: the local address of each listening socket of one of
    /// them (with [`Spread::ReusePort`], every reactor listens on the same addresses), or of
    /// the acceptor. Empty for threads started with [`spawn`](ReactorThreads::spawn).
    pub fn bound(&self) -> &[Endpoint] {
        &self.bound
    }

    /// The first TCP address in [`bound`](ReactorThreads::bound).
    ///
    /// # Errors
    /// [`NotFound`](io::ErrorKind::NotFound) if the reactors listen on no TCP socket.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        first_tcp_addr(&self.bound)
    }

    /// A handle that shuts down every reactor (graceful, then abort on a second request).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Waits for every reactor to return from `run()`; their final stats, in thread order.
    ///
    /// # Errors
    /// The first failure in thread order:
    /// - a reactor's [`Reactor::run`] error (`epoll_wait` failing);
    /// - [`Other`](io::ErrorKind::Other), "a reactor thread panicked": a handler (or the
    ///   factory) panicked on that thread.
    ///
    /// Threads after the failed one are not waited for: they keep running, detached. Shut
    /// them down first ([`shutdown_handle`](ReactorThreads::shutdown_handle)) if they must
    /// be finished when `join` returns.
    pub fn join(self) -> io::Result<Vec<Stats>> {
        self.threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| io::Error::other("a reactor thread panicked"))?
            })
            .collect()
    }
}

impl fmt::Debug for ReactorThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorThreads")
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// How [`ReactorThreads::serve`] spreads connections over its reactors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// A listening socket per reactor, sharing the port through `SO_REUSEPORT`: the kernel
    /// picks a socket by a hash of the connection's addresses (`socket(7)`). No thread
    /// beyond the reactors', nothing crosses threads.
    ///
    /// The kernel lets any socket of the same user with `SO_REUSEPORT` join the group: a
    /// second server started on the same port shares it instead of failing with
    /// `AddrInUse` (which is also how a new process can take over from an old one).
    ReusePort,
    /// One acceptor thread hands each connection to the reactor with the fewest open
    /// connections (nginx's and Netty's boss/worker split).
    LeastLoaded,
}

/// Makes one reactor's destination for the connections of a served listen (and sets up
/// the reactor, as the user's `make_factory` may).
type MakeDestination = dyn Fn(&mut Reactor, usize) -> Destination + Send + Sync;

/// One reactor: nothing to share, so it listens as [`Reactor::listen`] would.
fn serve_alone(
    config: Config,
    endpoints: Vec<Endpoint>,
    options: ListenOptions,
    make: impl Fn(&mut Reactor, usize) -> Destination + Send + Sync + 'static,
) -> io::Result<ReactorThreads> {
    let (bound_tx, bound) = mpsc::channel();
    let mut threads = ReactorThreads::spawn(1, config, move |reactor, index| {
        let destination = make(reactor, index);
        let bound = listen_all(reactor, &endpoints, &options, destination)?;
        let _ = bound_tx.send(bound);
        Ok(())
    })?;
    threads.bound = bound
        .try_recv()
        .map_err(|_| io::Error::other("the reactor did not report its addresses"))?;
    Ok(threads)
}

fn serve_reuseport(
    count: usize,
    config: Config,
    endpoints: Vec<Endpoint>,
    options: ListenOptions,
    make: impl Fn(&mut Reactor, usize) -> Destination + Send + Sync + 'static,
) -> io::Result<ReactorThreads> {
    if let Some(endpoint) = endpoints
        .iter()
        .find(|endpoint| !matches!(endpoint, Endpoint::Tcp(_) | Endpoint::TcpName { .. }))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "serve {endpoint} with SO_REUSEPORT: only tcp: endpoints can be bound by \
                 each reactor; Spread::LeastLoaded serves any endpoint"
            ),
        ));
    }
    // Hold the ports while the reactors bind them: a socket bound with SO_REUSEPORT but
    // not listening reserves a port without ever being handed a connection.
    let mut placeholders = Vec::new();
    for endpoint in &endpoints {
        for addr in endpoint.resolve()? {
            placeholders.push(crate::net::port_placeholder(addr)?);
        }
    }
    let bound = placeholders
        .iter()
        .map(|socket| {
            socket
                .local_addr()?
                .as_socket()
                .map(Endpoint::Tcp)
                .ok_or_else(|| io::Error::other("not an IP socket"))
        })
        .collect::<io::Result<Vec<Endpoint>>>()?;
    let each = bound.clone();
    let options = options.reuse_port(true);
    let mut threads = ReactorThreads::spawn(count, config, move |reactor, index| {
        let destination = make(reactor, index);
        listen_all(reactor, &each, &options, destination).map(drop)
    })?;
    drop(placeholders);
    threads.bound = bound;
    Ok(threads)
}

fn serve_least_loaded(
    count: usize,
    config: Config,
    endpoints: Vec<Endpoint>,
    options: ListenOptions,
    make: impl Fn(&mut Reactor, usize) -> Destination + Send + Sync + 'static,
) -> io::Result<ReactorThreads> {
    let (handles_tx, handles) = mpsc::channel();
    let handles_tx = Mutex::new(handles_tx);
    let serving = options.clone();
    let make: Box<MakeDestination> = Box::new(make);
    let mut threads = ReactorThreads::spawn(count, config.clone(), move |reactor, index| {
        let destination = make(reactor, index);
        let handover = Source::Named(Endpoint::Handover);
        reactor
            .core
            .listen(handover, serving.clone(), destination)?;
        let sent = handles_tx
            .lock()
            .map_err(|_| io::Error::other("a reactor thread died during setup"))?
            .send((index, reactor.handle()));
        sent.map_err(|_| io::Error::other("the starting thread is gone"))
    })?;
    let mut targets: Vec<(usize, LoopHandle)> = handles.try_iter().collect();
    targets.sort_by_key(|(index, _)| *index);
    let targets: Vec<LoopHandle> = targets.into_iter().map(|(_, handle)| handle).collect();
    let (bound_tx, bound) = mpsc::channel();
    let targets = Mutex::new(Some(targets));
    // The acceptor moves sockets only: the serving reactors secure them.
    let accepting = options.plaintext();
    let acceptor = ReactorThreads::spawn(1, config, move |reactor, _| {
        let targets = targets
            .lock()
            .ok()
            .and_then(|mut t| t.take())
            .unwrap_or_default();
        let destination = Destination::Elsewhere(Balancer::new(targets));
        let bound = listen_all(reactor, &endpoints, &accepting, destination)?;
        let _ = bound_tx.send(bound);
        Ok(())
    });
    let acceptor = match acceptor {
        Ok(acceptor) => acceptor,
        Err(err) => {
            threads.shutdown.shutdown();
            let _ = threads.join();
            return Err(err);
        }
    };
    threads.shutdown = ShutdownHandle::all([threads.shutdown, acceptor.shutdown]);
    threads.threads.extend(acceptor.threads);
    threads.bound = bound
        .try_recv()
        .map_err(|_| io::Error::other("the acceptor did not report its address"))?;
    Ok(threads)
}

/// Listens on each of `endpoints` in `reactor`, every socket sending its connections to
/// `destination`; what was bound, in order.
fn listen_all(
    reactor: &mut Reactor,
    endpoints: &[Endpoint],
    options: &ListenOptions,
    destination: Destination,
) -> io::Result<Vec<Endpoint>> {
    let mut bound = Vec::new();
    for endpoint in endpoints {
        let source = Source::Named(endpoint.clone());
        let listening = reactor
            .core
            .listen(source, options.clone(), destination.clone())?;
        bound.extend_from_slice(listening.bound());
    }
    Ok(bound)
}

/// The first TCP address of `bound`.
pub(crate) fn first_tcp_addr(bound: &[Endpoint]) -> io::Result<SocketAddr> {
    bound
        .iter()
        .find_map(|endpoint| match endpoint {
            Endpoint::Tcp(addr) => Some(*addr),
            _ => None,
        })
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no TCP socket was bound"))
}

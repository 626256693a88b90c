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
//! With the `tls` feature, `serve_tls` and `serve_balanced_tls` (in `tls_api.rs`) run the same
//! code with every reactor's connections secured: the one rustls config is shared, each
//! session lives in its connection's transport, on its connection's thread.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::config::Config;
use crate::handler::Handler;
use crate::net::PeerAddr;
use crate::post::LoopHandle;
use crate::reactor::Reactor;
use crate::shutdown::ShutdownHandle;
use crate::stats::Stats;
use crate::transport::Security;

/// N reactors on N threads, stopped together by one [`ShutdownHandle`].
///
/// # Examples
/// Two echo reactors sharing one port:
/// ```
/// use mio_reactor::{Config, Context, Handler, ReactorThreads};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         ctx.write(data);
///         data.len()
///     }
/// }
///
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let (threads, addr) = ReactorThreads::serve(2, Config::default(), addr, |_thread| {
///     |_| Some(Echo)
/// })?;
/// let mut stream = std::net::TcpStream::connect(addr)?;
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
}

impl ReactorThreads {
    /// Starts `count` threads. Each builds a reactor from `config` and calls
    /// `setup(&mut reactor, index)` to register its listeners (typically
    /// [`Reactor::listen_reuseport`] on a shared address), then runs it. Returns once every
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
    /// - the first error `setup` returns (a [`Reactor::listen_reuseport`] error, say);
    /// - [`Other`](io::ErrorKind::Other), "a reactor thread died during setup", if `setup`
    ///   panicked.
    ///
    /// # Examples
    /// Each reactor on a port of its own, its address sent back from the setup:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::mpsc;
    /// use mio_reactor::{Config, Context, Handler, ReactorThreads};
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
    ///     let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Some(Echo))?;
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
    ///     reactor.listen(addr, |_| Some(Echo)).map(drop)
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

    /// Starts `count` reactors that all accept TCP connections on `addr`, through
    /// `SO_REUSEPORT`; `make_factory(index)` gives each its factory. Port 0 picks one free
    /// port for all of them, which is returned.
    ///
    /// # Errors
    /// - binding the placeholder socket that holds the port while the reactors bind it: the
    ///   errors of [`Reactor::listen_reuseport`] (an [`AddrInUse`](io::ErrorKind::AddrInUse)
    ///   when a socket without `SO_REUSEPORT`, or of another user, holds the port;
    ///   [`AddrNotAvailable`](io::ErrorKind::AddrNotAvailable),
    ///   [`PermissionDenied`](io::ErrorKind::PermissionDenied), out of descriptors...);
    /// - then those of [`spawn`](ReactorThreads::spawn), whose setup is each reactor's
    ///   [`Reactor::listen_reuseport`] on the port found.
    pub fn serve<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        make_factory: M,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        ReactorThreads::serve_secured(count, config, addr, make_factory, Security::default())
    }

    /// [`serve`](ReactorThreads::serve), with every reactor's accepted connections secured
    /// by `security` (shared: one TLS config for the group).
    pub(crate) fn serve_secured<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        make_factory: M,
        security: Security,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        // Hold the port while the reactors bind it: a socket bound with SO_REUSEPORT but
        // not listening reserves the port without ever being handed a connection.
        let placeholder = crate::net::reuseport_socket(addr)?;
        let addr = placeholder
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("not an IP socket"))?;
        let threads = ReactorThreads::spawn(count, config, move |reactor, index| {
            let factory = Box::new(make_factory(index));
            reactor
                .listen_reuseport_secured(addr, factory, security.clone())
                .map(drop)
        })?;
        drop(placeholder);
        Ok((threads, addr))
    }

    /// Starts `count` reactors that serve connections, and one more that only accepts them
    /// on `addr` and hands each to the least loaded of the `count` (the fewest open
    /// connections plus handovers in flight; ties in turn). `make_factory(index)` gives
    /// each serving reactor the factory for the connections it is handed
    /// ([`Reactor::accept_handovers`]). Returns the address bound (port 0 picks one).
    ///
    /// Compared with [`serve`](ReactorThreads::serve): `SO_REUSEPORT` spreads connections
    /// by a hash of their addresses, which evens out over many short connections but can
    /// give one thread most of a few long-lived ones; the acceptor looks at the load. It
    /// costs one more thread and a cross-thread handover per connection (a post and, when
    /// the target sleeps, a wake).
    ///
    /// [`join`](ReactorThreads::join) returns `count + 1` stats: the serving reactors in
    /// order, then the acceptor's (its [`Stats::handed_over`]).
    ///
    /// # Errors
    /// Those of [`spawn`](ReactorThreads::spawn) for the serving reactors, then for the
    /// acceptor, whose setup is binding `addr` (the errors of [`Reactor::listen`]).
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use mio_reactor::{Config, Context, Handler, ReactorThreads};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data);
    ///         data.len()
    ///     }
    /// }
    ///
    /// let addr = "127.0.0.1:0".parse().unwrap();
    /// let (threads, addr) =
    ///     ReactorThreads::serve_balanced(2, Config::default(), addr, |_| |_: &_| Some(Echo))?;
    /// let mut clients = Vec::new();
    /// for _ in 0..4 {
    ///     let mut client = std::net::TcpStream::connect(addr)?;
    ///     client.write_all(b"hi")?;
    ///     let mut echo = [0; 2];
    ///     client.read_exact(&mut echo)?; // served, so adopted by one of the two
    ///     clients.push(client);
    /// }
    /// threads.shutdown_handle().shutdown();
    /// let stats = threads.join()?;
    /// let served: Vec<u64> = stats[..2].iter().map(|s| s.adopted).collect();
    /// assert_eq!(served, [2, 2]); // four long-lived connections, two each
    /// assert_eq!(stats[2].handed_over, 4);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_balanced<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        make_factory: M,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        let security = Security::default();
        ReactorThreads::serve_balanced_secured(count, config, addr, make_factory, security)
    }

    /// [`serve_balanced`](ReactorThreads::serve_balanced), with the handed-over connections
    /// secured by `security` in the serving reactors (the acceptor only moves sockets: it
    /// never reads a byte of them).
    pub(crate) fn serve_balanced_secured<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        make_factory: M,
        security: Security,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        let (handles_tx, handles) = mpsc::channel();
        let handles_tx = std::sync::Mutex::new(handles_tx);
        let mut threads = ReactorThreads::spawn(count, config.clone(), move |reactor, index| {
            reactor.accept_handovers_secured(Box::new(make_factory(index)), security.clone());
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
        let targets = std::sync::Mutex::new(Some(targets));
        let acceptor = ReactorThreads::spawn(1, config, move |reactor, _| {
            let targets = targets
                .lock()
                .ok()
                .and_then(|mut t| t.take())
                .unwrap_or_default();
            let local = reactor.listen_balanced(addr, targets)?;
            let _ = bound_tx.send(local);
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
        let addr = bound
            .try_recv()
            .map_err(|_| io::Error::other("the acceptor did not report its address"))?;
        Ok((threads, addr))
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

//! The public [`Reactor`]: one `mio::Poll`, one reused `Events`, and the loop that turns.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token, Waker};

use crate::config::Config;
use crate::connect::{IntoConnectTarget, Lookup};
use crate::core::Core;
use crate::datagram::DatagramHandler;
use crate::endpoint::IntoEndpoint;
use crate::entries::Entry;
use crate::handler::Handler;
use crate::id::{ConnId, LoopTimerId, WatchId};
use crate::loop_timers::Every;
use crate::options::ConnectOptions;
use crate::post::{LoopContext, LoopHandle};
use crate::shutdown::ShutdownHandle;
use crate::signals::{shut_down_on, SHUTDOWN_SIGNALS};
use crate::stats::Stats;
use crate::trace::{trace_record, Observer, Record};
use crate::watch_handler::{WatchContext, WatchHandler};

/// The waker's token. Slab keys count up from zero and never reach it.
const WAKER: Token = Token(usize::MAX);

/// A single-threaded event loop serving listeners and connections.
///
/// # Examples
/// An echo server on an ephemeral port, stopped from another thread:
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
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?.local_addr()?;
/// let shutdown = reactor.shutdown_handle();
/// let client = std::thread::spawn(move || -> std::io::Result<()> {
///     use std::io::{Read, Write};
///     let mut stream = std::net::TcpStream::connect(addr)?;
///     stream.write_all(b"hello")?;
///     let mut reply = [0; 5];
///     stream.read_exact(&mut reply)?;
///     assert_eq!(&reply, b"hello");
///     shutdown.shutdown();
///     Ok(())
/// });
/// reactor.run()?;
/// client.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor {
    poll: Poll,
    events: Events,
    waker: Arc<Waker>,
    pub(crate) core: Core,
}

impl Reactor {
    /// A reactor with the default [`Config`].
    ///
    /// # Errors
    /// The operating system's error if it cannot give the reactor its three descriptors: the
    /// epoll instance (`epoll_create1`), the waker's `eventfd`, and a duplicate of the epoll
    /// descriptor for registering sockets (`dup`). In practice that is the process or the
    /// system being out of descriptors (`EMFILE`, `ENFILE`) or out of memory.
    pub fn new() -> io::Result<Reactor> {
        Reactor::with_config(Config::default())
    }

    /// A reactor with `config`; fails if its limits contradict each other.
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput), with a message naming the rule, if
    /// `config` breaks one of these: `events_capacity`, `read_buffer_size`, `read_budget`,
    /// `accept_budget` and `max_connections` are at least 1; `low_water` ≤ `high_water` ≤
    /// `max_output`. Nothing is allocated before that check.
    ///
    /// Otherwise the operating system's error if it cannot give the reactor its three
    /// descriptors: the epoll instance (`epoll_create1`), the waker's `eventfd`, and a
    /// duplicate of the epoll descriptor for registering sockets (`dup`). In practice that is
    /// the process or the system being out of descriptors (`EMFILE`, `ENFILE`) or out of
    /// memory.
    pub fn with_config(config: Config) -> io::Result<Reactor> {
        config.validate()?;
        // Inherited descriptors' variables (LISTEN_FDS, an upgrade's) are read and cleared
        // now, before the program can start a child that would take them for its own.
        crate::inherited::read_environment();
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut core = Core::new(poll.registry().try_clone()?, config.clone(), waker.clone());
        core.trace.refresh();
        Ok(Reactor {
            events: Events::with_capacity(config.events_capacity),
            poll,
            waker,
            core,
        })
    }

    /// Binds a UDP socket where `endpoint` says (`udp:127.0.0.1:0`, `udp:[::1]:9000`,
    /// `udp:localhost:9000`; port 0 picks a free port), served by `handler` in this loop, and
    /// returns the address actually bound. A name is resolved here (blocking) and the socket
    /// bound on the first of its addresses that binds. An inherited UDP socket (`fd:N`,
    /// `systemd:NAME`) is served as it is. The handler's
    /// [`on_open`](DatagramHandler::on_open) runs before this returns.
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for text outside the endpoint grammar
    /// or an endpoint that is not a datagram socket (`tcp:`, `unix:`: a bare IP literal means
    /// TCP, so write `udp:`); those of [`listen`](Reactor::listen) for `fd:N` and
    /// `systemd:NAME`; otherwise the operating system's error from `socket` or `bind` (no `SO_REUSEADDR` for UDP), its
    /// message led by the address (`listen on udp:127.0.0.1:7000: ...`):
    /// [`AddrInUse`](io::ErrorKind::AddrInUse) when another UDP socket is bound to that
    /// address and port, [`AddrNotAvailable`](io::ErrorKind::AddrNotAvailable) when `addr`
    /// is not an address of this host, [`PermissionDenied`](io::ErrorKind::PermissionDenied)
    /// for a port below 1024 without `CAP_NET_BIND_SERVICE`, `EMFILE`/`ENFILE` when out of
    /// descriptors; or registering with epoll (`ENOMEM`, `ENOSPC`). On any error nothing is
    /// registered and `handler` is dropped without any of its callbacks having run.
    ///
    /// # Examples
    /// ```
    /// use std::net::SocketAddr;
    /// use mio_reactor::{DatagramContext, DatagramHandler, Reactor};
    ///
    /// struct UdpEcho;
    /// impl DatagramHandler for UdpEcho {
    ///     fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
    ///         let _ = ctx.send_to(data, from);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.bind_udp("udp:127.0.0.1:0", UdpEcho)?;
    /// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
    /// client.send_to(b"ping", addr)?;
    /// reactor.turn(Some(std::time::Duration::from_secs(5)))?; // receive and echo
    /// let mut reply = [0; 4];
    /// client.recv_from(&mut reply)?;
    /// assert_eq!(&reply, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_udp(
        &mut self,
        endpoint: impl IntoEndpoint,
        handler: impl DatagramHandler,
    ) -> io::Result<SocketAddr> {
        let endpoint = endpoint.into_endpoint()?;
        let socket =
            crate::udp::bind(&endpoint).map_err(|err| crate::net::listen_error(&endpoint, err))?;
        self.core.read_clock();
        self.core.add_udp(socket, Box::new(handler))
    }

    /// Opens an outbound connection to `target` with `options`, served by `handler` in
    /// this loop: an endpoint, `tcp:IP:PORT` (or a bare IP literal, or a [`SocketAddr`]),
    /// `tcp:NAME:PORT` or `unix:PATH`, or a list of them tried in order
    /// ([`IntoConnectTarget`](crate::IntoConnectTarget)). With TLS in `options`
    /// (`ConnectOptions::tls`, the `tls` feature), the handler hears plaintext.
    ///
    /// The connect completes (or fails) in a later turn: the handler's `on_open` runs once
    /// connected; a refusal or a timeout ([`Config::connect_timeout`]) is reported to its
    /// `on_close` as [`CloseReason::ConnectFailed`](crate::CloseReason::ConnectFailed) or
    /// [`CloseReason::ConnectTimeout`](crate::CloseReason::ConnectTimeout).
    ///
    /// A name is resolved here, **blocking** (it may ask DNS), before anything is
    /// registered; its addresses are tried in order until one connects, with the same
    /// handler. The [`ConnId`] returned is the first attempt's;
    /// [`Context::id`](crate::Context::id) in `on_open` is the one that connected. (Inside a
    /// callback, [`Context::connect`](crate::Context::connect) takes no name: it would block
    /// the loop.)
    ///
    /// # Errors
    /// Only what fails at once, before anything is registered (the handler is then dropped
    /// without any callback):
    /// - [`InvalidInput`](io::ErrorKind::InvalidInput): text outside the endpoint grammar,
    ///   or an endpoint one cannot connect to (`udp:`, `fd:`, `systemd:`, `handover:`);
    /// - the resolver's error for a name that does not resolve;
    /// - for TCP, when no address's connect could even start, the last address's error
    ///   from `socket` or `connect`: say
    ///   [`NetworkUnreachable`](io::ErrorKind::NetworkUnreachable) (no route),
    ///   [`AddrNotAvailable`](io::ErrorKind::AddrNotAvailable) (no ephemeral port left),
    ///   `EMFILE`/`ENFILE` (out of descriptors);
    /// - a Unix-domain connect completes or fails at once, so its failures are errors here:
    ///   [`NotFound`](io::ErrorKind::NotFound) (no file at the path),
    ///   [`ConnectionRefused`](io::ErrorKind::ConnectionRefused) (nobody accepts on it),
    ///   [`PermissionDenied`](io::ErrorKind::PermissionDenied),
    ///   [`WouldBlock`](io::ErrorKind::WouldBlock) (the listener's backlog is full), or
    ///   [`InvalidInput`](io::ErrorKind::InvalidInput) (a path longer than a `sockaddr_un`
    ///   holds, 107 bytes on Linux);
    /// - registering the socket with epoll (`ENOMEM`, `ENOSPC`); the remaining addresses are
    ///   then not tried.
    ///
    /// A TCP refusal or timeout is not an error here: it arrives later, in `on_close`, as
    /// [`CloseReason::ConnectFailed`](crate::CloseReason::ConnectFailed) or
    /// [`CloseReason::ConnectTimeout`](crate::CloseReason::ConnectTimeout).
    ///
    /// # Examples
    /// A client in the loop, connecting by name to a plain blocking server:
    /// ```
    /// use std::cell::Cell;
    /// use std::io::Read;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use mio_reactor::{ConnId, ConnectOptions, Context, Handler, Reactor};
    ///
    /// struct Hello {
    ///     connected_as: Rc<Cell<Option<ConnId>>>,
    /// }
    ///
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         self.connected_as.set(Some(ctx.id()));
    ///         ctx.write(b"hello");
    ///         ctx.close();
    ///     }
    ///
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    ///
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let port = server.local_addr()?.port();
    ///
    /// let connected_as = Rc::new(Cell::new(None));
    /// let mut reactor = Reactor::new()?;
    /// let hello = Hello { connected_as: connected_as.clone() };
    /// // If "localhost" also names ::1, where nothing listens, that attempt fails and the
    /// // next address is tried.
    /// let first = reactor.connect(format!("tcp:localhost:{port}"), ConnectOptions::default(), hello)?;
    /// for _ in 0..1000 {
    ///     if connected_as.get().is_some() {
    ///         break;
    ///     }
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// let (mut conn, _) = server.accept()?;
    /// let mut greeting = [0; 5];
    /// conn.read_exact(&mut greeting)?;
    /// assert_eq!(&greeting, b"hello");
    /// let id = connected_as.get().expect("connected");
    /// println!("first attempt {first}, connected as {id}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(
        &mut self,
        target: impl IntoConnectTarget,
        options: ConnectOptions,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        let addrs = target.into_peers(Lookup::Allowed)?;
        self.core.read_clock();
        self.core
            .connect(addrs, Box::new(handler), options.into_connection())
            .map_err(|(err, _)| err)
    }

    /// Watches a pollable `source` in this loop: `handler` is called, in a turn, with the
    /// source and its [`Readiness`](crate::Readiness) whenever events arrive for it (at most once per turn),
    /// until it calls [`WatchContext::unwatch`] or [`Reactor::unwatch`] is called.
    ///
    /// `source` is anything mio can register: a [`mio::unix::pipe::Receiver`] (also made
    /// from a child process's `ChildStdout`), a `mio::net` socket, or any descriptor wrapped
    /// in [`FdSource`](crate::FdSource) (standard input when it is a pipe or a terminal, a timerfd, an
    /// inotify descriptor), which must then be non-blocking. `interest` says which readiness
    /// to hear of. mio is edge-triggered: the handler reads (or writes) until `WouldBlock`,
    /// or it hears nothing more about what it left.
    ///
    /// Watches do not keep a shutting-down reactor alive: once a shutdown has nothing else
    /// left to drain, the watches are ended (sources dropped) and [`run`](Reactor::run)
    /// returns. A panic in the handler ends its watch (see [`Config::catch_panics`]).
    ///
    /// # Errors
    /// Registering with epoll: a regular file or a directory cannot be polled (epoll answers
    /// `EPERM`), which is reported as [`Unsupported`](io::ErrorKind::Unsupported) with a
    /// message saying so; a descriptor that is already registered (watched twice, or dup'd
    /// from one that is) fails with [`AlreadyExists`](io::ErrorKind::AlreadyExists) (`EEXIST`);
    /// a closed descriptor with `EBADF`; and `ENOMEM`/`ENOSPC` as for
    /// [`listen`](Reactor::listen). On any error nothing is watched and `source` and
    /// `handler` are dropped.
    ///
    /// # Examples
    /// A pipe's reading end, in the loop:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use mio::unix::pipe;
    /// use mio_reactor::{Reactor, Readiness, WatchContext};
    ///
    /// let (mut sender, receiver) = pipe::new()?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.watch(receiver, mio::Interest::READABLE,
    ///     move |pipe: &mut pipe::Receiver, ready: Readiness, ctx: &mut WatchContext<'_>| {
    ///         let mut buf = [0; 64];
    ///         loop {
    ///             match pipe.read(&mut buf) {
    ///                 Ok(0) => return ctx.unwatch(), // every writer closed
    ///                 Ok(n) => println!("{} read {:?}", ctx.id(), &buf[..n]),
    ///                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
    ///                 Err(e) => panic!("{e} ({ready})"),
    ///             }
    ///         }
    ///     })?;
    /// sender.write_all(b"hello")?;
    /// drop(sender);
    /// while !reactor.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?; // read, EOF, unwatched
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn watch<S: mio::event::Source + 'static>(
        &mut self,
        source: S,
        interest: mio::Interest,
        handler: impl WatchHandler<S>,
    ) -> io::Result<WatchId> {
        self.core.read_clock();
        self.core.add_watch(source, interest, handler)
    }

    /// Ends the watch `id` at the end of the next turn (its source is deregistered and
    /// dropped); returns `false` if it was not watched.
    pub fn unwatch(&mut self, id: WatchId) -> bool {
        self.core.unwatch(id.0)
    }

    /// Receives the Unix `signals` as events of this loop: `handler` runs on the loop's
    /// thread, in a turn, once per signal received, with a [`WatchContext`] to reach
    /// connections or shut down. A watch like any other ([`watch`](Reactor::watch)); the
    /// signal handler itself only wakes the loop (through `signal-hook-mio`'s socket pair).
    ///
    /// While watched, the signals no longer have their default action (SIGTERM no longer
    /// ends the process); after the watch ends they are still caught and ignored, because
    /// the default action cannot be restored safely; a program exits soon after `run`.
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a signal that cannot be handled
    /// (SIGKILL, SIGSTOP, SIGILL, SIGFPE, SIGSEGV), or the operating system's error creating
    /// the socket pair or installing the handler; or registering with epoll as for
    /// [`watch`](Reactor::watch).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.on_signals(&[libc::SIGUSR1], |signal, ctx| {
    ///     println!("signal {signal} reached the loop");
    ///     ctx.unwatch();
    /// })?;
    /// signal_hook::low_level::raise(libc::SIGUSR1)?;
    /// while !reactor.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn on_signals(
        &mut self,
        signals: &[std::os::raw::c_int],
        handler: impl FnMut(std::os::raw::c_int, &mut WatchContext<'_>) + 'static,
    ) -> io::Result<WatchId> {
        self.core.read_clock();
        self.core.watch_signals(signals, handler)
    }

    /// Makes SIGTERM and SIGINT shut this reactor down: the first drains gracefully (stop
    /// accepting, [`Handler::on_shutdown`], connections finish within
    /// [`Config::shutdown_timeout`]) and the second aborts what is left, as a
    /// [`ShutdownHandle`] does. SIGTERM is what `docker stop`, `systemctl stop` and
    /// Kubernetes send; SIGINT is Ctrl-C. Each is logged (`info`, then `warn`).
    ///
    /// # Errors
    /// As [`on_signals`](Reactor::on_signals).
    pub fn shutdown_on_signals(&mut self) -> io::Result<WatchId> {
        self.on_signals(&SHUTDOWN_SIGNALS, shut_down_on)
    }

    /// A handle through which other threads post work and messages to this reactor's loop
    /// ([`LoopHandle`] lists its guarantees).
    pub fn handle(&self) -> LoopHandle {
        self.core.inbox.handle()
    }

    /// A handle that shuts this reactor down from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle::new(self.core.lifecycle.requests(), self.waker.clone())
    }

    /// Runs `callback` on the loop's thread once, `delay` from now: a timer of the loop,
    /// which belongs to no connection (asyncio's `call_later`, libuv's `uv_timer_t`). The
    /// callback gets a [`LoopContext`], which reaches connections by [`ConnId`], and the
    /// timer's id.
    ///
    /// A pending loop timer keeps [`run`](Reactor::run) going even with nothing else to
    /// serve, as a watch does; once a shutdown has begun, loop timers still fire while the
    /// connections drain but no longer hold the reactor: when the drain is over `run`
    /// returns and the timers still pending are dropped, uncalled. A panic in the callback
    /// is caught ([`Config::catch_panics`]), logged and counted in
    /// [`Stats::handler_panics`]. Each call is counted in [`Stats::loop_timers_fired`] and
    /// traced as [`Record::TimerFired`] with [`TimerKind::Loop`](crate::TimerKind::Loop).
    ///
    /// The same method is on [`Context`](crate::Context::set_loop_timer),
    /// [`LoopContext`](LoopContext::set_loop_timer),
    /// [`DatagramContext`](crate::DatagramContext::set_loop_timer) and
    /// [`WatchContext`](WatchContext::set_loop_timer), for timers set from a callback.
    ///
    /// # Examples
    /// ```
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use mio_reactor::Reactor;
    ///
    /// let fired = Rc::new(Cell::new(false));
    /// let flag = fired.clone();
    /// let mut reactor = Reactor::new()?;
    /// reactor.set_loop_timer(Duration::from_millis(10), move |lc, id| {
    ///     println!("{id} fired with {} connections open", lc.open_connections());
    ///     flag.set(true);
    /// });
    /// reactor.run()?; // nothing else to serve: returns once the timer has fired
    /// assert!(fired.get());
    /// assert_eq!(reactor.stats().loop_timers_fired, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_loop_timer(
        &mut self,
        delay: Duration,
        callback: impl FnMut(&mut LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.read_clock();
        self.core.set_loop_timer(delay, None, Box::new(callback))
    }

    /// Runs `callback` on the loop's thread every period, first one period from now, until
    /// it is cancelled ([`cancel_loop_timer`](Reactor::cancel_loop_timer), from anywhere,
    /// the callback included) or panics (which cancels it). [`Every`] says whether the
    /// period is a fixed rate or a fixed delay; either way a loop that was busy for several
    /// periods gets one call, not one per missed period. Otherwise as
    /// [`set_loop_timer`](Reactor::set_loop_timer).
    ///
    /// # Examples
    /// Redis's `serverCron`: a tick ten times a second, here stopped after three.
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::{Every, Reactor};
    ///
    /// let mut reactor = Reactor::new()?;
    /// let mut ticks = 0;
    /// reactor.set_loop_interval(Every::Rate(Duration::from_millis(100)), move |lc, id| {
    ///     ticks += 1; // expire keys, sample stats...
    ///     if ticks == 3 {
    ///         lc.cancel_loop_timer(id);
    ///     }
    /// });
    /// reactor.run()?; // returns once the last loop timer is cancelled
    /// assert_eq!(reactor.stats().loop_timers_fired, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_loop_interval(
        &mut self,
        every: Every,
        callback: impl FnMut(&mut LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.read_clock();
        self.core.set_loop_interval(every, Box::new(callback))
    }

    /// Cancels a loop timer, one-shot or periodic; returns whether it was pending (`false`
    /// for one that fired, was cancelled, or panicked).
    pub fn cancel_loop_timer(&mut self, id: LoopTimerId) -> bool {
        self.core.cancel_loop_timer(id)
    }

    /// Runs `hook` once per turn, right before the loop polls (Redis's `beforeSleep`,
    /// libuv's prepare handles): after the turn's timers, before it waits for events. For
    /// work batched per turn: what handlers gathered during the last turn's events, written
    /// out once; what the hook writes to connections leaves in the same turn, before the
    /// poll. It replaces any hook set before; [`clear_before_sleep`](Reactor::clear_before_sleep)
    /// removes it. Without one, a turn pays one `Option` test.
    ///
    /// The hook does not run in a turn that finds the reactor finished, and does not keep a
    /// reactor running. A panic in it is caught ([`Config::catch_panics`]), logged, counted
    /// in [`Stats::handler_panics`], and removes the hook.
    ///
    /// # Examples
    /// Replies gathered by handlers in a shared list, written once per turn:
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::{Read, Write};
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use mio_reactor::{ConnId, Context, Handler, ListenOptions, Reactor};
    ///
    /// type Outbox = Rc<RefCell<Vec<ConnId>>>;
    ///
    /// struct Ask(Outbox);
    /// impl Handler for Ask {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         self.0.borrow_mut().push(ctx.id()); // answered before the loop sleeps
    ///         data.len()
    ///     }
    /// }
    ///
    /// let outbox: Outbox = Rc::default();
    /// let mut reactor = Reactor::new()?;
    /// let pending = outbox.clone();
    /// reactor.before_sleep(move |lc| {
    ///     for id in pending.borrow_mut().drain(..) {
    ///         let _ = lc.write(id, b"batched\n");
    ///     }
    /// });
    /// let asks = outbox.clone();
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
    ///     Some(Ask(asks.clone()))
    /// })?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     stream.write_all(b"?")?;
    ///     let mut reply = [0; 8];
    ///     stream.read_exact(&mut reply)?;
    ///     Ok(reply.to_vec())
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, b"batched\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn before_sleep(&mut self, hook: impl FnMut(&mut LoopContext<'_>) + 'static) {
        self.core.before_sleep.set(Some(Box::new(hook)));
    }

    /// Removes the hook set with [`before_sleep`](Reactor::before_sleep); returns whether
    /// one was set.
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.before_sleep(|_| {});
    /// assert!(reactor.clear_before_sleep());
    /// assert!(!reactor.clear_before_sleep()); // none left
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn clear_before_sleep(&mut self) -> bool {
        self.core.before_sleep.set(None).is_some()
    }

    /// Turns the loop until shutdown completes, or until nothing is left to serve (no
    /// listener, no connection, no loop timer, no posted work) and nothing can arrive (no [`LoopHandle`]
    /// left: while one exists, work or a stream may still be posted, so the loop waits).
    ///
    /// # Errors
    /// Those of [`turn`](Reactor::turn): only `epoll_wait` failing with anything but `EINTR`,
    /// which means a bug (the epoll descriptor is ours and valid) rather than anything a
    /// peer or a handler can cause. The reactor's connections stay as they were; `run` may be
    /// called again.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.is_finished() {
            self.turn(None)?;
        }
        log::info!("reactor stopped");
        Ok(())
    }

    /// Whether nothing is left to serve, so [`run`](Reactor::run) would return.
    pub fn is_finished(&self) -> bool {
        self.core.is_finished()
    }

    /// Runs one iteration of the loop, blocking in `poll` for at most `max_wait` (`None`:
    /// until an event or the next timer). A reactor with nothing to serve returns at once.
    ///
    /// One turn: read the clock; act on a shutdown request; fire due timers; run the
    /// [`before_sleep`](Reactor::before_sleep) hook; poll; mark the ready entries; run
    /// posted work; dispatch each entry once; remove connections that finished. An `EINTR` from
    /// `poll` is an empty turn, not an error.
    ///
    /// # Notes
    /// A turn may return without anything having happened (a timeout, a spurious wake-up),
    /// and one event may take several turns to handle (a read budget spent). Turn in a loop
    /// until the condition you wait for holds.
    ///
    /// # Errors
    /// Only `epoll_wait` failing with anything but `EINTR` (`EBADF`, `EFAULT`, `EINVAL`: a
    /// bug rather than a condition of the system). Everything a peer, a socket or a handler
    /// can get wrong (a reset, a refused connect, a full descriptor table on `accept`, a
    /// protocol error) costs at most that connection or socket, is reported to its handler
    /// and counted in [`Stats`], and never makes `turn` fail.
    ///
    /// # Examples
    /// Driving the loop yourself, with a bound, instead of [`run`](Reactor::run):
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::{Duration, Instant};
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
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?.local_addr()?;
    /// // The kernel completes the handshake; the reactor accepts in one of its turns.
    /// let mut client = std::net::TcpStream::connect(addr)?;
    /// client.write_all(b"ping")?;
    ///
    /// let deadline = Instant::now() + Duration::from_secs(10);
    /// while reactor.stats().bytes_out < 4 && Instant::now() < deadline {
    ///     reactor.turn(Some(Duration::from_millis(10)))?; // other work could go here
    /// }
    /// let mut echo = [0; 4];
    /// client.read_exact(&mut echo)?;
    /// assert_eq!(&echo, b"ping");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let core = &mut self.core;
        core.read_clock();
        core.trace.refresh();
        core.check_shutdown();
        core.fire_timers();
        // What timer and shutdown callbacks wrote leaves before the poll.
        core.flush_gathered();
        if core.is_finished() {
            // A shutdown just removed the last entry: nothing can happen any more.
            return Ok(());
        }
        // Redis's `beforeSleep`: once per turn, right before the poll (and what it wrote
        // leaves before it).
        core.run_before_sleep();
        let timeout = core.poll_timeout(max_wait);
        let turn = core.stats.turns;
        trace_record!(core, Record::TurnStart { turn, timeout });
        let before = Instant::now();
        let polled = self.poll.poll(&mut self.events, timeout);
        let after = core.read_clock();
        let blocked = after.saturating_duration_since(before);
        core.stats.time_blocked += blocked;
        match polled {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        let mut events = 0;
        for event in self.events.iter() {
            core.mark_ready(event);
            events += 1;
        }
        // Beside the waker: posted work enters the loop here, and only here.
        core.run_posted();
        core.run_ready();
        core.remove_finished();
        // ... and what `on_close` wrote to other connections.
        core.flush_gathered();
        core.inbox.publish_load(core.stats.open_connections);
        core.stats.turns += 1;
        trace_record!(
            core,
            Record::TurnEnd {
                turn,
                events,
                blocked,
                busy: after.elapsed(),
            }
        );
        Ok(())
    }

    /// Sends every [`Record`] of the reactor's life to `observer` (replacing any before).
    ///
    /// Off by default; while no observer is set and `log` is not at trace level for
    /// `mio_reactor::trace`, no record is even built.
    pub fn set_observer(&mut self, observer: impl Observer) {
        self.core.trace.set_observer(Some(Box::new(observer)));
    }

    /// Removes the observer.
    pub fn clear_observer(&mut self) {
        self.core.trace.set_observer(None);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.core.stats_snapshot()
    }

    /// The configuration this reactor runs with.
    pub fn config(&self) -> &Config {
        self.core.config()
    }
}

impl Core {
    /// A snapshot of the counters, with those kept elsewhere (wakes, pending timers).
    pub(crate) fn stats_snapshot(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.wakes = self.inbox.wakes();
        stats.pending_timers = self.timers.len();
        stats
    }

    /// Records what one readiness event says, and queues the entry once.
    fn mark_ready(&mut self, event: &mio::event::Event) {
        let key = event.token().0;
        trace_record!(
            self,
            Record::Readiness {
                token: key,
                readable: event.is_readable(),
                writable: event.is_writable(),
                read_closed: event.is_read_closed(),
                error: event.is_error(),
            }
        );
        if event.token() == WAKER {
            // The shutdown counter is read at the start of every turn, the post queue after
            // the events (`run_posted`): the event itself carries nothing.
            return;
        }
        let slot = match self.entries.get_mut(key) {
            Some(Entry::Conn(conn)) => {
                conn.on_event(event);
                conn.slot()
            }
            Some(Entry::Listener(listener)) => {
                listener.readable = true;
                listener.slot
            }
            Some(Entry::Udp(udp)) => {
                udp.readable |= event.is_readable() || event.is_error();
                udp.writable |= event.is_writable() || event.is_error();
                udp.slot
            }
            Some(Entry::Watch(watch)) => {
                watch.pending.merge(event);
                watch.slot
            }
            // Spurious, or for an entry removed earlier: normal with edge triggering.
            None => return,
        };
        self.queue(slot);
    }

    /// Dispatches every entry queued before this call, once each. Entries queued again
    /// meanwhile (a spent budget) wait for the next turn, whose poll will not block.
    fn run_ready(&mut self) {
        for _ in 0..self.queues.ready_len() {
            let Some(slot) = self.queues.pop_ready() else {
                break;
            };
            match self.entries.get_mut(slot.key) {
                Some(Entry::Conn(conn)) if conn.slot() == slot => {
                    conn.dequeue();
                    self.drive(slot);
                }
                Some(Entry::Listener(listener)) if listener.slot == slot => {
                    listener.queued = false;
                    if listener.may_accept() {
                        self.accept(slot);
                    }
                }
                Some(Entry::Udp(udp)) if udp.slot == slot => {
                    udp.queued = false;
                    self.drive_udp(slot);
                }
                Some(Entry::Watch(watch)) if watch.slot == slot => {
                    watch.queued = false;
                    self.drive_watch(slot);
                }
                _ => {}
            }
            // The end of the dispatch: what its callbacks wrote, to this connection or
            // others (`write_to`), leaves now.
            self.flush_gathered();
        }
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("entries", &self.core.entries.len())
            .field("timers", &self.core.timers.len())
            .field("stats", &self.core.stats)
            .finish()
    }
}

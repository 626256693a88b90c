//! A hand-written, single-threaded event loop on [`mio`], with per-connection state machines
//! stored in a [`slab`].
//!
//! You write a protocol, one [`Handler`] per connection; the [`Reactor`] does the rest:
//! accepting, reading, buffering, backpressure, timers, half-close, errors and shutdown.
//!
//! # Quick start
//! ```no_run
//! use mio_reactor::{Context, Handler, ListenOptions, Reactor};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
//!         ctx.write(data); // queued, and flushed by the loop
//!         data.len()       // all consumed
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let mut reactor = Reactor::new()?;
//!     reactor.listen("127.0.0.1:65432", ListenOptions::default(), |_| Some(Echo))?;
//!     reactor.run()
//! }
//! ```
//!
//! # Architecture
//! One thread owns one `mio::Poll`, one reused `mio::Events` and one `Slab` of entries
//! (listeners, connections, UDP sockets and watched sources). **The slab key is the
//! `mio::Token`** the entry's socket is registered with, so an event finds its connection
//! with an index, no hashing.
//!
//! One [turn](Reactor::turn) of the loop:
//!
//! ```text
//! now = Instant::now()            the clock, once per turn
//! shutdown requested?             stop listening, ask handlers to finish, arm the deadline
//! fire due timers                 user timers, idle checks, connect/close/shutdown
//!                                 deadlines, the loop's own timers
//! before-sleep hook               if one is set: work batched per turn
//! poll(timeout)                   0 if work is queued, else until the next timer
//! for each event                  set the entry's readable/writable flags, queue it once
//! run posted work                 from other threads, up to a budget, in order
//! for each queued entry           listener: accept up to a budget
//!                                 connection: flush, read up to a budget, call the handler,
//!                                 flush, send FIN / finish a close
//! remove finished connections     on_close, deregister, drop: never in the middle of a batch
//! ```
//!
//! **mio is edge-triggered**: an event says "something changed", once. So every connection
//! keeps `readable`/`writable` flags, set by events and cleared only when the kernel answers
//! `WouldBlock` (or a short read or write proves the socket drained or full). A connection
//! that still has work after its budget is queued again by hand, because no new edge will
//! come for bytes already in the kernel.
//!
//! **Connections are state machines** ([`State`]): `Connecting`, `Open`, `PeerHalfClosed`,
//! `WriteShutdown`, `Closing`, `Closed`, with every transition in [`State::on`].
//!
//! **Ids carry generations.** Slab keys are reused; a [`ConnId`] is a key plus the generation
//! of the entry, so a timer, a write or an event meant for a closed connection never reaches
//! the new connection that got its key. Removal waits for the end of the turn for the same
//! reason.
//!
//! **Memory is bounded whatever a peer does**: reading pauses above the output high water
//! mark and resumes at the low one; buffered output and unconsumed input have hard caps that
//! close only the offender; the connection count is capped; idle connections can time out.
//! Idle connections hold no buffers: all reads go through one buffer owned by the reactor.
//!
//! `docs/architecture.md` in the repository walks through each of these with the pitfall it
//! avoids and the test that pins it.
//!
//! # When a handler panics
//! A panic in user code is caught where the loop calls it ([`Config::catch_panics`], on by
//! default) and costs only what that code serves: a [`Handler`]'s connection is aborted (a
//! reset) and reported once as [`CloseReason::HandlerPanicked`] with the panic's message, the
//! handler is dropped without another call (not even `on_close`); a [`Factory`] that panics
//! refuses that peer; a [`DatagramHandler`] that panics closes its socket. Each is logged at
//! `error!` and counted in [`Stats::handler_panics`]. Every other connection, timer and
//! listener goes on, and [`Reactor::run`] returns normally later. The default panic hook still
//! prints the panic to standard error.
//!
//! Built with `panic = "abort"`, there is nothing to catch: the first panic ends the process.
//!
//! # Signals and other descriptors
//! Unix signals are events of the loop: [`Reactor::on_signals`] runs a handler on the loop's
//! thread, in a turn, for each signal received (through `signal-hook-mio`, whose signal
//! handler only writes to a socket pair the reactor polls). [`Reactor::shutdown_on_signals`]
//! makes SIGTERM (what `docker stop`, `systemctl stop` and Kubernetes send) and SIGINT
//! (Ctrl-C) a graceful shutdown, and a second one an abort; every example server uses it.
//! Any other pollable descriptor (a pipe, a child's output, standard input when it is a pipe
//! or a terminal, a timerfd, inotify) can be watched the same way with [`Reactor::watch`]
//! and a small [`WatchHandler`]; a regular file cannot (epoll refuses it) and says so.
//!
//! # Sockets: endpoints and options
//! A socket is named once, by an [`Endpoint`], the same in code, on a command line and in
//! the logs: `tcp:127.0.0.1:7000` (or just `127.0.0.1:7000`), `tcp:[::1]:7000`,
//! `tcp:localhost:7000`, `unix:/run/app.sock`, `udp:127.0.0.1:9000`, `fd:3` and
//! `systemd:web` (sockets inherited through systemd's `LISTEN_FDS`), `handover:` (streams
//! other threads hand over). What is done to its connections is an option:
//! [`ListenOptions`] (TLS, `SO_REUSEPORT`, backlog, a Unix socket's mode) and
//! [`ConnectOptions`] (TLS). So there is one door for each thing, whatever the socket:
//! - [`Reactor::listen`] (and [`ReactorThreads::serve`] for N reactors) returns a
//!   [`Listening`] that says what it bound; [`Reactor::stop_listening`] closes one listen
//!   while its connections go on, and [`Reactor::listeners`] lists them;
//! - [`Reactor::connect`], [`Context::connect`], [`LoopContext::connect`];
//! - [`Reactor::adopt`] for a stream made elsewhere, [`Reactor::bind_udp`] for UDP.
//!
//! Host names are resolved outside the loop (lookups block): a `Reactor` method resolves
//! one before the loop runs; a connect from inside a callback takes only addresses and paths.
//!
//! # Other sockets, other cores
//! - **Unix-domain streams** use the same [`Handler`]s (`unix:PATH` endpoints); a handler
//!   tells them apart only by its [`PeerAddr`].
//! - **UDP** sockets get a [`DatagramHandler`] ([`Reactor::bind_udp`]): whole datagrams with
//!   their sender, sends that never block the loop (a bounded queue, then counted drops).
//! - **One reactor per core**: [`ReactorThreads`] runs N independent loops sharing a port
//!   through `SO_REUSEPORT`, or fed by one acceptor that hands each connection to the least
//!   loaded ([`Spread`]), stopped by one [`ShutdownHandle`]. Nothing is shared between
//!   them, so handlers stay single-threaded (`Rc`, `RefCell`, no `Send`).
//!
//! # Threads: what runs where, and how other threads talk to the loop
//! Every callback of every handler runs on the reactor's thread, so **a handler must never
//! block**: while it waits, no other connection is served. Blocking work (files, databases,
//! CPU) goes to worker threads, and comes back through a [`LoopHandle`]
//! ([`Reactor::handle`], [`Context::handle`]), `Send + Sync + Clone`:
//! - [`LoopHandle::post`] runs a closure on the loop's thread with a [`LoopContext`], which
//!   reaches any connection by [`ConnId`];
//! - [`LoopHandle::send_to`] hands a value to one connection's [`Handler::on_message`].
//!
//! The queue is bounded ([`Config::post_queue_capacity`]); a full queue or a reactor that
//! is shutting down hands the item back in a [`PostError`], never drops it. Items run in
//! order per sender, at most [`Config::post_budget`] per turn; wake-ups coalesce. Sockets
//! made elsewhere join a reactor through [`Reactor::listen`] (a `std` listener, or `fd:N`),
//! [`Reactor::adopt`] and [`LoopHandle::hand_over`] (to a `handover:` listen);
//! [`ReactorThreads::serve`] with [`Spread::LeastLoaded`] spreads connections from one
//! acceptor over N reactors. The guide's chapter 9b (`docs/guide/09b-the-reactor-in-a-larger-program.md`)
//! explains the whole model, and `examples/slow_kv.rs` runs it.
//!
//! # The loop's own work: loop timers and the before-sleep hook
//! Besides each connection's timers ([`Context::set_timer`]), the loop has timers of its
//! own, which belong to no connection (Redis's `serverCron`, libuv's `uv_timer_t`,
//! asyncio's `call_later`, Netty's `EventLoop.schedule`): [`Reactor::set_loop_timer`] runs
//! a callback once, [`Reactor::set_loop_interval`] every period, as a fixed rate or a fixed
//! delay ([`Every`]), never piling calls up after a busy turn; both return a
//! [`LoopTimerId`] to cancel with. They can be set from every context as well, and their
//! callback gets a [`LoopContext`], which reaches connections by [`ConnId`].
//! [`Reactor::before_sleep`] runs a hook once per turn right before the poll (Redis's
//! `beforeSleep`, libuv's prepare handles). Both run on the loop's thread, and a panic in
//! either is caught like a handler's.
//!
//! # Watching the loop
//! Every step (turn, readiness event, accept, read, write, transition, timer, close) can be
//! observed as a [`Record`]: hand an [`Observer`] to [`Reactor::set_observer`], or run with
//! `RUST_LOG=mio_reactor=trace` to read the same records as one line each. When nobody
//! listens, no record is built.
//!
//! # Protocols
//! The reactor moves bytes; framing is the handler's job. [`protocol`] is one such framing,
//! ready-made: the JSON header + content messages of the classic Python sockets tutorial, as
//! an incremental, limit-checking codec (the `app_server` and `app_client` examples use it).
//!
//! # Logging
//! Through the [`log`] facade: `info` for lifecycle (listening, shutdown), `debug` for each
//! connection opened and closed (with its reason and byte counts), and, under the target
//! `mio_reactor::trace`, one line per trace [`Record`]. The examples install `env_logger`:
//! `RUST_LOG=debug`, or `RUST_LOG=mio_reactor=trace` to watch every turn.

#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]

mod accept;
mod adopt;
mod close;
mod close_reason;
mod config;
mod connect;
mod connection;
mod context;
mod core;
mod datagram;
mod decisions;
mod dispatch;
mod endpoint;
mod entries;
mod handler;
mod id;
mod inherited;
mod listen;
mod listener;
mod net;
mod options;
mod output;
mod panics;
mod post;
pub mod protocol;
mod queues;
mod reactor;
mod shutdown;
mod signals;
mod state;
mod stats;
mod threads;
mod timer;
mod trace;
mod transport;
mod udp;
mod unix_path;
mod upgrade;
mod watch;
mod watch_handler;

/// The README's examples compile and run as doctests, so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guide's complete programs run as doctests too (`cargo test --doc Guide`).
#[doc = include_str!("../docs/guide/06-framing-and-backpressure.md")]
#[cfg(doctest)]
pub struct GuideFramingAndBackpressure;

#[doc = include_str!("../docs/guide/07-closing.md")]
#[cfg(doctest)]
pub struct GuideClosing;

#[doc = include_str!("../docs/guide/08-udp-and-unix.md")]
#[cfg(doctest)]
pub struct GuideUdpAndUnix;

#[doc = include_str!("../docs/guide/09b-the-reactor-in-a-larger-program.md")]
#[cfg(doctest)]
pub struct GuideReactorInALargerProgram;

#[doc = include_str!("../docs/guide/11-watching-the-loop.md")]
#[cfg(doctest)]
pub struct GuideWatchingTheLoop;

pub use adopt::AdoptedStream;
pub use close_reason::{CloseReason, Limit};
pub use config::Config;
pub use connect::IntoConnectTarget;
pub use context::{Context, WriteError};
pub use datagram::{DatagramContext, DatagramHandler, SendOutcome};
pub use dead_peers::{DeadPeerDetection, Keepalive};
pub use endpoint::{Endpoint, EndpointError, IntoEndpoint, IntoEndpoints};
pub use handler::{Factory, Handler};
pub use id::{ConnId, ListenerId, LoopTimerId, TimerId, UdpId, WatchId};
pub use listen::{IntoListener, ListenerInfo, Listening};
pub use loop_timers::Every;
pub use net::PeerAddr;
pub use options::{ConnectOptions, ListenOptions, StreamOptions};
pub use output_limits::OutputLimits;
pub use post::{LoopContext, LoopHandle, PostError};
pub use proxy_protocol::{ProxyHeader, ProxyProtocol};
pub use reactor::Reactor;
pub use shutdown::ShutdownHandle;
pub use state::{Input, State};
pub use stats::{ClosedCounts, Stats};
pub use threads::{ReactorThreads, Spread};
pub use trace::{Observer, Record, TimerKind, TimerTarget};
pub use udp::socket_options::DatagramSocketStats;
pub use upgrade::Upgrade;
pub use watch_handler::{FdSource, Readiness, WatchContext, WatchHandler};

// Declared after the guide's doctests too, for the same reason as TLS below.
mod before_sleep;
mod dead_peers;
mod loop_timers;
mod output_limits;
mod proxy_protocol;
mod proxy_stage;

// TLS (the `tls` feature). Declared here, after the guide's doctests above, so that the line
// numbers `cargo test --doc Guide` reports (quoted in the guide) do not depend on features.
#[cfg(feature = "tls")]
mod handshake;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "tls")]
mod tls_api;

/// The rustls this crate was built with (the `tls` feature): its configs are what
/// [`ListenOptions::tls`] and [`ConnectOptions::tls`] take, so use this one to build them.
#[cfg(feature = "tls")]
pub use rustls;
#[cfg(feature = "tls")]
pub use tls::TlsInfo;

//! Public identities of connections, UDP sockets, watched sources and timers.
//!
//! A slab reuses keys: once connection 7 is removed, the next accepted connection may get key 7
//! too. A bare key held by a timer, a chat room or another thread would then silently point at a
//! stranger. So every public id carries the *generation* of the slot it names, and a lookup
//! succeeds only when both match.

use std::fmt;

/// A slab key together with the generation of the entry that lived there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub(crate) key: usize,
    pub(crate) generation: u32,
}

/// Identifies one connection for its whole life, and never another one.
///
/// Use it to write to another connection ([`Context::write_to`](crate::Context::write_to)),
/// or to remember peers in shared state (a chat room). Once the connection is closed its id
/// stops matching anything, even after the reactor reuses the connection's slab key.
///
/// It prints as `#key.generation`, the form the logs and trace records use. Ids are only
/// meaningful within the reactor that made them; which key and generation a connection gets
/// is not part of the API.
///
/// # Examples
/// An id that outlives its connection: the next connection gets the same slab key, but not
/// the same id, and writing to the old id reaches nobody.
/// ```
/// use std::cell::RefCell;
/// use std::net::TcpStream;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use mio_reactor::{ConnId, Context, Handler, ListenOptions, Reactor, Stats, WriteError};
///
/// /// Tells each visitor's predecessor that someone new arrived.
/// struct Visitor {
///     visits: Rc<RefCell<Vec<(ConnId, Result<(), WriteError>)>>>,
/// }
///
/// impl Handler for Visitor {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         let mut visits = self.visits.borrow_mut();
///         let told = match visits.last() {
///             Some(&(previous, _)) => ctx.write_to(previous, b"someone new arrived\n"),
///             None => Ok(()),
///         };
///         visits.push((ctx.id(), told));
///     }
///
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.len()
///     }
/// }
///
/// /// Turns the loop until `done(stats)`, for at most about 10 s.
/// fn turn_until(reactor: &mut Reactor, done: impl Fn(&Stats) -> bool) -> std::io::Result<()> {
///     for _ in 0..1000 {
///         if done(&reactor.stats()) {
///             return Ok(());
///         }
///         reactor.turn(Some(Duration::from_millis(10)))?;
///     }
///     Err(std::io::Error::other("timed out"))
/// }
///
/// let visits = Rc::new(RefCell::new(Vec::new()));
/// let shared = visits.clone();
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
///     Some(Visitor { visits: shared.clone() })
/// })?.local_addr()?;
///
/// let first = TcpStream::connect(addr)?;
/// turn_until(&mut reactor, |stats| stats.accepted == 1)?;
/// drop(first); // its FIN: the server closes that connection
/// turn_until(&mut reactor, |stats| stats.closed.total() == 1)?;
/// let _second = TcpStream::connect(addr)?;
/// turn_until(&mut reactor, |stats| stats.accepted == 2)?;
///
/// let visits = visits.borrow();
/// let [(old, _), (new, told)] = &visits[..] else { panic!("two visits") };
/// assert_eq!(old.key(), new.key()); // the slab key was reused...
/// assert_ne!(old, new); // ...in a new generation
/// assert_eq!(*told, Err(WriteError::NoSuchConnection));
/// println!("{old} then {new}"); // #1.2 then #1.3
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) Slot);

impl ConnId {
    /// The slab key, which is also the `mio::Token` of the connection's socket.
    ///
    /// Useful in logs; two live connections never share a key, but a key is reused after close.
    pub fn key(&self) -> usize {
        self.0.key
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}.{})", self.0.key, self.0.generation)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.0.key, self.0.generation)
    }
}

/// Identifies one UDP socket (bound with [`Reactor::bind_udp`](crate::Reactor::bind_udp)) for
/// its whole life, and never another one.
///
/// A datagram socket is not a connection: it has no peer and no stream, and nothing that
/// takes a [`ConnId`] (writing to, closing or aborting a connection) applies to it. It has its
/// own id type so that the compiler, not a runtime lookup, keeps the two apart. Like a
/// [`ConnId`], it is a slab key plus the generation of the entry: once the socket is closed
/// its id matches nothing, even after the key is reused.
///
/// It prints as `udp#key.generation`, the form the logs and trace records use
/// ([`Record::Datagram`](crate::Record::Datagram), and
/// [`TimerTarget::Udp`](crate::TimerTarget::Udp) for its timers). Ids are only meaningful
/// within the reactor that made them.
///
/// # Examples
/// A socket learns its id in `on_open` ([`DatagramContext::id`](crate::DatagramContext::id)):
/// ```
/// use std::cell::Cell;
/// use std::net::SocketAddr;
/// use std::rc::Rc;
/// use mio_reactor::{DatagramContext, DatagramHandler, Reactor, UdpId};
///
/// struct Named {
///     id: Rc<Cell<Option<UdpId>>>,
/// }
///
/// impl DatagramHandler for Named {
///     fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
///         self.id.set(Some(ctx.id()));
///     }
///
///     fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
/// }
///
/// let id = Rc::new(Cell::new(None));
/// let mut reactor = Reactor::new()?;
/// reactor.bind_udp("udp:127.0.0.1:0", Named { id: id.clone() })?;
/// let id = id.get().expect("on_open ran in bind_udp");
/// assert!(id.to_string().starts_with("udp#"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpId(pub(crate) Slot);

impl UdpId {
    /// The slab key, which is also the `mio::Token` of the socket.
    ///
    /// Useful in logs; two live entries never share a key, but a key is reused after close.
    pub fn key(&self) -> usize {
        self.0.key
    }
}

impl fmt::Debug for UdpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UdpId({}.{})", self.0.key, self.0.generation)
    }
}

impl fmt::Display for UdpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp#{}.{}", self.0.key, self.0.generation)
    }
}

/// Identifies one source watched with [`Reactor::watch`](crate::Reactor::watch) (or
/// [`Reactor::on_signals`](crate::Reactor::on_signals)) for as long as it is watched. Like a
/// [`ConnId`], it is a slab key plus the generation of the entry: once the watch ends its id
/// matches nothing, even after the key is reused.
///
/// It prints as `watch#key.generation`, the form the logs and trace records use
/// ([`Record::WatchReady`](crate::Record::WatchReady)).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(pub(crate) Slot);

impl WatchId {
    /// The slab key, which is also the `mio::Token` of the source.
    pub fn key(&self) -> usize {
        self.0.key
    }
}

impl fmt::Debug for WatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WatchId({}.{})", self.0.key, self.0.generation)
    }
}

impl fmt::Display for WatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "watch#{}.{}", self.0.key, self.0.generation)
    }
}

/// Identifies one timer set with [`Context::set_timer`](crate::Context::set_timer) (or
/// [`DatagramContext::set_timer`](crate::DatagramContext::set_timer)).
///
/// It is handed back to [`Handler::on_timer`](crate::Handler::on_timer) when the timer fires
/// and can be passed to [`Context::cancel_timer`](crate::Context::cancel_timer) before that.
/// A handler with several timers compares ids to tell them apart.
///
/// # Examples
/// A countdown: a tick every 10 ms, until a deadline at 35 ms.
/// ```
/// use std::io::Read;
/// use std::time::Duration;
/// use mio_reactor::{Context, Handler, ListenOptions, Reactor, TimerId};
///
/// #[derive(Default)]
/// struct Countdown {
///     tick: Option<TimerId>,
///     deadline: Option<TimerId>,
/// }
///
/// impl Handler for Countdown {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         self.tick = Some(ctx.set_timer(Duration::from_millis(10)));
///         self.deadline = Some(ctx.set_timer(Duration::from_millis(35)));
///     }
///
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.len()
///     }
///
///     fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
///         if Some(timer) == self.tick {
///             ctx.write(b"tick\n");
///             self.tick = Some(ctx.set_timer(Duration::from_millis(10)));
///         } else if Some(timer) == self.deadline {
///             ctx.write(b"time's up\n");
///             ctx.close(); // the pending tick will not fire: the connection is closing
///         }
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| {
///     Some(Countdown::default())
/// })?.local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
/// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
///     let mut heard = String::new();
///     stream.read_to_string(&mut heard)?;
///     Ok(heard)
/// });
/// while !client.is_finished() {
///     reactor.turn(Some(Duration::from_millis(5)))?;
/// }
/// let heard = client.join().unwrap()?;
/// // Usually three ticks; fewer if the machine is slow, since each tick is set from the last.
/// assert!(heard.starts_with("tick\n") && heard.ends_with("tick\ntime's up\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// Identifies one timer of the loop: set with
/// [`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer) or
/// [`set_loop_interval`](crate::Reactor::set_loop_interval) (or the same methods of any
/// context), handed to its callback each time it fires, and cancelled with
/// `cancel_loop_timer`. It prints as `loop-timer#N`.
///
/// A type apart from [`TimerId`], because the two are cancelled by different owners: a
/// [`TimerId`] belongs to one connection or socket, which alone may cancel it and whose
/// closing cancels it, while a loop timer belongs to no connection and outlives the one that
/// set it. Mixing them up is a type error rather than a cancel that silently misses. Ids are
/// never reused within a reactor; a periodic timer keeps its id across its periods.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::Reactor;
///
/// let mut reactor = Reactor::new()?;
/// let id = reactor.set_loop_timer(Duration::from_secs(60), |_, _| println!("never"));
/// assert_eq!(id.to_string(), "loop-timer#0");
/// assert!(reactor.cancel_loop_timer(id));
/// assert!(!reactor.cancel_loop_timer(id)); // gone already
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoopTimerId(pub(crate) u64);

impl fmt::Display for LoopTimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loop-timer#{}", self.0)
    }
}

/// Identifies one listen ([`Reactor::listen`](crate::Reactor::listen)): every socket it
/// opened (a host name that resolved to two addresses gives two), for as long as they listen.
///
/// Hand it to [`Reactor::stop_listening`](crate::Reactor::stop_listening) to close them;
/// [`Reactor::listeners`](crate::Reactor::listeners) lists the sockets with it. Ids are
/// unique in the process (one reactor never matches another's), and it prints as `listener#N`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(pub(crate) u64);

impl fmt::Debug for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ListenerId({})", self.0)
    }
}

impl fmt::Display for ListenerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listener#{}", self.0)
    }
}

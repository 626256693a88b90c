//! The [`Context`] handed to every handler callback: everything a protocol may ask of the
//! reactor, for its own connection and for others.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::connect::{IntoConnectTarget, Lookup};
use crate::core::Core;
use crate::handler::Handler;
use crate::id::{ConnId, LoopTimerId, Slot, TimerId};
use crate::loop_timers::Every;
use crate::net::PeerAddr;
use crate::options::ConnectOptions;
use crate::post::LoopHandle;
use crate::proxy_protocol::ProxyHeader;
use crate::proxy_stage::ProxyStage;

/// Why [`Context::write_to`] could not queue the bytes.
///
/// Only [`write_to`](Context::write_to) reports these; [`Context::write`] to the handler's
/// own connection logs and discards instead, since the handler hears how its connection
/// ended in [`on_close`](crate::Handler::on_close) anyway.
///
/// # Examples
/// What each error means to a handler that keeps ids of other connections (a chat room, a
/// subscriber list): all three say "stop writing to this id".
/// ```
/// use mio_reactor::{ConnId, Context, WriteError};
///
/// /// Sends `msg` to `id`; returns whether `id` is worth writing to again.
/// fn tell(ctx: &mut Context<'_>, id: ConnId, msg: &[u8]) -> bool {
///     match ctx.write_to(id, msg) {
///         Ok(()) => true,
///         // Closed and removed: the id will never match a connection again.
///         Err(WriteError::NoSuchConnection) => false,
///         // Still there, but takes no output: closing, writes shut down, or still connecting.
///         Err(WriteError::Closed) => false,
///         // It stopped reading and was just closed for it; its `on_close` follows.
///         Err(err @ WriteError::LimitExceeded) => {
///             eprintln!("{id}: {err}");
///             false
///         }
///     }
/// }
/// # let _ = tell;
///
/// // `WriteError` is a `std::error::Error`, with a message fit for a log line.
/// let err: Box<dyn std::error::Error> = Box::new(WriteError::NoSuchConnection);
/// assert_eq!(err.to_string(), "no such connection");
/// ```
/// [`ConnId`]'s example meets `NoSuchConnection` on a real connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// No such connection: it closed (perhaps long ago) or the id never existed.
    NoSuchConnection,
    /// The connection's write side is closed (or closing).
    ///
    /// Also returned while an outbound connect is still in progress: a connection accepts
    /// output only from its [`on_open`](crate::Handler::on_open) on.
    Closed,
    /// The write took the connection's output past
    /// [`Config::max_output`](crate::Config::max_output): it was closed with
    /// [`Limit::Output`](crate::Limit::Output).
    LimitExceeded,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::NoSuchConnection => "no such connection",
            WriteError::Closed => "the connection's write side is closed",
            WriteError::LimitExceeded => "output limit exceeded; the connection was closed",
        })
    }
}

impl std::error::Error for WriteError {}

/// What a handler can do, handed to each of its callbacks.
///
/// Methods without a connection id act on the handler's own connection. Nothing here blocks:
/// writes are queued and flushed by the loop, closes complete later, and `on_close` reports
/// how they ended.
///
/// # Examples
/// A line service: greet the peer, answer its first line in upper case, then close.
/// ```
/// use std::io::{Read, Write};
/// use std::time::Duration;
/// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
///
/// struct Shout;
///
/// impl Handler for Shout {
///     fn on_open(&mut self, ctx: &mut Context<'_>) {
///         let greeting = format!("hello {}, you are {}\n", ctx.peer_addr(), ctx.id());
///         ctx.write(greeting.as_bytes());
///     }
///
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         // Wait for a whole line: consuming nothing keeps the bytes for the next call.
///         let Some(end) = data.iter().position(|&b| b == b'\n') else {
///             return 0;
///         };
///         ctx.write(&data[..=end].to_ascii_uppercase());
///         ctx.close(); // the reply is flushed before the FIN
///         end + 1
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Shout))?.local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
/// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
///     stream.write_all(b"hello reactor\n")?;
///     let mut reply = String::new();
///     stream.read_to_string(&mut reply)?; // until the server's FIN
///     Ok(reply)
/// });
/// while !client.is_finished() {
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// let reply = client.join().unwrap()?;
/// assert!(reply.starts_with("hello 127.0.0.1:"));
/// assert!(reply.ends_with(", you are #1.2\nHELLO REACTOR\n"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Context<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) slot: Slot,
}

/// Stands in for the peer of a connection that is not there, which cannot happen while its
/// handler runs; it saves every caller an `Option`.
const NO_PEER: PeerAddr = PeerAddr::Unix(None);

impl<'a> Context<'a> {
    pub(crate) fn new(core: &'a mut Core, slot: Slot) -> Context<'a> {
        Context { core, slot }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        ConnId(self.slot)
    }

    /// This connection's peer: with
    /// [`ListenOptions::proxy_protocol`](crate::ListenOptions::proxy_protocol), the client
    /// its PROXY protocol header names (see [`proxy_header`](Context::proxy_header)).
    pub fn peer_addr(&self) -> &PeerAddr {
        self.core
            .entries
            .conn_ref(self.slot)
            .map_or(&NO_PEER, |conn| conn.peer())
    }

    /// This connection's socket, borrowed for the callback: to read its options or state
    /// (`getsockopt`: `TCP_INFO`'s round-trip time, the keepalive settings of
    /// [`DeadPeerDetection`](crate::DeadPeerDetection)) with `socket2::SockRef` or `libc`.
    /// `None` if the connection is gone. As tokio's `TcpStream` does through `AsFd`.
    ///
    /// # Notes
    /// The reactor owns the socket: making it blocking, shutting it down or changing its
    /// interest behind the reactor's back breaks the connection. Reading options is safe;
    /// over TLS the bytes on the socket are the encrypted records.
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{Context, Handler};
    ///
    /// struct Inspect;
    /// impl Handler for Inspect {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         if let Some(fd) = ctx.as_fd() {
    ///             let nodelay = socket2::SockRef::from(&fd).nodelay();
    ///             println!("{} TCP_NODELAY: {nodelay:?}", ctx.id());
    ///         }
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    /// # let _ = Inspect;
    /// ```
    pub fn as_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        let conn = self.core.entries.conn_ref(self.slot)?;
        Some(conn.transport_ref().stream().as_fd())
    }

    /// What this connection's PROXY protocol header said: the balancer's own address
    /// ([`ProxyHeader::proxy_addr`]) and the header's TLVs. `None` unless the connection
    /// was accepted by a listen with
    /// [`ListenOptions::proxy_protocol`](crate::ListenOptions::proxy_protocol).
    pub fn proxy_header(&self) -> Option<&ProxyHeader> {
        match &self.core.entries.conn_ref(self.slot)?.proxy {
            Some(ProxyStage::Received(header)) => Some(header),
            _ => None,
        }
    }

    /// The time at the start of this reactor turn (the clock is read once per turn).
    pub fn now(&self) -> Instant {
        self.core.now()
    }

    /// Sends `data` to the peer.
    ///
    /// Writes are gathered: what one callback writes leaves in one system call when the
    /// callback returns (a reply written as a header and a body is one segment, not two),
    /// and never later than the end of the dispatch that made it. What the kernel does not
    /// take is buffered and sent as the socket drains; bytes held for the end of the
    /// callback count against the water marks and `max_output` at once. Once the output
    /// passes the high water mark, reading pauses until it falls to the low one
    /// ([`Handler::on_drain`](crate::Handler::on_drain)). Past
    /// [`Config::max_output`](crate::Config::max_output) the connection is closed with
    /// [`Limit::Output`](crate::Limit::Output). After a close or `shutdown_write` the bytes are
    /// discarded.
    pub fn write(&mut self, data: &[u8]) {
        if let Err(err) = self.core.write_conn(self.slot, data) {
            log::debug!("{}: {} B not written: {err}", self.id(), data.len());
        }
    }

    /// Sends `data` to another connection, as [`write`](Context::write) would for it.
    ///
    /// # Errors
    /// - [`WriteError::NoSuchConnection`]: `id` names no open connection of this reactor (it
    ///   closed, even if its slab key was reused since), or it is this connection and it
    ///   has already ended (aborted, or failed);
    /// - [`WriteError::Closed`]: the target may not be written to: it is still connecting,
    ///   its write side is shut down or closing, or the write itself failed (the target is
    ///   then closed with the error as its [`CloseReason`]);
    /// - [`WriteError::LimitExceeded`]: the bytes took the target's output past
    ///   [`Config::max_output`](crate::Config::max_output); the target was closed with
    ///   [`Limit::Output`](crate::Limit::Output).
    ///
    /// None of them affects the writing connection.
    ///
    /// This is how a chat server broadcasts. A target that stopped reading is closed once its
    /// buffered output passes [`Config::max_output`](crate::Config::max_output), so one slow
    /// peer cannot grow the server's memory.
    ///
    /// # Notes
    /// Writing to another connection does not pause the writer's reading: the water marks
    /// apply to the target only. A connection that is still connecting refuses output
    /// ([`WriteError::Closed`]).
    ///
    /// # Examples
    /// A chat room: every line a member sends goes to all the others.
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::TcpStream;
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use mio_reactor::{CloseReason, ConnId, Context, Handler, ListenOptions, Reactor};
    ///
    /// /// Who is in the room. Handlers all run on the reactor's thread: `Rc<RefCell>` will do.
    /// type Room = Rc<RefCell<Vec<ConnId>>>;
    ///
    /// struct Member {
    ///     room: Room,
    /// }
    ///
    /// impl Handler for Member {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         self.room.borrow_mut().push(ctx.id());
    ///         ctx.write(b"welcome\n");
    ///     }
    ///
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         // Whole lines only: a partial line waits for the rest.
    ///         let Some(end) = data.iter().rposition(|&b| b == b'\n') else {
    ///             return 0;
    ///         };
    ///         let me = ctx.id();
    ///         // A member that can no longer be written to leaves the room.
    ///         self.room
    ///             .borrow_mut()
    ///             .retain(|&id| id == me || ctx.write_to(id, &data[..=end]).is_ok());
    ///         end + 1
    ///     }
    ///
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, _: &CloseReason) {
    ///         let me = ctx.id();
    ///         self.room.borrow_mut().retain(|&id| id != me);
    ///     }
    /// }
    ///
    /// let room = Room::default();
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
    ///     Some(Member { room: room.clone() })
    /// })?.local_addr()?;
    /// let clients = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let join = || -> std::io::Result<BufReader<TcpStream>> {
    ///         let mut member = BufReader::new(TcpStream::connect(addr)?);
    /// #       member.get_ref().set_read_timeout(Some(Duration::from_secs(10)))?;
    ///         let mut welcome = String::new();
    ///         member.read_line(&mut welcome)?; // now in the room
    ///         Ok(member)
    ///     };
    ///     let (mut alice, mut bob) = (join()?, join()?);
    ///     alice.get_mut().write_all(b"hi bob\n")?;
    ///     let mut heard = String::new();
    ///     bob.read_line(&mut heard)?;
    ///     Ok(heard)
    /// });
    /// while !clients.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(clients.join().unwrap()?, "hi bob\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn write_to(&mut self, id: ConnId, data: &[u8]) -> Result<(), WriteError> {
        if id.0 == self.slot && !self.core.is_live(self.slot) {
            return Err(WriteError::NoSuchConnection);
        }
        self.core.write_conn(id.0, data)
    }

    /// Closes gracefully: buffered output is flushed, then a FIN is sent; the connection ends
    /// when the peer closes too, or is aborted after
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    pub fn close(&mut self) {
        self.core.request_close(self.slot, CloseReason::Local);
    }

    /// Closes gracefully, reporting `reason` to [`Handler::on_close`](crate::Handler::on_close)
    /// and the stats: for example [`CloseReason::Protocol`] after a malformed message (write
    /// the error reply first; it is flushed before the FIN).
    ///
    /// The first reason given wins: a later `close_with` (or `close`) does not replace it, but
    /// a failure during the close does (a reset from the peer, the close deadline with output
    /// left).
    ///
    /// [`ClosedCounts`](crate::ClosedCounts) and
    /// [`ProtocolError`](crate::protocol::ProtocolError) have examples.
    pub fn close_with(&mut self, reason: CloseReason) {
        self.core.request_close(self.slot, reason);
    }

    /// Closes another connection gracefully, as its own [`close`](Context::close) would (a
    /// chat server's kick; a proxy passing on its peer's close). Its handler hears `on_close`
    /// with [`CloseReason::Local`]. Returns `false` if no such connection is open.
    pub fn close_conn(&mut self, id: ConnId) -> bool {
        self.core.close_conn(id.0)
    }

    /// Aborts another connection at once, as its own [`abort`](Context::abort) would.
    /// Returns `false` if no such connection is open.
    pub fn abort_conn(&mut self, id: ConnId) -> bool {
        self.core.abort_conn(id.0)
    }

    /// Closes at once, discarding buffered output, with a reset to tell the peer.
    ///
    /// Bytes written earlier in the same callback are sent first, as far as the socket
    /// takes them (as if they had gone straight to the socket); only what the kernel refuses
    /// is discarded.
    pub fn abort(&mut self) {
        self.core.abort(self.slot);
    }

    /// Shuts down the write side once buffered output is flushed (the peer reads EOF). Input
    /// keeps arriving until the peer closes its side too.
    ///
    /// After it, [`on_eof`](crate::Handler::on_eof) is not called: the peer's EOF completes
    /// the close, with [`CloseReason::PeerClosed`].
    ///
    /// # Examples
    /// An answer whose end is the FIN (no length, no delimiter), and the peer's reply to it,
    /// received after the FIN.
    /// ```
    /// use std::cell::RefCell;
    /// use std::io::{Read, Write};
    /// use std::rc::Rc;
    /// use std::time::Duration;
    /// use mio_reactor::{CloseReason, Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Quote {
    ///     heard: Rc<RefCell<Vec<u8>>>,
    /// }
    ///
    /// impl Handler for Quote {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         ctx.write(b"Simple is better than complex.\n");
    ///         ctx.shutdown_write(); // the peer reads the quote, then EOF
    ///     }
    ///
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         self.heard.borrow_mut().extend_from_slice(data); // still delivered
    ///         data.len()
    ///     }
    ///
    ///     fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
    ///         assert_eq!(*reason, CloseReason::PeerClosed);
    ///     }
    /// }
    ///
    /// let heard = Rc::new(RefCell::new(Vec::new()));
    /// let sink = heard.clone();
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
    ///     Some(Quote { heard: sink.clone() })
    /// })?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     let mut quote = String::new();
    ///     stream.read_to_string(&mut quote)?; // to EOF: the whole quote
    ///     stream.write_all(b"thanks")?; // our half is still open
    ///     Ok(quote) // dropping the stream sends our FIN
    /// });
    /// for _ in 0..1000 {
    ///     if reactor.stats().closed.total() == 1 {
    ///         break;
    ///     }
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, "Simple is better than complex.\n");
    /// assert_eq!(*heard.borrow(), b"thanks");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_write(&mut self) {
        self.core.shutdown_write(self.slot);
    }

    /// Stops delivering input until [`resume_reading`](Context::resume_reading). The kernel
    /// buffers what the peer sends, then TCP flow control makes the peer wait.
    ///
    /// Input already read but not consumed is kept, and offered first once reading resumes.
    /// This pause is the handler's own; the reactor's backpressure pause (output above the
    /// high water mark) is separate, and input flows only when neither holds.
    ///
    /// # Examples
    /// A rate limit: handle one line, then stop reading for 20 ms.
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::{Duration, Instant};
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor, TimerId};
    ///
    /// struct Throttled;
    ///
    /// impl Handler for Throttled {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         let Some(end) = data.iter().position(|&b| b == b'\n') else {
    ///             return 0;
    ///         };
    ///         ctx.write(&data[..=end]);
    ///         ctx.pause_reading(); // the lines after this one are kept
    ///         ctx.set_timer(Duration::from_millis(20));
    ///         end + 1
    ///     }
    ///
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
    ///         ctx.resume_reading(); // on_data again, with the kept lines
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Throttled))?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<Duration> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     let start = Instant::now();
    ///     stream.write_all(b"one\ntwo\nthree\n")?; // all at once
    ///     let mut echo = [0; 14];
    ///     stream.read_exact(&mut echo)?;
    ///     assert_eq!(&echo, b"one\ntwo\nthree\n");
    ///     Ok(start.elapsed())
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert!(client.join().unwrap()? >= Duration::from_millis(40)); // two pauses
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pause_reading(&mut self) {
        self.core.set_reading(self.slot, true);
    }

    /// Delivers input again, starting with input kept while paused.
    pub fn resume_reading(&mut self) {
        self.core.set_reading(self.slot, false);
    }

    /// Calls [`Handler::on_timer`](crate::Handler::on_timer) after `delay`, in this loop.
    /// Timers of a closed connection never fire.
    ///
    /// `delay` counts from [`now`](Context::now), the turn's clock. A timer never fires early,
    /// but may fire late: by the time the rest of the turn takes, and at the granularity of
    /// `poll`'s timeout (a millisecond).
    ///
    /// # Examples
    /// A request timeout: whoever connects has 50 ms to send a request.
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor, TimerId};
    ///
    /// struct Ping {
    ///     deadline: Option<TimerId>,
    /// }
    ///
    /// impl Handler for Ping {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         self.deadline = Some(ctx.set_timer(Duration::from_millis(50)));
    ///     }
    ///
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         if let Some(deadline) = self.deadline.take() {
    ///             ctx.cancel_timer(deadline); // in time: on_timer will not be called
    ///         }
    ///         ctx.write(b"pong\n");
    ///         data.len()
    ///     }
    ///
    ///     fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
    ///         if self.deadline == Some(timer) {
    ///             ctx.write(b"too slow\n");
    ///             ctx.close();
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| {
    ///     Some(Ping { deadline: None })
    /// })?.local_addr()?;
    /// let clients = std::thread::spawn(move || -> std::io::Result<(String, String)> {
    ///     use std::net::TcpStream;
    ///     let mut prompt = TcpStream::connect(addr)?;
    /// #   prompt.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     prompt.write_all(b"ping\n")?;
    ///     let mut pong = [0; 5];
    ///     prompt.read_exact(&mut pong)?;
    ///
    ///     let mut silent = TcpStream::connect(addr)?; // sends nothing
    /// #   silent.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     let mut verdict = String::new();
    ///     silent.read_to_string(&mut verdict)?; // until the server's FIN
    ///     Ok((String::from_utf8_lossy(&pong).into_owned(), verdict))
    /// });
    /// while !clients.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// let (pong, verdict) = clients.join().unwrap()?;
    /// assert_eq!((pong.as_str(), verdict.as_str()), ("pong\n", "too slow\n"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_timer(&mut self, delay: Duration) -> TimerId {
        self.core.set_timer(self.slot, delay)
    }

    /// Cancels one of this handler's timers; returns whether it was still pending. (A timer of
    /// another connection is not cancelled: `false`.)
    ///
    /// [`set_timer`](Context::set_timer) has an example. A timer that has fired, or was
    /// cancelled, cannot be cancelled again: `false`.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.cancel_timer(self.slot, timer)
    }

    /// Sets a timer of the loop, which belongs to no connection: `callback` runs once after
    /// `delay`, with a [`LoopContext`](crate::LoopContext), even if this connection has closed
    /// meanwhile. As [`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer).
    ///
    /// # Examples
    /// A reply that the loop sends later, by id: it would miss, harmlessly, if the
    /// connection had closed by then.
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Later;
    /// impl Handler for Later {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         let id = ctx.id();
    ///         ctx.set_loop_timer(Duration::from_millis(10), move |lc, _| {
    ///             let _ = lc.write(id, b"later");
    ///             lc.close(id);
    ///         });
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Later))?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     let mut heard = String::new();
    ///     stream.read_to_string(&mut heard)?;
    ///     Ok(heard)
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, "later");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_loop_timer(
        &mut self,
        delay: Duration,
        callback: impl FnMut(&mut crate::LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_timer(delay, None, Box::new(callback))
    }

    /// Sets a periodic timer of the loop: `callback` runs every period as `every` says,
    /// until cancelled. As [`Reactor::set_loop_interval`](crate::Reactor::set_loop_interval).
    pub fn set_loop_interval(
        &mut self,
        every: Every,
        callback: impl FnMut(&mut crate::LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_interval(every, Box::new(callback))
    }

    /// Cancels a timer of the loop, whoever set it; returns whether it was pending. As
    /// [`Reactor::cancel_loop_timer`](crate::Reactor::cancel_loop_timer).
    pub fn cancel_loop_timer(&mut self, id: LoopTimerId) -> bool {
        self.core.cancel_loop_timer(id)
    }

    /// Closes this connection gracefully ([`CloseReason::IdleTimeout`]) once it has read and
    /// written nothing for `timeout`; `None` turns that off. Replaces the reactor default
    /// [`Config::idle_timeout`](crate::Config::idle_timeout).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.core.set_idle_timeout(self.slot, timeout);
    }

    /// The reactor's configuration: water marks, limits, timeouts.
    pub fn config(&self) -> &crate::Config {
        self.core.config()
    }

    /// Bytes written but not yet taken by the kernel.
    ///
    /// A producer uses it to write only as fast as the peer reads: see
    /// [`Handler::on_drain`](crate::Handler::on_drain).
    pub fn buffered_output(&self) -> usize {
        self.core
            .entries
            .conn_ref(self.slot)
            .map_or(0, |conn| conn.buffered_output())
    }

    /// Bytes written to connection `id` but not yet taken by the kernel; `None` if no such
    /// connection is open. `buffered_output_of(ctx.id())` is
    /// [`buffered_output`](Context::buffered_output) of this one.
    ///
    /// A publisher uses it to drop a message for a slow subscriber rather than let the
    /// subscriber's output run into its hard cap (which closes it).
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{ConnId, Context, Handler};
    ///
    /// struct Publisher {
    ///     subscribers: Vec<ConnId>,
    /// }
    ///
    /// impl Handler for Publisher {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         for &id in &self.subscribers {
    ///             // A subscriber more than 1 MiB behind misses this message.
    ///             if ctx.buffered_output_of(id).is_some_and(|behind| behind < 1 << 20) {
    ///                 let _ = ctx.write_to(id, data);
    ///             }
    ///         }
    ///         data.len()
    ///     }
    /// }
    /// # let _ = Publisher { subscribers: Vec::new() };
    /// ```
    pub fn buffered_output_of(&self, id: ConnId) -> Option<usize> {
        self.core
            .entries
            .conn_ref(id.0)
            .filter(|conn| conn.state() != crate::State::Closed)
            .map(|conn| conn.buffered_output())
    }

    /// This connection's output limits as they are now: its listen's or connect's, the
    /// reactor's, or what [`set_output_limits`](Context::set_output_limits) set.
    ///
    /// ```
    /// use mio_reactor::{Context, Handler};
    ///
    /// struct Producer;
    /// impl Handler for Producer {
    ///     fn on_drain(&mut self, ctx: &mut Context<'_>) {
    ///         while ctx.buffered_output() <= ctx.output_limits().get_high_water() {
    ///             ctx.write(&[0; 4096]);
    ///         }
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    /// # let _ = Producer;
    /// ```
    pub fn output_limits(&self) -> crate::OutputLimits {
        self.core.entries.conn_ref(self.slot).map_or_else(
            || crate::OutputLimits::from(self.core.config()),
            |conn| conn.output_limits(),
        )
    }

    /// Gives this connection new output limits (see [`OutputLimits`](crate::OutputLimits)),
    /// at any time: a client that asked for a large value gets a larger hard cap, a client
    /// that subscribed gets a soft limit.
    ///
    /// They apply at once to what is buffered: above the new hard cap the connection is
    /// aborted with [`Limit::Output`](crate::Limit::Output), above the new high water mark
    /// its reading pauses, and the soft limit's clock starts afresh. Reading paused for
    /// backpressure resumes at the next flush that finds output at the new low water mark.
    ///
    /// # Errors
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) if the limits contradict each
    /// other ([`OutputLimits::validate`](crate::OutputLimits::validate)); nothing changes.
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{Context, Handler, OutputLimits};
    ///
    /// /// Sends a large blob on request: up to 64 MiB may wait for a reading client.
    /// struct Blobs {
    ///     blob: Vec<u8>,
    /// }
    ///
    /// impl Handler for Blobs {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         let roomy = OutputLimits::default().max_output(64 << 20);
    ///         ctx.set_output_limits(roomy).expect("valid limits");
    ///         ctx.write(&self.blob);
    ///         data.len()
    ///     }
    /// }
    /// # let _ = Blobs { blob: Vec::new() };
    /// ```
    pub fn set_output_limits(&mut self, limits: crate::OutputLimits) -> std::io::Result<()> {
        self.core.set_output_limits(self.slot, limits)
    }

    /// Bytes kept from earlier [`on_data`](crate::Handler::on_data) calls that were not
    /// consumed. In [`on_eof`](crate::Handler::on_eof), non-zero means the peer stopped in
    /// the middle of a message.
    ///
    /// # Examples
    /// A line protocol that tells a complete stream from a truncated one:
    /// ```
    /// use mio_reactor::{CloseReason, Context, Handler};
    ///
    /// struct Lines;
    ///
    /// impl Handler for Lines {
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         // Every complete line; a partial one is kept.
    ///         data.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1)
    ///     }
    ///
    ///     fn on_eof(&mut self, ctx: &mut Context<'_>) {
    ///         match ctx.buffered_input() {
    ///             0 => ctx.close(),
    ///             n => {
    ///                 let why = format!("EOF after {n} B of an unfinished line");
    ///                 ctx.close_with(CloseReason::Protocol(why));
    ///             }
    ///         }
    ///     }
    /// }
    /// # let _ = Lines;
    /// ```
    pub fn buffered_input(&self) -> usize {
        self.core
            .entries
            .conn_ref(self.slot)
            .map_or(0, |conn| conn.input.len())
    }

    /// Opens an outbound connection in this reactor, served by `handler`, as
    /// [`Reactor::connect`](crate::Reactor::connect) does, but to an endpoint that needs no
    /// name lookup (`tcp:IP:PORT`, a [`SocketAddr`](std::net::SocketAddr), `unix:PATH`): a
    /// lookup blocks, and this runs inside the loop. Failure to connect is reported to the
    /// new handler's `on_close`.
    ///
    /// The two connections know each other only by the ids they are given: the new handler
    /// can report back with [`write_to`](Context::write_to).
    ///
    /// # Errors
    /// Only what fails at once (the handler is then dropped without any callback):
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a host name (resolve it outside the
    /// loop: [`Reactor::connect`](crate::Reactor::connect) does, or a worker thread) or an
    /// endpoint one cannot connect to; a Unix-domain connect's errors, which are immediate
    /// (see [`Reactor::connect`](crate::Reactor::connect)); the
    /// operating system's error from `socket` or `connect`, say
    /// [`NetworkUnreachable`](io::ErrorKind::NetworkUnreachable) (no route),
    /// [`AddrNotAvailable`](io::ErrorKind::AddrNotAvailable) (no ephemeral port left) or
    /// `EMFILE`/`ENFILE` (out of descriptors), or registering the socket with epoll (`ENOMEM`,
    /// `ENOSPC`). A refusal or a timeout arrives later, in the new handler's `on_close`, as
    /// [`CloseReason::ConnectFailed`](crate::CloseReason::ConnectFailed) or
    /// [`CloseReason::ConnectTimeout`](crate::CloseReason::ConnectTimeout). Neither affects
    /// the connection whose handler called this.
    ///
    /// # Examples
    /// A health check: on request, the server tries the backend and tells the client.
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use mio_reactor::{CloseReason, ConnId, ConnectOptions, Context, Handler, ListenOptions, Reactor};
    ///
    /// /// The client's connection: each line asks for a check.
    /// struct Front {
    ///     backend: SocketAddr,
    /// }
    ///
    /// impl Handler for Front {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         let Some(end) = data.iter().position(|&b| b == b'\n') else {
    ///             return 0;
    ///         };
    ///         let probe = Probe { asked_by: ctx.id(), answered: false };
    ///         if let Err(err) = ctx.connect(self.backend, ConnectOptions::default(), probe) {
    ///             ctx.write(format!("cannot check: {err}\n").as_bytes());
    ///         }
    ///         end + 1
    ///     }
    /// }
    ///
    /// /// The outbound connection: reports to the client that asked, then closes.
    /// struct Probe {
    ///     asked_by: ConnId,
    ///     answered: bool,
    /// }
    ///
    /// impl Handler for Probe {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = ctx.write_to(self.asked_by, b"backend up\n");
    ///         self.answered = true;
    ///         ctx.close();
    ///     }
    ///
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    ///
    ///     fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
    ///         if !self.answered {
    ///             let answer = format!("backend down: {reason}\n");
    ///             let _ = ctx.write_to(self.asked_by, answer.as_bytes());
    ///         }
    ///     }
    /// }
    ///
    /// // No backend: a port that was free a moment ago.
    /// let backend = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
    ///     Some(Front { backend })
    /// })?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut stream = BufReader::new(std::net::TcpStream::connect(addr)?);
    /// #   stream.get_ref().set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     stream.get_mut().write_all(b"check\n")?;
    ///     let mut answer = String::new();
    ///     stream.read_line(&mut answer)?;
    ///     Ok(answer)
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, "backend down: connect failed: connection refused\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(
        &mut self,
        target: impl IntoConnectTarget,
        options: ConnectOptions,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        let peers = target.into_peers(Lookup::Refused)?;
        self.core
            .connect(peers, Box::new(handler), options.into_connection())
            .map_err(|(err, _)| err)
    }

    /// Asks the reactor to shut down, as a [`ShutdownHandle`](crate::ShutdownHandle) would.
    ///
    /// The request is seen at the start of the next turn; this callback, and the rest of the
    /// turn, run as usual.
    ///
    /// # Examples
    /// A server stopped by a command from a peer:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Admin;
    ///
    /// impl Handler for Admin {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         if data.starts_with(b"shutdown\n") {
    ///             ctx.write(b"bye\n");
    ///             ctx.shutdown_reactor(); // every connection then closes gracefully
    ///         }
    ///         data.len()
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Admin))?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     stream.write_all(b"shutdown\n")?;
    ///     let mut reply = String::new();
    ///     stream.read_to_string(&mut reply)?; // until the server's FIN
    ///     Ok(reply)
    /// });
    /// reactor.run()?; // returns once the connection has closed
    /// assert_eq!(client.join().unwrap()?, "bye\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_reactor(&mut self) {
        self.core.lifecycle.request_shutdown();
    }

    /// Whether the reactor is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.core.lifecycle.is_shutting_down()
    }

    /// Whether the reactor handed its listeners to an upgrade's successor
    /// ([`Reactor::upgrade_on_signal`](crate::Reactor::upgrade_on_signal)) and is draining
    /// for that reason rather than stopping. In
    /// [`Handler::on_shutdown`](crate::Handler::on_shutdown) a handler decides where its
    /// protocol may stop: an echo keeps echoing (any byte it closed on could be one the
    /// peer just sent, and lost), HTTP closes after the response in progress; the
    /// connection is served until its peer closes, the handler closes it, or
    /// [`Config::shutdown_timeout`](crate::Config::shutdown_timeout) passes.
    pub fn is_upgrading(&self) -> bool {
        self.core.lifecycle.is_upgrading()
    }

    /// A handle to this reactor for other threads: a worker given it (and
    /// [`id`](Context::id)) brings its result back with [`LoopHandle::post`] or
    /// [`LoopHandle::send_to`]. The same as [`Reactor::handle`](crate::Reactor::handle).
    pub fn handle(&self) -> LoopHandle {
        self.core.inbox.handle()
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.id())
            .field("peer", self.peer_addr())
            .finish()
    }
}

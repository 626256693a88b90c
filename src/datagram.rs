//! Connection-less sockets: a [`DatagramHandler`] per UDP socket, and its [`DatagramContext`].
//!
//! A datagram socket has no peer, no stream and no half-close: each datagram arrives whole
//! (or not at all) with its sender's address, and each send is one datagram to any address.
//! What the reactor adds is the same loop discipline as for streams: receive until
//! `WouldBlock` within a budget, in batches of many datagrams per system call (`recvmmsg`),
//! and a small bounded send queue that leaves in batches too (`sendmmsg`), beyond which
//! datagrams are dropped and counted (UDP may lose them anyway), never an error that stops
//! the loop.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::core::Core;
use crate::id::{LoopTimerId, Slot, TimerId, UdpId};
use crate::loop_timers::Every;
use crate::udp::socket_options::{Buffer, DatagramSocketStats};

/// Your protocol on one UDP socket.
///
/// Lifecycle: `on_open`, then `on_datagram` and `on_timer` in any order, `on_shutdown` when
/// the reactor shuts down (the default closes), and `on_close` exactly once.
///
/// # Examples
/// A UDP echo:
/// ```
/// use std::net::SocketAddr;
/// use mio_reactor::{DatagramContext, DatagramHandler};
///
/// struct UdpEcho;
///
/// impl DatagramHandler for UdpEcho {
///     fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
///         let _ = ctx.send_to(data, from); // dropped (and counted) if the queue is full
///     }
/// }
/// # let _ = UdpEcho;
/// ```
pub trait DatagramHandler: 'static {
    /// The socket is bound and registered.
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        let _ = ctx;
    }

    /// One whole datagram arrived from `from`.
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr);

    /// A timer set with [`DatagramContext::set_timer`] fired.
    fn on_timer(&mut self, ctx: &mut DatagramContext<'_>, timer: TimerId) {
        let _ = (ctx, timer);
    }

    /// The reactor is shutting down. The default closes the socket once its send queue is
    /// flushed, or at the shutdown deadline.
    fn on_shutdown(&mut self, ctx: &mut DatagramContext<'_>) {
        ctx.close();
    }

    /// The socket is closed; called exactly once.
    fn on_close(&mut self, ctx: &mut DatagramContext<'_>, reason: &CloseReason) {
        let _ = (ctx, reason);
    }
}

/// What became of a datagram passed to [`DatagramContext::send_to`].
///
/// None of them means the datagram arrived: UDP does not say.
///
/// # Examples
/// A UDP echo that keeps count of what became of its replies:
/// ```
/// use std::cell::RefCell;
/// use std::net::SocketAddr;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use mio_reactor::{DatagramContext, DatagramHandler, Reactor, SendOutcome};
///
/// #[derive(Default)]
/// struct Tally {
///     queued: u32,
///     dropped: u32,
/// }
///
/// struct CountingEcho {
///     tally: Rc<RefCell<Tally>>,
/// }
///
/// impl DatagramHandler for CountingEcho {
///     fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
///         let mut tally = self.tally.borrow_mut();
///         match ctx.send_to(data, from) {
///             Ok(SendOutcome::Queued) => tally.queued += 1, // leaves at the end of the dispatch
///             Ok(SendOutcome::Dropped) => tally.dropped += 1, // the queue was full
///             Ok(_) => {} // `Sent`: no longer returned
///             Err(err) => eprintln!("no reply to {from}: {err}"), // this datagram only
///         }
///     }
/// }
///
/// let tally = Rc::new(RefCell::new(Tally::default()));
/// let mut reactor = Reactor::new()?;
/// let echo = CountingEcho { tally: tally.clone() };
/// let addr = reactor.bind_udp("udp:127.0.0.1:0", echo)?;
///
/// let client = std::net::UdpSocket::bind("127.0.0.1:0")?;
/// # client.set_read_timeout(Some(Duration::from_secs(10)))?;
/// client.send_to(b"ping", addr)?;
/// for _ in 0..1000 {
///     if reactor.stats().datagrams_in == 1 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// let tally = tally.borrow();
/// assert_eq!(tally.queued + tally.dropped, 1);
/// assert_eq!(tally.dropped, reactor.stats().datagrams_dropped as u32);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the kernel. ([`send_to`](DatagramContext::send_to) no longer returns it:
    /// datagrams leave in batches, so every accepted one is [`Queued`](SendOutcome::Queued).)
    Sent,
    /// Queued: it leaves in a batch after the received batch being handled, or at the end
    /// of the dispatch, or once the socket's buffer drains.
    Queued,
    /// The queue was full too: dropped and counted in
    /// [`Stats::datagrams_dropped`](crate::Stats::datagrams_dropped).
    Dropped,
}

/// What a datagram handler can do, handed to each of its callbacks.
///
/// # Examples
/// A heartbeat: three datagrams to a monitor, 10 ms apart, then the socket closes, and with
/// nothing left to serve, [`Reactor::run`](crate::Reactor::run) returns.
/// ```
/// use std::net::{SocketAddr, UdpSocket};
/// use std::time::Duration;
/// use mio_reactor::{DatagramContext, DatagramHandler, Reactor, TimerId};
///
/// struct Heartbeat {
///     monitor: SocketAddr,
///     beats: u32,
/// }
///
/// impl DatagramHandler for Heartbeat {
///     fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
///         ctx.set_timer(Duration::from_millis(10));
///     }
///
///     fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
///
///     fn on_timer(&mut self, ctx: &mut DatagramContext<'_>, _: TimerId) {
///         self.beats += 1;
///         let beat = format!("beat {}", self.beats);
///         let _ = ctx.send_to(beat.as_bytes(), self.monitor);
///         if self.beats < 3 {
///             ctx.set_timer(Duration::from_millis(10));
///         } else {
///             ctx.close(); // once the send queue is flushed
///         }
///     }
/// }
///
/// let monitor = UdpSocket::bind("127.0.0.1:0")?;
/// # monitor.set_read_timeout(Some(Duration::from_secs(10)))?;
/// let mut reactor = Reactor::new()?;
/// let heartbeat = Heartbeat { monitor: monitor.local_addr()?, beats: 0 };
/// reactor.bind_udp("udp:127.0.0.1:0", heartbeat)?;
/// reactor.run()?;
///
/// let mut buf = [0; 16];
/// for n in 1..=3 {
///     let len = monitor.recv(&mut buf)?;
///     assert_eq!(&buf[..len], format!("beat {n}").as_bytes());
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct DatagramContext<'a> {
    core: &'a mut Core,
    slot: Slot,
}

impl<'a> DatagramContext<'a> {
    pub(crate) fn new(core: &'a mut Core, slot: Slot) -> DatagramContext<'a> {
        DatagramContext { core, slot }
    }

    /// This socket's id, as logs and trace records name it.
    pub fn id(&self) -> UdpId {
        UdpId(self.slot)
    }

    /// The address this socket is bound to.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.core
            .entries
            .udp_ref(self.slot)
            .map(|udp| udp.local_addr)
    }

    /// The time at the start of this reactor turn.
    pub fn now(&self) -> Instant {
        self.core.now()
    }

    /// Sends one datagram to `to`: queues it, to leave with the others in one `sendmmsg(2)`
    /// call (Linux; `sendto(2)` each elsewhere or with
    /// [`Config::datagram_batches(false)`](crate::Config::datagram_batches)) after the
    /// received batch being handled, or at the end of this dispatch.
    ///
    /// Returns [`Queued`](SendOutcome::Queued), or [`Dropped`](SendOutcome::Dropped) when the
    /// queue already holds
    /// [`Config::max_queued_datagrams`](crate::Config::max_queued_datagrams); neither is an
    /// error. A datagram the kernel refuses when the queue is flushed (`EMSGSIZE`: larger
    /// than UDP carries, 65,507 bytes over IPv4; `EINVAL`: port 0; an address of the other IP
    /// family; no route) is dropped and counted in
    /// [`Stats::datagram_send_errors`](crate::Stats::datagram_send_errors) and
    /// [`Stats::datagrams_dropped`](crate::Stats::datagrams_dropped); the others still go.
    ///
    /// # Errors
    /// [`NotConnected`](io::ErrorKind::NotConnected): this socket is closing
    /// ([`close`](DatagramContext::close) was called); nothing is queued.
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<SendOutcome> {
        self.core.udp_send(self.slot, data, to)
    }

    /// Sets the socket's kernel receive buffer (`SO_RCVBUF`, `socket(7)`), in bytes: what
    /// absorbs a burst while the loop is busy; past it the kernel drops datagrams
    /// ([`Stats::datagram_receive_overflows`](crate::Stats::datagram_receive_overflows)).
    /// Call it in [`on_open`](DatagramHandler::on_open), before any datagram is read.
    ///
    /// Linux doubles the value (for its bookkeeping) and caps the request at
    /// `net.core.rmem_max` (a privileged process may pass the cap with `SO_RCVBUFFORCE`,
    /// which this does not use); read the result back with
    /// [`recv_buffer_size`](DatagramContext::recv_buffer_size).
    ///
    /// # Errors
    /// [`NotConnected`](io::ErrorKind::NotConnected): the socket is closed; those of
    /// `setsockopt(2)`.
    pub fn set_recv_buffer_size(&mut self, bytes: usize) -> io::Result<()> {
        self.core
            .set_udp_buffer_size(self.slot, Buffer::Recv, bytes)
    }

    /// The socket's kernel receive buffer, in bytes, as the kernel reports it (`SO_RCVBUF`:
    /// on Linux twice what was set).
    ///
    /// # Errors
    /// [`NotConnected`](io::ErrorKind::NotConnected): the socket is closed; those of
    /// `getsockopt(2)`.
    pub fn recv_buffer_size(&self) -> io::Result<usize> {
        self.core.udp_buffer_size(self.slot, Buffer::Recv)
    }

    /// Sets the socket's kernel send buffer (`SO_SNDBUF`, `socket(7)`), in bytes: past it a
    /// send would block and datagrams wait in the reactor's queue. Linux doubles the value
    /// and caps it at `net.core.wmem_max` (`SO_SNDBUFFORCE` passes the cap, unused here).
    ///
    /// # Errors
    /// As [`set_recv_buffer_size`](DatagramContext::set_recv_buffer_size).
    pub fn set_send_buffer_size(&mut self, bytes: usize) -> io::Result<()> {
        self.core
            .set_udp_buffer_size(self.slot, Buffer::Send, bytes)
    }

    /// The socket's kernel send buffer, in bytes, as the kernel reports it (`SO_SNDBUF`).
    ///
    /// # Errors
    /// As [`recv_buffer_size`](DatagramContext::recv_buffer_size).
    pub fn send_buffer_size(&self) -> io::Result<usize> {
        self.core.udp_buffer_size(self.slot, Buffer::Send)
    }

    /// A snapshot of this socket: its kernel buffers, the datagrams the kernel dropped on
    /// arrival so far, and those queued for sending.
    ///
    /// # Errors
    /// As [`recv_buffer_size`](DatagramContext::recv_buffer_size).
    pub fn socket_stats(&self) -> io::Result<DatagramSocketStats> {
        self.core.udp_socket_stats(self.slot)
    }

    /// Calls [`DatagramHandler::on_timer`] after `delay`.
    pub fn set_timer(&mut self, delay: Duration) -> TimerId {
        self.core.set_udp_timer(self.slot, delay)
    }

    /// Cancels one of this handler's timers; returns whether it was still pending. (A timer of
    /// another socket or connection is not cancelled: `false`.)
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.cancel_timer(self.slot, timer)
    }

    /// Sets a timer of the loop, which belongs to no connection: `callback` runs once after
    /// `delay`, with a [`LoopContext`](crate::LoopContext), even if this socket has closed
    /// meanwhile. As [`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer).
    ///
    /// # Examples
    /// ```
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use mio_reactor::{DatagramContext, DatagramHandler, Reactor};
    ///
    /// struct Starter;
    /// impl DatagramHandler for Starter {
    ///     fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
    ///         ctx.set_loop_timer(Duration::from_millis(5), |lc, _| lc.shutdown_reactor());
    ///     }
    ///     fn on_datagram(&mut self, _: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {}
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// reactor.bind_udp("udp:127.0.0.1:0", Starter)?;
    /// reactor.run()?; // until the loop timer asks for a shutdown
    /// assert_eq!(reactor.stats().loop_timers_fired, 1);
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

    /// Closes the socket once its send queue is flushed. (During a reactor shutdown, the
    /// shutdown deadline drops whatever is still queued.)
    pub fn close(&mut self) {
        self.core.udp_close(self.slot, CloseReason::Local);
    }

    /// Asks the reactor to shut down.
    pub fn shutdown_reactor(&mut self) {
        self.core.lifecycle.request_shutdown();
    }

    /// Whether the reactor is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.core.lifecycle.is_shutting_down()
    }
}

impl fmt::Debug for DatagramContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramContext")
            .field("id", &self.id())
            .field("local_addr", &self.local_addr())
            .finish()
    }
}

//! Counters a reactor keeps about itself, for monitoring and for tests.

use std::time::Duration;

use crate::close_reason::CloseReason;

/// How many connections closed, by [`CloseReason`].
///
/// # Examples
/// A server that closes a peer breaking its protocol, counted apart from a peer that finished
/// normally:
/// ```
/// use std::io::Write;
/// use std::net::{Shutdown, TcpStream};
/// use std::time::Duration;
/// use mio_reactor::{CloseReason, Context, Handler, ListenOptions, Reactor};
///
/// /// Accepts digits only.
/// struct Digits;
///
/// impl Handler for Digits {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         if let Some(bad) = data.iter().find(|b| !b.is_ascii_digit()) {
///             ctx.write(b"digits only\n");
///             ctx.close_with(CloseReason::Protocol(format!("unexpected byte {bad:#04x}")));
///         }
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Digits))?.local_addr()?;
/// let mut clients = Vec::new(); // kept open: a closed socket would answer with a reset
/// for message in [&b"123"[..], b"12x"] {
///     let mut client = TcpStream::connect(addr)?;
///     client.write_all(message)?;
///     client.shutdown(Shutdown::Write)?;
///     clients.push(client);
/// }
/// for _ in 0..1000 {
///     if reactor.stats().closed.total() == 2 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// let closed = reactor.stats().closed;
/// assert_eq!((closed.peer_closed, closed.protocol, closed.total()), (1, 1, 2));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClosedCounts {
    /// [`CloseReason::PeerClosed`].
    pub peer_closed: u64,
    /// [`CloseReason::Local`].
    pub local: u64,
    /// [`CloseReason::Aborted`].
    pub aborted: u64,
    /// [`CloseReason::Reset`].
    pub reset: u64,
    /// [`CloseReason::IdleTimeout`].
    pub idle_timeout: u64,
    /// [`CloseReason::PeerTimedOut`]: dead peers found by keepalive or the user timeout.
    pub peer_timed_out: u64,
    /// [`CloseReason::ConnectFailed`] and [`CloseReason::ConnectTimeout`].
    pub connect_failed: u64,
    /// [`CloseReason::CloseTimeout`].
    pub close_timeout: u64,
    /// [`CloseReason::LimitExceeded`].
    pub limit_exceeded: u64,
    /// [`CloseReason::Protocol`].
    pub protocol: u64,
    /// [`CloseReason::Shutdown`] and [`CloseReason::ShutdownAborted`].
    pub shutdown: u64,
    /// [`CloseReason::Io`].
    pub io_error: u64,
    /// [`CloseReason::Tls`], [`CloseReason::TlsTruncated`] and
    /// [`CloseReason::TlsHandshakeTimeout`]: TLS failures (the `tls` feature).
    pub tls: u64,
    /// [`CloseReason::HandlerPanicked`].
    pub handler_panicked: u64,
    /// [`CloseReason::ProxyHeader`], [`CloseReason::ProxyHeaderTimeout`] and
    /// [`CloseReason::UntrustedProxy`]: connections of a listen with
    /// [`proxy_protocol`](crate::ListenOptions::proxy_protocol) that never got a handler.
    pub proxy_protocol: u64,
}

impl ClosedCounts {
    pub(crate) fn record(&mut self, reason: &CloseReason) {
        let counter = match reason {
            CloseReason::PeerClosed => &mut self.peer_closed,
            CloseReason::Local => &mut self.local,
            CloseReason::Aborted => &mut self.aborted,
            CloseReason::Reset => &mut self.reset,
            CloseReason::IdleTimeout => &mut self.idle_timeout,
            CloseReason::PeerTimedOut => &mut self.peer_timed_out,
            CloseReason::ConnectFailed(_) | CloseReason::ConnectTimeout => &mut self.connect_failed,
            CloseReason::CloseTimeout => &mut self.close_timeout,
            CloseReason::LimitExceeded(_) => &mut self.limit_exceeded,
            CloseReason::Protocol(_) => &mut self.protocol,
            CloseReason::Shutdown | CloseReason::ShutdownAborted => &mut self.shutdown,
            CloseReason::Io(_) => &mut self.io_error,
            CloseReason::Tls(_) | CloseReason::TlsTruncated | CloseReason::TlsHandshakeTimeout => {
                &mut self.tls
            }
            CloseReason::HandlerPanicked(_) => &mut self.handler_panicked,
            CloseReason::ProxyHeader(_)
            | CloseReason::ProxyHeaderTimeout
            | CloseReason::UntrustedProxy => &mut self.proxy_protocol,
        };
        *counter += 1;
    }

    /// Every count with its field's name, in declaration order: for exporters (a
    /// Prometheus label, a JSON key) that must not miss a reason added later.
    ///
    /// ```
    /// let counts = mio_reactor::ClosedCounts::default();
    /// let names: Vec<&str> = counts.by_reason().iter().map(|(name, _)| *name).collect();
    /// assert_eq!(names[0], "peer_closed");
    /// assert!(names.contains(&"handler_panicked"));
    /// ```
    pub fn by_reason(&self) -> [(&'static str, u64); 15] {
        [
            ("peer_closed", self.peer_closed),
            ("local", self.local),
            ("aborted", self.aborted),
            ("reset", self.reset),
            ("idle_timeout", self.idle_timeout),
            ("peer_timed_out", self.peer_timed_out),
            ("connect_failed", self.connect_failed),
            ("close_timeout", self.close_timeout),
            ("limit_exceeded", self.limit_exceeded),
            ("protocol", self.protocol),
            ("shutdown", self.shutdown),
            ("io_error", self.io_error),
            ("tls", self.tls),
            ("handler_panicked", self.handler_panicked),
            ("proxy_protocol", self.proxy_protocol),
        ]
    }

    /// All closed connections.
    pub fn total(&self) -> u64 {
        self.by_reason().iter().map(|(_, count)| count).sum()
    }
}

/// A snapshot of a reactor's counters, from [`Reactor::stats`](crate::Reactor::stats).
///
/// The counters start at zero when the reactor is built and only grow (but
/// `open_connections`). [`ReactorThreads::join`](crate::ReactorThreads::join) returns each
/// thread's final stats.
///
/// # Examples
/// The counters after one echo exchange:
/// ```
/// use std::io::Write;
/// use std::net::Shutdown;
/// use std::time::Duration;
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
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"hello")?;
/// client.shutdown(Shutdown::Write)?; // done: the server closes after the echo
/// for _ in 0..1000 {
///     if reactor.stats().closed.total() == 1 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
///
/// let stats = reactor.stats();
/// println!(
///     "{} accepted, {} B in, {} B out, {} turns, {:?} blocked in poll",
///     stats.accepted, stats.bytes_in, stats.bytes_out, stats.turns, stats.time_blocked
/// );
/// assert_eq!((stats.accepted, stats.open_connections), (1, 0));
/// assert_eq!((stats.bytes_in, stats.bytes_out), (5, 5));
/// assert_eq!(stats.closed.peer_closed, 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections open now (accepted and outbound).
    pub open_connections: usize,
    /// Connections accepted by listeners and given a handler.
    pub accepted: u64,
    /// Connections accepted but refused by their listener's factory.
    pub refused: u64,
    /// Outbound connects that completed.
    pub connected: u64,
    /// Connections closed, by reason.
    pub closed: ClosedCounts,
    /// Payload bytes received: read from every connection (TCP and Unix-domain) and in every
    /// datagram received on a UDP socket, like an interface's byte counters. Headers are not
    /// counted. The UDP share alone is not kept; [`datagrams_in`](Stats::datagrams_in)
    /// counts the datagrams. Over TLS: the bytes of TLS records, handshake included.
    pub bytes_in: u64,
    /// Payload bytes the kernel took: written to every connection and in every datagram sent
    /// on a UDP socket (queued datagrams count once sent, dropped ones never). Bytes still
    /// buffered in the reactor are not counted. Over TLS: the bytes of TLS records.
    pub bytes_out: u64,
    /// Loop iterations.
    pub turns: u64,
    /// Time spent blocked in `poll`.
    pub time_blocked: Duration,
    /// `accept` calls that failed (descriptor exhaustion, aborted handshakes...).
    pub accept_errors: u64,
    /// Times a listener backed off because the process ran out of file descriptors.
    pub accept_backoffs: u64,
    /// Times a connection stopped being read because its output passed the high water mark.
    pub read_pauses: u64,
    /// Datagrams received on UDP sockets.
    pub datagrams_in: u64,
    /// Datagrams sent on UDP sockets (each datagram of a segmented message: what the peer
    /// receives).
    pub datagrams_out: u64,
    /// System calls that received datagrams on UDP sockets: with batches
    /// ([`Config::datagram_batches`](crate::Config::datagram_batches)) one `recvmmsg` takes
    /// many, so `datagrams_in / datagram_receive_calls` is the mean batch.
    pub datagram_receive_calls: u64,
    /// System calls that sent datagrams on UDP sockets (`sendmmsg`, or `sendto`): many per
    /// call with batches, and more with segmentation offload (GSO), as one message then
    /// carries several datagrams to one destination. (The `setsockopt` that sets the segment
    /// size is not counted.)
    pub datagram_send_calls: u64,
    /// Datagrams the kernel refused to send (a destination of the other address family,
    /// port 0, a datagram too large...; with segmentation offload, every datagram of the
    /// refused message, all to that destination), each dropped (and counted in
    /// [`datagrams_dropped`](Stats::datagrams_dropped) too) while the rest still go.
    pub datagram_send_errors: u64,
    /// Datagrams dropped because a UDP socket's send queue was full, the send failed, or the
    /// socket closed with datagrams still queued; and received datagrams cut by a truncation
    /// (a message larger than a 64 KiB slot, which no kernel coalesces today), or in a
    /// GRO message that could not be split (its segment size lost with truncated control
    /// messages: counted as one).
    pub datagrams_dropped: u64,
    /// Messages the kernel dropped on arrival at a UDP socket because its receive queue
    /// overflowed (the socket's receive buffer, `SO_RCVBUF`, was full; also the rarer drops
    /// the kernel counts with them: bad checksums, no memory): datagrams, except that a
    /// message GRO coalesced (a sender's GSO train on loopback, a burst from one peer off a
    /// network card) counts once, however many datagrams it held, as the kernel counts it
    /// (`sk_drops`): a lower bound of the datagrams lost there. From `SO_RXQ_OVFL`
    /// (`socket(7)`, Linux): a datagram carries the socket's drop count as it was when the
    /// datagram was queued, so drops are learned only when a later datagram arrives and is
    /// received (in batches: not with
    /// [`Config::datagram_batches(false)`](crate::Config::datagram_batches)). A larger
    /// receive buffer ([`DatagramContext::set_recv_buffer_size`](crate::DatagramContext::set_recv_buffer_size))
    /// absorbs longer bursts.
    pub datagram_receive_overflows: u64,
    /// Panics caught in user code ([`Config::catch_panics`](crate::Config::catch_panics)): in
    /// connection and datagram handlers (each closing its connection or socket), factories
    /// (each refusing its peer, also counted in [`refused`](Stats::refused)), watch
    /// handlers (each ending its watch), posted work, loop timers (each cancelling its
    /// timer) and the before-sleep hook (removing it).
    pub handler_panics: u64,
    /// Connections made elsewhere and served here: [`Reactor::adopt`](crate::Reactor::adopt),
    /// [`LoopContext::adopt`](crate::LoopContext::adopt) and streams handed over with
    /// [`LoopHandle::hand_over`](crate::LoopHandle::hand_over).
    pub adopted: u64,
    /// Connections a listener accepted and handed to another reactor (an acceptor of
    /// [`ReactorThreads::serve`](crate::ReactorThreads::serve) with
    /// [`Spread::LeastLoaded`](crate::Spread::LeastLoaded)).
    pub handed_over: u64,
    /// Posted items run on the loop's thread: closures from
    /// [`LoopHandle::post`](crate::LoopHandle::post) and messages from
    /// [`LoopHandle::send_to`](crate::LoopHandle::send_to), delivered or missed.
    pub posts_run: u64,
    /// Posted work that named a connection that had closed: messages not delivered, and
    /// [`LoopContext`](crate::LoopContext) operations on an id that no longer matches.
    pub posts_missed: u64,
    /// `mio::Waker::wake` calls made for posted items (each an `eventfd` write). Wake-ups
    /// coalesce: however many items are posted before the loop takes its next batch, one
    /// wake. Shutdown requests' wakes are not counted.
    pub wakes: u64,
    /// Calls of loop timers ([`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer),
    /// [`Reactor::set_loop_interval`](crate::Reactor::set_loop_interval)): one per firing,
    /// a periodic timer's each period, panicking calls included.
    pub loop_timers_fired: u64,
    /// Timers pending now, a gauge like [`open_connections`](Stats::open_connections):
    /// handlers' own ([`Context::set_timer`](crate::Context::set_timer)), the loop's own
    /// ([`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer)) and the reactor's
    /// (idle, connect, close and TLS handshake deadlines, accept back-off, shutdown). A
    /// connection's timers are cancelled when it is removed, so this stays proportional to
    /// what is open, however many connections came and went.
    pub pending_timers: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_reason::Limit;

    #[test]
    fn every_reason_is_counted_once() {
        let reasons = [
            CloseReason::PeerClosed,
            CloseReason::Local,
            CloseReason::Aborted,
            CloseReason::Reset,
            CloseReason::IdleTimeout,
            CloseReason::PeerTimedOut,
            CloseReason::ConnectFailed(std::io::ErrorKind::ConnectionRefused),
            CloseReason::ConnectTimeout,
            CloseReason::CloseTimeout,
            CloseReason::LimitExceeded(Limit::Output),
            CloseReason::Protocol("bad".into()),
            CloseReason::Shutdown,
            CloseReason::ShutdownAborted,
            CloseReason::Io(std::io::ErrorKind::Other),
            CloseReason::HandlerPanicked("boom".into()),
        ];
        let mut counts = ClosedCounts::default();
        for reason in &reasons {
            counts.record(reason);
        }
        assert_eq!(counts.total(), reasons.len() as u64);
        assert_eq!(counts.connect_failed, 2);
        assert_eq!(counts.shutdown, 2);
    }
}

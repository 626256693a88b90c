//! Tunables of a [`Reactor`](crate::Reactor), with the defaults mature event loops converged on.

use std::io;
use std::time::Duration;

use crate::dead_peers::DeadPeerDetection;

/// Limits and timeouts for a [`Reactor`](crate::Reactor).
///
/// Every limit exists so that memory stays bounded whatever a peer does. Build one with
/// [`Config::default`] and the setters, which take and return `self`; each setter has a
/// `get_` twin.
///
/// # Notes
/// The setters check nothing. The limits are checked against each other when a reactor is
/// built ([`Reactor::with_config`](crate::Reactor::with_config)): `low_water <= high_water
/// <= max_output`, and the counts and sizes at least 1.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::{Config, Reactor};
///
/// let config = Config::default()
///     .max_connections(1_000)
///     .idle_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(config.get_max_connections(), 1_000);
/// let reactor = Reactor::with_config(config)?;
/// assert_eq!(reactor.config().get_idle_timeout(), Some(Duration::from_secs(30)));
///
/// // Water marks that contradict each other are refused when the reactor is built.
/// let config = Config::default().low_water(128 * 1024); // above the default high water
/// let err = Reactor::with_config(config).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) events_capacity: usize,
    pub(crate) read_buffer_size: usize,
    pub(crate) read_budget: usize,
    pub(crate) accept_budget: usize,
    pub(crate) low_water: usize,
    pub(crate) high_water: usize,
    pub(crate) max_output: usize,
    pub(crate) max_input: usize,
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) accept_backoff: Duration,
    pub(crate) nodelay: bool,
    pub(crate) dead_peer_detection: DeadPeerDetection,
    pub(crate) max_queued_datagrams: usize,
    pub(crate) datagram_batches: bool,
    pub(crate) socket_send_buffer: Option<usize>,
    pub(crate) socket_recv_buffer: Option<usize>,
    pub(crate) tls_handshake_timeout: Duration,
    pub(crate) catch_panics: bool,
    pub(crate) post_queue_capacity: usize,
    pub(crate) post_budget: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            events_capacity: 1024,
            read_buffer_size: 64 * 1024,
            read_budget: 256 * 1024,
            accept_budget: 128,
            low_water: 16 * 1024,
            high_water: 64 * 1024,
            max_output: 4 * 1024 * 1024,
            max_input: 1024 * 1024 + 64 * 1024,
            max_connections: 10_000,
            idle_timeout: None,
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            accept_backoff: Duration::from_millis(100),
            nodelay: true,
            dead_peer_detection: DeadPeerDetection::default(),
            max_queued_datagrams: 64,
            datagram_batches: true,
            socket_send_buffer: None,
            socket_recv_buffer: None,
            tls_handshake_timeout: Duration::from_secs(10),
            catch_panics: true,
            post_queue_capacity: 4096,
            post_budget: 256,
        }
    }
}

/// Generates a by-value setter and a getter for one field, so each knob is documented once.
macro_rules! knob {
    ($(#[$doc:meta])* $field:ident, $getter:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Config {
            self.$field = value;
            self
        }

        #[doc = concat!("The current value of [`Config::", stringify!($field), "`].")]
        pub fn $getter(&self) -> $ty {
            self.$field
        }
    };
}

impl Config {
    knob!(
        /// Capacity of the reused `mio::Events` (default 1024): how many readiness events one
        /// `poll` can return. More are simply returned by the next poll.
        events_capacity, get_events_capacity: usize
    );
    knob!(
        /// Size of the one read buffer the whole reactor shares (default 64 KiB). Connections
        /// hold no read buffer of their own unless a handler leaves input unconsumed.
        read_buffer_size, get_read_buffer_size: usize
    );
    knob!(
        /// Bytes one connection may read per dispatch (default 256 KiB) before the others get
        /// their turn: the fairness budget.
        read_budget, get_read_budget: usize
    );
    knob!(
        /// Connections one listener may accept per dispatch (default 128).
        accept_budget, get_accept_budget: usize
    );
    knob!(
        /// Reading resumes when buffered output falls to this many bytes (default 16 KiB), and
        /// [`Handler::on_drain`](crate::Handler::on_drain) is called.
        low_water, get_low_water: usize
    );
    knob!(
        /// Reading pauses when buffered output rises above this many bytes (default 64 KiB):
        /// a peer that does not read stops being read.
        high_water, get_high_water: usize
    );
    knob!(
        /// Hard cap on one connection's buffered output (default 4 MiB). A write past it closes
        /// the connection with [`Limit::Output`](crate::Limit::Output). It matters for writes
        /// the water marks cannot stop, such as a broadcast to a peer that stopped reading.
        /// The water marks and this cap are the reactor's defaults: a listen, a connect or the
        /// handler may give a connection its own ([`OutputLimits`](crate::OutputLimits)).
        max_output, get_max_output: usize
    );
    knob!(
        /// Hard cap on one connection's unconsumed input (default 1 MiB + 64 KiB): the largest
        /// message a handler may wait for. Past it the connection closes with
        /// [`Limit::Input`](crate::Limit::Input).
        max_input, get_max_input: usize
    );
    knob!(
        /// How many connections may be open at once (default 10,000). At the cap, listeners
        /// stop accepting until a connection closes; the kernel's backlog holds the rest.
        max_connections, get_max_connections: usize
    );
    knob!(
        /// Close connections that read and write nothing for this long (default: never).
        /// Handlers can change it per connection with
        /// [`Context::set_idle_timeout`](crate::Context::set_idle_timeout).
        idle_timeout, get_idle_timeout: Option<Duration>
    );
    knob!(
        /// How long an outbound connect may take (default 10 s).
        connect_timeout, get_connect_timeout: Duration
    );
    knob!(
        /// How long a graceful close may take to flush and see the peer's EOF (default 5 s)
        /// before it becomes an abort.
        close_timeout, get_close_timeout: Duration
    );
    knob!(
        /// How long a graceful reactor shutdown waits for connections to finish (default 5 s)
        /// before aborting what is left.
        shutdown_timeout, get_shutdown_timeout: Duration
    );
    knob!(
        /// How long a listener waits before accepting again after running out of file
        /// descriptors (default 100 ms).
        accept_backoff, get_accept_backoff: Duration
    );
    knob!(
        /// Set `TCP_NODELAY` on TCP connections (default true): replies leave at once instead
        /// of waiting up to ~40 ms for the peer's delayed ACK. Output is already coalesced.
        nodelay, get_nodelay: bool
    );
    knob!(
        /// How the kernel finds a TCP peer that vanished without a FIN or a RST (see
        /// [`DeadPeerDetection`]; default: keepalive probes after 300 s idle, 3 more 100 s
        /// apart, as Redis's `tcp-keepalive 300`; no `TCP_USER_TIMEOUT`). Such a connection
        /// ends with [`CloseReason::PeerTimedOut`](crate::CloseReason::PeerTimedOut). A
        /// listen or a connect may give its connections their own
        /// ([`ListenOptions::dead_peer_detection`](crate::ListenOptions::dead_peer_detection)).
        dead_peer_detection, get_dead_peer_detection: DeadPeerDetection
    );

    knob!(
        /// Datagrams a UDP socket may queue while the kernel's send buffer is full (default
        /// 64). Beyond it datagrams are dropped and counted in
        /// [`Stats::datagrams_dropped`](crate::Stats::datagrams_dropped).
        max_queued_datagrams, get_max_queued_datagrams: usize
    );
    knob!(
        /// Receive UDP datagrams in batches, up to 32 per `recvmmsg(2)` call (default true;
        /// Linux), with GRO (`UDP_GRO`, Linux 5.0: many datagrams of one sender in one
        /// message, split again before the handler sees them). `false` makes one
        /// `recvfrom(2)` call per datagram, with GRO off, and the kernel's drops
        /// ([`Stats::datagram_receive_overflows`](crate::Stats::datagram_receive_overflows))
        /// not learned. When the kernel refuses `recvmmsg` (`ENOSYS`, `EINVAL`) the reactor
        /// falls back, for good, to one call per message: `recvfrom`, or `recvmsg` on a
        /// socket that has GRO on already (it still splits coalesced messages). Either way each datagram reaches
        /// [`DatagramHandler::on_datagram`](crate::DatagramHandler::on_datagram) whole, one
        /// call each, within the same receive budget (which a batch of GRO-coalesced messages
        /// may overshoot: up to 32 messages of 64 datagrams). Sends likewise: up to 32 messages per
        /// `sendmmsg(2)`, with segmentation offload (UDP GSO, `UDP_SEGMENT`: one message
        /// carries several datagrams to one destination, which the kernel splits); `false`
        /// sends each datagram with its own `sendto(2)`, unsegmented.
        datagram_batches, get_datagram_batches: bool
    );

    knob!(
        /// The kernel's send buffer for each connection (`SO_SNDBUF`; default: the kernel's
        /// own autotuning, which on Linux may grow to several MB per socket). The reactor's
        /// limits bound *its* memory; this bounds the kernel's share for a peer that does not
        /// read. Linux doubles the value for its bookkeeping. Stream connections only: a UDP
        /// socket's buffers are set by its handler
        /// ([`DatagramContext::set_send_buffer_size`](crate::DatagramContext::set_send_buffer_size)).
        socket_send_buffer, get_socket_send_buffer: Option<usize>
    );
    knob!(
        /// The kernel's receive buffer for each connection (`SO_RCVBUF`; default: autotuning).
        /// Stream connections only: a UDP socket's is set by its handler
        /// ([`DatagramContext::set_recv_buffer_size`](crate::DatagramContext::set_recv_buffer_size)).
        socket_recv_buffer, get_socket_recv_buffer: Option<usize>
    );

    knob!(
        /// How long a TLS handshake may take, from the TCP connection's establishment
        /// (default 10 s; the `tls` feature). A peer that opens a connection and trickles or
        /// never finishes its handshake is closed at the deadline with
        /// [`CloseReason::TlsHandshakeTimeout`](crate::CloseReason::TlsHandshakeTimeout):
        /// rustls has no clock of its own.
        tls_handshake_timeout, get_tls_handshake_timeout: Duration
    );

    knob!(
        /// Catch a panic in user code at the loop's boundary (default true), so that it costs
        /// only what that code serves: a panicking [`Handler`](crate::Handler) gets its
        /// connection aborted (a reset) with
        /// [`CloseReason::HandlerPanicked`](crate::CloseReason::HandlerPanicked) and is
        /// dropped without another call, not even `on_close`; a panicking
        /// [`Factory`](crate::Factory) refuses that peer; a panicking
        /// [`DatagramHandler`](crate::DatagramHandler) closes its socket; a panicking watch
        /// handler ends its watch. Each is logged at `error!` and counted in
        /// [`Stats::handler_panics`](crate::Stats::handler_panics); every other connection,
        /// timer and listener goes on. Set it to false to let a panic unwind out of
        /// [`Reactor::run`](crate::Reactor::run) instead (a test that wants to see it, or a
        /// program that prefers to crash).
        ///
        /// Under `panic = "abort"` in the profile there is nothing to catch: the first panic
        /// ends the process, whatever this says.
        catch_panics, get_catch_panics: bool
    );
    knob!(
        /// How many posted items ([`LoopHandle::post`](crate::LoopHandle::post),
        /// [`LoopHandle::send_to`](crate::LoopHandle::send_to)) may wait for the loop
        /// (default 4096). Past it, posting fails with
        /// [`PostError::Full`](crate::PostError::Full) and hands the item back: a producer
        /// faster than the loop meets backpressure instead of growing memory.
        post_queue_capacity, get_post_queue_capacity: usize
    );
    knob!(
        /// Posted items the loop runs per turn at most (default 256) before it polls for I/O
        /// again: a flood of posts cannot starve the sockets.
        post_budget, get_post_budget: usize
    );

    /// The output water marks and hard cap, as the backpressure decisions take them.
    pub(crate) fn water_marks(&self) -> crate::decisions::WaterMarks {
        crate::decisions::WaterMarks {
            low: self.low_water,
            high: self.high_water,
            max: self.max_output,
        }
    }

    /// Checks that the limits are consistent with each other.
    pub(crate) fn validate(&self) -> io::Result<()> {
        let problem = if self.events_capacity == 0 {
            Some("events_capacity must be at least 1")
        } else if self.read_buffer_size == 0 || self.read_budget == 0 || self.accept_budget == 0 {
            Some("read_buffer_size, read_budget and accept_budget must be at least 1")
        } else if self.low_water > self.high_water {
            Some("low_water must not exceed high_water")
        } else if self.high_water > self.max_output {
            Some("high_water must not exceed max_output")
        } else if self.max_connections == 0 {
            Some("max_connections must be at least 1")
        } else if self.post_queue_capacity == 0 || self.post_budget == 0 {
            Some("post_queue_capacity and post_budget must be at least 1")
        } else {
            None
        };
        match problem {
            Some(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why)),
            None => self.dead_peer_detection.validate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_consistent() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn low_water_above_high_water_is_rejected() {
        let config = Config::default().low_water(100).high_water(10);
        assert_eq!(
            config.validate().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn high_water_above_max_output_is_rejected() {
        let config = Config::default()
            .high_water(100)
            .max_output(10)
            .low_water(1);
        assert!(config.validate().is_err());
    }
}

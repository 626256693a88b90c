//! Outbound connections: start a non-blocking connect, learn how it ended, time it out, and
//! fall back to the next address of a name that resolved to several.
//!
//! A non-blocking `connect` returns at once (`EINPROGRESS`); completion is reported as
//! writability, and so is failure (connect(2)). So an event only says "look": the socket's
//! pending error (`SO_ERROR`), then whether it has a peer, say which it was.

use std::io;
use std::net::SocketAddr;

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::net::{PeerAddr, Stream};
use crate::options::ConnectionSettings;
use crate::state::{Input, State};
use crate::trace::{trace_record, Record};

/// Whether a connect may look a host name up. Only outside the loop's callbacks: the
/// lookup (`getaddrinfo`) blocks, and while it waits no other connection is served.
///
/// (`pub` only for the sealed [`IntoConnectTarget`]: this module is private.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// A [`Reactor`](crate::Reactor) method, called before or between turns.
    Allowed,
    /// A [`Context`](crate::Context) or [`LoopContext`](crate::LoopContext): inside a turn.
    Refused,
}

/// The peers a connect to `endpoint` tries, in order.
///
/// # Errors
/// `InvalidInput` for an endpoint one cannot connect to, or a name where `lookup` refuses
/// one; the resolver's error for a name that does not resolve.
pub(crate) fn peers(endpoint: &Endpoint, lookup: Lookup) -> io::Result<Vec<PeerAddr>> {
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("connect to {endpoint}: {why}"),
        ))
    };
    match endpoint {
        Endpoint::Tcp(addr) => Ok(vec![PeerAddr::Tcp(*addr)]),
        Endpoint::TcpName { .. } if lookup == Lookup::Refused => refuse(
            "a host name needs a lookup, which would block the loop: resolve it outside \
             (Reactor::connect does, or a worker thread) and connect to an address",
        ),
        Endpoint::TcpName { .. } => {
            Ok(endpoint.resolve()?.into_iter().map(PeerAddr::Tcp).collect())
        }
        Endpoint::Unix(path) => Ok(vec![PeerAddr::Unix(Some(path.clone()))]),
        Endpoint::Udp(_) | Endpoint::UdpName { .. } => {
            refuse("a datagram endpoint has no connection: DatagramContext::send_to sends to it")
        }
        Endpoint::Fd(_) | Endpoint::Systemd(_) | Endpoint::Handover => {
            refuse("not an address one can connect to (tcp:HOST:PORT or unix:PATH)")
        }
    }
}

/// What the `connect` doors ([`Reactor::connect`](crate::Reactor::connect),
/// [`Context::connect`](crate::Context::connect),
/// [`LoopContext::connect`](crate::LoopContext::connect)) accept: everything
/// [`IntoEndpoint`] does (one endpoint; a name's addresses are tried in order), or an
/// ordered list of endpoints or addresses (`&[SocketAddr]`, `Vec<SocketAddr>`,
/// `&[Endpoint]`, `Vec<Endpoint>`) tried in order until one connects: replicas of a
/// service, or addresses a caller resolved itself.
///
/// Sealed: implemented here only.
pub trait IntoConnectTarget: private::Sealed {}

pub(crate) mod private {
    use std::io;

    use super::Lookup;
    use crate::net::PeerAddr;

    /// The peers a connect tries, in order.
    pub trait Sealed {
        fn into_peers(self, lookup: Lookup) -> io::Result<Vec<PeerAddr>>;
    }
}

macro_rules! connect_to_one {
    ($($ty:ty),*) => {$(
        impl private::Sealed for $ty {
            fn into_peers(self, lookup: Lookup) -> io::Result<Vec<PeerAddr>> {
                peers(&self.into_endpoint()?, lookup)
            }
        }
        impl IntoConnectTarget for $ty {}
    )*};
}

connect_to_one!(Endpoint, &Endpoint, &str, String, &String, SocketAddr);

macro_rules! connect_to_each {
    ($($ty:ty),*) => {$(
        impl private::Sealed for $ty {
            fn into_peers(self, lookup: Lookup) -> io::Result<Vec<PeerAddr>> {
                let mut all = Vec::new();
                for one in self {
                    all.extend(peers(&one.clone().into_endpoint()?, lookup)?);
                }
                if all.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "connect to an empty list of endpoints",
                    ));
                }
                Ok(all)
            }
        }
        impl IntoConnectTarget for $ty {}
    )*};
}

connect_to_each!(&[SocketAddr], Vec<SocketAddr>, &[Endpoint], Vec<Endpoint>);

impl Core {
    /// Starts an outbound connect to the first of `addrs` that accepts a connect attempt;
    /// the rest are kept to try in order if it fails, with the same `settings`. On error the
    /// handler is handed back.
    pub(crate) fn connect(
        &mut self,
        addrs: Vec<PeerAddr>,
        handler: Box<dyn Handler>,
        settings: ConnectionSettings,
    ) -> Result<ConnId, (io::Error, Box<dyn Handler>)> {
        if let Err(err) = settings.validate() {
            return Err((err, handler));
        }
        let ConnectionSettings {
            security,
            output_limits: limits,
            dead_peers,
        } = settings;
        let mut last_error =
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
        let mut addrs = addrs.into_iter();
        while let Some(addr) = addrs.next() {
            let stream = match Stream::connect(&addr) {
                Ok(stream) => stream,
                Err(err) => {
                    log::debug!("connect to {addr}: {err}");
                    // Named, since the caller may have asked for several addresses.
                    last_error = io::Error::new(err.kind(), format!("connect to {addr}: {err}"));
                    continue;
                }
            };
            log::debug!("connecting to {addr}");
            // Before the handshake completes, so that the receive window is the capped one.
            stream.configure(self.config(), dead_peers, &addr);
            let peer = addr.clone();
            // Not writable until the connect completes.
            let transport = match security.transport(stream, false) {
                Ok(transport) => transport,
                Err(err) => return Err((err, handler)),
            };
            let slot = self.insert_conn(transport, (addr, limits), handler, State::Connecting)?;
            trace_record!(
                self,
                Record::Connecting {
                    conn: ConnId(slot),
                    peer
                }
            );
            let deadline = self.now() + self.config().connect_timeout;
            let timer = self
                .timers
                .insert(deadline, TimerTask::ConnectDeadline(slot));
            if let Some(conn) = self.entries.conn(slot) {
                conn.deadline_timer = Some(timer);
                conn.fallbacks = addrs.collect();
                conn.security = security;
                conn.dead_peers = dead_peers;
            }
            return Ok(ConnId(slot));
        }
        Err((last_error, handler))
    }

    /// An event woke a pending connect: see whether it completed, failed, or neither.
    pub(crate) fn check_connect(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let transport = conn.transport();
        if !transport.is_writable() && !transport.is_readable() {
            return;
        }
        match conn.transport().connect_outcome() {
            Ok(()) => {
                if let Some(timer) = conn.deadline_timer.take() {
                    self.timers.cancel(timer);
                }
                self.transition(slot, Input::Connected);
                self.stats.connected += 1;
                self.open(slot);
            }
            // A spurious wake-up: the handshake is still in progress.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                conn.transport().connect_in_progress();
            }
            Err(err) => {
                log::debug!("{} connect to {} failed: {err}", conn.id(), conn.peer());
                self.connect_failed(slot, CloseReason::ConnectFailed(err.kind()));
            }
        }
    }

    /// The connect deadline fired.
    pub(crate) fn connect_deadline_passed(&mut self, slot: Slot) {
        if matches!(self.entries.conn(slot), Some(c) if c.state() == State::Connecting) {
            self.connect_failed(slot, CloseReason::ConnectTimeout);
        }
    }

    /// A connect failed or timed out: try the next address with the same handler, or close.
    fn connect_failed(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let fallbacks = std::mem::take(&mut conn.fallbacks);
        if !fallbacks.is_empty() {
            if let Some(handler) = conn.handler.take() {
                let failed = conn.peer().clone();
                let connection = ConnectionSettings {
                    security: std::mem::take(&mut conn.security),
                    output_limits: Some(conn.output_limits()),
                    dead_peers: conn.dead_peers,
                };
                self.retry_connect(slot, failed, &reason, (fallbacks, connection), handler);
            }
        }
        // Without its handler (it moved on to the next address) no `on_close` is called.
        self.close_now(slot, reason);
    }

    /// Moves `handler` on to the next addresses; if none can be tried, hands it back to the
    /// failed connection so that it hears `on_close`.
    fn retry_connect(
        &mut self,
        slot: Slot,
        failed: PeerAddr,
        reason: &CloseReason,
        (fallbacks, connection): (Vec<PeerAddr>, ConnectionSettings),
        handler: Box<dyn Handler>,
    ) {
        match self.connect(fallbacks, handler, connection) {
            Ok(next) => log::debug!("connect to {failed}: {reason}; trying again as {next}"),
            Err((err, handler)) => {
                log::debug!("no address left to try: {err}");
                if let Some(conn) = self.entries.conn(slot) {
                    conn.handler = Some(handler);
                }
            }
        }
    }
}

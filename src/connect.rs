//! Outbound connections: start a non-blocking connect, learn how it ended, time it out, and
//! fall back to the next address of a name that resolved to several.
//!
//! A non-blocking `connect` returns at once (`EINPROGRESS`); completion is reported as
//! writability, and so is failure (connect(2)). So an event only says "look": the socket's
//! pending error (`SO_ERROR`), then whether it has a peer, say which it was.

use std::io;
use std::path::Path;

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::handler::Handler;
use crate::id::{ConnId, Slot};
use crate::net::{PeerAddr, Stream};
use crate::state::{Input, State};
use crate::trace::{trace_record, Record};
use crate::transport::Security;

impl Core {
    /// Starts an outbound connect to the first of `addrs` that accepts a connect attempt;
    /// the rest are kept to try in order if it fails, with the same `security`. On error the
    /// handler is handed back.
    pub(crate) fn connect(
        &mut self,
        addrs: Vec<PeerAddr>,
        handler: Box<dyn Handler>,
        security: Security,
    ) -> Result<ConnId, (io::Error, Box<dyn Handler>)> {
        let mut last_error =
            io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
        let mut addrs = addrs.into_iter();
        while let Some(addr) = addrs.next() {
            let stream = match Stream::connect(&addr) {
                Ok(stream) => stream,
                Err(err) => {
                    log::debug!("connect to {addr}: {err}");
                    last_error = err;
                    continue;
                }
            };
            log::debug!("connecting to {addr}");
            // Before the handshake completes, so that the receive window is the capped one.
            self.configure_socket(&stream, &addr);
            let peer = addr.clone();
            // Not writable until the connect completes.
            let transport = match security.transport(stream, false) {
                Ok(transport) => transport,
                Err(err) => return Err((err, handler)),
            };
            let slot = self.insert_conn(transport, addr, handler, State::Connecting)?;
            trace_record!(
                self,
                Record::Connecting {
                    conn: ConnId(slot),
                    peer
                }
            );
            let deadline = self.now + self.config.connect_timeout;
            let timer = self
                .timers
                .insert(deadline, TimerTask::ConnectDeadline(slot));
            if let Some(conn) = self.conn(slot) {
                conn.deadline_timer = Some(timer);
                conn.fallbacks = addrs.collect();
                conn.security = security;
            }
            return Ok(ConnId(slot));
        }
        Err((last_error, handler))
    }

    /// Starts a plaintext outbound TCP connect to one address (what `Context::connect` and
    /// `LoopContext::connect` offer); on error the handler is dropped.
    pub(crate) fn connect_tcp(
        &mut self,
        addr: std::net::SocketAddr,
        handler: Box<dyn Handler>,
    ) -> io::Result<ConnId> {
        self.connect(vec![PeerAddr::Tcp(addr)], handler, Security::default())
            .map_err(|(err, _)| err)
    }

    /// Starts an outbound Unix-domain connect.
    pub(crate) fn connect_unix(
        &mut self,
        path: &Path,
        handler: Box<dyn Handler>,
        security: Security,
    ) -> io::Result<ConnId> {
        let addr = PeerAddr::Unix(Some(path.to_path_buf()));
        self.connect(vec![addr], handler, security)
            .map_err(|(err, _)| err)
    }

    /// An event woke a pending connect: see whether it completed, failed, or neither.
    pub(crate) fn check_connect(&mut self, slot: Slot) {
        let Some(conn) = self.conn(slot) else { return };
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
        if matches!(self.conn(slot), Some(c) if c.state() == State::Connecting) {
            self.connect_failed(slot, CloseReason::ConnectTimeout);
        }
    }

    /// A connect failed or timed out: try the next address with the same handler, or close.
    fn connect_failed(&mut self, slot: Slot, reason: CloseReason) {
        let Some(conn) = self.conn(slot) else { return };
        let fallbacks = std::mem::take(&mut conn.fallbacks);
        if !fallbacks.is_empty() {
            if let Some(handler) = conn.handler.take() {
                let failed = conn.peer().clone();
                let security = std::mem::take(&mut conn.security);
                self.retry_connect(slot, failed, &reason, (fallbacks, security), handler);
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
        (fallbacks, security): (Vec<PeerAddr>, Security),
        handler: Box<dyn Handler>,
    ) {
        match self.connect(fallbacks, handler, security) {
            Ok(next) => log::debug!("connect to {failed}: {reason}; trying again as {next}"),
            Err((err, handler)) => {
                log::debug!("no address left to try: {err}");
                if let Some(conn) = self.conn(slot) {
                    conn.handler = Some(handler);
                }
            }
        }
    }
}

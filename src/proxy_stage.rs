//! The PROXY protocol stage: a connection of a listen with
//! [`ListenOptions::proxy_protocol`](crate::ListenOptions::proxy_protocol) reads its header
//! before anything else, and only then is its handler made, for the client's address.
//!
//! Like the TLS handshake (`handshake.rs`), the stage has a deadline and a size limit, and a
//! bad header costs only its connection. It reads from the socket itself, beneath any TLS
//! session: the header is plaintext before the ClientHello. What the same reads brought
//! after the header is handed on as if it had just been read: to the TLS session as records,
//! or to the handler as its first input (`Transport::receive_early`). The stage reads as
//! much as the socket has, up to the limit, rather than peeking: the same code then serves
//! TCP and Unix-domain streams, and a header costs one read, not a peek and a read.
//!
//! ```text
//! accepted --untrusted peer--> closed (UntrustedProxy)
//!    |
//!    v
//! Reading --bytes--> Reading (incomplete) --deadline--> closed (ProxyHeaderTimeout)
//!    |      \--EOF, bad or too long--> closed (ProxyHeader)
//!    v
//! Received: peer = the client, factory -> handler, on_open, early bytes handed on
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::handler::Factory;
use crate::id::{ConnId, Slot};
use crate::net::PeerAddr;
use crate::proxy_protocol::{ProxyHeader, ProxyProtocol};
use crate::trace::{trace_record, Record};
use crate::transport::{ReadOutcome, Transport};

/// Where a connection of a PROXY protocol listen is in its stage.
pub(crate) enum ProxyStage {
    /// The header is still being read.
    Reading(Box<HeaderReader>),
    /// The header was read: what it said.
    Received(Box<ProxyHeader>),
}

/// A header being read: the bytes so far, and what makes the handler once it is complete.
pub(crate) struct HeaderReader {
    received: Vec<u8>,
    settings: Arc<ProxyProtocol>,
    factory: Rc<RefCell<Box<dyn Factory>>>,
}

/// What one read of a header brought.
enum HeaderStep {
    /// Nothing until the next readable edge.
    Wait,
    /// Part of a header: read on.
    Incomplete,
    /// The whole header, and the bytes that came after it.
    Received(ProxyHeader, Vec<u8>),
    /// The connection cannot go on.
    Failed(CloseReason),
}

impl HeaderReader {
    pub(crate) fn new(
        settings: Arc<ProxyProtocol>,
        factory: Rc<RefCell<Box<dyn Factory>>>,
    ) -> HeaderReader {
        HeaderReader {
            received: Vec::new(),
            settings,
            factory,
        }
    }

    /// One read from the socket into the header, at most up to the limit, then a parse of
    /// what was received so far. Returns the step and the bytes read.
    fn read(&mut self, transport: &mut Transport, proxy: &PeerAddr) -> (HeaderStep, usize) {
        let (had, limit) = (self.received.len(), self.settings.get_max_header_len());
        self.received.resize(limit, 0);
        let outcome = transport.read_socket(&mut self.received[had..]);
        let len = match outcome {
            ReadOutcome::Data { len, .. } => len,
            _ => 0,
        };
        self.received.truncate(had + len);
        let step = match outcome {
            ReadOutcome::Data { .. } => self.parse(proxy),
            ReadOutcome::WouldBlock => HeaderStep::Wait,
            ReadOutcome::Eof | ReadOutcome::Truncated => HeaderStep::Failed(
                CloseReason::ProxyHeader(format!("the peer closed after {had} B of header")),
            ),
            ReadOutcome::Failed(reason) => HeaderStep::Failed(reason),
        };
        (step, len)
    }

    /// The header, if the bytes received so far hold one.
    fn parse(&mut self, proxy: &PeerAddr) -> HeaderStep {
        let limit = self.settings.get_max_header_len();
        match ProxyHeader::parse(&self.received, proxy.clone()) {
            Ok(Some((header, len))) => HeaderStep::Received(header, self.received.split_off(len)),
            Ok(None) => {
                let announced = ProxyHeader::announced_len(&self.received).unwrap_or(0);
                if announced > limit || self.received.len() >= limit {
                    let len = announced.max(self.received.len());
                    let why = format!("a header of {len} B or more, over the limit of {limit} B");
                    HeaderStep::Failed(CloseReason::ProxyHeader(why))
                } else {
                    HeaderStep::Incomplete
                }
            }
            Err(why) => HeaderStep::Failed(CloseReason::ProxyHeader(why)),
        }
    }
}

impl Core {
    /// A connection of a PROXY protocol listen was accepted: refuse an untrusted peer, else
    /// arm the header's deadline and read what has arrived.
    pub(crate) fn await_proxy_header(&mut self, slot: Slot, reader: HeaderReader) {
        let deadline = self.now() + reader.settings.get_header_timeout();
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        if !reader.settings.admits(conn.peer()) {
            log::warn!("{} from {}: not a trusted proxy", conn.id(), conn.peer());
            return self.close_now(slot, CloseReason::UntrustedProxy);
        }
        conn.proxy = Some(ProxyStage::Reading(Box::new(reader)));
        let timer = self
            .timers
            .insert(deadline, TimerTask::ProxyHeaderDeadline(slot));
        if let Some(conn) = self.entries.conn(slot) {
            conn.stage_timer = Some(timer);
        }
        // The header may have come with the handshake's last segment: no edge will say so.
        self.queue(slot);
    }

    /// Reads the header of a connection that waits for it, until it is complete, the socket
    /// is drained, or the connection fails.
    pub(crate) fn read_proxy_header(&mut self, slot: Slot) {
        let now = self.now();
        loop {
            let Some(conn) = self.entries.conn(slot) else {
                return;
            };
            let proxy = conn.peer().clone();
            let (transport, stage) = conn.transport_and_proxy();
            let Some(ProxyStage::Reading(reader)) = stage else {
                return;
            };
            if !transport.is_readable() {
                return;
            }
            let (step, wire) = reader.read(transport, &proxy);
            conn.bytes_in += wire as u64;
            conn.last_active = now;
            self.stats.bytes_in += wire as u64;
            match step {
                HeaderStep::Wait => return,
                HeaderStep::Incomplete => {}
                HeaderStep::Received(header, early) => {
                    return self.proxy_header_received(slot, header, early)
                }
                HeaderStep::Failed(reason) => {
                    log::warn!("{} from {proxy}: {reason}", ConnId(slot));
                    return self.close_now(slot, reason);
                }
            }
        }
    }

    /// The header is complete: the connection's peer becomes the client it names, its
    /// factory makes the handler, and the bytes after the header go to the next stage.
    fn proxy_header_received(&mut self, slot: Slot, header: ProxyHeader, early: Vec<u8>) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let client = header
            .source()
            .map_or_else(|| header.proxy_addr().clone(), PeerAddr::Tcp);
        log::debug!("{}: {header}", conn.id());
        conn.set_peer(client.clone());
        let timer = conn.stage_timer.take();
        let stage = conn.proxy.replace(ProxyStage::Received(Box::new(header)));
        let early = conn.transport().receive_early(early);
        if let Some(timer) = timer {
            self.timers.cancel(timer);
        }
        trace_record!(
            self,
            Record::ProxyHeader {
                conn: ConnId(slot),
                client: client.clone()
            }
        );
        let early = match early {
            Ok(early) => early,
            Err(reason) => return self.close_now(slot, reason),
        };
        let Some(ProxyStage::Reading(reader)) = stage else {
            return;
        };
        let Some(handler) = self.handler_for(&reader.factory, &client) else {
            return self.close_now(slot, CloseReason::Aborted);
        };
        if let Some(conn) = self.entries.conn(slot) {
            conn.handler = Some(handler);
            conn.keep_early_input(early);
        }
        self.open(slot);
    }

    /// The header's deadline passed: close the connection if it is still waiting for it.
    pub(crate) fn proxy_header_deadline_passed(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.stage_timer = None;
        if let Some(ProxyStage::Reading(reader)) = &conn.proxy {
            log::warn!(
                "{} from {}: no PROXY protocol header within {:?}",
                conn.id(),
                conn.peer(),
                reader.settings.get_header_timeout()
            );
            self.close_now(slot, CloseReason::ProxyHeaderTimeout);
        }
    }
}

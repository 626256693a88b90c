//! A ready listener: accept up to a budget, hand each peer to the factory, and survive
//! descriptor exhaustion and the connection cap without spinning or stalling.

use std::cell::RefCell;
use std::rc::Rc;

use crate::adopt::Destination;
use crate::core::{Core, TimerTask};
use crate::handler::{Factory, Handler};
use crate::id::{ConnId, Slot};
use crate::net::{classify_accept_error, AcceptFailure, PeerAddr, Stream};
use crate::panics::call_user;
use crate::proxy_stage::HeaderReader;
use crate::state::State;
use crate::trace::{trace_record, Record};

impl Core {
    /// Accepts pending connections until the queue is drained or a limit stops us.
    pub(crate) fn accept(&mut self, slot: Slot) {
        for _ in 0..self.config().accept_budget {
            if self.lifecycle.is_shutting_down() {
                return;
            }
            if self.stats.open_connections >= self.config().max_connections {
                return self.pause_listener(slot);
            }
            let Some(listener) = self.entries.listener(slot) else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => self.open_accepted(slot, stream, peer),
                Err(err) => match classify_accept_error(&err) {
                    AcceptFailure::Drained => {
                        listener.readable = false;
                        return;
                    }
                    AcceptFailure::SkipOne => {
                        self.stats.accept_errors += 1;
                        log::debug!("accept: {err} (skipped)");
                    }
                    AcceptFailure::Exhausted => return self.back_off(slot, &err),
                },
            }
        }
        // Budget spent with connections possibly still queued: no new edge will say so.
        self.queue(slot);
    }

    fn open_accepted(&mut self, listener: Slot, stream: Stream, peer: PeerAddr) {
        let Some(l) = self.entries.listener(listener) else {
            return;
        };
        let (limits, dead_peers) = (l.connections.output_limits, l.connections.dead_peers);
        let factory = match &mut l.destination {
            Destination::Here(factory) => Rc::clone(factory),
            Destination::Elsewhere(balancer) => {
                if balancer.hand_over(stream, peer) {
                    self.stats.handed_over += 1;
                }
                return;
            }
        };
        // With the PROXY protocol the factory waits for the header, which names the peer.
        let (handler, header) = match l.proxy.clone() {
            Some(settings) => (None, Some(HeaderReader::new(settings, factory))),
            None => match self.handler_for(&factory, &peer) {
                Some(handler) => (Some(handler), None),
                None => return,
            },
        };
        let Some(l) = self.entries.listener(listener) else {
            return;
        };
        // An accepted socket's send buffer is empty: writable at once.
        let transport = match l.connections.security.transport(stream, true) {
            Ok(transport) => transport,
            Err(err) => return log::error!("a session for {peer}: {err}"),
        };
        transport
            .stream()
            .configure(self.config(), dead_peers, &peer);
        let traced_peer = self.trace.is_on().then(|| peer.clone());
        match self.insert_conn(transport, (peer, limits), handler, State::Open) {
            Ok(slot) => {
                self.stats.accepted += 1;
                if let Some(peer) = traced_peer {
                    trace_record!(
                        self,
                        Record::Accepted {
                            conn: ConnId(slot),
                            peer
                        }
                    );
                }
                match header {
                    Some(reader) => self.await_proxy_header(slot, reader),
                    None => self.open(slot),
                }
            }
            Err((err, _)) => log::warn!("could not register an accepted connection: {err}"),
        }
    }

    /// A handler for `peer` from a listener's factory; `None` if the factory refused the
    /// peer or panicked (logged and counted here).
    pub(crate) fn handler_for(
        &mut self,
        factory: &RefCell<Box<dyn Factory>>,
        peer: &PeerAddr,
    ) -> Option<Box<dyn Handler>> {
        let catch = self.config().catch_panics;
        // A factory never reaches its own listener while it runs: no second borrow.
        match call_user(catch, || factory.borrow_mut().new_handler(peer)) {
            Ok(Some(handler)) => Some(handler),
            Ok(None) => {
                log::debug!("refused connection from {peer}");
                self.refuse(peer.clone());
                None
            }
            Err(message) => {
                // The factory stays: the next peer may well get a handler.
                log::error!("factory panicked for {peer}: {message}; the peer is refused");
                self.stats.handler_panics += 1;
                self.refuse(peer.clone());
                None
            }
        }
    }

    /// No handler for `peer`: its socket is closed as it is dropped.
    pub(crate) fn refuse(&mut self, peer: PeerAddr) {
        self.stats.refused += 1;
        trace_record!(self, Record::Refused { peer });
    }

    /// Out of descriptors. The pending connection stays in the kernel queue, so the listener
    /// stays readable: retrying now would spin, and waiting for a new edge could wait forever.
    /// Try again after a pause.
    fn back_off(&mut self, slot: Slot, err: &std::io::Error) {
        self.stats.accept_errors += 1;
        self.stats.accept_backoffs += 1;
        let backoff = self.config().accept_backoff;
        let (open, first_ones) = (
            self.stats.open_connections,
            self.stats.accept_backoffs.is_power_of_two(),
        );
        let Some(listener) = self.entries.listener(slot) else {
            return;
        };
        if first_ones {
            // 1st, 2nd, 4th, 8th...: visible without flooding the log while it lasts.
            log::warn!(
                "accept on {}: {err}; retrying in {backoff:?} ({} open connections)",
                listener.socket.local_endpoint(),
                open
            );
        }
        listener.backing_off = true;
        let (token, error) = (slot.key, err.kind());
        trace_record!(self, Record::AcceptBackoff { token, error });
        self.timers
            .insert(self.now() + backoff, TimerTask::AcceptBackoff(slot));
    }

    /// At the connection cap: stop accepting until a connection closes.
    fn pause_listener(&mut self, slot: Slot) {
        let open = self.stats.open_connections;
        let Some(listener) = self.entries.listener(slot) else {
            return;
        };
        if !listener.paused {
            log::debug!(
                "{open} connections open (the maximum): {} stops accepting",
                listener.socket.local_endpoint()
            );
            listener.paused = true;
            self.queues.pause_listener(slot);
        }
    }

    /// A connection slot freed up: paused listeners accept again. They stayed readable (we
    /// never drained their queue), so they are queued by hand.
    pub(crate) fn resume_listeners(&mut self) {
        if !self.queues.has_paused_listeners()
            || self.stats.open_connections >= self.config().max_connections
        {
            return;
        }
        for slot in self.queues.take_paused_listeners() {
            if let Some(listener) = self.entries.listener(slot) {
                listener.paused = false;
                self.queue(slot);
            }
        }
    }
}

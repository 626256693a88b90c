//! A listening socket's record in the slab, with the factory that makes its handlers.

use std::sync::Arc;

use crate::adopt::Destination;
use crate::endpoint::Endpoint;
use crate::id::{ListenerId, Slot};
use crate::net::ListenerSocket;
use crate::options::ConnectionSettings;
use crate::proxy_protocol::ProxyProtocol;

/// A listener and its accept bookkeeping.
pub(crate) struct Listener {
    pub(crate) slot: Slot,
    /// The listen it belongs to, and the endpoint that listen was given.
    pub(crate) id: ListenerId,
    pub(crate) endpoint: Endpoint,
    pub(crate) socket: ListenerSocket,
    /// Where its connections go: a factory here, or other reactors.
    pub(crate) destination: Destination,
    /// What the accepted connections get: their transports' security (TLS, or nothing),
    /// output limits and dead-peer detection (`None`: the reactor's).
    pub(crate) connections: ConnectionSettings,
    /// The PROXY protocol header every accepted connection must start with, if on.
    pub(crate) proxy: Option<Arc<ProxyProtocol>>,
    /// Connections may be waiting (edge-triggered: cleared only by `WouldBlock`).
    pub(crate) readable: bool,
    pub(crate) queued: bool,
    /// Out of descriptors: waiting for the back-off timer.
    pub(crate) backing_off: bool,
    /// At `max_connections`: waiting for a connection to close.
    pub(crate) paused: bool,
}

impl Listener {
    pub(crate) fn new(
        slot: Slot,
        (id, endpoint): (ListenerId, Endpoint),
        socket: ListenerSocket,
        destination: Destination,
        (connections, proxy): (ConnectionSettings, Option<Arc<ProxyProtocol>>),
    ) -> Listener {
        Listener {
            slot,
            id,
            endpoint,
            socket,
            destination,
            connections,
            proxy,
            readable: false,
            queued: false,
            backing_off: false,
            paused: false,
        }
    }

    /// Whether accepting now can make progress.
    pub(crate) fn may_accept(&self) -> bool {
        self.readable && !self.backing_off && !self.paused
    }
}

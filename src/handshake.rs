//! The TLS handshake deadline: rustls has no clock, so the loop gives every handshake one.
//!
//! Without it a peer can hold a connection slot (and a session's buffers) forever by opening
//! a connection and sending its ClientHello a byte a minute, or nothing at all, which is the
//! "slow handshake" form of slowloris. tokio-rustls users wrap `accept()` in a timeout by
//! hand; here it is armed for every TLS connection when its TCP connection is established.

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::id::Slot;

impl Core {
    /// A TLS connection was established: its handshake must finish before the deadline.
    pub(crate) fn arm_handshake_deadline(&mut self, slot: Slot) {
        let deadline = self.now() + self.config().tls_handshake_timeout;
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        if conn.transport_ref().tls().is_none() {
            return;
        }
        let timer = self
            .timers
            .insert(deadline, TimerTask::HandshakeDeadline(slot));
        if let Some(conn) = self.entries.conn(slot) {
            conn.stage_timer = Some(timer);
        }
    }

    /// The handshake deadline fired: close the connection if its handshake is still going.
    pub(crate) fn handshake_deadline_passed(&mut self, slot: Slot) {
        let timeout = self.config().tls_handshake_timeout;
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.stage_timer = None;
        let handshaking = conn
            .transport_ref()
            .tls()
            .is_some_and(|tls| tls.is_handshaking());
        if handshaking && conn.state().is_active() {
            log::warn!(
                "{} from {}: TLS handshake not finished within {:?}",
                conn.id(),
                conn.peer(),
                timeout
            );
            self.close_now(slot, CloseReason::TlsHandshakeTimeout);
        }
    }
}

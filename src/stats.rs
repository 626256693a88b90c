//! Counters a reactor keeps about itself, for monitoring and for tests.

use std::time::Duration;

use crate::close_reason::CloseReason;

/// How many connections closed, by [`CloseReason`].
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
}

impl ClosedCounts {
    pub(crate) fn record(&mut self, reason: &CloseReason) {
        let counter = match reason {
            CloseReason::PeerClosed => &mut self.peer_closed,
            CloseReason::Local => &mut self.local,
            CloseReason::Aborted => &mut self.aborted,
            CloseReason::Reset => &mut self.reset,
            CloseReason::IdleTimeout => &mut self.idle_timeout,
            CloseReason::ConnectFailed(_) | CloseReason::ConnectTimeout => &mut self.connect_failed,
            CloseReason::CloseTimeout => &mut self.close_timeout,
            CloseReason::LimitExceeded(_) => &mut self.limit_exceeded,
            CloseReason::Protocol(_) => &mut self.protocol,
            CloseReason::Shutdown | CloseReason::ShutdownAborted => &mut self.shutdown,
            CloseReason::Io(_) => &mut self.io_error,
        };
        *counter += 1;
    }

    /// All closed connections.
    pub fn total(&self) -> u64 {
        self.peer_closed
            + self.local
            + self.aborted
            + self.reset
            + self.idle_timeout
            + self.connect_failed
            + self.close_timeout
            + self.limit_exceeded
            + self.protocol
            + self.shutdown
            + self.io_error
    }
}

/// A snapshot of a reactor's counters, from [`Reactor::stats`](crate::Reactor::stats).
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
    /// Bytes read from all connections.
    pub bytes_in: u64,
    /// Bytes written to all connections.
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
    /// Datagrams sent on UDP sockets.
    pub datagrams_out: u64,
    /// Datagrams dropped because a UDP socket's send queue was full (or the send failed).
    pub datagrams_dropped: u64,
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
            CloseReason::ConnectFailed(std::io::ErrorKind::ConnectionRefused),
            CloseReason::ConnectTimeout,
            CloseReason::CloseTimeout,
            CloseReason::LimitExceeded(Limit::Output),
            CloseReason::Protocol("bad".into()),
            CloseReason::Shutdown,
            CloseReason::ShutdownAborted,
            CloseReason::Io(std::io::ErrorKind::Other),
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

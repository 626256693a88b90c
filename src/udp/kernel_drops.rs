//! Datagrams the kernel dropped on arrival because a socket's receive buffer was full,
//! learned through `SO_RXQ_OVFL` (`socket(7)`, Linux 2.6.33): with it on, a received
//! datagram carries a control message with the socket's drop count (a `u32` that wraps)
//! as it stood when that datagram was queued; none while the count is 0.
//!
//! So drops are learned only when a later datagram arrives and is read: those after the
//! last datagram read are not known yet. The count is the socket's own (`sk_drops`), since it
//! was made: an inherited socket (`fd:N`) brings the drops of its earlier life.

use mio::net::UdpSocket;

/// One socket's drop count as last seen.
#[derive(Debug, Default)]
pub(crate) struct KernelDrops {
    /// The count the last datagram carried (0 before any).
    last: u32,
    /// Drops learned so far.
    pub(crate) total: u64,
}

/// Turns `SO_RXQ_OVFL` on for `socket` (logged at debug where the kernel or the platform
/// lacks it: no drops are learned then).
pub(crate) fn enable(socket: &UdpSocket) {
    if let Err(err) = set(socket) {
        log::debug!("SO_RXQ_OVFL: {err}; kernel drops are not counted");
    }
}

impl KernelDrops {
    /// Takes the count a datagram carried; returns the drops since the one before.
    pub(crate) fn record(&mut self, count: u32) -> u64 {
        let new = count.wrapping_sub(self.last);
        self.last = count;
        self.total += u64::from(new);
        u64::from(new)
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set(socket: &UdpSocket) -> std::io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt::RxqOvfl};
    Ok(setsockopt(socket, RxqOvfl, &1)?)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set(_: &UdpSocket) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_count_adds_what_grew_since_the_last() {
        let mut drops = KernelDrops::default();
        assert_eq!([3, 3, 10].map(|count| drops.record(count)), [3, 0, 7]);
        assert_eq!(drops.total, 10);
    }

    #[test]
    fn a_count_that_wrapped_past_u32_max_adds_the_difference() {
        let mut drops = KernelDrops {
            last: u32::MAX - 1,
            total: 0,
        };
        assert_eq!(drops.record(2), 4);
    }
}

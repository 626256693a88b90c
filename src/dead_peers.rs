//! Finding peers that vanished: TCP keepalive and `TCP_USER_TIMEOUT`, set on each TCP
//! connection's socket so that the kernel notices what no event would tell us.
//!
//! A peer whose host crashed, lost power or sits behind a NAT entry that expired sends no FIN
//! and no RST: nothing ever arrives, so the loop sees nothing. With data in flight the
//! kernel retransmits and gives up after `net.ipv4.tcp_retries2` (15 retransmissions, about
//! 15 minutes); an idle connection has nothing to retransmit and lives forever, holding its
//! slot, its buffers and its handler. Keepalive probes an idle connection; the user timeout
//! bounds how long sent data may stay unacknowledged. Either way the kernel tears the
//! connection down with `ETIMEDOUT`, which the next read or write returns and the reactor
//! reports as [`CloseReason::PeerTimedOut`](crate::CloseReason::PeerTimedOut).

use std::fmt;
use std::io;
use std::time::Duration;

use crate::net::PeerAddr;

/// Linux's bounds on `TCP_KEEPIDLE` and `TCP_KEEPINTVL` (seconds, `MAX_TCP_KEEPIDLE`,
/// `MAX_TCP_KEEPINTVL`) and `TCP_KEEPCNT` (`MAX_TCP_KEEPCNT`): tcp(7), `include/net/tcp.h`.
const MAX_KEEPALIVE_SECS: u64 = 32_767;
const MAX_KEEPALIVE_PROBES: u32 = 127;

/// TCP keepalive's three numbers (`TCP_KEEPIDLE`, `TCP_KEEPINTVL`, `TCP_KEEPCNT`, tcp(7)):
/// after `idle` without any segment from the peer, the kernel sends a probe (an empty ACK
/// the peer must answer), then another every `interval`; when `probes` probes in a row went
/// unanswered the connection is dead. A vanished peer is so found after about
/// `idle + interval × probes`.
///
/// The kernel counts in whole seconds: each duration must be a whole number of seconds from
/// 1 to 32767, and `probes` from 1 to 127 (checked where the settings are used).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::Keepalive;
///
/// // Redis's `tcp-keepalive 300`: the first probe after 300 s, then 3 more 100 s apart.
/// let redis = Keepalive::after_idle(Duration::from_secs(300));
/// assert_eq!(redis.get_interval(), Duration::from_secs(100));
/// assert_eq!(redis.get_probes(), 3);
/// assert_eq!(redis.time_to_find_dead_peer(), Duration::from_secs(600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    idle: Duration,
    interval: Duration,
    probes: u32,
}

impl Keepalive {
    /// Probes after `idle`, then every `interval`, giving up after `probes` unanswered ones.
    pub fn new(idle: Duration, interval: Duration, probes: u32) -> Keepalive {
        Keepalive {
            idle,
            interval,
            probes,
        }
    }

    /// Redis's rule for its `tcp-keepalive SECS` (`anetKeepAlive` in `anet.c`): the first
    /// probe after `idle`, then 3 probes `idle / 3` apart (at least 1 s), so a dead peer is
    /// found after about twice `idle`.
    pub fn after_idle(idle: Duration) -> Keepalive {
        let interval = Duration::from_secs((idle.as_secs() / 3).max(1));
        Keepalive::new(idle, interval, 3)
    }

    /// Quiet time before the first probe (`TCP_KEEPIDLE`).
    pub fn get_idle(&self) -> Duration {
        self.idle
    }

    /// Time between probes (`TCP_KEEPINTVL`).
    pub fn get_interval(&self) -> Duration {
        self.interval
    }

    /// Unanswered probes before the connection is dead (`TCP_KEEPCNT`).
    pub fn get_probes(&self) -> u32 {
        self.probes
    }

    /// How long an idle connection to a vanished peer lives: `idle + interval × probes`.
    pub fn time_to_find_dead_peer(&self) -> Duration {
        self.idle + self.interval * self.probes
    }

    fn validate(&self) -> Result<(), &'static str> {
        let whole_secs =
            |d: Duration| d.subsec_nanos() == 0 && (1..=MAX_KEEPALIVE_SECS).contains(&d.as_secs());
        if !whole_secs(self.idle) || !whole_secs(self.interval) {
            Err("keepalive idle and interval must be whole seconds from 1 to 32767")
        } else if !(1..=MAX_KEEPALIVE_PROBES).contains(&self.probes) {
            Err("keepalive probes must be from 1 to 127")
        } else {
            Ok(())
        }
    }

    fn to_socket2(self) -> socket2::TcpKeepalive {
        socket2::TcpKeepalive::new()
            .with_time(self.idle)
            .with_interval(self.interval)
            .with_retries(self.probes)
    }
}

/// How the kernel finds a TCP peer that vanished without a FIN or a RST: keepalive for an
/// idle connection, and a user timeout for data that is never acknowledged. Set on every
/// TCP connection's socket when it is accepted, connected or adopted; a Unix-domain
/// connection has no such failure (both ends are on one host) and ignores it.
///
/// | setting | default | what it bounds |
/// |---|---|---|
/// | [`keepalive`](DeadPeerDetection::keepalive) | [`Keepalive::after_idle`]`(300 s)`: probes at 300, 400, 500, 600 s | an idle connection (otherwise forever) |
/// | [`user_timeout`](DeadPeerDetection::user_timeout) | off: the kernel's `tcp_retries2`, ~15 min | data sent and not acknowledged |
///
/// **Why these defaults.** Keepalive is on, with Redis's default (`tcp-keepalive 300`, on
/// since Redis 3.2.1): an idle connection to a vanished peer is dropped after about 10
/// minutes instead of never, for one empty segment per idle connection every 5 minutes,
/// rare enough to cost nothing and frequent enough to keep most NAT and firewall entries
/// (often 5 to 15 minutes idle) alive. The user timeout is off, as in Redis and HAProxy
/// (`tcp-ut`): tcp(7) says it also ends a connection whose buffered data stays untransmitted
/// because the peer's receive window is zero, which is a live peer that reads slowly, and
/// [`OutputLimits`](crate::OutputLimits) already decides how long the reactor waits for those.
/// Set it where a peer must be found dead quickly even mid-transfer (a replica, a proxy's
/// backend): then a few seconds to minutes, above the path's worst round trip several times.
///
/// **Together** (tcp(7)): "when used with the TCP keepalive (`SO_KEEPALIVE`) option,
/// `TCP_USER_TIMEOUT` will override keepalive to determine when to close a connection due to
/// keepalive failure". Linux then ignores the probe count: it closes the connection at the
/// first probe (or retransmission) that finds the peer silent for at least the user timeout.
/// So a user timeout shorter than `idle` closes an idle connection at its first unanswered
/// probe, and one longer than `idle + interval × probes` keeps probing past the count.
/// Cloudflare's advice ("When TCP sockets refuse to die", 2019) is a user timeout of
/// `idle + interval × probes`, so both paths give up at the same time.
///
/// **Not the reactor's idle timeout.** [`Config::idle_timeout`](crate::Config::idle_timeout)
/// closes a connection whose *application* is quiet, live peer or not; keepalive closes only
/// a connection whose *host* is gone, and leaves a quiet live peer alone.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use mio_reactor::{Config, DeadPeerDetection, Keepalive, ListenOptions};
///
/// let defaults = DeadPeerDetection::default();
/// assert_eq!(defaults.get_keepalive(), Some(Keepalive::after_idle(Duration::from_secs(300))));
/// assert_eq!(defaults.get_user_timeout(), None);
///
/// // A backend listen that must notice a vanished peer within seconds, idle or busy.
/// let quick = DeadPeerDetection::default()
///     .keepalive(Some(Keepalive::new(Duration::from_secs(5), Duration::from_secs(1), 3)))
///     .user_timeout(Some(Duration::from_secs(8)));
/// let options = ListenOptions::default().dead_peer_detection(quick);
/// assert_eq!(options.get_dead_peer_detection(), Some(quick));
///
/// // The kernel's own behaviour, as if nothing were set.
/// let config = Config::default().dead_peer_detection(DeadPeerDetection::off());
/// assert_eq!(config.get_dead_peer_detection().get_keepalive(), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeadPeerDetection {
    keepalive: Option<Keepalive>,
    user_timeout: Option<Duration>,
}

impl Default for DeadPeerDetection {
    fn default() -> DeadPeerDetection {
        DeadPeerDetection {
            keepalive: Some(Keepalive::after_idle(Duration::from_secs(300))),
            user_timeout: None,
        }
    }
}

impl DeadPeerDetection {
    /// Neither keepalive nor a user timeout: the kernel's defaults (no probes on an idle
    /// connection; `tcp_retries2` for data in flight).
    pub fn off() -> DeadPeerDetection {
        DeadPeerDetection {
            keepalive: None,
            user_timeout: None,
        }
    }

    /// Keepalive probes (`SO_KEEPALIVE` with `TCP_KEEPIDLE`, `TCP_KEEPINTVL`,
    /// `TCP_KEEPCNT`), or `None` for none.
    #[must_use]
    pub fn keepalive(mut self, keepalive: Option<Keepalive>) -> DeadPeerDetection {
        self.keepalive = keepalive;
        self
    }

    /// The keepalive set, if any.
    pub fn get_keepalive(&self) -> Option<Keepalive> {
        self.keepalive
    }

    /// `TCP_USER_TIMEOUT` (RFC 5482; tcp(7)): the longest that sent data may stay
    /// unacknowledged, or buffered data untransmitted because the peer's window is zero,
    /// before the kernel closes the connection; `None` for the kernel's default. Whole
    /// milliseconds, from 1 ms to `u32::MAX` ms.
    #[must_use]
    pub fn user_timeout(mut self, timeout: Option<Duration>) -> DeadPeerDetection {
        self.user_timeout = timeout;
        self
    }

    /// The user timeout set, if any.
    pub fn get_user_timeout(&self) -> Option<Duration> {
        self.user_timeout
    }

    /// Checks the values against what the kernel takes.
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a keepalive duration that is not a
    /// whole number of seconds from 1 to 32767, a probe count outside 1 to 127, or a user
    /// timeout shorter than 1 ms or longer than `u32::MAX` ms.
    pub fn validate(&self) -> io::Result<()> {
        let keepalive = self.keepalive.map_or(Ok(()), |k| k.validate());
        let user_timeout = match self.user_timeout {
            Some(t) if t < Duration::from_millis(1) || t.as_millis() > u128::from(u32::MAX) => {
                Err("user timeout must be from 1 ms to u32::MAX ms")
            }
            _ => Ok(()),
        };
        keepalive
            .and(user_timeout)
            .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))
    }

    /// Sets both on a connected TCP socket. A failure is logged, not fatal: the connection
    /// works without them.
    pub(crate) fn apply(&self, socket: socket2::SockRef<'_>, peer: &PeerAddr) {
        if let Some(keepalive) = self.keepalive {
            if let Err(err) = socket.set_tcp_keepalive(&keepalive.to_socket2()) {
                log::debug!("TCP keepalive for {peer}: {err}");
            }
        }
        if let Some(timeout) = self.user_timeout {
            if let Err(err) = socket.set_tcp_user_timeout(Some(timeout)) {
                log::debug!("TCP_USER_TIMEOUT for {peer}: {err}");
            }
        }
    }
}

impl fmt::Debug for DeadPeerDetection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadPeerDetection")
            .field("keepalive", &self.keepalive)
            .field("user_timeout", &self.user_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert!(DeadPeerDetection::default().validate().is_ok());
        assert!(DeadPeerDetection::off().validate().is_ok());
    }

    #[test]
    fn a_sub_second_keepalive_is_refused() {
        let half = Duration::from_millis(500);
        let settings = DeadPeerDetection::off().keepalive(Some(Keepalive::new(half, half, 2)));
        assert_eq!(
            settings.validate().unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn zero_probes_are_refused() {
        let second = Duration::from_secs(1);
        let settings = DeadPeerDetection::off().keepalive(Some(Keepalive::new(second, second, 0)));
        assert!(settings.validate().is_err());
    }

    #[test]
    fn a_zero_user_timeout_is_refused() {
        // 0 would mean "the kernel's default" to setsockopt: say None for that.
        let settings = DeadPeerDetection::off().user_timeout(Some(Duration::ZERO));
        assert!(settings.validate().is_err());
    }

    #[test]
    fn redis_rule_keeps_the_interval_at_least_a_second() {
        let keepalive = Keepalive::after_idle(Duration::from_secs(2));
        assert_eq!(keepalive.get_interval(), Duration::from_secs(1));
    }
}

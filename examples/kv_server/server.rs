//! What all connections share: the keyspace, the pub/sub registry, the settings and the
//! count of clients. One reactor thread serves them all, so an `Rc<RefCell<Server>>` is
//! enough, as Redis's main thread owns its `server` struct.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio_reactor::OutputLimits;

use crate::eviction::ClientMemory;
use crate::keyspace::Keyspace;
use crate::pubsub::Registry;

/// The settings that `CONFIG GET` shows and the connections follow.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `proto-max-bulk-len`: the longest bulk argument, hence value, accepted.
    pub max_bulk: usize,
    /// `maxclients`.
    pub max_clients: usize,
    /// `timeout`: idle normal clients are closed after it; `None` never (Redis's `0`).
    pub timeout: Option<Duration>,
    /// `hz`: how often the cron (the active expiry cycle) runs.
    pub hz: u32,
    /// `client-output-buffer-limit pubsub`: a subscriber's hard cap, soft limit and the time
    /// it may stay above the soft limit.
    pub pubsub_hard: usize,
    pub pubsub_soft: usize,
    pub pubsub_soft_time: Duration,
    /// The TCP port served (for `INFO`), 0 if none.
    pub port: u16,
    /// `maxmemory-clients`: the memory all clients may hold together, in bytes; 0 none.
    pub max_memory_clients: usize,
}

impl Settings {
    /// A subscriber's output limits: Redis's pub/sub class. The water marks stay the
    /// reactor's; only the hard cap and the soft limit change.
    pub fn pubsub_limits(&self, normal: OutputLimits) -> OutputLimits {
        let limits = normal.max_output(self.pubsub_hard.max(normal.get_high_water()));
        if self.pubsub_soft == 0 || self.pubsub_soft_time.is_zero() {
            limits.no_soft_limit()
        } else {
            limits.soft_limit(self.pubsub_soft, self.pubsub_soft_time)
        }
    }
}

/// The state every connection of the server reaches.
#[derive(Debug)]
pub struct Server {
    pub keyspace: Keyspace,
    pub pubsub: Registry,
    pub settings: Settings,
    /// Clients connected now (refused ones never count).
    pub clients: usize,
    /// The memory the clients hold, against `maxmemory-clients` (`eviction.rs`).
    pub memory: ClientMemory,
    /// When the server started, for `INFO`'s uptime.
    pub started: std::time::Instant,
}

impl Server {
    pub fn new(settings: Settings) -> Server {
        Server {
            keyspace: Keyspace::default(),
            pubsub: Registry::default(),
            memory: ClientMemory::new(settings.max_memory_clients),
            settings,
            clients: 0,
            started: std::time::Instant::now(),
        }
    }
}

/// The wall clock in Unix milliseconds, as Redis keeps expiry times (`mstime()`): an
/// expiry is a point in wall-clock time, not a duration from a monotonic clock.
pub fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

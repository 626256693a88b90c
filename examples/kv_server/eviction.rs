//! Client eviction: Redis 7's `maxmemory-clients`. Each client's pub/sub output limits bound
//! what one client holds; this bounds what all of them hold together, so that a thousand
//! subscribers that never read cannot hold a thousand hard caps (32 GiB).
//!
//! The server keeps a running total of the memory its clients hold (input not consumed yet,
//! output the kernel has not taken, the client's own buffers, and a fixed overhead per
//! client), updated where a client's usage changes: a published message written to a
//! subscriber, the end of a client's `on_data`, its close. When the total reaches the limit,
//! clients are evicted (aborted, their output discarded) biggest first until it is below
//! again, as Redis's `evictClients` (networking.c) does; each eviction is logged and counted
//! (`INFO`'s `evicted_clients`). `CLIENT NO-EVICT on` exempts a client, as in Redis.
//!
//! When: after each command that wrote to other clients and at the end of each `on_data`
//! (Redis runs `evictClients` in `processCommand`, before each command) and before the loop
//! sleeps (Redis's `beforeSleep`), when the output written in the turn has been flushed.
//!
//! The recorded output of a client can only be too high, never too low: it is measured when
//! bytes are written to it, and the kernel takes bytes without telling the server. So when
//! the total says "over", every client's output is measured again first (Redis's
//! `clientsCron` refreshes its figures in the same spirit), and only a total still over
//! evicts. That pass is O(clients), paid only at the limit.
//!
//! Differences from Redis: Redis picks victims from power-of-two buckets (any client of
//! the largest bucket); here they are sorted, so the largest client goes first. Output is
//! counted as bytes waiting (`buffered_output_of`), not as allocator blocks. Redis's
//! default is 0 (off); ours is bounded (see `--maxmemory-clients` in `main.rs`).

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;

use mio_reactor::ConnId;

/// What a client holds with empty buffers, in bytes: its handler, the reactor's record of
/// its connection, its entries in the maps (an estimate, as Redis counts `sizeof(client)`),
/// so that ten thousand idle clients weigh something.
pub const CLIENT_OVERHEAD: usize = 2048;

/// One client's part of the total, in bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    /// What the client measures of itself: unconsumed input and its own buffers.
    own: usize,
    /// Output waiting for the kernel, as last measured.
    output: usize,
    /// `CLIENT NO-EVICT on`: counted, never evicted.
    no_evict: bool,
}

impl Usage {
    fn bytes(&self) -> usize {
        CLIENT_OVERHEAD + self.own + self.output
    }
}

/// The memory all clients hold, against `maxmemory-clients`. Clients are known by `Id`
/// (the connection's id; a plain number in the unit tests).
#[derive(Debug)]
pub struct ClientMemory<Id = ConnId> {
    /// The limit in bytes; 0 means none (Redis's `maxmemory-clients 0`).
    limit: usize,
    clients: HashMap<Id, Usage>,
    /// The sum of `clients`' usage.
    total: usize,
    /// Clients evicted since the start (`INFO`'s `evicted_clients`).
    evicted: u64,
}

impl<Id: Copy + Eq + Hash + Ord + Display> ClientMemory<Id> {
    /// No clients yet, and `limit` bytes for them all (0: no limit).
    pub fn new(limit: usize) -> ClientMemory<Id> {
        ClientMemory {
            limit,
            clients: HashMap::new(),
            total: 0,
            evicted: 0,
        }
    }

    /// The limit in bytes, 0 for none.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// What the clients hold, as last measured, in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Clients evicted so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Starts counting client `id`.
    pub fn open(&mut self, id: Id) {
        self.forget(id);
        self.clients.insert(id, Usage::default());
        self.total += CLIENT_OVERHEAD;
    }

    /// Stops counting client `id` (closed or evicted).
    pub fn forget(&mut self, id: Id) {
        if let Some(usage) = self.clients.remove(&id) {
            self.total -= usage.bytes();
        }
    }

    /// Records client `id`'s output waiting for the kernel. A client not counted (evicted,
    /// closing) stays uncounted.
    pub fn set_output(&mut self, id: Id, bytes: usize) {
        self.update(id, |usage| usage.output = bytes);
    }

    /// Records what client `id` measures of itself: its unconsumed input and own buffers.
    pub fn set_own(&mut self, id: Id, bytes: usize) {
        self.update(id, |usage| usage.own = bytes);
    }

    /// `CLIENT NO-EVICT`: whether client `id` may be evicted.
    pub fn set_no_evict(&mut self, id: Id, no_evict: bool) {
        self.update(id, |usage| usage.no_evict = no_evict);
    }

    fn update(&mut self, id: Id, change: impl FnOnce(&mut Usage)) {
        if let Some(usage) = self.clients.get_mut(&id) {
            self.total -= usage.bytes();
            change(usage);
            self.total += usage.bytes();
        }
    }

    /// Whether the total has reached the limit (Redis evicts at `>=`).
    fn over_limit(&self) -> bool {
        self.limit > 0 && self.total >= self.limit
    }

    /// If the total has reached the limit: measures every client's output again with
    /// `measure` (`None`: closed, nothing waiting), then, if still at or over the limit,
    /// chooses clients biggest first until the total is below it, stops counting them, logs
    /// and counts each. Returns the clients to abort; empty (and O(1)) under the limit.
    pub fn evict_if_over(&mut self, mut measure: impl FnMut(Id) -> Option<usize>) -> Vec<Id> {
        if !self.over_limit() {
            return Vec::new();
        }
        for (&id, usage) in &mut self.clients {
            usage.output = measure(id).unwrap_or(0);
        }
        self.total = self.clients.values().map(Usage::bytes).sum();
        if !self.over_limit() {
            return Vec::new();
        }
        let mut candidates: Vec<(usize, Id)> = self
            .clients
            .iter()
            .filter(|(_, usage)| !usage.no_evict)
            .map(|(&id, usage)| (usage.bytes(), id))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        let mut victims = Vec::new();
        for (bytes, id) in candidates {
            if !self.over_limit() {
                break;
            }
            log::info!(
                "{id}: client evicted: it held {bytes} B, all clients {} B, maxmemory-clients {} B",
                self.total,
                self.limit
            );
            self.forget(id);
            self.evicted += 1;
            victims.push(id);
        }
        victims
    }
}

/// Parses a memory amount as Redis's configuration does (`memtoull`): a number of bytes,
/// with an optional unit, any case: `b`, `k` (1000), `kb` (1024), `m` (10^6), `mb` (2^20),
/// `g` (10^9), `gb` (2^30).
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: usize = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1000 * 1000,
        "mb" => 1 << 20,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?}: the unit is not one of b, k, kb, m, mb, g, gb"
            ))
        }
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|number| number.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a number of bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clients 1, 2, 3 holding `outputs` bytes of output, under `limit`.
    fn clients(limit: usize, outputs: [usize; 3]) -> ClientMemory<u32> {
        let mut memory = ClientMemory::new(limit);
        for (id, output) in (1..).zip(outputs) {
            memory.open(id);
            memory.set_output(id, output);
        }
        memory
    }

    #[test]
    fn the_total_is_the_sum_of_the_parts() {
        let mut memory = clients(0, [100, 200, 300]);
        memory.set_own(2, 50);
        assert_eq!(memory.total(), 3 * CLIENT_OVERHEAD + 650);
        memory.forget(3);
        assert_eq!(memory.total(), 2 * CLIENT_OVERHEAD + 350);
        memory.set_output(3, 1000); // no longer counted
        assert_eq!(memory.total(), 2 * CLIENT_OVERHEAD + 350);
    }

    #[test]
    fn under_the_limit_nobody_is_measured_or_evicted() {
        let mut memory = clients(1 << 20, [100, 200, 300]);
        let victims = memory.evict_if_over(|_| panic!("measured under the limit"));
        assert!(victims.is_empty());
        assert_eq!(memory.evicted(), 0);
    }

    #[test]
    fn the_biggest_clients_go_first_until_the_total_is_below_the_limit() {
        let limit = 3 * CLIENT_OVERHEAD + 5000;
        let mut memory = clients(limit, [3000, 4000, 1000]);
        let victims = memory.evict_if_over(|id| Some([3000, 4000, 1000][id as usize - 1]));
        assert_eq!(victims, [2]);
        assert_eq!(memory.evicted(), 1);
        assert!(memory.total() < limit);
    }

    #[test]
    fn output_the_kernel_took_meanwhile_saves_a_client() {
        let limit = 3 * CLIENT_OVERHEAD + 5000;
        let mut memory = clients(limit, [3000, 4000, 1000]);
        // Client 2 has been read since it was measured: only 10 bytes are left.
        let victims = memory.evict_if_over(|id| Some([3000, 10, 1000][id as usize - 1]));
        assert!(victims.is_empty());
        assert_eq!(memory.total(), 3 * CLIENT_OVERHEAD + 4010);
    }

    #[test]
    fn a_no_evict_client_is_counted_but_passed_over() {
        let limit = 2 * CLIENT_OVERHEAD + 4500;
        let mut memory = clients(limit, [3000, 4000, 1000]);
        memory.set_no_evict(2, true);
        let victims = memory.evict_if_over(|id| Some([3000, 4000, 1000][id as usize - 1]));
        assert_eq!(
            victims,
            [1, 3],
            "2 is exempt; 1 then 3 are needed to get below"
        );
    }

    #[test]
    fn memory_amounts_parse_as_redis_config_does() {
        for (text, bytes) in [
            ("0", 0),
            ("8388608", 8 << 20),
            ("8mb", 8 << 20),
            ("1GB", 1 << 30),
            ("1g", 1_000_000_000),
            ("64k", 64_000),
            ("64kb", 64 << 10),
            ("100b", 100),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "mb",
            "1tb",
            "-1",
            "10%",
            "1.5gb",
            "99999999999999999999gb",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad} accepted");
        }
    }
}

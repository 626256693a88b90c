//! The load scenarios, each a question a user of an echo-style server would ask.

use std::time::Duration;

use crate::load::LoadSpec;

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// For `--scenario`, the tables and the chart.
    pub name: &'static str,
    pub title: &'static str,
    /// Short enough for the chart's x axis.
    pub short: &'static str,
    pub conns: usize,
    pub size: usize,
    pub depth: usize,
    /// Total messages per second for a paced scenario.
    pub rate: Option<f64>,
    /// How many writes the server makes of each echo (1: whole; 2: two halves, as a reply
    /// written as a header and a body is).
    pub reply_pieces: usize,
    /// Over TLS: the servers that speak it serve with the benchmark's one `ServerConfig`
    /// (`tls.rs`), and the load generator is a rustls client.
    pub tls: bool,
    /// Connection churn: each connection echoes one message and is replaced (`load.rs`).
    pub reconnect: bool,
    /// Datagrams instead of a stream: the servers echo on a UDP socket (`udp_servers.rs`),
    /// `conns` is the number of client sockets, `depth` the datagrams in flight per socket,
    /// and the load generator is `udp_load.rs`.
    pub udp: bool,
}

impl Scenario {
    pub fn is_paced(&self) -> bool {
        self.rate.is_some()
    }

    pub fn load(&self, warmup: Duration, duration: Duration) -> LoadSpec {
        LoadSpec {
            conns: self.conns,
            size: self.size,
            depth: self.depth,
            rate: self.rate,
            reconnect: self.reconnect,
            warmup,
            duration,
        }
    }
}

pub const SCENARIOS: [Scenario; 12] = [
    // A typical service: a few dozen busy clients, messages of a few hundred bytes.
    Scenario {
        name: "c50x512",
        title: "50 conns x 512 B",
        short: "50 × 512 B",
        conns: 50,
        size: 512,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // Many connections, small messages: per-connection and per-event overheads dominate.
    Scenario {
        name: "c1000x64",
        title: "1,000 conns x 64 B",
        short: "1,000 × 64 B",
        conns: 1000,
        size: 64,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // One client waiting for each reply: the latency of one trip through the loop.
    Scenario {
        name: "pingpong",
        title: "1 conn ping-pong, 64 B",
        short: "1 × 64 B ping-pong",
        conns: 1,
        size: 64,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // Pipelined requests: several messages per read, bigger writes.
    Scenario {
        name: "pipelined",
        title: "50 conns x 512 B, 16 in flight",
        short: "50 × 512 B × 16 in flight",
        conns: 50,
        size: 512,
        depth: 16,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // The same work for everyone: what does a fixed load cost the server?
    Scenario {
        name: "paced",
        title: "50 conns x 512 B, paced 50k msg/s",
        short: "50 × 512 B at 50k/s",
        conns: 50,
        size: 512,
        depth: 1,
        rate: Some(50_000.0),
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // The reply written in two pieces (a header, then a body): does it cost two system calls
    // and two segments, or is it gathered into one as a whole reply is?
    Scenario {
        name: "split",
        title: "50 conns x 512 B, reply in 2 writes",
        short: "50 × 512 B in 2 writes",
        conns: 50,
        size: 512,
        depth: 1,
        rate: None,
        reply_pieces: 2,
        tls: false,
        reconnect: false,
        udp: false,
    },
    // The same two echo loads over TLS (issue 14): what the TLS layer costs each loop on
    // top of the same rustls.
    Scenario {
        name: "tls-c50x512",
        title: "TLS: 50 conns x 512 B",
        short: "TLS 50 × 512 B",
        conns: 50,
        size: 512,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: true,
        reconnect: false,
        udp: false,
    },
    Scenario {
        name: "tls-c1000x64",
        title: "TLS: 1,000 conns x 64 B",
        short: "TLS 1,000 × 64 B",
        conns: 1000,
        size: 64,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: true,
        reconnect: false,
        udp: false,
    },
    // Full handshakes (no resumption): each of 16 clients at a time connects, handshakes,
    // echoes 64 B, sends close_notify and closes. One "round trip" is one whole connection;
    // the server's CPU per round trip is its cost of a full handshake (and a tiny echo).
    Scenario {
        name: "tls-handshakes",
        title: "TLS: full handshakes, 16 at a time",
        short: "TLS handshakes",
        conns: 16,
        size: 64,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: true,
        reconnect: true,
        udp: false,
    },
    // Datagrams (issue 22): 50 client sockets, each keeping 16 datagrams of 64 B in flight;
    // a datagram not echoed within 200 ms is counted lost and replaced (`udp_load.rs`). Where
    // a server's CPU per datagram goes: one system call per datagram, or batches.
    Scenario {
        name: "udp-c50x64-k16",
        title: "UDP: 50 sockets x 64 B, 16 in flight",
        short: "UDP 50 × 64 B × 16",
        conns: 50,
        size: 64,
        depth: 16,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: true,
    },
    // One datagram at a time: the latency of one trip through each loop, where no batch
    // can form.
    Scenario {
        name: "udp-c1x64-k1",
        title: "UDP: 1 socket ping-pong, 64 B",
        short: "UDP 1 × 64 B ping-pong",
        conns: 1,
        size: 64,
        depth: 1,
        rate: None,
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: true,
    },
    // The same offered load for every server (open loop): under a closed loop a server that
    // drops more is also offered less, so loss is only comparable at a fixed rate; 40k/s is
    // below what each server echoes on the 2-core machines of docs/performance.md.
    Scenario {
        name: "udp-c50x64-paced",
        title: "UDP: 50 sockets x 64 B, paced 40k/s",
        short: "UDP 50 × 64 B at 40k/s",
        conns: 50,
        size: 64,
        depth: 1,
        rate: Some(40_000.0),
        reply_pieces: 1,
        tls: false,
        reconnect: false,
        udp: true,
    },
];

/// Names that are not load scenarios but may be selected with `--scenario` too.
pub const MEMORY_PARTS: [&str; 3] = ["idle", "held", "tls-idle"];

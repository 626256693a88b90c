//! A Redis-compatible key-value server on the reactor: RESP2 and inline commands, strings
//! with expiry, counters, and publish/subscribe, served to real clients (`redis-cli`,
//! `redis-benchmark`, client libraries).
//!
//! ```text
//! cargo run --release --example kv_server                  # 127.0.0.1:6379, as Redis
//! cargo run --release --example kv_server -- --listen tcp:127.0.0.1:7379 --timeout 300
//! redis-cli -p 7379 set greeting hello ex 60
//! redis-benchmark -p 7379 -t set,get,incr -c 50 -r 100000 -P 16 -q
//! ```
//! The data lives in the process: nothing is written to disk, and a restart empties it.
//!
//! Commands: PING, ECHO, SET (EX, PX, NX, XX, KEEPTTL, GET), GET, GETDEL, DEL, EXISTS,
//! INCR, DECR, INCRBY, DECRBY, EXPIRE and PEXPIRE (NX, XX, GT, LT), TTL, PTTL, PERSIST,
//! DBSIZE, FLUSHALL, FLUSHDB, SELECT 0, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE,
//! PUNSUBSCRIBE, QUIT, CLIENT NO-EVICT, and enough of CONFIG GET, INFO and COMMAND for
//! `redis-cli` and `redis-benchmark`. Replies are Redis 7.0's, byte for byte, errors
//! included.
//!
//! What it shows of the reactor: a loop timer paces the active expiry cycle (`--hz`),
//! per-connection output policies (a subscriber gets Redis's pub/sub limits, a slow
//! reader of a large value gets it in pieces as it reads), the `on_data` contract for
//! pipelining (requests behind a large reply wait in the input), and replies written
//! straight into the connection's output.
//!
//! The files: `resp.rs` reads requests and writes replies (the codec), `commands.rs` is the
//! command table, `keyspace.rs` the map with lazy expiry, `expiry.rs` the active expiry
//! cycle, `pubsub.rs` channels and patterns, `server.rs` the state all connections share,
//! `eviction.rs` the memory all clients hold and client eviction (`--maxmemory-clients`),
//! and `client.rs` the handler of one connection.

#[path = "../support/cli.rs"]
mod cli;
mod client;
mod commands;
mod eviction;
mod expiry;
mod keyspace;
mod pubsub;
mod resp;
mod server;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use mio_reactor::{Config, Endpoint, ListenOptions, Reactor};

use client::Client;
use server::{Server, Settings};

/// A Redis-compatible key-value server (strings, expiry, counters, pub/sub) on one
/// reactor thread, on 127.0.0.1:6379 without --listen, as Redis. The data lives in the
/// process's memory only: nothing is saved, and a restart empties it.
#[derive(Parser)]
#[command(name = "kv_server", version, after_help = cli::KV_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
    /// Clients served at once; one more gets `-ERR max number of clients reached`
    /// (Redis's `maxclients`)
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::at_least_one)]
    maxclients: usize,
    /// Close a normal client idle this long, 0 never; subscribers never (Redis's `timeout`)
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    timeout: u64,
    /// Cron ticks per second: how often the active expiry cycle runs (Redis's `hz`)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=500))]
    hz: u32,
    /// Longest value (bulk argument) accepted; a client's input may hold one such request
    /// (Redis's `proto-max-bulk-len`, 512 MB there)
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 20, value_parser = cli::at_least_one)]
    proto_max_bulk_len: usize,
    /// A subscriber whose unread output passes this is closed at once (Redis's
    /// `client-output-buffer-limit pubsub`, hard limit)
    #[arg(long, value_name = "BYTES", default_value_t = 32 << 20, value_parser = cli::at_least_one)]
    pubsub_hard_limit: usize,
    /// A subscriber whose unread output stays above this for --pubsub-soft-seconds is
    /// closed (the soft limit), 0 for none
    #[arg(long, value_name = "BYTES", default_value_t = 8 << 20)]
    pubsub_soft_limit: usize,
    /// How long a subscriber may stay above --pubsub-soft-limit
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = cli::seconds)]
    pubsub_soft_seconds: Duration,
    /// The memory all clients may hold together (input, output, per-client overhead):
    /// past it, the clients holding the most are evicted (closed, counted in INFO's
    /// evicted_clients) until the total is below (Redis's `maxmemory-clients`). Bytes, or
    /// with a unit as Redis takes it: 512mb, 1gb, 64kb (k, m, g are powers of 1000).
    /// 0 turns it off. Redis's default is 0; this one is bounded, as the per-client limits
    /// alone let 1,000 subscribers that never read hold 32 GiB
    #[arg(long, value_name = "BYTES", default_value = "1gb", value_parser = eviction::parse_bytes)]
    maxmemory_clients: usize,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
}

/// Room in a client's input beyond its largest value: the command, the key and the
/// framing around it, and requests pipelined behind it.
const INPUT_SLACK: usize = 1 << 20;

/// Connections the reactor takes beyond `maxclients`, so that those get Redis's error
/// reply rather than a silent refusal.
const ACCEPT_SLACK: usize = 1024;

fn main() {
    cli::init_logging();
    let args: Args = cli::parse();
    if args.pubsub_soft_limit >= args.pubsub_hard_limit {
        cli::usage_error::<Args>("--pubsub-soft-limit must be below --pubsub-hard-limit");
    }
    if let Err(err) = serve(args) {
        eprintln!("kv_server: {err}");
        std::process::exit(1);
    }
}

fn serve(args: Args) -> std::io::Result<()> {
    let mut endpoints = args.listen.streams::<Args>();
    if endpoints.is_empty() {
        endpoints.push(Endpoint::Tcp(cli::resolve("127.0.0.1:6379")?[0]));
    }
    let timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    let config = Config::default()
        .idle_timeout(timeout)
        .dead_peer_detection(args.dead_peers.detection())
        .max_connections(args.maxclients + ACCEPT_SLACK)
        .max_input(args.proto_max_bulk_len.saturating_add(INPUT_SLACK));
    let mut reactor = Reactor::with_config(config)?;
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts.
    reactor.shutdown_on_signals()?;
    cli::refuse_upgrades(&mut reactor, "the keys live in this process")?;
    let settings = Settings {
        max_bulk: args.proto_max_bulk_len,
        max_clients: args.maxclients,
        timeout,
        hz: args.hz,
        pubsub_hard: args.pubsub_hard_limit,
        pubsub_soft: args.pubsub_soft_limit,
        pubsub_soft_time: args.pubsub_soft_seconds,
        port: 0,
        max_memory_clients: args.maxmemory_clients,
    };
    let server = Rc::new(RefCell::new(Server::new(settings)));
    let factory = {
        let server = server.clone();
        move |_: &_| Some(Client::new(server.clone()))
    };
    let mut bound = Vec::new();
    for endpoint in &endpoints {
        let listening = reactor.listen(endpoint, ListenOptions::default(), factory.clone())?;
        bound.extend_from_slice(listening.bound());
    }
    server.borrow_mut().settings.port = bound
        .iter()
        .find_map(Endpoint::socket_addr)
        .map_or(0, |addr| addr.port());
    let mut fast_expiry = expiry::start(&mut reactor, server.clone(), args.hz);
    let clients = server.clone();
    // Redis's `beforeSleep` runs the fast expiry cycle, then (after the turn's replies
    // are written) `evictClients`.
    reactor.before_sleep(move |loop_ctx| {
        fast_expiry();
        let victims = clients
            .borrow_mut()
            .memory
            .evict_if_over(|id| loop_ctx.buffered_output(id));
        for id in victims {
            // As in `Client::evict_clients`; not borrowed across the abort (its `on_close`
            // borrows the server).
            clients.borrow_mut().pubsub.forget_everywhere(id);
            loop_ctx.abort(id);
        }
    });
    cli::announce("kv server", &bound, false);
    if args.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(reactor.shutdown_handle());
    }
    reactor.run()?;
    println!(
        "kv server stopped: {} connections accepted, {} keys dropped",
        reactor.stats().accepted,
        server.borrow().keyspace.len()
    );
    Ok(())
}

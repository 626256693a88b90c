//! An HTTP/1.1 server on the reactor: what a real protocol costs on it, served to real
//! clients (curl, wrk, browsers, Prometheus).
//!
//! ```text
//! cargo run --release --example http_server                        # http://127.0.0.1:8080
//! cargo run --release --example http_server -- --threads 2 --addr 127.0.0.1:8081
//! cargo run --release --example http_server -- --listen tcp:[::1]:8080 --listen unix:/tmp/http.sock
//! curl -v http://127.0.0.1:8080/plaintext
//! ```
//! Open <http://127.0.0.1:8080/> in a browser to watch the loop live: open connections,
//! accepts, closes by reason, bytes, turns and time blocked, updated every second.
//!
//! Routes: `GET /plaintext` and `GET /json` as the TechEmpower benchmarks define them,
//! `POST /echo` (the body back), `GET /stats` (the reactors' stats as JSON), `GET /metrics`
//! (the same for Prometheus), `GET /ip` (the client's address as the server sees it), `GET /`
//! (the live page). Keep-alive, pipelining, HTTP/1.0,
//! `Connection: close` and `HEAD` work as RFC 9112 says; bad requests get 400, 408, 413,
//! 431, 501 or 505 and cost only their own connection.
//!
//! Behind a load balancer that relays TCP (HAProxy's `send-proxy`), `--proxy-protocol` reads
//! the PROXY protocol header it sends: `/ip` and the logs then name the client, not the
//! balancer.
//!
//! The files: `request.rs` reads a request with `httparse`, `response.rs` writes one,
//! `connection.rs` is the handler that ties them to the reactor, `routes.rs` says what each
//! path answers, `date.rs` keeps the `Date` header, and `stats_board.rs`, `readings.rs`,
//! `stats_json.rs`, `metrics.rs` and `page.html` show the loop's numbers.

#[path = "../support/cli.rs"]
mod cli;
mod connection;
mod date;
mod metrics;
mod readings;
mod request;
mod response;
mod routes;
mod stats_board;
mod stats_json;

use std::io;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use mio_reactor::{Config, Endpoint, ListenOptions, ReactorThreads, Spread};

use connection::{HttpConnection, Shared};
use date::DateCache;
use request::Limits;
use stats_board::StatsBoard;

/// An HTTP/1.1 server: /plaintext, /json, POST /echo, /stats, /metrics, and a live page of
/// the event loop's numbers at /.
#[derive(Parser)]
#[command(name = "http_server", version, after_help = cli::UPGRADE_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
    /// Alias of --listen tcp:HOST:PORT (its first address), announced as http://HOST:PORT
    /// [default without --listen: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Run N reactors on N threads sharing the port through SO_REUSEPORT (tcp: endpoints
    /// only)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = cli::at_least_one)]
    threads: usize,
    /// Largest request body accepted (413 above)
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    max_body: usize,
    /// Time a request may take to arrive, from its first byte (408 after it)
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = cli::seconds)]
    request_timeout: Duration,
    /// Close keep-alive connections idle this long
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = cli::seconds)]
    idle_timeout: Duration,
    /// Connections served at once, per thread
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = cli::at_least_one)]
    max_connections: usize,
    /// The kernel's send buffer per connection (SO_SNDBUF) [default: the kernel's autotuning]
    #[arg(long, value_name = "BYTES")]
    send_buffer: Option<usize>,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    #[command(flatten)]
    upgrade: cli::UpgradeArgs,
    #[command(flatten)]
    proxy: cli::ProxyArgs,
}

/// The request head limit: 8 KiB, as nginx, Node and hyper default to.
const MAX_HEAD: usize = 8 * 1024;

struct Options {
    /// `--listen`: announced in the endpoint grammar.
    listens: Vec<Endpoint>,
    addr: Option<String>,
    threads: usize,
    limits: Limits,
    request_timeout: Duration,
    config: Config,
    stop_on_stdin_eof: bool,
    /// SIGUSR2 upgrades (one reactor thread only).
    upgrade: Option<cli::UpgradeArgs>,
    /// Every listen's options (`--proxy-protocol`).
    listen: ListenOptions,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let limits = Limits {
        max_head: MAX_HEAD,
        max_body: args.max_body,
    };
    // A request waiting for its body holds its head and body as unconsumed input.
    let config = Config::default()
        .idle_timeout(Some(args.idle_timeout))
        .max_connections(args.max_connections)
        .socket_send_buffer(args.send_buffer)
        .dead_peer_detection(args.dead_peers.detection())
        .max_input(limits.max_head + limits.max_body);
    let listens = args.listen.streams::<Args>();
    if args.threads > 1 && !listens.iter().all(cli::is_tcp) {
        cli::usage_error::<Args>(
            "--threads > 1 shares tcp: endpoints only (SO_REUSEPORT): no unix:, fd: or systemd:",
        );
    }
    if args.threads > 1 && args.upgrade.pid_file.is_some() {
        cli::usage_error::<Args>("--pid-file and SIGUSR2 upgrades serve one reactor thread");
    }
    Options {
        upgrade: (args.threads == 1).then_some(args.upgrade),
        listens,
        addr: args.addr,
        threads: args.threads,
        limits,
        request_timeout: args.request_timeout,
        config,
        stop_on_stdin_eof: args.stop_on_stdin_eof,
        listen: args.proxy.apply(ListenOptions::default()),
    }
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    if let Err(err) = serve(options) {
        eprintln!("http_server: {err}");
        std::process::exit(1);
    }
}

/// Starts the reactors on `ReactorThreads` (one reactor alone, or N sharing each tcp:
/// port through SO_REUSEPORT), each publishing its stats before it sleeps, then waits for
/// them to finish.
fn serve(options: Options) -> io::Result<()> {
    let mut endpoints = options.listens.clone();
    if let Some(addr) = &options.addr {
        endpoints.push(Endpoint::Tcp(cli::resolve(addr)?[0]));
    } else if endpoints.is_empty() {
        endpoints.push(Endpoint::Tcp(cli::resolve("127.0.0.1:8080")?[0]));
    }
    let board = StatsBoard::new(options.threads);
    let (limits, request_timeout) = (options.limits, options.request_timeout);
    let upgrade = options.upgrade.clone();
    let threads = ReactorThreads::serve(
        options.threads,
        options.config.clone(),
        endpoints,
        options.listen.clone(),
        Spread::ReusePort,
        move |reactor, index| {
            let published = board.clone();
            // Once per turn, before the poll: the board shows each reactor as of its
            // latest turn.
            reactor.before_sleep(move |lc| published.publish(index, lc.stats()));
            // SIGUSR2: one reactor thread hands its listeners to a new process and drains;
            // several only log it (its default action would end the process).
            let upgrades = match &upgrade {
                Some(upgrade) => upgrade.upgrade_on_signal(reactor),
                None if index == 0 => cli::refuse_upgrades(
                    reactor,
                    "several reactor threads (--threads) do not hand over their listeners",
                ),
                None => Ok(()),
            };
            if let Err(err) = upgrades {
                eprintln!("http_server: cannot watch SIGUSR2: {err}");
                std::process::exit(1);
            }
            let shared = Rc::new(Shared {
                date: DateCache::new(),
                board: board.clone(),
                limits,
                request_timeout,
            });
            move |_: &_| Some(HttpConnection::new(shared.clone()))
        },
    )?;
    // SIGTERM or SIGINT: the first drains every reactor gracefully, the second aborts.
    // Watched before the address is announced, so that none can be missed.
    cli::forward_signals(threads.shutdown_handle())?;
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(threads.shutdown_handle());
    }
    announce(&options, threads.bound());
    let stats = threads.join()?;
    println!(
        "http server stopped: {} connections accepted, {} B in, {} B out, {} turns",
        stats.iter().map(|s| s.accepted).sum::<u64>(),
        stats.iter().map(|s| s.bytes_in).sum::<u64>(),
        stats.iter().map(|s| s.bytes_out).sum::<u64>(),
        stats.iter().map(|s| s.turns).sum::<u64>(),
    );
    Ok(())
}

/// `--listen`'s endpoints first, announced in the grammar; `--addr`'s (or the default)
/// last, as `http://HOST:PORT`, as always.
fn announce(options: &Options, bound: &[Endpoint]) {
    let listened = !options.listens.is_empty();
    if listened {
        // What each --listen bound: a name may have bound several addresses.
        let grammar = &bound[..bound.len() - usize::from(options.addr.is_some())];
        cli::announce("http server", grammar, false);
    }
    if options.addr.is_some() || !listened {
        let addr = bound
            .last()
            .and_then(Endpoint::socket_addr)
            .expect("--addr binds a TCP address");
        println!("http server listening on http://{addr}");
    }
}

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
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Parser;
use mio_reactor::{Config, Endpoint, ListenOptions, Reactor, ShutdownHandle, Stats};

use connection::{HttpConnection, Shared};
use date::DateCache;
use request::Limits;
use stats_board::StatsBoard;

/// An HTTP/1.1 server: /plaintext, /json, POST /echo, /stats, /metrics, and a live page of
/// the event loop's numbers at /.
#[derive(Parser)]
#[command(name = "http_server", version, after_help = cli::SERVER_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
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
    /// Every listen's options (`--proxy-protocol`; SO_REUSEPORT is added per thread).
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
        .max_input(limits.max_head + limits.max_body);
    let listens = args.listen.streams::<Args>();
    if args.threads > 1 && !listens.iter().all(cli::is_tcp) {
        cli::usage_error::<Args>(
            "--threads > 1 shares tcp: endpoints only (SO_REUSEPORT): no unix:, fd: or systemd:",
        );
    }
    Options {
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

/// What one reactor thread needs to start.
struct ThreadSetup {
    index: usize,
    endpoints: Vec<Endpoint>,
    /// The listens' options, SO_REUSEPORT on when there are several threads.
    options: ListenOptions,
    config: Config,
    limits: Limits,
    request_timeout: Duration,
    board: StatsBoard,
}

/// Starts the reactor threads one by one (the first picks the port when asked for port 0,
/// the others share it: they listen where the first one bound), then waits for them to
/// finish.
fn serve(options: Options) -> io::Result<()> {
    let mut endpoints = options.listens.clone();
    if let Some(addr) = &options.addr {
        endpoints.push(Endpoint::Tcp(cli::resolve(addr)?[0]));
    } else if endpoints.is_empty() {
        endpoints.push(Endpoint::Tcp(cli::resolve("127.0.0.1:8080")?[0]));
    }
    let board = StatsBoard::new(options.threads);
    let mut threads = Vec::new();
    let mut handles = Vec::new();
    for index in 0..options.threads {
        let setup = ThreadSetup {
            index,
            endpoints: endpoints.clone(),
            options: options.listen.clone().reuse_port(options.threads > 1),
            config: options.config.clone(),
            limits: options.limits,
            request_timeout: options.request_timeout,
            board: board.clone(),
        };
        let (ready_tx, ready) = mpsc::channel();
        threads.push(
            std::thread::Builder::new()
                .name(format!("reactor-{index}"))
                .spawn(move || run_reactor(setup, ready_tx))?,
        );
        let started = ready
            .recv()
            .unwrap_or_else(|_| Err(io::Error::other("a reactor thread died during setup")));
        match started {
            Ok((handle, bound)) => {
                handles.push(handle);
                endpoints = bound;
            }
            Err(err) => {
                ShutdownHandle::all(handles).shutdown();
                let _ = join(threads);
                return Err(err);
            }
        }
    }
    // SIGTERM or SIGINT: the first drains every reactor gracefully, the second aborts.
    // Watched before the address is announced, so that none can be missed.
    let all = ShutdownHandle::all(handles);
    cli::forward_signals(all.clone())?;
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(all);
    }
    // --listen's endpoints come first, announced in the grammar; --addr's (or the default)
    // last, as always.
    let listened: usize = options.listens.len();
    if listened > 0 {
        // What each --listen bound: a name may have bound several addresses.
        let grammar = &endpoints[..endpoints.len() - usize::from(options.addr.is_some())];
        cli::announce("http server", grammar, false);
    }
    if options.addr.is_some() || listened == 0 {
        let addr = endpoints
            .last()
            .and_then(Endpoint::socket_addr)
            .expect("--addr binds a TCP address");
        println!("http server listening on http://{addr}");
    }
    let stats = join(threads)?;
    println!(
        "http server stopped: {} connections accepted, {} B in, {} B out, {} turns",
        stats.iter().map(|s| s.accepted).sum::<u64>(),
        stats.iter().map(|s| s.bytes_in).sum::<u64>(),
        stats.iter().map(|s| s.bytes_out).sum::<u64>(),
        stats.iter().map(|s| s.turns).sum::<u64>(),
    );
    Ok(())
}

fn join(threads: Vec<JoinHandle<io::Result<Stats>>>) -> io::Result<Vec<Stats>> {
    threads
        .into_iter()
        .map(|thread| {
            thread
                .join()
                .map_err(|_| io::Error::other("a reactor thread panicked"))?
        })
        .collect()
}

type Ready = mpsc::Sender<io::Result<(ShutdownHandle, Vec<Endpoint>)>>;

/// One reactor thread: listen, report, then turn the loop and publish its stats after every
/// turn. (`ReactorThreads` would run the loop itself, with no place to publish them.)
fn run_reactor(setup: ThreadSetup, ready: Ready) -> io::Result<Stats> {
    let started = listen(&setup);
    let mut reactor = match started {
        Ok((reactor, bound)) => {
            let _ = ready.send(Ok((reactor.shutdown_handle(), bound)));
            reactor
        }
        Err(err) => {
            let _ = ready.send(Err(err));
            return Ok(Stats::default());
        }
    };
    while !reactor.is_finished() {
        reactor.turn(None)?;
        setup.board.publish(setup.index, reactor.stats());
    }
    Ok(reactor.stats())
}

fn listen(setup: &ThreadSetup) -> io::Result<(Reactor, Vec<Endpoint>)> {
    let mut reactor = Reactor::with_config(setup.config.clone())?;
    let shared = Rc::new(Shared {
        date: DateCache::new(),
        board: setup.board.clone(),
        limits: setup.limits,
        request_timeout: setup.request_timeout,
    });
    let factory = move |_: &_| Some(HttpConnection::new(shared.clone()));
    let mut bound = Vec::new();
    for endpoint in &setup.endpoints {
        let listening = reactor.listen(endpoint, setup.options.clone(), factory.clone())?;
        bound.extend_from_slice(listening.bound());
    }
    Ok((reactor, bound))
}

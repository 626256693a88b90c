//! The command line (with `clap`, as in the examples): the driver's options, and the two
//! child modes the driver starts this same binary in.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::PossibleValuesParser;
use clap::Parser;

use crate::cli;
use crate::scenarios::{MEMORY_PARTS, SCENARIOS};
use crate::servers::{ServeOptions, ServerKind, TOKIO_BUFFER};

/// Starts the tokio, plain-mio and mio-reactor echo servers one after another (each its own
/// process, pinned to one CPU), drives each with the same load generator (pinned to
/// another), checks every echoed byte, and reports round-trips/s, p50/p99 latency, server
/// CPU time per message, system calls per message, peak RSS and memory per connection, as
/// ratios against tokio. Exits non-zero on any echo error.
#[derive(Parser, Debug)]
#[command(
    name = "echo-bench",
    bin_name = "cargo bench --bench echo --",
    version,
    after_help = "Results (Markdown and CSV) also go to target/echo-bench/."
)]
struct Args {
    /// Smoke test: 1 run, short windows, fewer held connections, no retries
    #[arg(long)]
    quick: bool,
    /// Alternating runs per scenario [default: 5; 1 with --quick]
    #[arg(long, value_name = "N", value_parser = cli::at_least_one)]
    runs: Option<usize>,
    /// Warm-up before each window [default: 1; 0.3 with --quick]
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    warmup: Option<Duration>,
    /// Measurement window [default: 4; 1 with --quick]
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    duration: Option<Duration>,
    /// Only this part (repeatable) [default: all]
    #[arg(long, value_name = "NAME", value_parser = part_names())]
    scenario: Vec<String>,
    /// Only this server (repeatable; tokio is the baseline of the ratios). `faulty`
    /// corrupts a byte now and then, to check that the benchmark then fails
    #[arg(long = "server", value_name = "NAME", value_parser = server_kind)]
    servers: Vec<ServerKind>,
    /// The tokio task's read buffer
    #[arg(long, value_name = "BYTES", default_value_t = TOKIO_BUFFER, value_parser = cli::at_least_one)]
    tokio_buffer: usize,
    /// Idle connections for the memory figure [default: 10000; 2000 with --quick]
    #[arg(long, value_name = "N")]
    idle: Option<usize>,
    /// Connections for the held-connections run [default: 19000; 6000 with --quick]
    #[arg(long, value_name = "N")]
    held: Option<usize>,
    /// Idle TLS connections for the TLS memory figure [default: 2000; 500 with --quick]
    #[arg(long, value_name = "N")]
    tls_idle: Option<usize>,
    /// Other work on the machine (neither server nor load) may take up to PCT % of a CPU
    /// during a window; above it the measurement is repeated
    #[arg(long, value_name = "PCT", default_value_t = 25.0)]
    max_noise: f64,
    /// Repeats allowed per noisy measurement, the least noisy kept [default: 1; 0 with
    /// --quick]
    #[arg(long, value_name = "N")]
    retries: Option<usize>,
    /// Skip the perf run that counts system calls
    #[arg(long)]
    no_syscalls: bool,
    /// Do not pin the servers and the load to CPUs
    #[arg(long)]
    no_pin: bool,
    /// Where to write the SVG chart [default: docs/echo-benchmark.svg; with --quick,
    /// target/echo-bench/echo-benchmark.svg]
    #[arg(long, value_name = "PATH")]
    chart: Option<PathBuf>,
}

/// What `--scenario` accepts: a load scenario or a memory part.
fn part_names() -> PossibleValuesParser {
    let names = SCENARIOS.iter().map(|s| s.name).chain(MEMORY_PARTS);
    PossibleValuesParser::new(names)
}

fn server_kind(name: &str) -> Result<ServerKind, String> {
    ServerKind::parse(name).ok_or_else(|| "expected tokio, mio, reactor or faulty".to_string())
}

/// The driver's options, with `--quick` and the defaults applied.
#[derive(Debug, Clone)]
pub struct Options {
    pub quick: bool,
    pub runs: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Selected parts; empty means all.
    pub parts: Vec<String>,
    pub servers: Vec<ServerKind>,
    pub idle: usize,
    pub held: usize,
    pub tls_idle: usize,
    /// Share of a CPU that other work may take during a window before it is repeated.
    pub max_noise: f64,
    pub retries: usize,
    pub syscalls: bool,
    pub pin: bool,
    pub chart: Option<PathBuf>,
    pub serve: ServeOptions,
}

impl Options {
    /// Parses the driver's command line (`args` without the program name): `--help` and
    /// `--version` exit 0, bad usage exits 2 with one line, as the examples do.
    pub fn parse(args: &[String]) -> Options {
        let program = "echo-bench".to_string();
        let args: Args = cli::parse_from(std::iter::once(program).chain(args.iter().cloned()));
        let quick = args.quick;
        let pick = |value: Option<_>, full, quick_value| {
            value.unwrap_or(if quick { quick_value } else { full })
        };
        // The report and the chart list servers in a fixed order.
        let servers = if args.servers.is_empty() {
            ServerKind::ALL.to_vec()
        } else {
            ServerKind::ALL
                .into_iter()
                .chain([ServerKind::Faulty])
                .filter(|k| args.servers.contains(k))
                .collect()
        };
        Options {
            quick,
            runs: pick(args.runs, 5, 1),
            warmup: args.warmup.unwrap_or(if quick {
                Duration::from_millis(300)
            } else {
                Duration::from_secs(1)
            }),
            duration: args.duration.unwrap_or(if quick {
                Duration::from_secs(1)
            } else {
                Duration::from_secs(4)
            }),
            parts: if args.scenario.is_empty() && !cfg!(feature = "tls") {
                // Without the `tls` feature there is no TLS server of ours to measure.
                let plain = SCENARIOS.iter().filter(|s| !s.tls).map(|s| s.name);
                let memory = MEMORY_PARTS.iter().copied().filter(|p| !is_tls_part(p));
                plain.chain(memory).map(String::from).collect()
            } else {
                args.scenario
            },
            servers,
            idle: pick(args.idle, 10_000, 2_000),
            held: pick(args.held, 19_000, 6_000),
            tls_idle: pick(args.tls_idle, 2_000, 500),
            max_noise: args.max_noise / 100.0,
            retries: pick(args.retries, 1, 0),
            syscalls: !args.no_syscalls,
            pin: !args.no_pin,
            chart: args.chart,
            serve: ServeOptions {
                tokio_buffer: args.tokio_buffer,
                reply_pieces: 1,
                udp: false,
            },
        }
    }

    pub fn wants(&self, part: &str) -> bool {
        self.parts.is_empty() || self.parts.iter().any(|p| p == part)
    }
}

/// Whether a part of the benchmark (a scenario or a memory part) runs over TLS.
pub fn is_tls_part(name: &str) -> bool {
    name.starts_with("tls-")
}

/// Child mode: a server under test (`--serve KIND --addr ADDR [--cpu N] [--tokio-buffer
/// BYTES] [--tls-dir DIR]`), started by the driver, never by hand.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
pub struct ServeArgs {
    #[arg(long = "serve", value_parser = server_kind)]
    pub kind: ServerKind,
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    #[arg(long)]
    pub cpu: Option<usize>,
    #[arg(long, default_value_t = TOKIO_BUFFER)]
    pub tokio_buffer: usize,
    /// Write each echo in this many pieces (the `split` scenario).
    #[arg(long, default_value_t = 1)]
    pub reply_pieces: usize,
    /// Serve TLS with the certificate and key in this directory (`tls.rs`).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Echo datagrams on a UDP socket (the `udp-*` scenarios).
    #[arg(long)]
    pub udp: bool,
}

/// Helper mode: `--load ADDR [--conns N] [--size BYTES] [--depth K] [--duration SECS]
/// [--warmup SECS] [--cpu N] [--tls-dir DIR] [--reconnect] [--udp]`, this benchmark's load generator against a server already running.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
pub struct LoadArgs {
    #[arg(long)]
    pub load: SocketAddr,
    #[arg(long, default_value_t = 50)]
    pub conns: usize,
    #[arg(long, default_value_t = 512)]
    pub size: usize,
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    #[arg(long, default_value = "3", value_parser = cli::seconds)]
    pub duration: Duration,
    /// Warm-up before the counted window (a short one counts nearly every echo).
    #[arg(long, default_value = "1", value_parser = cli::seconds)]
    pub warmup: Duration,
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Connect over TLS, trusting `cert.pem` in this directory (the `--serve` child's).
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
    /// Connection churn: each connection echoes one message and is replaced.
    #[arg(long)]
    pub reconnect: bool,
    /// Send datagrams to a UDP echo server instead (`--conns` sockets, `--depth` datagrams
    /// in flight on each).
    #[arg(long)]
    pub udp: bool,
}

/// Child mode: a helper holding connections for the memory runs (`--hold-clients --addr
/// ADDR --source IP --count N --first N [--cpu N] [--tls-dir DIR]`).
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
pub struct HoldArgs {
    #[arg(long)]
    pub hold_clients: bool,
    #[arg(long)]
    pub addr: SocketAddr,
    #[arg(long)]
    pub source: IpAddr,
    #[arg(long)]
    pub count: usize,
    #[arg(long)]
    pub first: usize,
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Connect over TLS, trusting the certificate in this directory.
    #[arg(long)]
    pub tls_dir: Option<PathBuf>,
}

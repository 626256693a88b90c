//! A multi-connection echo client on the same reactor: many connections, each sending
//! messages and checking that every byte comes back in order, then a report.
//!
//! ```text
//! cargo run --release --example echo_server &
//! cargo run --release --example echo_client -- --connections 100 --messages 1000 --size 512
//! ```
//! Each connection is a [`Handler`] too: it sends a message of pseudo-random bytes, checks the
//! echo byte by byte as it arrives (in whatever pieces TCP delivers), records the round-trip
//! time, and sends the next. `--pipeline K` keeps K messages in flight per connection. Any
//! lost, extra or corrupted byte, or a connection that closes early, is an error: the client
//! prints each kind of error once with its count (`errors.rs`) and exits with code 1.
//!
//! Latencies go into a fixed-size histogram (`latency.rs`), so a long `--duration` run, which
//! prints a line of rate and latency each second, holds no more memory than a short one.
//!
//! `--udp` sends datagrams instead (see `udp.rs`), `--pipeline K` of them in flight per
//! socket: UDP may lose them, so a datagram not echoed within a timeout is counted and
//! reported as lost, not an error; corruption still is.
//!
//! `--tls --ca FILE` (built with `--features tls`) connects over TLS, trusting the CA in
//! `FILE` (see the `gen_cert` example) and checking the server's certificate against the
//! host of `--addr` (or `--server-name`): the same `EchoCheck` handler, unchanged.

#[path = "../support/cli.rs"]
mod cli;
mod errors;
mod latency;
#[path = "../support/tls.rs"]
mod tls;
mod udp;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::Parser;
use mio_reactor::{CloseReason, Config, Context, Endpoint, Handler, Reactor};

use errors::ErrorTally;
use latency::Latency;

/// Opens many connections to an echo server, sends messages, verifies every byte of the
/// echo and reports throughput and latency.
#[derive(Parser)]
#[command(name = "echo_client", version, allow_negative_numbers = true, after_help = cli::DEFAULT_SIGNALS_HELP)]
struct Args {
    /// Server address; also as the servers announce it: udp:HOST:PORT (as --udp),
    /// unix:PATH (as --unix), tcp:HOST:PORT
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:65432")]
    addr: String,
    /// Connect to a Unix-domain socket instead
    #[arg(long, value_name = "PATH", conflicts_with = "udp")]
    unix: Option<String>,
    /// Send UDP datagrams instead (one socket per --connections; lost datagrams are
    /// counted, not errors)
    #[arg(long, conflicts_with = "tls")]
    udp: bool,
    /// Concurrent connections
    #[arg(long, value_name = "N", default_value = "10", value_parser = cli::at_least_one)]
    connections: usize,
    /// Messages per connection [default: 1000]
    #[arg(long, value_name = "M", conflicts_with = "duration")]
    messages: Option<u64>,
    /// Send for this long instead of a message count, with a line of rate and latency
    /// each second
    #[arg(long, value_name = "SECS", value_parser = cli::seconds)]
    duration: Option<Duration>,
    /// Bytes per message
    #[arg(long, value_name = "BYTES", default_value = "64", value_parser = cli::at_least_one)]
    size: usize,
    /// Messages in flight per connection (with --udp: datagrams in flight per socket)
    #[arg(long, value_name = "K", default_value = "1", value_parser = cli::at_least_one)]
    pipeline: usize,
    /// Give up after this long
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = cli::seconds)]
    timeout: Duration,
    #[command(flatten)]
    tls: tls::ClientTlsArgs,
}

enum Target {
    /// Every address the name resolved to: connects try them in order.
    Tcp(Vec<SocketAddr>),
    Unix(String),
    Udp(SocketAddr),
}

struct Options {
    target: Target,
    /// Where the server should be, as the user named it (for the hint when none is there).
    server: String,
    connections: usize,
    quota: QuotaOption,
    size: usize,
    pipeline: usize,
    timeout: Duration,
    /// The TLS config and the server name to verify, with `--tls`.
    tls: Option<(tls::ClientTls, String)>,
}

/// A message count, or a duration (which also prints a line each second).
#[derive(Clone, Copy)]
enum QuotaOption {
    Messages(u64),
    Duration(Duration),
}

/// `--addr` in the endpoint grammar the servers announce (`udp:127.0.0.1:9000`), folded
/// into the flags it stands for: the scheme sets `--udp` or `--unix`, and `--addr` keeps
/// the bare `HOST:PORT`.
fn fold_scheme(mut args: Args) -> Args {
    if let Some(rest) = args.addr.strip_prefix("udp:") {
        (args.addr, args.udp) = (rest.to_string(), true);
    } else if let Some(path) = args.addr.strip_prefix("unix:") {
        args.unix = Some(path.to_string());
    } else if let Some(rest) = args.addr.strip_prefix("tcp:") {
        args.addr = rest.to_string();
    }
    if args.udp && (args.unix.is_some() || args.tls.is_on()) {
        cli::usage_error::<Args>("udp: cannot go with --unix or --tls");
    }
    args
}

fn parse_options() -> Options {
    let args = fold_scheme(cli::parse());
    if args.udp && args.size > udp::MAX_PAYLOAD {
        cli::usage_error::<Args>(format!("--size is at most {} with --udp", udp::MAX_PAYLOAD));
    }
    // The host of HOST:PORT: the name the server's certificate is checked against.
    let host = args
        .addr
        .rsplit_once(':')
        .map_or(args.addr.as_str(), |(host, _)| host);
    let tls = args
        .tls
        .config(host)
        .unwrap_or_else(|err| cli::usage_error::<Args>(err));
    let (target, server) = match (args.unix, args.udp) {
        (Some(path), _) => (Target::Unix(path.clone()), format!("unix:{path}")),
        (None, udp) => match cli::resolve(&args.addr) {
            Ok(addrs) if udp => (Target::Udp(addrs[0]), format!("udp:{}", args.addr)),
            Ok(addrs) => (Target::Tcp(addrs), args.addr),
            Err(err) => cli::usage_error::<Args>(format!("cannot resolve {}: {err}", args.addr)),
        },
    };
    Options {
        target,
        server,
        connections: args.connections,
        quota: match (args.messages, args.duration) {
            (_, Some(duration)) => QuotaOption::Duration(duration),
            (messages, None) => QuotaOption::Messages(messages.unwrap_or(1000)),
        },
        size: args.size,
        pipeline: args.pipeline,
        timeout: args.timeout,
        tls,
    }
}

/// The TLS config and server name, borrowed, if `--tls`.
fn tls(options: &Options) -> Option<(&tls::ClientTls, &str)> {
    options
        .tls
        .as_ref()
        .map(|(config, name)| (config, name.as_str()))
}

/// What all connections share: the results, and how many are still running.
#[derive(Default)]
struct Results {
    latency: Latency,
    bytes: u64,
    /// Datagrams whose echo never came (UDP only).
    lost: u64,
    errors: ErrorTally,
    running: usize,
}

/// When a connection stops sending.
#[derive(Clone, Copy)]
pub(crate) enum Quota {
    Messages(u64),
    Until(Instant),
}

/// One client connection: sends messages, verifies their echo.
struct EchoCheck {
    results: Rc<RefCell<Results>>,
    size: usize,
    pipeline: usize,
    quota: Quota,
    /// The bytes this connection sends: `pattern` read from its own offset on.
    pattern: Rc<Pattern>,
    /// Where in the pattern the next byte sent comes from.
    send_at: usize,
    /// Where in the pattern the next byte echoed must come from: the echo is checked
    /// against the pattern, so no copy of what was sent is kept.
    check_at: usize,
    sent: u64,
    /// Bytes sent and not yet echoed.
    unechoed: usize,
    /// Send time and length of each message in flight, oldest first.
    in_flight: VecDeque<(Instant, usize)>,
    /// Echoed bytes of the oldest message in flight so far.
    partial: usize,
    done: bool,
}

impl Quota {
    /// Whether one more message may be sent after `sent`, at `now`.
    fn allows(self, sent: u64, now: Instant) -> bool {
        match self {
            Quota::Messages(total) => sent < total,
            Quota::Until(deadline) => now < deadline,
        }
    }
}

impl EchoCheck {
    /// Sends messages until `pipeline` are in flight or the quota is used.
    ///
    /// Each message is its own `ctx.write`: the reactor gathers what one callback writes
    /// and sends it in one system call when the callback returns, so refilling a pipeline
    /// of 16 costs one `write`, not 16.
    ///
    /// Times are the reactor's clock, read once per turn ([`Context::now`]): a round trip
    /// runs from the turn that sent the message to the turn that received its echo (both
    /// taken when `poll` returned), and no message pays for a clock read of its own.
    fn fill_pipeline(&mut self, ctx: &mut Context<'_>) {
        let now = ctx.now();
        while self.in_flight.len() < self.pipeline && self.quota.allows(self.sent, now) {
            // Straight from the pattern (one or two slices): no copy, no allocation.
            self.pattern
                .pieces(self.send_at, self.size, |piece| ctx.write(piece));
            self.send_at = self.pattern.advance(self.send_at, self.size);
            self.unechoed += self.size;
            self.in_flight.push_back((now, self.size));
            self.sent += 1;
        }
        if self.in_flight.is_empty() {
            self.done = true;
            ctx.close();
        }
    }

    fn fail(&mut self, ctx: &mut Context<'_>, message: String) {
        self.results.borrow_mut().errors.add(message);
        self.done = true;
        ctx.abort();
    }
}

impl Handler for EchoCheck {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.fill_pipeline(ctx);
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let fits = data.len() <= self.unechoed;
        let mut offset = 0;
        let mut matches = fits;
        if fits {
            self.pattern.pieces(self.check_at, data.len(), |expected| {
                matches &= data[offset..offset + expected.len()] == *expected;
                offset += expected.len();
            });
        }
        if !matches {
            let nothing_echoed = self.unechoed as u64 == self.sent * self.size as u64;
            // Only when the reply is wrong anyway: an echo may start with any bytes.
            let message = if nothing_echoed && tls::starts_as_tls_alert(data) {
                tls::ANSWERED_WITH_TLS
            } else if !fits {
                "unexpected extra bytes"
            } else {
                "echoed bytes differ"
            };
            self.fail(ctx, message.to_string());
            return data.len();
        }
        self.check_at = self.pattern.advance(self.check_at, data.len());
        self.unechoed -= data.len();
        self.results.borrow_mut().bytes += data.len() as u64;
        self.partial += data.len();
        let now = ctx.now();
        while let Some(&(sent_at, len)) = self.in_flight.front() {
            if self.partial < len {
                break;
            }
            self.partial -= len;
            self.in_flight.pop_front();
            let round_trip = now.duration_since(sent_at);
            self.results.borrow_mut().latency.record(round_trip, len);
        }
        self.fill_pipeline(ctx);
        data.len()
    }

    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        if !self.done {
            self.fail(ctx, "server closed early".to_string());
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let mut results = self.results.borrow_mut();
        if !self.done {
            let message = format!("closed early: {reason}");
            match reason {
                CloseReason::ConnectFailed(_) => results.errors.add_nobody_listening(message),
                _ => results.errors.add(message),
            }
        }
        results.running -= 1;
        if results.running == 0 {
            ctx.shutdown_reactor();
        }
    }
}

/// Pseudo-random bytes that every connection sends, each from its own offset, cyclically.
///
/// Made once: sending is then a copy of one or two slices and checking an echo a `memcmp`,
/// where generating and checking byte by byte cost more than the system calls (the
/// benchmark's load generator does the same, `benches/echo/pattern.rs`). A lost, repeated or
/// reordered piece shows up as a mismatch unless it is a whole multiple of the period long.
struct Pattern {
    bytes: Vec<u8>,
}

impl Pattern {
    /// A prime period, so that message boundaries drift over it.
    const LEN: usize = 65_521;

    fn new() -> Pattern {
        let mut state = 0x2545_F491_4F6C_DD1D; // any odd non-zero start will do
        Pattern {
            bytes: (0..Self::LEN).map(|_| next_byte(&mut state)).collect(),
        }
    }

    /// Where connection `index` starts.
    fn start(index: usize) -> usize {
        index.wrapping_mul(7_919) % Self::LEN
    }

    /// Hands `f` the `len` bytes from `at` on, in order, as one or more slices.
    fn pieces(&self, mut at: usize, mut len: usize, mut f: impl FnMut(&[u8])) {
        while len > 0 {
            let n = len.min(Self::LEN - at);
            f(&self.bytes[at..at + n]);
            at = (at + n) % Self::LEN;
            len -= n;
        }
    }

    /// The offset `len` bytes after `at`.
    fn advance(&self, at: usize, len: usize) -> usize {
        (at + len % Self::LEN) % Self::LEN
    }
}

/// xorshift64: cheap, deterministic, and different for every seed.
fn next_byte(state: &mut u64) -> u8 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 24) as u8
}

/// A different starting state for every connection.
fn seed(index: usize) -> u64 {
    0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    match run(&options) {
        Ok((results, elapsed)) => {
            report(&options, &results, elapsed);
            if !results.errors.is_empty() {
                for line in results.errors.lines(&options.server) {
                    eprintln!("echo_client: {line}");
                }
                std::process::exit(1);
            }
        }
        Err(err) => {
            eprintln!("echo_client: {err}");
            if matches!(
                err.kind(),
                io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
            ) {
                eprintln!("echo_client: is a server listening on {}?", options.server);
            }
            std::process::exit(1);
        }
    }
}

fn run(options: &Options) -> io::Result<(Results, Duration)> {
    // A UDP socket queues a whole pipeline at once (on open): room for it, so that no
    // datagram is dropped here and then counted as lost on the way.
    let config = Config::default()
        .max_connections(options.connections)
        .max_queued_datagrams(options.pipeline.max(64));
    let mut reactor = Reactor::with_config(config)?;
    let results = Rc::new(RefCell::new(Results {
        running: options.connections,
        ..Results::default()
    }));
    let started = Instant::now();
    let quota = match options.quota {
        QuotaOption::Duration(duration) => Quota::Until(started + duration),
        QuotaOption::Messages(messages) => Quota::Messages(messages),
    };
    let pattern = Rc::new(Pattern::new());
    for index in 0..options.connections {
        let handler = EchoCheck {
            results: results.clone(),
            size: options.size,
            pipeline: options.pipeline,
            quota,
            pattern: pattern.clone(),
            send_at: Pattern::start(index),
            check_at: Pattern::start(index),
            sent: 0,
            unechoed: 0,
            in_flight: VecDeque::new(),
            partial: 0,
            done: false,
        };
        match &options.target {
            Target::Tcp(addrs) => tls::connect(&mut reactor, &addrs[..], tls(options), handler)?,
            Target::Unix(path) => {
                let unix = Endpoint::Unix(path.into());
                tls::connect(&mut reactor, unix, tls(options), handler)?
            }
            Target::Udp(server) => {
                let check = udp::DatagramCheck::new(
                    index,
                    *server,
                    options.size,
                    options.pipeline,
                    quota,
                    results.clone(),
                );
                let local = if server.is_ipv6() {
                    "udp:[::1]:0"
                } else {
                    "udp:127.0.0.1:0"
                };
                reactor.bind_udp(local, check)?;
                continue;
            }
        };
    }
    // Drive the loop by hand, to enforce an overall time limit and, with --duration, to
    // print a line each second.
    let deadline = started + options.timeout;
    let mut interval_start = started;
    while !reactor.is_finished() {
        let now = Instant::now();
        if now >= deadline {
            let message = format!("not finished after {:?}", options.timeout);
            results.borrow_mut().errors.add(message);
            break;
        }
        if matches!(options.quota, QuotaOption::Duration(_)) && now >= interval_start + SECOND {
            let mut results = results.borrow_mut();
            let line = results
                .latency
                .interval_line(now - started, now - interval_start);
            println!("{line}");
            interval_start = now;
        }
        reactor.turn(Some(Duration::from_millis(100)))?;
    }
    let elapsed = started.elapsed();
    drop(reactor);
    let results = Rc::try_unwrap(results)
        .map_err(|_| io::Error::other("handlers outlived the reactor"))?
        .into_inner();
    Ok((results, elapsed))
}

/// How often `--duration` prints a line.
const SECOND: Duration = Duration::from_secs(1);

fn report(options: &Options, results: &Results, elapsed: Duration) {
    let messages = results.latency.messages();
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!(
        "connections: {}, messages: {messages} of {} bytes, echoed: {} bytes",
        options.connections, options.size, results.bytes
    );
    println!(
        "elapsed: {:.3} s, {:.0} messages/s, {:.1} MB/s",
        secs,
        messages as f64 / secs,
        results.bytes as f64 / secs / 1e6
    );
    if let Target::Udp(_) = options.target {
        println!(
            "datagrams: {} echoed, {} lost ({:.3}%)",
            messages,
            results.lost,
            100.0 * results.lost as f64 / (messages + results.lost).max(1) as f64
        );
    }
    println!("latency: {}", results.latency.summary());
}

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
//! prints it and exits with code 1.
//!
//! `--udp` sends datagrams instead (see `udp.rs`): UDP may lose them, so loss is counted and
//! reported, not an error; corruption still is.

#[path = "../support/cli.rs"]
mod cli;
mod udp;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Config, Context, Handler, Reactor};

const USAGE: &str = "\
Usage: echo_client [OPTIONS]

Opens many connections to an echo server, sends messages, verifies every byte of the
echo and reports throughput and latency.

Options:
  --addr HOST:PORT       server address (default 127.0.0.1:65432)
  --unix PATH            connect to a Unix-domain socket instead
  --udp                  send UDP datagrams instead (one socket per --connections;
                         lost datagrams are counted, not errors)
  --connections N        concurrent connections (default 10)
  --messages M           messages per connection (default 1000)
  --duration SECS        send for this long instead of a message count
  --size BYTES           bytes per message (default 64)
  --pipeline K           messages in flight per connection (default 1)
  --timeout SECS         give up after this long (default 120)
  -h, --help             show this help

Signals: SIGTERM and SIGINT (Ctrl-C) end it at once (their default action), with no
report.
";

enum Target {
    /// Every address the name resolved to: connects try them in order.
    Tcp(Vec<SocketAddr>),
    Unix(String),
    Udp(SocketAddr),
}

struct Options {
    target: Target,
    connections: usize,
    messages: Option<u64>,
    duration: Option<Duration>,
    size: usize,
    pipeline: usize,
    timeout: Duration,
}

fn parse_options() -> Options {
    let mut cli = cli::Options::from_env("echo_client", USAGE);
    let mut addr = "127.0.0.1:65432".to_string();
    let mut unix = None;
    let mut udp = false;
    let mut options = Options {
        target: Target::Unix(String::new()),
        connections: 10,
        messages: None,
        duration: None,
        size: 64,
        pipeline: 1,
        timeout: Duration::from_secs(120),
    };
    while let Some(flag) = cli.next_flag() {
        match flag.as_str() {
            "--addr" => addr = cli.value(&flag),
            "--unix" => unix = Some(cli.value(&flag)),
            "--udp" => udp = true,
            "--connections" => options.connections = cli.value(&flag),
            "--messages" => options.messages = Some(cli.value(&flag)),
            "--duration" => options.duration = Some(seconds(&mut cli, &flag)),
            "--size" => options.size = cli.value(&flag),
            "--pipeline" => options.pipeline = cli.value(&flag),
            "--timeout" => options.timeout = seconds(&mut cli, &flag),
            other => cli.unknown(other),
        }
    }
    if options.connections == 0 || options.size == 0 || options.pipeline == 0 {
        cli.fail("--connections, --size and --pipeline must be at least 1");
    }
    if options.messages.is_some() && options.duration.is_some() {
        cli.fail("give --messages or --duration, not both");
    }
    if options.messages.is_none() && options.duration.is_none() {
        options.messages = Some(1000);
    }
    if udp && options.size > udp::MAX_PAYLOAD {
        cli.fail(&format!(
            "--size is at most {} with --udp",
            udp::MAX_PAYLOAD
        ));
    }
    options.target = match (unix, udp) {
        (Some(_), true) => cli.fail("--unix and --udp do not go together"),
        (Some(path), false) => Target::Unix(path),
        (None, _) => match cli::resolve(&addr) {
            Ok(addrs) if udp => Target::Udp(addrs[0]),
            Ok(addrs) => Target::Tcp(addrs),
            Err(err) => cli.fail(&format!("cannot resolve {addr}: {err}")),
        },
    };
    options
}

fn seconds(cli: &mut cli::Options, flag: &str) -> Duration {
    let secs: f64 = cli.value(flag);
    if !(secs.is_finite() && secs > 0.0) {
        cli.fail(&format!("{flag} must be a positive number of seconds"));
    }
    Duration::from_secs_f64(secs)
}

/// What all connections share: the results, and how many are still running.
#[derive(Default)]
struct Results {
    latencies_ns: Vec<u64>,
    bytes: u64,
    /// Datagrams whose echo never came (UDP only).
    lost: u64,
    errors: Vec<String>,
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
    index: usize,
    results: Rc<RefCell<Results>>,
    size: usize,
    pipeline: usize,
    quota: Quota,
    rng: u64,
    sent: u64,
    /// Bytes sent and not yet echoed, in order: the echo must match them exactly.
    expected: VecDeque<u8>,
    /// Send time and length of each message in flight, oldest first.
    in_flight: VecDeque<(Instant, usize)>,
    /// Echoed bytes of the oldest message in flight so far.
    partial: usize,
    done: bool,
}

impl Quota {
    /// Whether one more message may be sent after `sent`.
    fn allows(self, sent: u64) -> bool {
        match self {
            Quota::Messages(total) => sent < total,
            Quota::Until(deadline) => Instant::now() < deadline,
        }
    }
}

impl EchoCheck {
    fn may_send(&self) -> bool {
        self.quota.allows(self.sent)
    }

    /// Sends messages until `pipeline` are in flight or the quota is used.
    fn fill_pipeline(&mut self, ctx: &mut Context<'_>) {
        while self.in_flight.len() < self.pipeline && self.may_send() {
            let message: Vec<u8> = (0..self.size).map(|_| self.next_byte()).collect();
            self.expected.extend(&message);
            self.in_flight.push_back((Instant::now(), message.len()));
            self.sent += 1;
            ctx.write(&message);
        }
        if self.in_flight.is_empty() {
            self.done = true;
            ctx.close();
        }
    }

    fn next_byte(&mut self) -> u8 {
        next_byte(&mut self.rng)
    }

    fn fail(&mut self, ctx: &mut Context<'_>, message: String) {
        self.results.borrow_mut().errors.push(message);
        self.done = true;
        ctx.abort();
    }
}

impl Handler for EchoCheck {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.fill_pipeline(ctx);
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if data.len() > self.expected.len() {
            let extra = data.len() - self.expected.len();
            self.fail(
                ctx,
                format!("connection {}: {extra} unexpected extra bytes", self.index),
            );
            return data.len();
        }
        let matches = self
            .expected
            .drain(..data.len())
            .zip(data)
            .all(|(a, b)| a == *b);
        if !matches {
            self.fail(
                ctx,
                format!("connection {}: echoed bytes differ", self.index),
            );
            return data.len();
        }
        self.results.borrow_mut().bytes += data.len() as u64;
        self.partial += data.len();
        let now = Instant::now();
        while let Some(&(sent_at, len)) = self.in_flight.front() {
            if self.partial < len {
                break;
            }
            self.partial -= len;
            self.in_flight.pop_front();
            let latency = now.duration_since(sent_at).as_nanos() as u64;
            self.results.borrow_mut().latencies_ns.push(latency);
        }
        self.fill_pipeline(ctx);
        data.len()
    }

    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        if !self.done {
            let message = format!("connection {}: server closed early", self.index);
            self.fail(ctx, message);
        }
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let mut results = self.results.borrow_mut();
        if !self.done {
            results
                .errors
                .push(format!("connection {}: closed early: {reason}", self.index));
        }
        results.running -= 1;
        if results.running == 0 {
            ctx.shutdown_reactor();
        }
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
        Ok((results, elapsed)) if results.errors.is_empty() => report(&options, &results, elapsed),
        Ok((results, elapsed)) => {
            report(&options, &results, elapsed);
            for error in results.errors.iter().take(10) {
                eprintln!("echo_client: {error}");
            }
            eprintln!("echo_client: {} errors", results.errors.len());
            std::process::exit(1);
        }
        Err(err) => {
            eprintln!("echo_client: {err}");
            std::process::exit(1);
        }
    }
}

fn run(options: &Options) -> std::io::Result<(Results, Duration)> {
    let config = Config::default().max_connections(options.connections.max(1));
    let mut reactor = Reactor::with_config(config)?;
    let results = Rc::new(RefCell::new(Results {
        running: options.connections,
        ..Results::default()
    }));
    let started = Instant::now();
    let quota = match (options.messages, options.duration) {
        (_, Some(duration)) => Quota::Until(started + duration),
        (messages, None) => Quota::Messages(messages.unwrap_or(1000)),
    };
    for index in 0..options.connections {
        let handler = EchoCheck {
            index,
            results: results.clone(),
            size: options.size,
            pipeline: options.pipeline,
            quota,
            rng: seed(index),
            sent: 0,
            expected: VecDeque::new(),
            in_flight: VecDeque::new(),
            partial: 0,
            done: false,
        };
        match &options.target {
            Target::Tcp(addrs) => reactor.connect(&addrs[..], handler)?,
            Target::Unix(path) => reactor.connect_unix(path, handler)?,
            Target::Udp(server) => {
                let check =
                    udp::DatagramCheck::new(index, *server, options.size, quota, results.clone());
                let local = if server.is_ipv6() {
                    "[::1]:0"
                } else {
                    "127.0.0.1:0"
                };
                reactor.bind_udp(local.parse().unwrap(), check)?;
                continue;
            }
        };
    }
    // Drive the loop by hand, to enforce an overall time limit.
    let deadline = started + options.timeout;
    while !reactor.is_finished() {
        if Instant::now() >= deadline {
            results
                .borrow_mut()
                .errors
                .push(format!("not finished after {:?}", options.timeout));
            break;
        }
        reactor.turn(Some(Duration::from_millis(100)))?;
    }
    let elapsed = started.elapsed();
    drop(reactor);
    let results = Rc::try_unwrap(results)
        .map_err(|_| std::io::Error::other("handlers outlived the reactor"))?
        .into_inner();
    Ok((results, elapsed))
}

fn report(options: &Options, results: &Results, elapsed: Duration) {
    let mut latencies = results.latencies_ns.clone();
    latencies.sort_unstable();
    let messages = latencies.len();
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
            100.0 * results.lost as f64 / (messages as u64 + results.lost).max(1) as f64
        );
    }
    println!(
        "latency: p50 {}, p99 {}, p99.9 {}, max {}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 0.999),
        percentile(&latencies, 1.0)
    );
}

/// The `q` quantile of sorted nanosecond samples, formatted in microseconds.
fn percentile(sorted_ns: &[u64], q: f64) -> String {
    if sorted_ns.is_empty() {
        return "-".to_string();
    }
    let rank = ((sorted_ns.len() as f64 * q).ceil() as usize).clamp(1, sorted_ns.len());
    format!("{:.0} µs", sorted_ns[rank - 1] as f64 / 1000.0)
}

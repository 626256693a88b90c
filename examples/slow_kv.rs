//! A line-based key-value server with one slow command, done off the loop: blocking work
//! on worker threads, its result brought back to the right connection, replies in order.
//!
//! ```text
//! cargo run --release --example slow_kv -- --addr 127.0.0.1:7100
//! printf 'SET a 1\nSLOW hello\nGET a\nPING\n' | nc 127.0.0.1 7100
//! cargo run --release --example slow_kv -- --bench     # ping p99 with 200 slow jobs in flight
//! systemd-socket-activate -l 127.0.0.1:7100 target/release/examples/slow_kv --listen fd:3
//! cargo run --release --example slow_kv -- --listen unix:/tmp/kv.sock --listen tcp:[::1]:7100
//! ```
//! Commands, one per line: `PING` → `PONG`; `SET key value` → `OK`; `GET key` → `VALUE v`
//! or `NONE`; `SLOW text` → `SLOW <digest>` after `--slow-ms` of blocking work (a stand-in
//! for a database query or a file read: anything that would stall every connection if the
//! loop did it).
//!
//! How the result comes back:
//! 1. the handler numbers each request (`seq`), and sends a slow one to the worker pool
//!    together with a [`LoopHandle`] and its [`ConnId`]; it never waits;
//! 2. a worker blocks as long as it likes, then [`LoopHandle::send_to`]s the result;
//! 3. the loop hands the message to that connection's [`Handler::on_message`], which stores
//!    the reply under its `seq` and writes every reply that is next in order. A fast reply
//!    behind a slow one waits, so pipelined requests get their replies in request order.
//!
//! A client that closes before its result arrives costs nothing more: its jobs carry a
//! cancel flag, set in `on_close`, that workers check before starting; a result that is
//! still sent finds the connection gone (its `ConnId` generation no longer matches) and is
//! dropped and counted by the reactor.
//!
//! `--on-loop` does the slow work in the handler instead, to show what that costs: every
//! other connection waits while the loop sleeps.

#[path = "support/cli.rs"]
mod cli;

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use mio_reactor::{
    CloseReason, Config, ConnId, Context, DeadPeerDetection, Endpoint, Handler, ListenOptions,
    LoopHandle, PeerAddr, PostError, Reactor, ShutdownHandle,
};

/// A key-value server whose SLOW command does blocking work on worker threads.
#[derive(Parser)]
#[command(name = "slow_kv", version, after_help = cli::KV_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
    /// Alias of --listen tcp:HOST:PORT (its first address), announced without the `tcp:`
    /// [default without --listen: 127.0.0.1:7100]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Serve the TCP listener inherited through systemd socket activation (LISTEN_FDS)
    /// instead of binding --addr (alias of --listen fd:3, announced without the `tcp:`)
    #[arg(long, conflicts_with = "listen")]
    listen_fd: bool,
    /// Worker threads for slow commands
    #[arg(long, value_name = "N", default_value = "64", value_parser = cli::at_least_one)]
    workers: usize,
    /// How long one SLOW command blocks, in milliseconds
    #[arg(long, value_name = "MS", default_value = "100")]
    slow_ms: u64,
    /// Do the slow work on the loop thread (to see why not)
    #[arg(long)]
    on_loop: bool,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    /// Measure ping latency with 200 slow commands in flight, with the work on workers and
    /// on the loop, and print both
    #[arg(long)]
    bench: bool,
}

/// Slow requests one connection may have in flight before its reading pauses.
const MAX_PENDING_PER_CONNECTION: usize = 64;
/// Jobs waiting for a worker, all connections together; past it, `ERR busy`.
const JOB_QUEUE: usize = 4096;
/// The longest request line.
const MAX_LINE: usize = 4096;

/// The blocking work: here a sleep and a digest, standing in for a query.
fn slow_work(text: &str, duration: Duration) -> String {
    thread::sleep(duration);
    let digest = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("SLOW {digest:016x}\n")
}

/// One slow request on its way to a worker.
struct Job {
    conn: ConnId,
    seq: u64,
    text: String,
    reply_to: LoopHandle,
    /// Set when the connection closes: the work is skipped.
    cancelled: Arc<AtomicBool>,
}

/// A worker's answer, delivered to the connection's `on_message`.
struct Done {
    seq: u64,
    reply: String,
}

/// What the workers did, printed when the server stops.
#[derive(Default)]
struct WorkerCounts {
    done: AtomicU64,
    skipped: AtomicU64,
}

/// A fixed pool of plain threads taking jobs from one bounded channel: the standard
/// library has all a pool of blocking workers needs.
fn start_workers(count: usize, slow: Duration, counts: Arc<WorkerCounts>) -> SyncSender<Job> {
    let (jobs, queue) = mpsc::sync_channel::<Job>(JOB_QUEUE);
    let queue: Arc<Mutex<Receiver<Job>>> = Arc::new(Mutex::new(queue));
    for index in 0..count {
        let (queue, counts) = (queue.clone(), counts.clone());
        thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || loop {
                // The lock is held only to take a job, never while working.
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return }; // the server is gone
                if job.cancelled.load(Ordering::Relaxed) {
                    counts.skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let reply = slow_work(&job.text, slow);
                counts.done.fetch_add(1, Ordering::Relaxed);
                deliver(
                    &job.reply_to,
                    job.conn,
                    Done {
                        seq: job.seq,
                        reply,
                    },
                );
            })
            .expect("spawn a worker");
    }
    jobs
}

/// Sends a result to the loop. A worker may block, so a full queue is waited out here
/// (backpressure on the workers, not on the loop); a shutting-down reactor takes nothing.
fn deliver(handle: &LoopHandle, conn: ConnId, mut done: Done) {
    loop {
        match handle.send_to(conn, done) {
            Ok(()) => return,
            Err(PostError::Full(back)) => {
                done = back;
                thread::sleep(Duration::from_millis(1));
            }
            Err(PostError::ShuttingDown(_)) => return,
        }
    }
}

/// Where slow work runs.
#[derive(Clone)]
enum SlowWork {
    Workers(SyncSender<Job>),
    OnLoop(Duration),
}

/// One client: the store it shares, and the replies it owes in request order.
struct Client {
    store: Rc<RefCell<HashMap<String, String>>>,
    slow: SlowWork,
    /// The number the next request gets.
    next_seq: u64,
    /// The number of the next reply to write.
    next_reply: u64,
    /// Replies that are ready but wait for an earlier one.
    ready: BTreeMap<u64, String>,
    cancelled: Arc<AtomicBool>,
}

impl Client {
    /// The reply to one request line, or `None` if it went to a worker.
    fn execute(&mut self, ctx: &mut Context<'_>, seq: u64, line: &str) -> Option<String> {
        let mut words = line.splitn(3, ' ');
        let reply = match (words.next(), words.next(), words.next()) {
            (Some("PING"), None, None) => "PONG\n".to_string(),
            (Some("GET"), Some(key), None) => match self.store.borrow().get(key) {
                Some(value) => format!("VALUE {value}\n"),
                None => "NONE\n".to_string(),
            },
            (Some("SET"), Some(key), Some(value)) => {
                self.store.borrow_mut().insert(key.into(), value.into());
                "OK\n".to_string()
            }
            (Some("SLOW"), Some(_), _) => {
                let text = line["SLOW ".len()..].to_string();
                match &self.slow {
                    SlowWork::OnLoop(duration) => slow_work(&text, *duration),
                    SlowWork::Workers(jobs) => {
                        let job = Job {
                            conn: ctx.id(),
                            seq,
                            text,
                            reply_to: ctx.handle(),
                            cancelled: self.cancelled.clone(),
                        };
                        match jobs.try_send(job) {
                            Ok(()) => return None,
                            Err(TrySendError::Full(_)) => "ERR busy\n".to_string(),
                            Err(TrySendError::Disconnected(_)) => "ERR no workers\n".to_string(),
                        }
                    }
                }
            }
            _ => "ERR unknown command\n".to_string(),
        };
        Some(reply)
    }

    /// Writes every reply that is next in order.
    fn flush_in_order(&mut self, ctx: &mut Context<'_>) {
        while let Some(reply) = self.ready.remove(&self.next_reply) {
            ctx.write(reply.as_bytes());
            self.next_reply += 1;
        }
        // Reading paused while too many slow requests were pending: resume once below.
        if self.pending() < MAX_PENDING_PER_CONNECTION {
            ctx.resume_reading();
        }
    }

    fn pending(&self) -> usize {
        (self.next_seq - self.next_reply) as usize
    }
}

impl Handler for Client {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            if data.len() > MAX_LINE {
                ctx.write(b"ERR line too long\n");
                ctx.close_with(CloseReason::Protocol("line too long".into()));
                return data.len();
            }
            return 0;
        };
        let line = String::from_utf8_lossy(&data[..end]);
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(reply) = self.execute(ctx, seq, line.trim_end_matches('\r')) {
            self.ready.insert(seq, reply);
            self.flush_in_order(ctx);
        } else if self.pending() >= MAX_PENDING_PER_CONNECTION {
            ctx.pause_reading(); // memory per client stays bounded
        }
        end + 1 // one request per call; the reactor offers the rest again at once
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Box<dyn Any + Send>) {
        if let Ok(done) = message.downcast::<Done>() {
            self.ready.insert(done.seq, done.reply);
            self.flush_in_order(ctx);
        }
    }

    fn on_close(&mut self, _: &mut Context<'_>, _: &CloseReason) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}

struct Options {
    /// `--listen`: announced in the endpoint grammar.
    listens: Vec<Endpoint>,
    addr: Option<String>,
    workers: usize,
    slow: Duration,
    on_loop: bool,
    stop_on_stdin_eof: bool,
    bench: bool,
    listen_fd: bool,
    dead_peers: DeadPeerDetection,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    Options {
        listens: args.listen.streams::<Args>(),
        addr: args.addr,
        workers: args.workers,
        slow: Duration::from_millis(args.slow_ms),
        on_loop: args.on_loop,
        stop_on_stdin_eof: args.stop_on_stdin_eof,
        bench: args.bench,
        listen_fd: args.listen_fd,
        dead_peers: args.dead_peers.detection(),
    }
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    let result = if options.bench {
        bench(&options)
    } else {
        serve(&options)
    };
    if let Err(err) = result {
        eprintln!("slow_kv: {err}");
        std::process::exit(1);
    }
}

/// Where the server's listeners come from.
enum Listen {
    /// Listen on these endpoints (--listen), with or without the address below.
    Endpoints(Vec<Endpoint>, Option<SocketAddr>),
    /// Bind this address.
    Bind(SocketAddr),
    /// A listener made elsewhere (inherited from systemd).
    Adopt(std::net::TcpListener),
}

/// Builds the reactor and its listeners; `ready` hears what they bound and the handles.
fn server(
    (listen, dead_peers): (Listen, DeadPeerDetection),
    slow: SlowWork,
    ready: mpsc::Sender<(Vec<Endpoint>, ShutdownHandle)>,
) -> std::io::Result<Reactor> {
    let config = Config::default()
        .max_input(MAX_LINE + 1)
        .dead_peer_detection(dead_peers);
    let mut reactor = Reactor::with_config(config)?;
    let store = Rc::new(RefCell::new(HashMap::new()));
    let factory = move |_: &PeerAddr| {
        Some(Client {
            store: store.clone(),
            slow: slow.clone(),
            next_seq: 0,
            next_reply: 0,
            ready: BTreeMap::new(),
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    };
    let mut bound = Vec::new();
    let mut listen_on = |reactor: &mut Reactor, on: Endpoint| -> std::io::Result<()> {
        let listening = reactor.listen(on, ListenOptions::default(), factory.clone())?;
        bound.extend_from_slice(listening.bound());
        Ok(())
    };
    match listen {
        Listen::Endpoints(endpoints, addr) => {
            for endpoint in endpoints {
                listen_on(&mut reactor, endpoint)?;
            }
            if let Some(addr) = addr {
                listen_on(&mut reactor, Endpoint::Tcp(addr))?;
            }
        }
        Listen::Bind(addr) => listen_on(&mut reactor, Endpoint::Tcp(addr))?,
        Listen::Adopt(listener) => {
            let listening = reactor.listen(listener, ListenOptions::default(), factory.clone())?;
            bound.extend_from_slice(listening.bound());
        }
    }
    let _ = ready.send((bound, reactor.shutdown_handle()));
    Ok(reactor)
}

fn serve(options: &Options) -> std::io::Result<()> {
    let counts = Arc::new(WorkerCounts::default());
    let slow = if options.on_loop {
        SlowWork::OnLoop(options.slow)
    } else {
        SlowWork::Workers(start_workers(options.workers, options.slow, counts.clone()))
    };
    let (ready, bound) = mpsc::channel();
    let resolve = |addr: &str| -> std::io::Result<SocketAddr> {
        Ok(*cli::resolve(addr)?.first().expect("resolve gives one"))
    };
    let listen = if !options.listens.is_empty() {
        let addr = options.addr.as_deref().map(resolve).transpose()?;
        Listen::Endpoints(options.listens.clone(), addr)
    } else if options.listen_fd {
        let inherited = listenfd::ListenFd::from_env().take_tcp_listener(0)?;
        Listen::Adopt(inherited.ok_or_else(|| {
            std::io::Error::other("--listen-fd: no TCP listener inherited (LISTEN_FDS)")
        })?)
    } else {
        Listen::Bind(resolve(
            options.addr.as_deref().unwrap_or("127.0.0.1:7100"),
        )?)
    };
    let mut reactor = server((listen, options.dead_peers), slow, ready)?;
    let (bound, _) = bound.recv().expect("sent by server()");
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts. Watched before the
    // address is announced: none can be missed.
    reactor.shutdown_on_signals()?;
    cli::refuse_upgrades(&mut reactor, "the keys live in this process")?;
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(reactor.shutdown_handle());
    }
    if options.listens.is_empty() {
        println!("slow_kv listening on {}", first_tcp(&bound)?);
    } else {
        cli::announce("slow_kv", &bound, false);
    }
    reactor.run()?;
    let stats = reactor.stats();
    println!(
        "slow_kv stopped: {} slow jobs done, {} skipped (client gone), {} results missed, \
         {} posts run, {} wakes",
        counts.done.load(Ordering::Relaxed),
        counts.skipped.load(Ordering::Relaxed),
        stats.posts_missed,
        stats.posts_run,
        stats.wakes
    );
    Ok(())
}

/// The first TCP address among `bound`: what the older flags announce.
fn first_tcp(bound: &[Endpoint]) -> std::io::Result<SocketAddr> {
    bound
        .iter()
        .find_map(Endpoint::socket_addr)
        .ok_or_else(|| std::io::Error::other("no TCP listener"))
}

/// Slow commands in flight during the benchmark, spread over this many connections.
const BENCH_SLOW: usize = 200;
const BENCH_SLOW_CONNECTIONS: usize = 20;

/// Ping latency while [`BENCH_SLOW`] slow commands are in flight: once with the work on
/// workers, once on the loop. Not a test: numbers for `docs/performance.md`.
fn bench(options: &Options) -> std::io::Result<()> {
    println!(
        "{BENCH_SLOW} SLOW commands of {:?} in flight ({} workers), PINGs on another connection",
        options.slow, options.workers
    );
    println!(
        "{:<10} {:>8} {:>10} {:>10} {:>10}",
        "work on", "pings", "p50", "p99", "max"
    );
    for on_loop in [false, true] {
        let counts = Arc::new(WorkerCounts::default());
        let slow = if on_loop {
            SlowWork::OnLoop(options.slow)
        } else {
            SlowWork::Workers(start_workers(options.workers, options.slow, counts))
        };
        let (ready, bound) = mpsc::channel();
        let dead_peers = options.dead_peers;
        thread::spawn(move || {
            let addr = "127.0.0.1:0".parse().expect("an address");
            match server((Listen::Bind(addr), dead_peers), slow, ready) {
                Ok(mut reactor) => drop(reactor.run()),
                Err(err) => eprintln!("slow_kv: {err}"),
            }
        });
        let (bound, shutdown) = bound.recv().expect("the server started");
        let addr = first_tcp(&bound)?;
        let mut rtts = ping_during_slow_work(addr)?;
        rtts.sort_unstable();
        let at = |q: f64| rtts[((rtts.len() - 1) as f64 * q) as usize];
        println!(
            "{:<10} {:>8} {:>10.3?} {:>10.3?} {:>10.3?}",
            if on_loop { "loop" } else { "workers" },
            rtts.len(),
            at(0.50),
            at(0.99),
            rtts[rtts.len() - 1]
        );
        // The on-loop server is still working through its backlog; it ends with the process.
        shutdown.shutdown();
    }
    Ok(())
}

/// Sends the slow commands (pipelined), then pings once a millisecond until every slow
/// reply arrived or 3 s passed; returns each ping's round-trip time.
fn ping_during_slow_work(addr: SocketAddr) -> std::io::Result<Vec<Duration>> {
    let mut slow_clients = Vec::new();
    for client in 0..BENCH_SLOW_CONNECTIONS {
        let mut stream = TcpStream::connect(addr)?;
        let per_client = BENCH_SLOW / BENCH_SLOW_CONNECTIONS;
        let requests: String = (0..per_client)
            .map(|i| format!("SLOW job-{client}-{i}\n"))
            .collect();
        stream.write_all(requests.as_bytes())?;
        slow_clients.push(thread::spawn(move || {
            let mut lines = BufReader::new(stream).lines();
            (0..per_client).all(|_| matches!(lines.next(), Some(Ok(_))))
        }));
    }
    let mut ping = BufReader::new(TcpStream::connect(addr)?);
    ping.get_ref().set_nodelay(true)?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut rtts = Vec::new();
    let mut line = String::new();
    while Instant::now() < deadline && !slow_clients.iter().all(|c| c.is_finished()) {
        let start = Instant::now();
        ping.get_mut().write_all(b"PING\n")?;
        line.clear();
        ping.read_line(&mut line)?;
        rtts.push(start.elapsed());
        thread::sleep(Duration::from_millis(1));
    }
    if rtts.is_empty() {
        return Err(std::io::Error::other("no ping completed"));
    }
    Ok(rtts)
}

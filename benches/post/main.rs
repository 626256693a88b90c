//! Talking to a loop from another thread: mio-reactor's `LoopHandle::post` against what a
//! tokio user would write (a bounded `mpsc` channel into a task on a current-thread
//! runtime), and one acceptor against `SO_REUSEPORT` for spreading long-lived connections.
//!
//! ```text
//! cargo bench --bench post                 # the figures in docs/performance.md
//! cargo test --benches                     # a quick run with small counts, as a smoke test
//! ```
//! Three measurements, each side by side in one run:
//! - **posts/s**: one producer thread sends 1,000,000 boxed closures as fast as the queue
//!   takes them (both queues bounded at 4096; a full queue is waited out); the loop runs
//!   each. Time from the first send to the last run.
//! - **post-to-run latency**: one closure every 50 µs carrying the time it was posted; the
//!   loop records how long it took to run. The loop is asleep in `epoll_wait` for most
//!   posts, so this is the cost of waking it: the eventfd write, the wake-up, the queue.
//! - **spread**: 8 long-lived connections to 2 reactor threads, 20 times over; how many go
//!   to each thread with `SO_REUSEPORT` (the kernel's hash of the addresses) and with one
//!   acceptor handing each to the least loaded.
//!
//! Nothing is asserted about speed; a lost or duplicated item fails the run.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio_reactor::{
    Config, Context, Handler, ListenOptions, LoopContext, PostError, Reactor, ReactorThreads,
    Spread,
};

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// A job as both loops receive it: a boxed closure (what `post` and `Handle`-style APIs carry).
type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Items run on the loop thread, and the latencies they saw.
    static RAN: Cell<u64> = const { Cell::new(0) };
    static LATENCIES: RefCell<Vec<Duration>> = const { RefCell::new(Vec::new()) };
}

struct Sizes {
    throughput_items: u64,
    latency_samples: usize,
    spread_trials: usize,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: a smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            throughput_items: 1_000_000,
            latency_samples: 20_000,
            spread_trials: 20,
        }
    } else {
        Sizes {
            throughput_items: 10_000,
            latency_samples: 200,
            spread_trials: 2,
        }
    };
    if let Err(err) = run(&sizes) {
        eprintln!("post benchmark FAILED: {err}");
        std::process::exit(1);
    }
}

fn run(sizes: &Sizes) -> Fallible<()> {
    let reactor_rate = reactor_throughput(sizes.throughput_items)?;
    let tokio_rate = tokio_throughput(sizes.throughput_items)?;
    println!(
        "posts/s, one producer thread, {} items:",
        sizes.throughput_items
    );
    println!("  mio-reactor LoopHandle::post   {:>12.0}", reactor_rate);
    println!("  tokio mpsc -> current-thread   {:>12.0}", tokio_rate);
    println!(
        "  ratio reactor/tokio            {:>12.2}",
        reactor_rate / tokio_rate
    );

    let reactor = percentiles(reactor_latency(sizes.latency_samples)?);
    let tokio = percentiles(tokio_latency(sizes.latency_samples)?);
    println!(
        "post-to-run latency, one item every 50 µs, {} samples:",
        sizes.latency_samples
    );
    println!("  {:<30} {:>10} {:>10} {:>10}", "", "p50", "p99", "max");
    for (name, (p50, p99, max)) in [("mio-reactor", reactor), ("tokio", tokio)] {
        println!("  {name:<30} {p50:>10.1?} {p99:>10.1?} {max:>10.1?}");
    }

    println!(
        "spread of 8 long-lived connections over 2 threads, {} trials (connections on the busier thread):",
        sizes.spread_trials
    );
    for balanced in [false, true] {
        let mut busier = Vec::new();
        for _ in 0..sizes.spread_trials {
            busier.push(spread(balanced)?);
        }
        busier.sort_unstable();
        let name = if balanced {
            "one acceptor"
        } else {
            "SO_REUSEPORT"
        };
        println!("  {name:<14} {busier:?}");
    }
    Ok(())
}

/// A reactor on its own thread; it runs while a handle to it exists, until shut down.
fn start_reactor() -> Fallible<(
    mio_reactor::LoopHandle,
    mio_reactor::ShutdownHandle,
    thread::JoinHandle<()>,
)> {
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut reactor =
            Reactor::with_config(Config::default().post_queue_capacity(4096)).expect("reactor");
        tx.send((reactor.handle(), reactor.shutdown_handle()))
            .expect("alive");
        reactor.run().expect("run");
    });
    let (handle, shutdown) = rx.recv()?;
    Ok((handle, shutdown, thread))
}

/// Posts `item`, waiting out a full queue.
fn post_waiting<F>(handle: &mio_reactor::LoopHandle, mut item: F) -> Fallible<()>
where
    F: FnOnce(&mut LoopContext<'_>) + Send + 'static,
{
    loop {
        match handle.post(item) {
            Ok(()) => return Ok(()),
            Err(PostError::Full(back)) => {
                item = back;
                thread::yield_now();
            }
            Err(err) => return Err(err.to_string().into()),
        }
    }
}

fn reactor_throughput(items: u64) -> Fallible<f64> {
    let (handle, shutdown, thread) = start_reactor()?;
    let (done_tx, done) = mpsc::channel();
    let start = Instant::now();
    for _ in 0..items {
        post_waiting(&handle, |_| RAN.with(|ran| ran.set(ran.get() + 1)))?;
    }
    post_waiting(&handle, move |_| {
        let _ = done_tx.send(RAN.with(Cell::get));
    })?;
    let ran = done.recv()?;
    let elapsed = start.elapsed();
    shutdown.shutdown();
    drop(handle);
    thread.join().map_err(|_| "reactor thread panicked")?;
    if ran != items {
        return Err(format!("{ran} of {items} items ran").into());
    }
    Ok(items as f64 / elapsed.as_secs_f64())
}

/// A current-thread tokio runtime on its own thread, running every job it receives.
fn start_tokio() -> Fallible<(tokio::sync::mpsc::Sender<Job>, thread::JoinHandle<()>)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(4096);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let thread = thread::spawn(move || {
        runtime.block_on(async move {
            while let Some(job) = rx.recv().await {
                job();
            }
        })
    });
    Ok((tx, thread))
}

fn tokio_throughput(items: u64) -> Fallible<f64> {
    let (tx, thread) = start_tokio()?;
    let (done_tx, done) = mpsc::channel();
    let start = Instant::now();
    for _ in 0..items {
        tx.blocking_send(Box::new(|| RAN.with(|ran| ran.set(ran.get() + 1))))
            .map_err(|_| "the runtime is gone")?;
    }
    tx.blocking_send(Box::new(move || {
        let _ = done_tx.send(RAN.with(Cell::get));
    }))
    .map_err(|_| "the runtime is gone")?;
    let ran = done.recv()?;
    let elapsed = start.elapsed();
    drop(tx);
    thread.join().map_err(|_| "runtime thread panicked")?;
    if ran != items {
        return Err(format!("{ran} of {items} items ran").into());
    }
    Ok(items as f64 / elapsed.as_secs_f64())
}

fn record_latency(posted: Instant) {
    let latency = posted.elapsed();
    LATENCIES.with(|l| l.borrow_mut().push(latency));
}

fn take_latencies() -> Vec<Duration> {
    LATENCIES.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

fn reactor_latency(samples: usize) -> Fallible<Vec<Duration>> {
    let (handle, shutdown, thread) = start_reactor()?;
    for _ in 0..samples {
        let posted = Instant::now();
        post_waiting(&handle, move |_| record_latency(posted))?;
        thread::sleep(Duration::from_micros(50));
    }
    let (tx, rx) = mpsc::channel();
    post_waiting(&handle, move |_| {
        let _ = tx.send(take_latencies());
    })?;
    let latencies = rx.recv()?;
    shutdown.shutdown();
    drop(handle);
    thread.join().map_err(|_| "reactor thread panicked")?;
    Ok(latencies)
}

fn tokio_latency(samples: usize) -> Fallible<Vec<Duration>> {
    let (jobs, thread) = start_tokio()?;
    for _ in 0..samples {
        let posted = Instant::now();
        jobs.blocking_send(Box::new(move || record_latency(posted)))
            .map_err(|_| "the runtime is gone")?;
        thread::sleep(Duration::from_micros(50));
    }
    let (tx, rx) = mpsc::channel();
    jobs.blocking_send(Box::new(move || {
        let _ = tx.send(take_latencies());
    }))
    .map_err(|_| "the runtime is gone")?;
    let latencies = rx.recv()?;
    drop(jobs);
    thread.join().map_err(|_| "runtime thread panicked")?;
    Ok(latencies)
}

fn percentiles(mut latencies: Vec<Duration>) -> (Duration, Duration, Duration) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99), latencies[latencies.len() - 1])
}

struct Echo;
impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// Opens 8 connections (each served before the next opens) to 2 reactor threads; returns
/// how many the busier thread got.
fn spread(balanced: bool) -> Fallible<u64> {
    let addr = "tcp:127.0.0.1:0";
    let config = Config::default();
    let spread = if balanced {
        Spread::LeastLoaded
    } else {
        Spread::ReusePort
    };
    let options = ListenOptions::default();
    let threads =
        ReactorThreads::serve(2, config, addr, options, spread, |_, _| |_: &_| Some(Echo))?;
    let addr = threads.local_addr()?;
    let mut clients = Vec::new();
    for i in 0..8u8 {
        let mut client = TcpStream::connect(addr)?;
        client.write_all(&[i])?;
        let mut echo = [0];
        client.read_exact(&mut echo)?;
        clients.push(client);
    }
    drop(clients);
    threads.shutdown_handle().shutdown();
    let stats = threads.join()?;
    let served: Vec<u64> = stats
        .iter()
        .take(2)
        .map(|s| if balanced { s.adopted } else { s.accepted })
        .collect();
    if served.iter().sum::<u64>() != 8 {
        return Err(format!("served {served:?}, not 8 in all").into());
    }
    Ok(served.into_iter().max().unwrap_or(0))
}

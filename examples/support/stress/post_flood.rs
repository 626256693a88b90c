//! The post-flood scenario: threads post work into one reactor as fast as they can, far
//! faster than it runs it. The queue must fill and say so (items handed back), every item
//! it accepted must run exactly once, connections must still be served, and the process's
//! memory must stay flat however long the flood lasts.
//!
//! Unlike the other scenarios it runs the reactor in this process: posting needs a
//! [`LoopHandle`], which does not cross a process boundary.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use mio_reactor::{
    Config, Context, Handler, ListenOptions, LoopHandle, PostError, Reactor, ShutdownHandle,
};

use super::probe::{self, Probe};
use super::process_figures::rss_kib;
use super::report::{OrFail, Report};

/// The queue bound the flood runs against: small, so that it is full most of the time.
const CAPACITY: usize = 1024;
/// Growth of the process's resident memory, from the first quarter of the flood to its
/// end, above which memory is not flat.
const MAX_RSS_GROWTH_KIB: u64 = 8 * 1024;

struct Echo;
impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// `flooders` threads post for `duration` while a probe does echo round trips.
pub fn post_flood(flooders: usize, duration: Duration) -> Report {
    Report::run("post-flood", |report| {
        let (addr, handle, shutdown, reactor) = start().or_fail("starting the reactor")?;
        let ran = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..flooders)
            .map(|_| {
                let (handle, ran, stop) = (handle.clone(), ran.clone(), stop.clone());
                std::thread::spawn(move || flood(&handle, &ran, &stop))
            })
            .collect();
        let probe = Probe::start(addr, Duration::from_millis(10), probe::line);
        let pid = std::process::id();
        std::thread::sleep(duration / 4);
        let rss_early = rss_kib(pid).or_fail("reading VmRSS")?;
        std::thread::sleep(duration - duration / 4);
        let rss_late = rss_kib(pid).or_fail("reading VmRSS")?;
        stop.store(true, Ordering::SeqCst);
        let (mut accepted, mut full) = (0, 0);
        for thread in threads {
            let (a, f) = thread.join().map_err(|_| "a flooder panicked")?;
            accepted += a;
            full += f;
        }
        let log = probe.stop();
        // Everything accepted runs before the reactor's `run` returns after a shutdown.
        shutdown.shutdown();
        let stats = reactor.join().map_err(|_| "the reactor panicked")?;
        let ran = ran.load(Ordering::SeqCst);
        report.figure("accepted", accepted);
        report.figure("handed_back", full);
        report.figure("ran", ran);
        report.figure("wakes", stats.wakes);
        report.figure("probe_p99", format!("{:?}", log.quantile(0.99)));
        report.figure("rss_growth_kib", rss_late.saturating_sub(rss_early));
        report.check(ran == accepted, || {
            format!("{ran} ran of {accepted} accepted")
        });
        report.check(full > 0, || "the queue never filled".to_string());
        report.check(log.failures.is_empty(), || {
            format!("probe: {:?}", log.failures)
        });
        report.check(log.round_trips.len() >= 10, || {
            format!("only {} probe round trips", log.round_trips.len())
        });
        report.check(rss_late <= rss_early + MAX_RSS_GROWTH_KIB, || {
            format!("memory grew from {rss_early} KiB to {rss_late} KiB")
        });
        Ok(())
    })
}

/// Posts until told to stop; returns (accepted, handed back as full).
fn flood(handle: &LoopHandle, ran: &Arc<AtomicU64>, stop: &AtomicBool) -> (u64, u64) {
    let (mut accepted, mut full) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        let ran = ran.clone();
        match handle.post(move |_| {
            ran.fetch_add(1, Ordering::Relaxed);
        }) {
            Ok(()) => accepted += 1,
            Err(PostError::Full(_)) => {
                full += 1;
                std::thread::yield_now();
            }
            Err(PostError::ShuttingDown(_)) => break,
        }
    }
    (accepted, full)
}

type Started = (
    SocketAddr,
    LoopHandle,
    ShutdownHandle,
    std::thread::JoinHandle<mio_reactor::Stats>,
);

fn start() -> io::Result<Started> {
    let (tx, rx) = mpsc::channel();
    let reactor = std::thread::spawn(move || {
        let config = Config::default().post_queue_capacity(CAPACITY);
        let mut reactor = Reactor::with_config(config).expect("reactor");
        let addr = reactor
            .listen("127.0.0.1:0", ListenOptions::default(), |_: &_| Some(Echo))
            .and_then(|listening| listening.local_addr())
            .expect("listen");
        let _ = tx.send((addr, reactor.handle(), reactor.shutdown_handle()));
        let started = Instant::now();
        reactor.run().expect("run");
        log::debug!("post-flood reactor ran {:?}", started.elapsed());
        reactor.stats()
    });
    let (addr, handle, shutdown) = rx
        .recv()
        .map_err(|_| io::Error::other("the reactor thread died"))?;
    Ok((addr, handle, shutdown, reactor))
}

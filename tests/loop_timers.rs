//! Timers of the loop, which belong to no connection: one-shot and periodic (fixed rate and
//! fixed delay, without pile-up), cancelled by id, set from the reactor and from every kind
//! of context, caught when they panic, counted and traced, and how they end with the reactor.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{
    Config, Context, DatagramContext, DatagramHandler, Every, Handler, ListenOptions, LoopTimerId,
    Reactor, Readiness, Record, TimerKind, TimerTarget, WatchContext,
};
use util::{init_logging, turn_until, WAIT};

const MS: Duration = Duration::from_millis(1);

/// Times at which a callback ran, shared with the test.
type Log = Rc<RefCell<Vec<Instant>>>;

fn recorder(log: &Log) -> impl FnMut(&mut mio_reactor::LoopContext<'_>, LoopTimerId) {
    let log = log.clone();
    move |_, _| log.borrow_mut().push(Instant::now())
}

#[test]
fn a_one_shot_fires_once_after_its_delay() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let set = Instant::now();
    reactor.set_loop_timer(30 * MS, recorder(&log));
    turn_until(&mut reactor, |_| !log.borrow().is_empty());
    // More turns: a one-shot does not come back.
    for _ in 0..5 {
        reactor.turn(Some(10 * MS)).unwrap();
    }
    let fired = log.borrow();
    assert_eq!(fired.len(), 1);
    assert!(
        fired[0] - set >= 30 * MS,
        "fired early: {:?}",
        fired[0] - set
    );
    assert_eq!(reactor.stats().loop_timers_fired, 1);
    assert_eq!(reactor.stats().pending_timers, 0);
}

#[test]
fn a_cancelled_timer_never_fires() {
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let cancelled = reactor.set_loop_timer(10 * MS, recorder(&log));
    let witness = reactor.set_loop_timer(40 * MS, |_, _| {});
    assert!(reactor.cancel_loop_timer(cancelled));
    assert!(!reactor.cancel_loop_timer(cancelled));
    turn_until(&mut reactor, |r| r.stats().loop_timers_fired == 1); // the witness
    assert!(log.borrow().is_empty());
    assert!(
        !reactor.cancel_loop_timer(witness),
        "a fired one-shot is gone"
    );
}

/// A handler that blocks the loop for `block` on its first bytes: a busy turn.
struct Blocker {
    block: Duration,
}

impl Handler for Blocker {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        std::thread::sleep(self.block); // the loop's thread is busy: nothing else runs
        ctx.write(b"done");
        data.len()
    }
}

/// Lets a periodic timer fire a few times, blocks the loop for ~`periods` periods in a
/// handler, and returns the firing times before the block and after it.
fn busy_loop_firings(every: Every, period: Duration, periods: u32) -> (Vec<Instant>, Instant) {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    reactor.set_loop_interval(every, recorder(&log));
    let block = period * periods;
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), move |_| {
            Some(Blocker { block })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    turn_until(&mut reactor, |_| log.borrow().len() >= 2);
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"x").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out >= 4);
    let unblocked = Instant::now();
    let before = log.borrow().len();
    // Run on for a little under two periods: at most one catch-up call and one on schedule.
    while Instant::now() < unblocked + period * 3 / 2 {
        reactor.turn(Some(MS)).unwrap();
    }
    let mut reply = [0; 4];
    client.read_exact(&mut reply).unwrap();
    let fired = log.borrow().clone();
    assert!(fired.len() >= before);
    (fired, unblocked)
}

#[test]
fn a_fixed_rate_timer_does_not_pile_up_after_a_busy_turn() {
    let period = 40 * MS;
    let (fired, unblocked) = busy_loop_firings(Every::Rate(period), period, 6);
    // The loop was blocked for six periods; afterwards the timer fires once at once (late),
    // then on its schedule: at most two calls in the period and a half that followed.
    let after = fired.iter().filter(|t| **t >= unblocked).count();
    assert!(
        (1..=2).contains(&after),
        "{after} calls after the busy turn (a pile-up makes 6 or more)"
    );
    // And none of them back to back: no two calls in one turn.
    for pair in fired.windows(2) {
        assert!(
            pair[1] - pair[0] >= MS,
            "two calls {:?} apart",
            pair[1] - pair[0]
        );
    }
}

#[test]
fn a_fixed_rate_timer_keeps_its_schedule() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let log = Log::default();
    let set = Instant::now();
    let period = 20 * MS;
    let log_slow = {
        let log = log.clone();
        move |_: &mut mio_reactor::LoopContext<'_>, _: LoopTimerId| {
            log.borrow_mut().push(Instant::now());
            std::thread::sleep(8 * MS); // each call costs 8 ms: a fixed delay would drift
        }
    };
    reactor.set_loop_interval(Every::Rate(period), move |lc, id| log_slow(lc, id));
    turn_until(&mut reactor, |_| log.borrow().len() >= 10);
    let tenth = log.borrow()[9] - set;
    // Due at 200 ms; a fixed delay would be at 10 × 28 = 280 ms at least.
    assert!(tenth >= 200 * MS, "{tenth:?}");
    assert!(tenth < 270 * MS, "the schedule drifted: {tenth:?}");
}

#[test]
fn a_fixed_delay_timer_waits_its_period_after_each_call_returns() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let returned = Log::default();
    let started = Log::default();
    let period = 20 * MS;
    let (r, s) = (returned.clone(), started.clone());
    reactor.set_loop_interval(Every::Delay(period), move |_, _| {
        s.borrow_mut().push(Instant::now());
        std::thread::sleep(10 * MS);
        r.borrow_mut().push(Instant::now());
    });
    turn_until(&mut reactor, |_| started.borrow().len() >= 5);
    let (returned, started) = (returned.borrow(), started.borrow());
    for i in 1..5 {
        let gap = started[i] - returned[i - 1];
        assert!(
            gap >= period,
            "call {i} came {gap:?} after the last returned"
        );
    }
}

/// Sets a loop timer from a connection's handler, which closes before it fires.
struct SetsAndCloses {
    fired: Rc<Cell<u32>>,
}

impl Handler for SetsAndCloses {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let fired = self.fired.clone();
        let conn = ctx.id();
        ctx.set_loop_timer(20 * MS, move |lc, _| {
            // The connection is gone: the loop timer still runs, and its writes miss.
            assert!(lc.write(conn, b"late").is_err());
            fired.set(fired.get() + 1);
        });
        ctx.abort(); // removed at the end of this turn
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn set_from_a_context_and_outlives_its_connection() {
    init_logging();
    let fired = Rc::new(Cell::new(0));
    let mut reactor = Reactor::new().unwrap();
    let for_factory = fired.clone();
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), move |_| {
            Some(SetsAndCloses {
                fired: for_factory.clone(),
            })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let _client = TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |_| fired.get() == 1);
    assert_eq!(reactor.stats().closed.total(), 1);
}

#[test]
fn set_from_a_loop_context() {
    let fired = Rc::new(Cell::new(0));
    let mut reactor = Reactor::new().unwrap();
    let inner = fired.clone();
    // A loop timer that sets another (a chain, as a self-rescheduling cron would).
    reactor.set_loop_timer(5 * MS, move |lc, _| {
        let inner = inner.clone();
        lc.set_loop_timer(5 * MS, move |_, _| inner.set(inner.get() + 1));
    });
    turn_until(&mut reactor, |_| fired.get() == 1);
    assert_eq!(reactor.stats().loop_timers_fired, 2);
}

struct UdpSetter {
    fired: Rc<Cell<u32>>,
}

impl DatagramHandler for UdpSetter {
    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, _: &[u8], _: SocketAddr) {
        let fired = self.fired.clone();
        ctx.set_loop_timer(5 * MS, move |_, _| fired.set(fired.get() + 1));
    }
}

#[test]
fn set_from_a_datagram_context() {
    let fired = Rc::new(Cell::new(0));
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .bind_udp(
            "udp:127.0.0.1:0",
            UdpSetter {
                fired: fired.clone(),
            },
        )
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.send_to(b"set", addr).unwrap();
    turn_until(&mut reactor, |_| fired.get() == 1);
}

#[test]
fn set_from_a_watch_context() {
    let fired = Rc::new(Cell::new(0));
    let mut reactor = Reactor::new().unwrap();
    let (mut sender, receiver) = mio::unix::pipe::new().unwrap();
    let inner = fired.clone();
    reactor
        .watch(
            receiver,
            mio::Interest::READABLE,
            move |pipe: &mut mio::unix::pipe::Receiver,
                  _: Readiness,
                  ctx: &mut WatchContext<'_>| {
                let mut buf = [0; 16];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let inner = inner.clone();
                    ctx.set_loop_timer(5 * MS, move |_, _| inner.set(inner.get() + 1));
                }
            },
        )
        .unwrap();
    sender.write_all(b"set").unwrap();
    turn_until(&mut reactor, |_| fired.get() == 1);
}

#[test]
fn a_panicking_periodic_timer_is_reported_cancelled_and_the_loop_goes_on() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    let id = reactor.set_loop_interval(Every::Rate(5 * MS), move |_, _| {
        counted.set(counted.get() + 1);
        panic!("cron failed");
    });
    let survivor = Log::default();
    reactor.set_loop_interval(Every::Rate(5 * MS), recorder(&survivor));
    turn_until(&mut reactor, |_| survivor.borrow().len() >= 5);
    assert_eq!(calls.get(), 1, "a panicking periodic timer is cancelled");
    assert_eq!(reactor.stats().handler_panics, 1);
    assert!(!reactor.cancel_loop_timer(id));
}

#[test]
fn each_firing_is_traced_and_counted() {
    let mut reactor = Reactor::new().unwrap();
    let traced = Rc::new(RefCell::new(Vec::new()));
    let sink = traced.clone();
    reactor.set_observer(move |_: Instant, record: &Record| {
        if let Record::TimerFired { kind, target } = record {
            sink.borrow_mut().push((*kind, *target));
        }
    });
    let mut left = 3;
    let id = reactor.set_loop_interval(Every::Delay(2 * MS), move |lc, id| {
        left -= 1;
        if left == 0 {
            lc.cancel_loop_timer(id);
        }
    });
    turn_until(&mut reactor, |r| r.stats().loop_timers_fired == 3);
    let loop_target = Some(TimerTarget::Loop(id));
    assert_eq!(*traced.borrow(), vec![(TimerKind::Loop, loop_target); 3]);
    assert_eq!(reactor.stats().pending_timers, 0);
}

#[test]
fn a_reactor_with_only_loop_timers_runs_until_they_are_done() {
    let mut reactor = Reactor::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let flag = fired.clone();
    reactor.set_loop_timer(20 * MS, move |_, _| flag.set(true));
    assert!(
        !reactor.is_finished(),
        "a pending loop timer keeps the reactor alive"
    );
    reactor.run().unwrap();
    assert!(fired.get());
}

#[test]
fn a_shutdown_does_not_wait_for_loop_timers_but_they_fire_while_it_drains() {
    init_logging();
    // One connection that takes its time to close after the shutdown request.
    struct Lingers;
    impl Handler for Lingers {
        fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
            data.len()
        }
        fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
            ctx.set_timer(60 * MS); // closes in on_timer
        }
        fn on_timer(&mut self, ctx: &mut Context<'_>, _: mio_reactor::TimerId) {
            ctx.close();
        }
    }
    let mut reactor = Reactor::with_config(Config::default()).unwrap();
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Lingers))
        .unwrap()
        .local_addr()
        .unwrap();
    let ticks = Log::default();
    reactor.set_loop_interval(Every::Rate(10 * MS), recorder(&ticks));
    reactor.set_loop_timer(Duration::from_secs(3600), |_, _| unreachable!());
    let _client = TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |r| r.stats().open_connections == 1);
    reactor.shutdown_handle().shutdown();
    let requested = Instant::now();
    let before = ticks.borrow().len();
    turn_until(&mut reactor, Reactor::is_finished);
    assert!(
        ticks.borrow().len() > before,
        "the periodic timer fired while the connection drained"
    );
    assert!(
        requested.elapsed() < Duration::from_secs(60),
        "the hour-long timer did not hold it"
    );
}

#[test]
fn a_shutdown_asked_by_a_loop_timer_is_acted_on_without_waiting_for_an_event() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    // A listener that nobody connects to: without the fix the poll blocks for ever.
    reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap();
    reactor.set_loop_timer(5 * MS, |lc, _| lc.shutdown_reactor());
    let (done, finished) = std::sync::mpsc::channel();
    let shutdown = reactor.shutdown_handle();
    let guard = std::thread::spawn(move || {
        // Unblocks a hung loop so that the test fails instead of hanging.
        if finished.recv_timeout(WAIT).is_err() {
            shutdown.shutdown();
            shutdown.shutdown();
        }
    });
    let started = Instant::now();
    reactor.run().unwrap();
    let took = started.elapsed();
    let _ = done.send(());
    guard.join().unwrap();
    assert!(
        took < WAIT,
        "run() returned only when the guard woke it: {took:?}"
    );
}

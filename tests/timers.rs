//! Timers and idle timeouts run inside the loop: no helper thread, the poll timeout is the
//! next deadline.

mod util;

use std::io::Read;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Config, Context, Handler, ListenOptions, TimerId};
use util::{client, loopback, next_close, round_trip, Server, WAIT};

#[test]
fn an_idle_connection_is_closed_with_idle_timeout() {
    let config = Config::default().idle_timeout(Some(Duration::from_millis(200)));
    let (server, closes) = Server::reporting_echo(config);
    let mut silent = client(server.addr);
    let mut rest = Vec::new();
    assert_eq!(silent.read_to_end(&mut rest).unwrap(), 0, "a clean EOF");
    drop(silent);
    assert_eq!(next_close(&closes), CloseReason::IdleTimeout);
    let stats = server.stop();
    assert_eq!(stats.closed.idle_timeout, 1);
}

#[test]
fn activity_postpones_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let config = Config::default().idle_timeout(Some(idle));
    let (server, closes) = Server::reporting_echo(config);
    let mut busy = client(server.addr);
    let started = Instant::now();
    // Keep talking for more than twice the idle timeout.
    while started.elapsed() < idle * 3 {
        assert_eq!(round_trip(&mut busy, b"ping"), b"ping");
        std::thread::sleep(Duration::from_millis(20)); // pacing the talk, not synchronising
    }
    let early_close = closes
        .try_iter()
        .find(|seen| matches!(seen, util::Seen::Closed(..)));
    assert_eq!(early_close, None, "closed although active");
    let mut rest = Vec::new();
    assert_eq!(busy.read_to_end(&mut rest).unwrap(), 0, "closed once idle");
    drop(busy);
    assert_eq!(next_close(&closes), CloseReason::IdleTimeout);
    assert!(started.elapsed() >= idle * 3);
    server.stop();
}

/// Sets three timers at open, cancels one, and writes the order they fire in.
struct Alarms {
    cancelled: Option<TimerId>,
}

impl Handler for Alarms {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.set_timer(Duration::from_millis(60));
        self.cancelled = Some(ctx.set_timer(Duration::from_millis(30)));
        ctx.set_timer(Duration::from_millis(10));
        let cancelled = self.cancelled.unwrap();
        assert!(ctx.cancel_timer(cancelled));
        assert!(!ctx.cancel_timer(cancelled), "already cancelled");
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        assert_ne!(Some(timer), self.cancelled);
        ctx.write(b"tick ");
    }
}

#[test]
fn timers_fire_in_order_and_cancelled_ones_never_fire() {
    let server = Server::start(Config::default(), |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), |_| {
            Some(Alarms { cancelled: None })
        })
    });
    let mut stream = client(server.addr);
    let mut ticks = [0; 10];
    stream.read_exact(&mut ticks).unwrap();
    assert_eq!(&ticks, b"tick tick ");
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut more = [0; 1];
    assert!(stream.read(&mut more).is_err(), "a third tick arrived");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    drop(stream);
    server.stop();
}

/// Echoes, and arms a timer an hour away on every connection (a long keep-alive or session
/// timer), setting one more from `on_close`.
struct HourTimer;

impl Handler for HourTimer {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.set_timer(Duration::from_secs(3600));
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, _: &CloseReason) {
        ctx.set_timer(Duration::from_secs(3600));
    }
}

#[test]
fn a_closed_connections_timers_are_cancelled_so_churn_cannot_grow_the_timer_heap() {
    const CONNECTIONS: u64 = 50;
    let mut reactor = mio_reactor::Reactor::new().unwrap();
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_| Some(HourTimer))
        .unwrap()
        .local_addr()
        .unwrap();
    let clients = std::thread::spawn(move || {
        for _ in 0..CONNECTIONS {
            assert_eq!(round_trip(&mut client(addr), b"x"), b"x");
        }
    });
    let deadline = Instant::now() + WAIT;
    while reactor.stats().closed.total() < CONNECTIONS {
        assert!(Instant::now() < deadline, "{:?}", reactor.stats());
        reactor.turn(Some(Duration::from_millis(50))).unwrap();
    }
    clients.join().unwrap();
    let stats = reactor.stats();
    assert_eq!(stats.open_connections, 0);
    assert_eq!(stats.pending_timers, 0, "timers outlived their connections");
}

//! Posting work and messages into the loop from other threads: what runs, where, in which
//! order, and what comes back when the queue is full or the reactor is shutting down.

mod util;

use std::any::Any;
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio_reactor::{
    Config, ConnId, Context, Handler, ListenOptions, LoopHandle, PostError, Reactor, Record,
    TimerId,
};
use util::{init_logging, loopback, turn_until, Echo, WAIT};

/// A reactor with an echo listener, so that `run` has something to serve.
fn echo_reactor(config: Config) -> (Reactor, std::net::SocketAddr) {
    init_logging();
    let mut reactor = Reactor::with_config(config).expect("reactor");
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Echo))
        .expect("listen")
        .local_addr()
        .unwrap();
    (reactor, addr)
}

/// A handler that reports its id when it opens, and echoes messages (strings) to its peer.
struct Messaged {
    opened: mpsc::Sender<ConnId>,
}

impl Handler for Messaged {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = self.opened.send(ctx.id());
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_message(&mut self, ctx: &mut Context<'_>, message: Box<dyn Any + Send>) {
        if let Ok(text) = message.downcast::<String>() {
            ctx.write(text.as_bytes());
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
        ctx.write(b"timer\n");
    }
}

/// A reactor serving [`Messaged`] connections, and one connected client with its id.
fn messaged_connection(config: Config) -> (Reactor, TcpStream, ConnId) {
    init_logging();
    let (opened, ids) = mpsc::channel();
    let mut reactor = Reactor::with_config(config).expect("reactor");
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), move |_: &_| {
            Some(Messaged {
                opened: opened.clone(),
            })
        })
        .expect("listen")
        .local_addr()
        .unwrap();
    let client = TcpStream::connect(addr).expect("connect");
    client.set_read_timeout(Some(WAIT)).unwrap();
    turn_until(&mut reactor, |r| r.stats().accepted == 1);
    let id = ids.try_recv().expect("on_open ran");
    (reactor, client, id)
}

#[test]
fn posted_work_runs_on_the_loop_thread() {
    let (mut reactor, _) = echo_reactor(Config::default());
    let loop_thread = std::thread::current().id();
    let handle = reactor.handle();
    let (ran_on, seen) = mpsc::channel();
    std::thread::spawn(move || {
        handle
            .post(move |_| ran_on.send(std::thread::current().id()).unwrap())
            .expect("queued");
    })
    .join()
    .unwrap();
    turn_until(&mut reactor, |r| r.stats().posts_run == 1);
    assert_eq!(seen.try_recv().unwrap(), loop_thread);
}

#[test]
fn a_panic_in_posted_work_costs_only_that_item() {
    let (mut reactor, addr) = echo_reactor(Config::default());
    let handle = reactor.handle();
    let (ran, seen) = mpsc::channel();
    handle
        .post(|_| panic!("posted work fails"))
        .expect("queued");
    handle
        .post(move |_| ran.send("the next item ran").unwrap())
        .expect("queued");
    turn_until(&mut reactor, |r| r.stats().posts_run == 2);
    assert_eq!(seen.try_recv().unwrap(), "the next item ran");
    assert_eq!(reactor.stats().handler_panics, 1);
    // The loop still serves its connections.
    let mut client = TcpStream::connect(addr).expect("connect");
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"ping").unwrap();
    let mut echo = [0; 4];
    let started = Instant::now();
    let mut got = 0;
    while got < 4 && started.elapsed() < WAIT {
        reactor.turn(Some(Duration::from_millis(10))).expect("turn");
        client.set_nonblocking(true).unwrap();
        if let Ok(n) = client.read(&mut echo[got..]) {
            got += n;
        }
        client.set_nonblocking(false).unwrap();
    }
    assert_eq!(&echo, b"ping");
}

#[test]
fn posted_work_writes_to_a_connection_by_id() {
    let (mut reactor, mut client, id) = messaged_connection(Config::default());
    reactor
        .handle()
        .post(move |lc| lc.write(id, b"from afar\n").expect("open"))
        .expect("queued");
    turn_until(&mut reactor, |r| r.stats().bytes_out == 10);
    let mut reply = [0; 10];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"from afar\n");
}

#[test]
fn posted_work_closes_a_connection_by_id() {
    let (mut reactor, mut client, id) = messaged_connection(Config::default());
    reactor
        .handle()
        .post(move |lc| assert!(lc.close(id)))
        .expect("queued");
    let mut rest = Vec::new();
    let reader = std::thread::spawn(move || client.read_to_end(&mut rest).map(|_| rest));
    turn_until(&mut reactor, |r| r.stats().closed.local == 1);
    assert_eq!(reader.join().unwrap().unwrap(), b"", "a FIN, no bytes");
}

#[test]
fn posted_work_sets_a_timer_for_a_connection() {
    let (mut reactor, mut client, id) = messaged_connection(Config::default());
    reactor
        .handle()
        .post(move |lc| {
            lc.set_timer(id, Duration::from_millis(1)).expect("open");
        })
        .expect("queued");
    turn_until(&mut reactor, |r| r.stats().bytes_out == 6);
    let mut reply = [0; 6];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"timer\n");
}

#[test]
fn a_message_reaches_its_connections_handler() {
    let (mut reactor, mut client, id) = messaged_connection(Config::default());
    let handle = reactor.handle();
    std::thread::spawn(move || handle.send_to(id, "result 7\n".to_string()).unwrap())
        .join()
        .unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out == 9);
    let mut reply = [0; 9];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"result 7\n");
    assert_eq!(reactor.stats().posts_missed, 0);
}

#[test]
fn work_for_a_closed_connection_misses_and_is_counted() {
    let (mut reactor, client, id) = messaged_connection(Config::default());
    drop(client);
    turn_until(&mut reactor, |r| r.stats().closed.total() == 1);
    let handle = reactor.handle();
    handle.send_to(id, "too late".to_string()).unwrap();
    handle
        .post(move |lc| {
            assert!(lc.write(id, b"too late").is_err());
            assert!(!lc.close(id));
            assert!(!lc.abort(id));
        })
        .unwrap();
    turn_until(&mut reactor, |r| r.stats().posts_run == 2);
    // The message, the write, the close and the abort.
    assert_eq!(reactor.stats().posts_missed, 4);
    assert_eq!(reactor.stats().bytes_out, 0);
}

#[test]
fn a_full_queue_hands_the_item_back() {
    let (mut reactor, _client, id) = messaged_connection(Config::default().post_queue_capacity(2));
    let handle = reactor.handle();
    handle.send_to(id, 1_u32).unwrap();
    handle.send_to(id, 2_u32).unwrap();
    match handle.send_to(id, 3_u32) {
        Err(PostError::Full(three)) => assert_eq!(three, 3),
        other => panic!("expected Full(3), got {other:?}"),
    }
    // Once the loop has taken the queued items, there is room again.
    turn_until(&mut reactor, |r| r.stats().posts_run == 2);
    handle.send_to(id, 3_u32).unwrap();
}

#[test]
fn posting_after_a_shutdown_request_hands_the_item_back() {
    let (reactor, _client, id) = messaged_connection(Config::default());
    let handle = reactor.handle();
    reactor.shutdown_handle().shutdown();
    match handle.post(|_| ()) {
        Err(PostError::ShuttingDown(_)) => {}
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
    match handle.send_to(id, "kept") {
        Err(err @ PostError::ShuttingDown(_)) => assert_eq!(err.into_inner(), "kept"),
        other => panic!("expected ShuttingDown, got {other:?}"),
    }
}

#[test]
fn work_accepted_before_a_shutdown_still_runs() {
    let (mut reactor, _) = echo_reactor(Config::default());
    let ran = Arc::new(Mutex::new(0));
    let handle = reactor.handle();
    for _ in 0..10 {
        let ran = ran.clone();
        handle.post(move |_| *ran.lock().unwrap() += 1).unwrap();
    }
    reactor.shutdown_handle().shutdown();
    reactor.run().unwrap();
    assert_eq!(*ran.lock().unwrap(), 10);
}

#[test]
fn posting_to_a_dropped_reactor_hands_the_item_back() {
    let (reactor, _) = echo_reactor(Config::default());
    let handle = reactor.handle();
    drop(reactor);
    assert!(matches!(
        handle.post(|_| ()),
        Err(PostError::ShuttingDown(_))
    ));
}

#[test]
fn wake_ups_coalesce_to_one_per_batch() {
    let (mut reactor, _) = echo_reactor(Config::default());
    let handle = reactor.handle();
    let poster = handle.clone();
    std::thread::spawn(move || {
        for _ in 0..100 {
            poster.post(|_| ()).unwrap();
        }
    })
    .join()
    .unwrap();
    assert_eq!(reactor.stats().wakes, 1, "100 posts before the loop looked");
    turn_until(&mut reactor, |r| r.stats().posts_run == 100);
    for _ in 0..100 {
        handle.post(|_| ()).unwrap();
    }
    assert_eq!(reactor.stats().wakes, 2, "one more batch, one more wake");
    turn_until(&mut reactor, |r| r.stats().posts_run == 200);
}

#[test]
fn a_turn_runs_at_most_the_post_budget_and_then_polls_without_blocking() {
    let (mut reactor, _) = echo_reactor(Config::default().post_budget(10));
    let timeouts = Rc::new(RefCell::new(Vec::new()));
    let sink = timeouts.clone();
    reactor.set_observer(move |_: Instant, record: &Record| {
        if let Record::TurnStart { timeout, .. } = record {
            sink.borrow_mut().push(*timeout);
        }
    });
    let handle = reactor.handle();
    for _ in 0..25 {
        handle.post(|_| ()).unwrap();
    }
    let mut runs = Vec::new();
    for _ in 0..3 {
        reactor.turn(None).unwrap();
        runs.push(reactor.stats().posts_run);
    }
    assert_eq!(runs, [10, 20, 25]);
    // The first poll sees the waker; the next two must not block with items waiting.
    assert_eq!(
        timeouts.borrow()[1..],
        [Some(Duration::ZERO), Some(Duration::ZERO)]
    );
}

#[test]
fn connections_are_served_during_a_flood_of_posts() {
    let (mut reactor, addr) = echo_reactor(Config::default().post_budget(1));
    let handle = reactor.handle();
    for _ in 0..1000 {
        handle.post(|_| ()).unwrap();
    }
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"ping").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out == 4);
    assert!(
        reactor.stats().posts_run < 1000,
        "the echo waited for every posted item"
    );
    let mut echo = [0; 4];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
}

#[test]
fn a_handler_gets_a_handle_from_its_context() {
    struct Asks;
    impl Handler for Asks {
        fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
            let (handle, id) = (ctx.handle(), ctx.id());
            let reply = data.to_ascii_uppercase();
            std::thread::spawn(move || {
                handle
                    .post(move |lc| lc.write(id, &reply).unwrap())
                    .unwrap()
            });
            data.len()
        }
    }
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Asks))
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"abc").unwrap();
    turn_until(&mut reactor, |r| r.stats().bytes_out == 3);
    let mut reply = [0; 3];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"ABC");
}

#[test]
fn handles_tell_their_reactors_apart() {
    let (a, _) = echo_reactor(Config::default());
    let (b, _) = echo_reactor(Config::default());
    assert!(a.handle().same_reactor(&a.handle()));
    assert!(!a.handle().same_reactor(&b.handle()));
}

/// Keeps the handle type in the public API honest: it crosses threads and is shared.
#[test]
fn the_handle_is_send_sync_and_clone() {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
    assert_send_sync_clone::<LoopHandle>();
}

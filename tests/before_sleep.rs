//! The per-turn hook: once per turn, before the poll; what it writes leaves in the same turn;
//! a panic removes it and the loop goes on.

mod util;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{ConnId, Context, Handler, ListenOptions, Reactor, Record};
use util::{init_logging, turn_until, WAIT};

#[test]
fn the_hook_runs_once_per_turn_right_before_the_poll() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (hook_log, trace_log) = (order.clone(), order.clone());
    reactor.before_sleep(move |_| hook_log.borrow_mut().push("hook"));
    reactor.set_observer(move |_: Instant, record: &Record| match record {
        Record::TurnStart { .. } => trace_log.borrow_mut().push("poll"),
        Record::TurnEnd { .. } => trace_log.borrow_mut().push("end"),
        _ => {}
    });
    reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap();
    for _ in 0..5 {
        reactor.turn(Some(Duration::from_millis(1))).unwrap();
    }
    let order = order.borrow();
    assert_eq!(*order, ["hook", "poll", "end"].repeat(5));
}

/// Notes its connection's id in a shared list on each input; the hook answers.
struct Queues(Rc<RefCell<Vec<ConnId>>>);

impl Handler for Queues {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.0.borrow_mut().push(ctx.id());
        data.len()
    }
}

#[test]
fn what_the_hook_writes_leaves_in_the_same_turn() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let pending = Rc::new(RefCell::new(Vec::new()));
    let queued = pending.clone();
    let hook_turns = Rc::new(RefCell::new(Vec::new()));
    let turns = hook_turns.clone();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (seen, from_hook) = (order.clone(), order.clone());
    reactor.set_observer(move |_: Instant, record: &Record| match record {
        Record::Write { .. } => seen.borrow_mut().push("write"),
        Record::TurnStart { .. } => seen.borrow_mut().push("poll"),
        _ => {}
    });
    reactor.before_sleep(move |lc| {
        for id in queued.borrow_mut().drain(..) {
            from_hook.borrow_mut().push("hook");
            lc.write(id, b"answer").unwrap();
            turns.borrow_mut().push(id);
        }
    });
    let for_factory = pending.clone();
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), move |_| {
            Some(Queues(for_factory.clone()))
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    client.write_all(b"ask").unwrap();
    turn_until(&mut reactor, |_| !hook_turns.borrow().is_empty());
    // Sent by the turn that ran the hook, before its poll: no further turn is needed.
    assert_eq!(reactor.stats().bytes_out, 6);
    let order = order.borrow();
    let hook = order.iter().position(|step| *step == "hook").unwrap();
    assert_eq!(
        order[hook..],
        ["hook", "write", "poll"],
        "the write left before the poll"
    );
    let mut reply = [0; 6];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"answer");
}

#[test]
fn a_panicking_hook_is_removed_and_the_loop_goes_on() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    reactor.before_sleep(move |_| {
        counted.set(counted.get() + 1);
        panic!("batch failed");
    });
    reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap();
    for _ in 0..3 {
        reactor.turn(Some(Duration::from_millis(1))).unwrap();
    }
    assert_eq!(calls.get(), 1);
    assert_eq!(reactor.stats().handler_panics, 1);
    assert!(!reactor.clear_before_sleep(), "the hook was removed");
}

#[test]
fn a_cleared_hook_no_longer_runs() {
    let mut reactor = Reactor::new().unwrap();
    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    reactor.before_sleep(move |_| counted.set(counted.get() + 1));
    reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap();
    reactor.turn(Some(Duration::from_millis(1))).unwrap();
    assert!(reactor.clear_before_sleep());
    reactor.turn(Some(Duration::from_millis(1))).unwrap();
    assert_eq!(calls.get(), 1);
}

#[test]
fn the_hook_reads_the_reactors_stats() {
    init_logging();
    let mut reactor = Reactor::new().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let seen = accepted.clone();
    reactor.before_sleep(move |lc| seen.set(lc.stats().accepted));
    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let _client = TcpStream::connect(addr).unwrap();
    turn_until(&mut reactor, |_| accepted.get() == 1);
    assert_eq!(reactor.stats().accepted, 1);
}

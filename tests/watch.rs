//! Any pollable source in the loop: a pipe's readiness reaches its handler, a watch ends when
//! asked (dropping its source), and what epoll cannot poll gets a clear error.

mod util;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::Instant;

use mio::unix::pipe;
use mio::Interest;
use mio_reactor::{FdSource, ListenOptions, Reactor, Readiness, Record, WatchContext};
use util::{loopback, turn_until, Server};

/// Reads a pipe until it would block; `None` at EOF.
fn drain(pipe: &mut pipe::Receiver, into: &mut Vec<u8>) -> Option<()> {
    let mut buf = [0; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return None,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(()),
            Err(e) => panic!("reading the pipe: {e}"),
        }
    }
}

#[test]
fn watching_a_pipe_delivers_its_readiness_and_bytes() {
    let (mut sender, receiver) = pipe::new().unwrap();
    let heard = Rc::new(RefCell::new((Vec::new(), Vec::new())));
    let seen = heard.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .watch(
            receiver,
            Interest::READABLE,
            move |pipe: &mut pipe::Receiver, ready: Readiness, _: &mut WatchContext<'_>| {
                let (bytes, readiness) = &mut *seen.borrow_mut();
                readiness.push(ready);
                let _ = drain(pipe, bytes);
            },
        )
        .unwrap();
    sender
        .write_all(b"from another part of the program")
        .unwrap();
    turn_until(&mut reactor, |_| !heard.borrow().0.is_empty());
    let (bytes, readiness) = &*heard.borrow();
    assert_eq!(bytes, b"from another part of the program");
    assert!(readiness.iter().all(Readiness::is_readable));
}

#[test]
fn a_pipe_whose_writers_closed_is_reported_closed() {
    let (sender, receiver) = pipe::new().unwrap();
    let closed = Rc::new(RefCell::new(false));
    let seen = closed.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .watch(
            receiver,
            Interest::READABLE,
            move |_: &mut pipe::Receiver, ready: Readiness, _: &mut WatchContext<'_>| {
                *seen.borrow_mut() |= ready.is_closed();
            },
        )
        .unwrap();
    drop(sender);
    turn_until(&mut reactor, |_| *closed.borrow());
}

#[test]
fn an_unwatched_source_is_dropped_and_its_handler_not_called_again() {
    let (mut sender, receiver) = pipe::new().unwrap();
    let calls = Rc::new(RefCell::new(0));
    let counted = calls.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .watch(
            receiver,
            Interest::READABLE,
            move |pipe: &mut pipe::Receiver, _: Readiness, ctx: &mut WatchContext<'_>| {
                *counted.borrow_mut() += 1;
                let _ = drain(pipe, &mut Vec::new());
                ctx.unwatch();
            },
        )
        .unwrap();
    sender.write_all(b"once").unwrap();
    turn_until(&mut reactor, |r| r.is_finished());
    // The reading end went with the watch: writing now finds no reader.
    let err = sender.write_all(b"twice").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    assert_eq!(*calls.borrow(), 1);
}

#[test]
fn a_regular_file_cannot_be_watched_and_says_why() {
    let file = std::fs::File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let mut reactor = Reactor::new().unwrap();
    let err = reactor
        .watch(
            FdSource(file),
            Interest::READABLE,
            |_: &mut FdSource<std::fs::File>, _: Readiness, _: &mut WatchContext<'_>| {},
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("regular files"), "{err}");
    assert!(reactor.is_finished(), "nothing was watched");
}

#[test]
fn an_id_of_an_ended_watch_matches_nothing() {
    let (_sender, receiver) = pipe::new().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let id = reactor
        .watch(
            receiver,
            Interest::READABLE,
            |_: &mut pipe::Receiver, _: Readiness, _: &mut WatchContext<'_>| {},
        )
        .unwrap();
    assert!(reactor.unwatch(id));
    turn_until(&mut reactor, |r| r.is_finished());
    assert!(!reactor.unwatch(id));
}

#[test]
fn watches_do_not_keep_a_shut_down_reactor_running() {
    let (sender, receiver) = pipe::new().unwrap();
    let server = Server::start(Default::default(), move |reactor| {
        reactor.watch(
            receiver,
            Interest::READABLE,
            |_: &mut pipe::Receiver, _: Readiness, _: &mut WatchContext<'_>| {},
        )?;
        reactor.listen(loopback(), ListenOptions::default(), |_: &_| {
            Some(util::Echo)
        })
    });
    server.stop(); // panics unless run() returns in time
    drop(sender);
}

#[test]
fn a_panicking_watch_handler_ends_only_its_watch() {
    let (mut fragile_tx, fragile_rx) = pipe::new().unwrap();
    let (mut sturdy_tx, sturdy_rx) = pipe::new().unwrap();
    let heard = Rc::new(RefCell::new(Vec::new()));
    let seen = heard.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .watch(
            fragile_rx,
            Interest::READABLE,
            |_: &mut pipe::Receiver, _: Readiness, _: &mut WatchContext<'_>| panic!("fragile"),
        )
        .unwrap();
    reactor
        .watch(
            sturdy_rx,
            Interest::READABLE,
            move |pipe: &mut pipe::Receiver, _: Readiness, _: &mut WatchContext<'_>| {
                let _ = drain(pipe, &mut seen.borrow_mut());
            },
        )
        .unwrap();
    fragile_tx.write_all(b"x").unwrap();
    turn_until(&mut reactor, |r| r.stats().handler_panics == 1);
    sturdy_tx.write_all(b"still watched").unwrap();
    turn_until(&mut reactor, |_| !heard.borrow().is_empty());
    assert_eq!(*heard.borrow(), b"still watched");
    assert_eq!(
        fragile_tx.write_all(b"y").unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[test]
fn a_watch_leaves_trace_records_named_by_its_id() {
    let (mut sender, receiver) = pipe::new().unwrap();
    let mut reactor = Reactor::new().unwrap();
    let records = Rc::new(RefCell::new(Vec::new()));
    let kept = records.clone();
    reactor.set_observer(move |_: Instant, record: &Record| {
        if matches!(record, Record::WatchReady { .. } | Record::Unwatched { .. }) {
            kept.borrow_mut().push(record.to_string());
        }
    });
    let id = reactor
        .watch(
            receiver,
            Interest::READABLE,
            |pipe: &mut pipe::Receiver, _: Readiness, ctx: &mut WatchContext<'_>| {
                let _ = drain(pipe, &mut Vec::new());
                ctx.unwatch();
            },
        )
        .unwrap();
    sender.write_all(b"x").unwrap();
    turn_until(&mut reactor, |r| r.is_finished());
    assert_eq!(
        *records.borrow(),
        [format!("{id} ready: readable"), format!("{id} unwatched")]
    );
}

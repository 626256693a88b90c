//! The observer hook: the reactor's life as structured records, in order, and nothing when
//! nobody listens.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Input, ListenOptions, Reactor, Record, State};
use util::{client, init_logging, loopback, Echo, WAIT};

/// Runs one echo exchange (send, half-close, read to EOF) through a reactor driven here,
/// with an observer collecting every record.
fn observed_echo_session() -> Vec<Record> {
    init_logging();
    let records = Rc::new(RefCell::new(Vec::new()));
    let sink = records.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor.set_observer(move |_: Instant, record: &Record| sink.borrow_mut().push(record.clone()));
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_| Some(Echo))
        .unwrap()
        .local_addr()
        .unwrap();
    let peer = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"hello").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut echo = Vec::new();
        stream.read_to_end(&mut echo).unwrap();
        echo
    });
    let deadline = Instant::now() + WAIT;
    while !records
        .borrow()
        .iter()
        .any(|r| matches!(r, Record::Closed { .. }))
    {
        assert!(Instant::now() < deadline, "the session did not end");
        reactor.turn(Some(Duration::from_millis(50))).unwrap();
    }
    assert_eq!(peer.join().unwrap(), b"hello");
    records.take()
}

/// The position of the first record matching `wanted`.
fn position(records: &[Record], wanted: impl Fn(&Record) -> bool) -> usize {
    records.iter().position(wanted).expect("record present")
}

#[test]
fn an_echo_sessions_records_tell_its_story_in_order() {
    let records = observed_echo_session();
    let accepted = position(&records, |r| matches!(r, Record::Accepted { .. }));
    let read = position(&records, |r| matches!(r, Record::Read { bytes: 5, .. }));
    let wrote = position(&records, |r| matches!(r, Record::Write { bytes: 5, .. }));
    let eof = position(&records, |r| matches!(r, Record::Read { bytes: 0, .. }));
    let half_closed = position(&records, |r| {
        matches!(
            r,
            Record::Transition {
                from: State::Open,
                input: Input::PeerEof,
                to: State::PeerHalfClosed,
                ..
            }
        )
    });
    let fin = position(&records, |r| matches!(r, Record::FinSent { .. }));
    let closed = position(&records, |r| matches!(r, Record::Closed { .. }));
    assert!(
        accepted < read && read < wrote && wrote < eof,
        "{records:#?}"
    );
    assert!(
        eof < half_closed && half_closed < fin && fin < closed,
        "{records:#?}"
    );
    assert!(matches!(
        &records[closed],
        Record::Closed {
            reason: CloseReason::PeerClosed,
            bytes_in: 5,
            bytes_out: 5,
            ..
        }
    ));
    // Every turn that started also ended, and readiness events came in between.
    let starts = records
        .iter()
        .filter(|r| matches!(r, Record::TurnStart { .. }))
        .count();
    let ends = records
        .iter()
        .filter(|r| matches!(r, Record::TurnEnd { .. }))
        .count();
    assert_eq!(starts, ends);
    assert!(records
        .iter()
        .any(|r| matches!(r, Record::Readiness { readable: true, .. })));
}

#[test]
fn no_record_reaches_a_cleared_observer() {
    let count = Rc::new(RefCell::new(0));
    let counter = count.clone();
    let mut reactor = Reactor::new().unwrap();
    reactor.set_observer(move |_: Instant, _: &Record| *counter.borrow_mut() += 1);
    reactor
        .listen(loopback(), ListenOptions::default(), |_| Some(Echo))
        .unwrap(); // something to turn for
    reactor.turn(Some(Duration::ZERO)).unwrap();
    let seen = *count.borrow();
    assert!(seen >= 2, "turn start and end");
    reactor.clear_observer();
    reactor.turn(Some(Duration::ZERO)).unwrap();
    assert_eq!(*count.borrow(), seen);
}

//! Unix signals as events of the loop. Each test raises a signal no other test here
//! watches, since a signal reaches the whole test process.

mod util;

use std::cell::RefCell;
use std::io::{ErrorKind, Write};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{CloseReason, Config, Context, Handler, ListenOptions, Reactor};
use signal_hook::low_level::raise;
use util::{client, loopback, round_trip, turn_until, Server, WAIT};

#[test]
fn a_watched_signal_reaches_its_handler_in_the_loop() {
    let mut reactor = Reactor::new().unwrap();
    let received = Rc::new(RefCell::new(Vec::new()));
    let kept = received.clone();
    reactor
        .on_signals(&[libc::SIGUSR1], move |signal, _| {
            kept.borrow_mut().push(signal)
        })
        .unwrap();
    raise(libc::SIGUSR1).unwrap();
    turn_until(&mut reactor, |_| !received.borrow().is_empty());
    assert_eq!(*received.borrow(), [libc::SIGUSR1]);
}

#[test]
fn a_signal_that_cannot_be_handled_is_an_error() {
    let mut reactor = Reactor::new().unwrap();
    let err = reactor.on_signals(&[libc::SIGKILL], |_, _| {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

/// Echoes, and says when it is asked to finish.
struct Announcing(mpsc::Sender<()>);

impl Handler for Announcing {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        let _ = self.0.send(());
        ctx.close_with(CloseReason::Shutdown);
    }
}

/// SIGTERM and SIGINT both go to this one test: any other test of this process watching
/// them would see its signals too.
#[test]
fn sigterm_drains_gracefully_and_a_second_signal_aborts_what_is_left() {
    let (asked, shutting_down) = mpsc::channel();
    // Deadlines far beyond every wait here: only the second signal can end the drain.
    let far = Duration::from_secs(600);
    let config = Config::default().shutdown_timeout(far).close_timeout(far);
    let server = Server::start(config, move |reactor| {
        reactor.shutdown_on_signals()?;
        reactor.listen(loopback(), ListenOptions::default(), move |_: &_| {
            Some(Announcing(asked.clone()))
        })
    });
    let mut reader = client(server.addr);
    assert_eq!(round_trip(&mut reader, b"before"), b"before");
    // Sends without reading: once the buffers on the way are full, its echo cannot be
    // flushed, and its graceful close cannot finish.
    let mut stuck = client(server.addr);
    assert_eq!(round_trip(&mut stuck, b"stuck"), b"stuck");
    let writer = std::thread::spawn(move || {
        let chunk = vec![7; 64 * 1024];
        loop {
            if let Err(err) = stuck.write_all(&chunk) {
                return err.kind();
            }
        }
    });

    raise(libc::SIGTERM).unwrap();
    for _ in 0..2 {
        shutting_down.recv_timeout(WAIT).expect("on_shutdown");
    }
    // The reader's connection drains: the server's FIN, no reset.
    assert_eq!(util::read_to_end(&mut reader), b"");
    drop(reader);

    raise(libc::SIGINT).unwrap();
    let stats = server.wait(); // within WAIT, long before the shutdown deadline
    assert_eq!(stats.closed.shutdown, 2);
    let ended = writer.join().unwrap();
    assert!(
        matches!(ended, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
        "the stuck client was reset: {ended:?}"
    );
}

//! Each test here is named after a bug that was found, and pins its fix.

mod util;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{CloseReason, Config};
use util::{client, loopback, next_close, random_bytes, Echo, Reporting, Server};

/// A timer that closed a connection (here the graceful-close deadline) listed it for removal,
/// but `poll` then blocked with no timer left: the close was reported only when some
/// unrelated event woke the loop, possibly never.
#[test]
fn a_connection_closed_by_a_timer_is_removed_without_waiting_for_another_event() {
    let (tx, closes) = mpsc::channel();
    let config = Config::default()
        .idle_timeout(Some(Duration::from_millis(50)))
        .close_timeout(Duration::from_millis(100));
    let server = Server::start(config, move |reactor| {
        reactor.listen(loopback(), move |_: &_| {
            Some(Reporting {
                inner: Echo,
                events: tx.clone(),
            })
        })
    });
    // Idle: the server closes gracefully, sends its FIN, and waits for ours. We never send
    // it, so the close deadline must finish the job on its own.
    let mut silent = client(server.addr);
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).unwrap();
    assert_eq!(next_close(&closes), CloseReason::IdleTimeout);
    drop(silent);
    server.stop();
}

/// A client that sends a request and closes without reading the reply: our reply reaches a
/// closed socket, whose kernel answers with a reset. When that reset landed between our read
/// of the client's EOF and our FIN, `shutdown(SHUT_WR)` failed with `ENOTCONN` and the close
/// was reported as `Io(NotConnected)`, an error of ours, instead of `Reset`.
#[test]
fn a_reset_that_lands_just_before_our_fin_is_reported_as_reset_not_an_io_error() {
    let (tx, closes) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), move |_: &_| {
            Some(Reporting {
                inner: Echo,
                events: tx.clone(),
            })
        })
    });
    // The race is narrow: try many times. Every close must be graceful or a reset.
    const ATTEMPTS: u64 = 300;
    for attempt in 0..ATTEMPTS {
        let mut rude = client(server.addr);
        rude.write_all(&random_bytes(attempt, 32 * 1024)).unwrap();
        drop(rude);
        let reason = next_close(&closes);
        assert!(
            reason.is_graceful() || reason == CloseReason::Reset,
            "attempt {attempt}: closed with {reason:?}"
        );
    }
    let stats = server.stop();
    assert_eq!(stats.closed.io_error, 0, "{stats:?}");
    assert_eq!(stats.closed.total(), ATTEMPTS);
}

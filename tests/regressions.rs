//! Each test here is named after a bug that was found, and pins its fix.

mod util;

use std::io::Read;
use std::time::Duration;

use mio_reactor::{CloseReason, Config};
use util::{client, next_close, Server};

/// A timer that closed a connection (here the graceful-close deadline) listed it for removal,
/// but `poll` then blocked with no timer left: the close was reported only when some
/// unrelated event woke the loop, possibly never.
#[test]
fn a_connection_closed_by_a_timer_is_removed_without_waiting_for_another_event() {
    let config = Config::default()
        .idle_timeout(Some(Duration::from_millis(50)))
        .close_timeout(Duration::from_millis(100));
    let (server, closes) = Server::reporting_echo(config);
    // Idle: the server closes gracefully, sends its FIN, and waits for ours. We never send
    // it, so the close deadline must finish the job on its own.
    let mut silent = client(server.addr);
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest).unwrap();
    assert_eq!(next_close(&closes), CloseReason::IdleTimeout);
    drop(silent);
    server.stop();
}

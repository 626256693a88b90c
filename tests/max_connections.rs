//! At `max_connections` the reactor stops accepting, and starts again when one closes.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use mio_reactor::Config;
use util::{client, round_trip, Server, WAIT};

#[test]
fn max_connections_is_enforced_and_recovers_when_a_connection_closes() {
    let server = Server::echo(Config::default().max_connections(2));
    let mut a = client(server.addr);
    let mut b = client(server.addr);
    assert_eq!(round_trip(&mut a, b"a"), b"a");
    assert_eq!(round_trip(&mut b, b"b"), b"b");

    // The kernel completes the handshake (backlog), but the reactor does not accept it.
    let mut c = client(server.addr);
    c.write_all(b"c").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut reply = [0; 1];
    let waiting = c.read(&mut reply);
    assert!(
        matches!(&waiting, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "third connection was served: {waiting:?}"
    );

    drop(a); // frees a slot
    c.set_read_timeout(Some(WAIT)).unwrap();
    c.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"c", "served once a slot freed");
    drop((b, c));
    let stats = server.stop();
    assert_eq!(stats.accepted, 3);
}

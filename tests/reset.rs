//! A peer that resets its connection costs only that connection.

mod util;

use std::io::Write;
use std::time::Duration;

use mio_reactor::{CloseReason, Config};
use util::{client, next_close, random_bytes, round_trip, Server};

/// Closes with SO_LINGER 0, which sends a reset instead of a FIN.
fn reset(stream: std::net::TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

#[test]
fn a_reset_peer_is_closed_as_reset_and_the_others_are_served() {
    let (server, closes) = Server::reporting_echo(Config::default());
    let mut bystander = client(server.addr);
    assert_eq!(round_trip(&mut bystander, b"one"), b"one");

    // Mid-stream: the server has echo output queued for a peer that vanishes.
    let mut rude = client(server.addr);
    rude.write_all(&random_bytes(9, 1_000_000)).unwrap();
    reset(rude);
    assert_eq!(next_close(&closes), CloseReason::Reset);

    assert_eq!(round_trip(&mut bystander, b"two"), b"two");
    drop(bystander);
    let stats = server.stop();
    assert_eq!(stats.closed.reset, 1);
}

#[test]
fn many_resets_interleaved_with_normal_clients_leave_no_connection_behind() {
    let server = Server::echo(Config::default());
    for round in 0..200u64 {
        let mut rude = client(server.addr);
        rude.write_all(&random_bytes(round, 10_000)).unwrap();
        reset(rude);
        let mut polite = client(server.addr);
        let message = random_bytes(round + 1000, 100);
        assert_eq!(round_trip(&mut polite, &message), message);
    }
    let stats = server.stop();
    assert_eq!(stats.accepted, 400);
    assert_eq!(stats.open_connections, 0);
    assert_eq!(stats.closed.total(), 400);
}

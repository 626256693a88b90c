//! TLS on a group of reactor threads: `ReactorThreads::serve` with `ListenOptions::tls` and
//! `Spread::ReusePort` (N reactors sharing a port through `SO_REUSEPORT`) or
//! `Spread::LeastLoaded` (one acceptor handing sockets to N reactors, which run the
//! handshakes) echo byte-exact to rustls clients, with the
//! connections served by more than one reactor.

mod util;

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio_reactor::{Config, ListenOptions, ReactorThreads, Spread, Stats};
use util::tls::{
    close_notify_and_fin, handshake, read_to_close_notify, tls_client, Pki, TlsClient,
};
use util::{init_logging, loopback, random_bytes, Echo};

/// Connections opened per test. `SO_REUSEPORT` spreads them by a hash of their addresses
/// (each has its own ephemeral port): all 16 on one of two reactors has a chance of 2^-15.
const CONNECTIONS: u64 = 16;

/// Opens `CONNECTIONS` TLS clients to `addr` at once and checks that each gets back exactly
/// the bytes it sent (16 KiB of its own, more than one TLS record). The clients stay open
/// until every echo is in, then close the TLS way (close_notify, FIN) and see the server's
/// close_notify: no connection ends as a truncation.
fn every_client_gets_its_own_bytes_back(pki: &Pki, addr: SocketAddr) {
    let mut clients: Vec<(TlsClient, Vec<u8>)> = (0..CONNECTIONS)
        .map(|seed| {
            let mut client = tls_client(addr, pki.client_config());
            handshake(&mut client).expect("handshake");
            (client, random_bytes(seed, 16 * 1024))
        })
        .collect();
    for (client, sent) in &mut clients {
        client.write_all(sent).unwrap();
    }
    for (i, (client, sent)) in clients.iter_mut().enumerate() {
        let mut echo = vec![0; sent.len()];
        client.read_exact(&mut echo).expect("the echo");
        assert!(echo == *sent, "connection {i}: the echo differs");
    }
    for (client, _) in &mut clients {
        close_notify_and_fin(client);
        let rest = read_to_close_notify(client).expect("the server's close_notify");
        assert!(rest.is_empty());
    }
}

/// Echoes through a group of reactors (see [`every_client_gets_its_own_bytes_back`]), then
/// shuts it down; their stats, after checking that every connection closed cleanly.
fn echo_through(pki: &Pki, started: io::Result<ReactorThreads>) -> Vec<Stats> {
    let threads = started.expect("the reactors started");
    let addr = threads.local_addr().expect("a TCP address");
    every_client_gets_its_own_bytes_back(pki, addr);
    threads.shutdown_handle().shutdown();
    let stats = threads.join().unwrap();
    let tls_closes: u64 = stats.iter().map(|s| s.closed.tls).sum();
    assert_eq!(tls_closes, 0, "clean TLS closes");
    stats
}

#[test]
fn serve_tls_echoes_byte_exact_over_connections_spread_on_every_reactor() {
    init_logging();
    let pki = Pki::localhost();
    let config = Config::default();
    let started = ReactorThreads::serve(
        2,
        config,
        loopback(),
        ListenOptions::default().tls(pki.server_config()),
        Spread::ReusePort,
        |_, _| |_: &_| Some(Echo),
    );
    let stats = echo_through(&pki, started);
    let accepted: Vec<u64> = stats.iter().map(|s| s.accepted).collect();
    assert_eq!(accepted.iter().sum::<u64>(), CONNECTIONS, "{accepted:?}");
    assert!(
        accepted.iter().all(|&n| n > 0),
        "every reactor served some: {accepted:?}"
    );
}

#[test]
fn serve_balanced_tls_runs_each_handshake_on_the_reactor_it_hands_the_socket_to() {
    init_logging();
    let pki = Pki::localhost();
    let config = Config::default();
    let started = ReactorThreads::serve(
        2,
        config,
        loopback(),
        ListenOptions::default().tls(pki.server_config()),
        Spread::LeastLoaded,
        |_, _| |_: &_| Some(Echo),
    );
    let stats = echo_through(&pki, started);
    let adopted: Vec<u64> = stats.iter().map(|s| s.adopted).collect();
    let half = CONNECTIONS / 2;
    assert_eq!(adopted, [half, half, 0], "long-lived: evenly spread");
    assert_eq!(stats[2].handed_over, CONNECTIONS);
    assert_eq!(stats[2].bytes_in, 0, "the acceptor reads nothing");
}

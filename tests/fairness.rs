//! One busy connection must not starve the others: reads are budgeted per dispatch.

mod util;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use std::time::{Duration, Instant};

use mio_reactor::{Config, Context, Handler, ListenOptions, Reactor};
use util::{client, init_logging, loopback, random_bytes, round_trip, Server, WAIT};

/// Floods the server with echo traffic (reading it back on another thread) until `stop`;
/// `flowing` hears once the first echo came back.
fn flood(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    flowing: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut writer = client(addr);
        let mut reader = writer.try_clone().unwrap();
        let drain = std::thread::spawn(move || {
            let mut buf = vec![0; 1 << 16];
            let mut total = 0u64;
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if total == 0 {
                    let _ = flowing.send(());
                }
                total += n as u64;
            }
            total
        });
        let chunk = random_bytes(1, 1 << 16);
        while !stop.load(Ordering::SeqCst) {
            writer.write_all(&chunk).unwrap();
        }
        writer.shutdown(std::net::Shutdown::Write).unwrap();
        drain.join().unwrap()
    })
}

fn pings_get_through_a_flood(config: Config) {
    let server = Server::echo(config);
    let stop = Arc::new(AtomicBool::new(false));
    let (flowing_tx, flowing) = std::sync::mpsc::channel();
    let flooders: Vec<_> = (0..2)
        .map(|_| flood(server.addr, stop.clone(), flowing_tx.clone()))
        .collect();
    for _ in 0..2 {
        flowing.recv_timeout(WAIT).expect("the flood is flowing");
    }
    let mut pinger = client(server.addr);
    for i in 0..50u8 {
        assert_eq!(
            round_trip(&mut pinger, &[i; 32]),
            [i; 32],
            "ping {i} starved"
        );
    }
    stop.store(true, Ordering::SeqCst);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    drop(pinger);
    server.stop();
}

#[test]
fn pings_get_through_while_other_connections_flood() {
    pings_get_through_a_flood(Config::default());
}

/// Consumes and discards everything.
struct Sink;

impl Handler for Sink {
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn a_connection_reads_at_most_its_budget_per_turn_and_the_rest_without_a_new_edge() {
    init_logging();
    const TOTAL: u64 = 4 * 1024 * 1024;
    let budget = 64 * 1024;
    let config = Config::default()
        .read_buffer_size(16 * 1024)
        .read_budget(budget);
    let mut reactor = Reactor::with_config(config).unwrap();
    let addr = reactor
        .listen(loopback(), ListenOptions::default(), |_| Some(Sink))
        .unwrap()
        .local_addr()
        .unwrap();
    let sender = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(&random_bytes(2, TOTAL as usize)).unwrap();
        stream // kept open: no EOF edge may help the reactor along
    });

    let deadline = Instant::now() + WAIT;
    let (mut read, mut most_in_one_turn) = (0, 0);
    while read < TOTAL {
        assert!(
            Instant::now() < deadline,
            "stalled at {read} of {TOTAL} bytes"
        );
        reactor.turn(Some(Duration::from_millis(10))).unwrap();
        let now = reactor.stats().bytes_in;
        most_in_one_turn = most_in_one_turn.max(now - read);
        read = now;
    }
    assert!(
        most_in_one_turn <= budget as u64,
        "one turn read {most_in_one_turn} B, budget {budget} B"
    );
    drop(sender.join().unwrap());
}

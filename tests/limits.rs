//! Hard caps: a peer that runs into one is closed with a clear reason, and nobody else is.

mod util;

use std::io::{Read, Write};
use std::sync::mpsc;

use mio_reactor::{CloseReason, Config, Context, Handler, Limit, ListenOptions};
use util::{client, loopback, next_close, random_bytes, round_trip, Echo, Reporting, Server};

/// Answers any input with far more output than the peer will read.
struct Flood;

impl Handler for Flood {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let chunk = vec![b'x'; 1024 * 1024];
        for _ in 0..64 {
            ctx.write(&chunk);
        }
        data.len()
    }
}

/// Never consumes anything: waits for a message that never completes.
struct Hoard;

impl Handler for Hoard {
    fn on_data(&mut self, _: &mut Context<'_>, _: &[u8]) -> usize {
        0
    }
}

/// A server with one listener for `H`, reporting closes, and one plain echo listener.
fn server_with<H: Handler>(
    config: Config,
    make: fn() -> H,
) -> (Server, std::net::SocketAddr, mpsc::Receiver<util::Seen>) {
    let (tx, rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    let server = Server::start(config, move |reactor| {
        let special = reactor
            .listen(loopback(), ListenOptions::default(), move |_| {
                Some(Reporting {
                    inner: make(),
                    events: tx.clone(),
                })
            })?
            .local_addr()?;
        addr_tx.send(special).unwrap();
        reactor.listen(loopback(), ListenOptions::default(), |_| Some(Echo))
    });
    let special = addr_rx.recv().unwrap();
    (server, special, rx)
}

#[test]
fn output_past_the_hard_cap_closes_only_the_peer_that_does_not_read() {
    let config = Config::default().max_output(1024 * 1024);
    let (server, flood_addr, closes) = server_with(config, || Flood);
    let mut bystander = client(server.addr);
    assert_eq!(round_trip(&mut bystander, b"before"), b"before");

    let mut hog = client(flood_addr);
    hog.write_all(b"go").unwrap();
    assert_eq!(
        next_close(&closes),
        CloseReason::LimitExceeded(Limit::Output)
    );

    assert_eq!(round_trip(&mut bystander, b"after"), b"after");
    drop((hog, bystander));
    let stats = server.stop();
    assert_eq!(stats.closed.limit_exceeded, 1);
}

#[test]
fn input_past_the_cap_closes_only_the_peer_that_sent_it() {
    let config = Config::default().max_input(64 * 1024);
    let (server, hoard_addr, closes) = server_with(config, || Hoard);
    let mut bystander = client(server.addr);

    let mut hog = client(hoard_addr);
    hog.write_all(&random_bytes(1, 200 * 1024)).unwrap();
    assert_eq!(
        next_close(&closes),
        CloseReason::LimitExceeded(Limit::Input)
    );
    // The offender sees its connection end (reset or EOF), never a hang.
    let mut rest = Vec::new();
    let _ = hog.read_to_end(&mut rest);

    assert_eq!(round_trip(&mut bystander, b"still here"), b"still here");
    drop(bystander);
    server.stop();
}

/// Writes 2 MiB at open and reports how much of it the kernel refused to take at once.
struct Burst(mpsc::Sender<usize>);

impl Handler for Burst {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(&vec![b'b'; 2 * 1024 * 1024]);
        self.0.send(ctx.buffered_output()).unwrap();
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

/// What the kernel takes of a 2 MiB write to a peer that is not reading, with `config`.
fn refused_by_kernel(config: Config) -> usize {
    let (tx, refused) = mpsc::channel();
    let server = Server::start(config.max_output(4 * 1024 * 1024), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Burst(tx.clone()))
        })
    });
    let stream = client(server.addr);
    let buffered = refused.recv_timeout(util::WAIT).unwrap();
    drop(stream);
    server.stop();
    buffered
}

#[test]
fn socket_buffer_sizes_cap_what_the_kernel_holds_for_a_peer_that_does_not_read() {
    // Loopback TCP starts with a send buffer of about a megabyte and more room at the
    // receiver; capped at 16 KiB (doubled by Linux), the kernel takes a small part.
    let capped = refused_by_kernel(
        Config::default()
            .socket_send_buffer(Some(16 * 1024))
            .socket_recv_buffer(Some(16 * 1024)),
    );
    assert!(
        capped > 2 * 1024 * 1024 - 256 * 1024,
        "kernel took {} B",
        2 * 1024 * 1024 - capped
    );
}

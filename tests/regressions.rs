//! Each test here is named after a bug that was found, and pins its fix.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use mio_reactor::{CloseReason, Config, ListenOptions};
use util::{client, next_close, random_bytes, Server};

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

/// Reports whether its output backed up, then every callback after `close()`; only
/// `on_close` may come.
struct CloseThenDrain {
    after_close: std::sync::mpsc::Sender<&'static str>,
    closed: bool,
}

impl mio_reactor::Handler for CloseThenDrain {
    fn on_data(&mut self, ctx: &mut mio_reactor::Context<'_>, data: &[u8]) -> usize {
        // Far past the high water mark, so reading pauses, then close at once.
        // (More than a new loopback socket's send buffer, which starts near 1.3 MB.)
        ctx.write(&vec![b'z'; 8 * 1024 * 1024]);
        self.after_close
            .send(if ctx.buffered_output() > ctx.config().get_high_water() {
                "backed up"
            } else {
                "premise failed: all output left at once"
            })
            .unwrap();
        ctx.close();
        self.closed = true;
        data.len()
    }
    fn on_drain(&mut self, _: &mut mio_reactor::Context<'_>) {
        if self.closed {
            self.after_close.send("on_drain").unwrap();
        }
    }
    fn on_close(&mut self, _: &mut mio_reactor::Context<'_>, _: &CloseReason) {
        self.after_close.send("on_close").unwrap();
    }
}

/// `on_drain` was called when a closing connection's output drained, although the handler
/// docs promise that only `on_close` follows a close.
#[test]
fn on_drain_is_not_called_after_close() {
    let (tx, callbacks) = std::sync::mpsc::channel();
    let config = Config::default().max_output(16 * 1024 * 1024);
    let server = Server::start(config, move |reactor| {
        reactor.listen(util::loopback(), ListenOptions::default(), move |_| {
            Some(CloseThenDrain {
                after_close: tx.clone(),
                closed: false,
            })
        })
    });
    // A small receive window, so that most of the megabyte stays buffered in the server.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(util::WAIT)).unwrap();
    std::io::Write::write_all(&mut stream, b"go").unwrap();
    // Not a byte is read before the server has written: its output must back up.
    assert_eq!(callbacks.recv_timeout(util::WAIT).unwrap(), "backed up");
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap(); // drains the output, then EOF
    assert_eq!(all.len(), 8 * 1024 * 1024);
    drop(stream);
    assert_eq!(callbacks.recv_timeout(util::WAIT).unwrap(), "on_close");
    server.stop();
}

/// Consumes exactly one line per call, as a simple line protocol would.
struct OneLineAtATime;

impl mio_reactor::Handler for OneLineAtATime {
    fn on_data(&mut self, ctx: &mut mio_reactor::Context<'_>, data: &[u8]) -> usize {
        match data.iter().position(|&b| b == b'\n') {
            Some(end) => {
                ctx.write(&data[..=end]);
                end + 1
            }
            None => 0,
        }
    }
}

/// A handler that consumed one message per `on_data` call left the other whole messages of
/// the same read waiting until more bytes arrived, possibly forever.
#[test]
fn whole_messages_left_after_a_partial_consume_are_offered_again_at_once() {
    let server = Server::start(Config::default(), |reactor| {
        reactor.listen(util::loopback(), ListenOptions::default(), |_| {
            Some(OneLineAtATime)
        })
    });
    let mut stream = client(server.addr);
    std::io::Write::write_all(&mut stream, b"one\ntwo\nthree\n").unwrap();
    let mut echo = [0; 14];
    stream.read_exact(&mut echo).unwrap(); // without the fix: only "one\n" ever comes back
    assert_eq!(&echo, b"one\ntwo\nthree\n");
    drop(stream);
    server.stop();
}

/// A client that sends a request and closes without reading the reply: our reply reaches a
/// closed socket, whose kernel answers with a reset. When that reset landed between our read
/// of the client's EOF and our FIN, `shutdown(SHUT_WR)` failed with `ENOTCONN` and the close
/// was reported as `Io(NotConnected)`, an error of ours, instead of `Reset`.
#[test]
fn a_reset_that_lands_just_before_our_fin_is_reported_as_reset_not_an_io_error() {
    let (server, closes) = Server::reporting_echo(Config::default());
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

/// `Reactor::listen` took mio's `TcpListener::bind`, which listens with a backlog of 128 (the
/// standard library's value), while the code assumed mio's backlog was 1024 (and gave that to
/// `listen_reuseport`). A burst of connects between two accepts overflowed the queue: the
/// kernel dropped SYNs, and each of those clients waited for a retransmission, 1 s or more
/// (10,000 clients connecting at once: 0.4 s to all open without overflow, 9 to 18 s with).
#[test]
fn a_burst_of_three_hundred_connects_fits_in_the_listen_backlog() {
    util::init_logging();
    let mut reactor = mio_reactor::Reactor::new().unwrap();
    let addr = reactor
        .listen(util::loopback(), ListenOptions::default(), |_| {
            Some(util::Echo)
        })
        .unwrap()
        .local_addr()
        .unwrap();
    // The reactor does not run: every handshake must complete in the kernel's queue alone.
    // A connect that finds the queue full does not fail; its SYN is dropped and it waits.
    let pending: Vec<std::net::TcpStream> = (0..300)
        .map(|i| {
            std::net::TcpStream::connect_timeout(&addr, util::WAIT)
                .unwrap_or_else(|err| panic!("connect {i} did not complete: {err}"))
        })
        .collect();
    assert_eq!(pending.len(), 300);
    drop(reactor);
}

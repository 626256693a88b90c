//! What a handler can ask through its `Context`: half-close its side, pause reading, abort,
//! and a graceful close that runs out of time.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use mio_reactor::{CloseReason, Config, Context, Handler, ListenOptions, TimerId};
use util::{client, loopback, Server, WAIT};

/// Greets, shuts down its write side at once, then reports what it still receives.
struct Announcer {
    heard: Sender<String>,
}

impl Handler for Announcer {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"greetings, and goodbye");
        ctx.shutdown_write();
        ctx.write(b"too late"); // discarded: the write side is closed
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        self.heard
            .send(String::from_utf8_lossy(data).into_owned())
            .unwrap();
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        self.heard.send(format!("closed: {reason:?}")).unwrap();
    }
}

#[test]
fn shutdown_write_sends_eof_after_the_output_and_keeps_reading() {
    let (tx, heard) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Announcer { heard: tx.clone() })
        })
    });
    let mut stream = client(server.addr);
    let mut greeting = String::new();
    stream.read_to_string(&mut greeting).unwrap(); // ends at the server's FIN
    assert_eq!(greeting, "greetings, and goodbye");
    stream.write_all(b"still listening?").unwrap();
    assert_eq!(heard.recv_timeout(WAIT).unwrap(), "still listening?");
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(heard.recv_timeout(WAIT).unwrap(), "closed: PeerClosed");
    drop(stream);
    server.stop();
}

/// Echoes, but pauses reading after the first message until a timer fires.
struct Dawdler {
    paused: bool,
    delivered_while_paused: Sender<bool>,
}

impl Handler for Dawdler {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.delivered_while_paused.send(self.paused).unwrap();
        ctx.write(data);
        if !self.paused && data.starts_with(b"first") {
            self.paused = true;
            ctx.pause_reading();
            ctx.set_timer(Duration::from_millis(100));
        }
        data.len()
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
        self.paused = false;
        ctx.resume_reading();
    }
}

#[test]
fn pause_reading_holds_input_until_resume_and_loses_nothing() {
    let (tx, deliveries) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Dawdler {
                paused: false,
                delivered_while_paused: tx.clone(),
            })
        })
    });
    let mut stream = client(server.addr);
    stream.write_all(b"first").unwrap();
    let mut echo = [0; 5];
    stream.read_exact(&mut echo).unwrap();
    stream.write_all(b"second, sent while paused").unwrap();
    let mut rest = [0; 25];
    stream.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"second, sent while paused");
    let paused_flags: Vec<bool> = deliveries.try_iter().collect();
    assert!(!paused_flags.contains(&true), "data delivered while paused");
    drop(stream);
    server.stop();
}

/// Queues far more than the peer will read, then aborts.
struct Quitter {
    closed: Sender<CloseReason>,
}

impl Handler for Quitter {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(&vec![b'x'; 2 * 1024 * 1024]);
        ctx.abort();
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        self.closed.send(reason.clone()).unwrap();
    }
}

#[test]
fn abort_discards_buffered_output_and_resets_the_peer() {
    let (tx, closed) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Quitter { closed: tx.clone() })
        })
    });
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap(); // so that most of the 2 MiB stays buffered
    socket.connect(&server.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(b"go").unwrap();
    assert_eq!(closed.recv_timeout(WAIT).unwrap(), CloseReason::Aborted);
    let mut received = Vec::new();
    let outcome = stream.read_to_end(&mut received);
    assert_eq!(outcome.unwrap_err().kind(), ErrorKind::ConnectionReset);
    assert!(
        received.len() < 2 * 1024 * 1024,
        "buffered output was discarded"
    );
    server.stop();
}

/// Writes more than the peer will read, then closes gracefully.
struct Overcommitted {
    closed: Sender<CloseReason>,
}

impl Handler for Overcommitted {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(&vec![b'y'; 3 * 1024 * 1024]);
        ctx.close();
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        self.closed.send(reason.clone()).unwrap();
    }
}

#[test]
fn a_graceful_close_that_cannot_flush_in_time_ends_with_close_timeout() {
    let (tx, closed) = mpsc::channel();
    let config = Config::default().close_timeout(Duration::from_millis(200));
    let server = Server::start(config, move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(Overcommitted { closed: tx.clone() })
        })
    });
    // A client that never reads: the 3 MiB cannot all leave.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    assert_eq!(
        closed.recv_timeout(WAIT).unwrap(),
        CloseReason::CloseTimeout
    );
    drop(socket);
    let stats = server.stop();
    assert_eq!(stats.closed.close_timeout, 1);
}

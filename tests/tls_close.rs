//! Closing the TLS way: our close sends close_notify before the FIN, the peer's
//! close_notify is its EOF, a TCP EOF without one is a truncation, and abort is a reset.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc;

use mio_reactor::{CloseReason, Config, Context, Handler, ListenOptions};
use util::tls::{close_notify_and_fin, handshake, read_to_close_notify, tls_client, Pki};
use util::{loopback, next_close, Reporting, Seen, Server};

/// Replies to the first message with `reply`, then closes (or aborts).
struct ReplyThenClose {
    reply: &'static [u8],
    abort: bool,
}

impl Handler for ReplyThenClose {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(self.reply);
        if self.abort {
            ctx.abort();
        } else {
            ctx.close();
        }
        data.len()
    }
}

/// Says "eof" when the peer's EOF arrives, then closes.
struct AnswersEof;

impl Handler for AnswersEof {
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"eof");
        ctx.close();
    }
}

fn serve<H: Handler + 'static>(
    pki: &Pki,
    make: impl Fn() -> H + Send + 'static,
) -> (Server, mpsc::Receiver<Seen>) {
    let (events, seen) = mpsc::channel();
    let config = pki.server_config();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(config),
            move |_: &_| {
                Some(Reporting {
                    inner: make(),
                    events: events.clone(),
                })
            },
        )
    });
    (server, seen)
}

#[test]
fn a_graceful_close_sends_close_notify_before_the_fin() {
    let pki = Pki::localhost();
    let (server, events) = serve(&pki, || ReplyThenClose {
        reply: b"bye",
        abort: false,
    });
    let mut client = tls_client(server.addr, pki.client_config());
    client.write_all(b"hi").unwrap();
    // rustls's reader ends cleanly only on a close_notify; a bare FIN is UnexpectedEof.
    assert_eq!(read_to_close_notify(&mut client).unwrap(), b"bye");
    close_notify_and_fin(&mut client);
    assert_eq!(next_close(&events), CloseReason::Local);
    server.stop();
}

#[test]
fn the_peers_close_notify_is_its_eof_even_with_tcp_still_open() {
    let pki = Pki::localhost();
    let (server, events) = serve(&pki, || AnswersEof);
    let mut client = tls_client(server.addr, pki.client_config());
    client.write_all(b"some data").unwrap();
    client.conn.send_close_notify();
    client.flush().unwrap(); // no FIN: TCP stays open both ways
    assert_eq!(read_to_close_notify(&mut client).unwrap(), b"eof");
    client.sock.shutdown(Shutdown::Write).unwrap();
    assert_eq!(next_close(&events), CloseReason::PeerClosed);
    server.stop();
}

#[test]
fn a_tcp_eof_without_close_notify_is_a_truncation_not_an_eof() {
    let pki = Pki::localhost();
    let (server, events) = serve(&pki, || AnswersEof);
    let mut client = tls_client(server.addr, pki.client_config());
    client.write_all(b"a message cut short").unwrap();
    client.flush().unwrap();
    client.sock.shutdown(Shutdown::Write).unwrap(); // FIN, no close_notify
    assert_eq!(next_close(&events), CloseReason::TlsTruncated);
    // `AnswersEof` never heard an EOF: it would have said so.
    let mut rest = Vec::new();
    let _ = client.sock.read_to_end(&mut rest);
    let mut plain = Vec::new();
    let _ = client.conn.read_tls(&mut &rest[..]);
    let _ = client.conn.process_new_packets();
    let _ = client.conn.reader().read_to_end(&mut plain);
    assert!(
        plain.is_empty(),
        "no reply to a truncated stream: {plain:?}"
    );
    server.stop();
}

#[test]
fn abort_resets_a_tls_connection() {
    let pki = Pki::localhost();
    let (server, events) = serve(&pki, || ReplyThenClose {
        reply: b"never sent",
        abort: true,
    });
    let mut client = tls_client(server.addr, pki.client_config());
    handshake(&mut client).unwrap();
    client.write_all(b"hi").unwrap();
    assert_eq!(next_close(&events), CloseReason::Aborted);
    let mut buf = [0; 64];
    let err = loop {
        match client.sock.read(&mut buf) {
            Ok(0) => panic!("a FIN, not a reset"),
            Ok(_) => continue, // session tickets from the handshake
            Err(err) => break err,
        }
    };
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    server.stop();
}

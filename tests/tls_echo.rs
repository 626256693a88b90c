//! Every handler works unchanged over TLS: the plain `Echo` handler behind a TLS listen
//! (`ListenOptions::tls`) echoes byte-exact to a rustls client, in bulk and a byte at a
//! time, over TCP and Unix sockets, and tells what the handshake negotiated.

mod util;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::sync::Arc;

use mio_reactor::rustls::{self, ProtocolVersion};
use mio_reactor::{CloseReason, Config, ConnectOptions, Context, Endpoint, Handler, ListenOptions};
use util::tls::{echo_through_tls, handshake, tls_client, tls_echo_server, Pki};
use util::{fnv1a, loopback, next_close, random_bytes, Server};

const SIXTY_FOUR_MIB: usize = 64 * 1024 * 1024;

#[test]
fn echoes_a_message_byte_exact_to_a_rustls_client() {
    let pki = Pki::localhost();
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let mut client = tls_client(server.addr, pki.client_config());
    client.write_all(b"hello over TLS").unwrap();
    let mut reply = [0; 14];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"hello over TLS");
    server.stop();
}

#[test]
fn echoes_64_mib_by_hash_while_the_client_keeps_sending() {
    let pki = Pki::localhost();
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let data = Arc::new(random_bytes(14, SIXTY_FOUR_MIB));
    let echo = echo_through_tls(server.addr, pki.client_config(), data.clone(), false).unwrap();
    assert_eq!(echo.len(), data.len());
    assert_eq!(
        fnv1a(&echo),
        fnv1a(&data),
        "echo differs from what was sent"
    );
    server.stop();
}

#[test]
fn echoes_64_mib_after_the_clients_close_notify_and_ends_with_its_own() {
    let pki = Pki::localhost();
    let (server, events) = tls_echo_server(Config::default(), pki.server_config());
    let data = Arc::new(random_bytes(15, SIXTY_FOUR_MIB));
    // Reading to the end succeeds only on the server's close_notify: a bare FIN would be
    // rustls's UnexpectedEof.
    let echo = echo_through_tls(server.addr, pki.client_config(), data.clone(), true).unwrap();
    assert_eq!(echo.len(), data.len());
    assert_eq!(
        fnv1a(&echo),
        fnv1a(&data),
        "echo differs from what was sent"
    );
    assert_eq!(next_close(&events), CloseReason::PeerClosed);
    server.stop();
}

#[test]
fn echoes_a_client_that_sends_one_byte_per_record() {
    let pki = Pki::localhost();
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let mut client = tls_client(server.addr, pki.client_config());
    let data = random_bytes(3, 300);
    for byte in &data {
        // One write, one record, one flush: the server sees 300 tiny records.
        client.write_all(std::slice::from_ref(byte)).unwrap();
        client.flush().unwrap();
    }
    let mut echo = vec![0; data.len()];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(echo, data);
    server.stop();
}

#[test]
fn reads_records_split_across_tcp_segments_a_byte_at_a_time() {
    let pki = Pki::localhost();
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let mut client = tls_client(server.addr, pki.client_config());
    handshake(&mut client).unwrap();
    // Encrypt a message, then hand the records to the socket one byte per write.
    client.conn.writer().write_all(b"split records").unwrap();
    let mut records = Vec::new();
    while client.conn.wants_write() {
        client.conn.write_tls(&mut records).unwrap();
    }
    for byte in &records {
        client.sock.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let mut echo = [0; 13];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"split records");
    server.stop();
}

/// What `Context::tls` said: version, whether a cipher suite was agreed, ALPN, SNI, and
/// how many certificates the peer presented.
type Report = (
    Option<ProtocolVersion>,
    bool,
    Option<Vec<u8>>,
    Option<String>,
    usize,
);

/// Reports what `Context::tls` says once data flows.
struct Negotiated {
    seen: mpsc::Sender<Report>,
}

impl Handler for Negotiated {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let tls = ctx.tls().expect("a TLS connection");
        let report = (
            tls.protocol_version(),
            tls.cipher_suite().is_some(),
            tls.alpn_protocol().map(<[u8]>::to_vec),
            tls.server_name().map(str::to_owned),
            tls.peer_certificates().map_or(0, <[_]>::len),
        );
        let _ = self.seen.send(report);
        ctx.write(data);
        data.len()
    }
}

#[test]
fn the_handler_sees_version_cipher_suite_alpn_sni_and_client_certificate() {
    let pki = Pki::localhost();
    let client_pki = Pki::new(&["client.example"]);
    // The server trusts the client's CA; the client trusts the server's.
    let mut server_config = (*client_pki.server_config_requiring_client_certs()).clone();
    let server_with_leaf = pki.server_config();
    server_config.cert_resolver = server_with_leaf.cert_resolver.clone();
    server_config.alpn_protocols = vec![b"echo/1".to_vec()];
    let server_config = Arc::new(server_config);
    let (seen_tx, seen) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(server_config),
            move |_: &_| {
                Some(Negotiated {
                    seen: seen_tx.clone(),
                })
            },
        )
    });
    let mut client_config = (*pki.client_config_with_cert_of(&client_pki)).clone();
    client_config.alpn_protocols = vec![b"echo/1".to_vec()];
    let mut client = tls_client(server.addr, Arc::new(client_config));
    client.write_all(b"x").unwrap();
    let mut echo = [0; 1];
    client.read_exact(&mut echo).unwrap();
    let (version, has_suite, alpn, sni, peer_certs) =
        seen.recv_timeout(util::WAIT).expect("on_data ran");
    assert_eq!(version, Some(ProtocolVersion::TLSv1_3));
    assert!(has_suite);
    assert_eq!(alpn.as_deref(), Some(&b"echo/1"[..]));
    assert_eq!(sni.as_deref(), Some("localhost"));
    assert_eq!(peer_certs, 1, "the client's certificate");
    server.stop();
}

#[test]
fn a_plaintext_connection_has_no_tls_info() {
    let (seen_tx, seen) = mpsc::channel();
    struct Plain(mpsc::Sender<bool>);
    impl Handler for Plain {
        fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
            let _ = self.0.send(ctx.tls().is_some());
            data.len()
        }
    }
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_: &_| {
            Some(Plain(seen_tx.clone()))
        })
    });
    util::client(server.addr).write_all(b"x").unwrap();
    assert!(!seen.recv_timeout(util::WAIT).unwrap());
    server.stop();
}

#[test]
fn echoes_over_tls_on_a_unix_socket() {
    let pki = Pki::localhost();
    let path = std::env::temp_dir().join(format!("mio-reactor-tls-{}.sock", std::process::id()));
    let (config, listen_path) = (pki.server_config(), path.clone());
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            Endpoint::Unix(listen_path),
            ListenOptions::default().tls(config),
            |_: &_| Some(util::Echo),
        )?;
        Ok(loopback())
    });
    let stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
    stream.set_read_timeout(Some(util::WAIT)).unwrap();
    let name = "localhost".try_into().unwrap();
    let session = rustls::ClientConnection::new(pki.client_config(), name).unwrap();
    let mut client = rustls::StreamOwned::new(session, stream);
    client.write_all(b"unix tls").unwrap();
    let mut echo = [0; 8];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"unix tls");
    server.stop();
}

/// A client in the reactor: sends a greeting from `on_open` (before the handshake is over)
/// and reports what comes back and how the connection closed.
struct Greeter {
    got: Vec<u8>,
    done: mpsc::Sender<(Vec<u8>, CloseReason)>,
}

impl Handler for Greeter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"greetings");
        ctx.shutdown_write();
    }
    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        self.got.extend_from_slice(data);
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        let _ = self
            .done
            .send((std::mem::take(&mut self.got), reason.clone()));
    }
}

#[test]
fn our_tls_client_talks_to_our_tls_server_and_both_close_with_close_notify() {
    let pki = Pki::localhost();
    let (server, events) = tls_echo_server(Config::default(), pki.server_config());
    let (done_tx, done) = mpsc::channel();
    let (addr, client_config) = (server.addr, pki.client_config());
    let client = Server::start(Config::default(), move |reactor| {
        let greeter = Greeter {
            got: Vec::new(),
            done: done_tx,
        };
        reactor.connect(
            addr,
            ConnectOptions::default().tls(client_config, "localhost")?,
            greeter,
        )?;
        Ok(loopback())
    });
    let (got, reason) = done.recv_timeout(util::WAIT).expect("the client closed");
    assert_eq!(got, b"greetings");
    assert_eq!(reason, CloseReason::PeerClosed);
    assert_eq!(next_close(&events), CloseReason::PeerClosed);
    client.wait();
    server.stop();
}

#[test]
fn a_server_certificate_for_another_name_fails_our_client_with_a_tls_reason() {
    let pki = Pki::new(&["elsewhere.example"]);
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let (done_tx, done) = mpsc::channel();
    let (addr, client_config) = (server.addr, pki.client_config());
    let client = Server::start(Config::default(), move |reactor| {
        let greeter = Greeter {
            got: Vec::new(),
            done: done_tx,
        };
        reactor.connect(
            addr,
            ConnectOptions::default().tls(client_config, "localhost")?,
            greeter,
        )?;
        Ok(loopback())
    });
    let (_, reason) = done.recv_timeout(util::WAIT).expect("the client closed");
    match reason {
        CloseReason::Tls(why) => assert!(why.contains("certificate"), "{why}"),
        other => panic!("expected a TLS error, got {other:?}"),
    }
    client.wait();
    server.stop();
}

/// On the client's first byte, writes `data` in 4 KiB pieces while the buffered
/// output stays at or under the high water mark, and goes on from `on_drain`: the pattern
/// [`Handler::on_drain`] documents. Counts the times the water mark stopped it.
struct Pump {
    data: Vec<u8>,
    sent: usize,
    stops: mpsc::Sender<usize>,
    stopped: usize,
}

impl Pump {
    fn pump(&mut self, ctx: &mut Context<'_>) {
        let high = ctx.config().get_high_water();
        while self.sent < self.data.len() {
            if ctx.buffered_output() > high {
                self.stopped += 1;
                return;
            }
            let piece = (self.data.len() - self.sent).min(4096);
            ctx.write(&self.data[self.sent..self.sent + piece]);
            self.sent += piece;
        }
        let _ = self.stops.send(self.stopped);
        ctx.close();
    }
}

impl Handler for Pump {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if self.sent == 0 {
            self.pump(ctx);
        }
        data.len()
    }
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        self.pump(ctx);
    }
}

#[test]
fn a_writer_pumping_to_the_high_water_mark_over_tls_is_stopped_by_it_and_loses_nothing() {
    const TOTAL: usize = 1024 * 1024;
    let pki = Pki::localhost();
    let tls = pki.server_config();
    let (stops_tx, stops) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(tls),
            move |_: &_| {
                Some(Pump {
                    data: random_bytes(9, TOTAL),
                    sent: 0,
                    stops: stops_tx.clone(),
                    stopped: 0,
                })
            },
        )
    });
    let mut stream = tls_client(server.addr, pki.client_config());
    stream.write_all(b"go").unwrap();
    let received = util::tls::read_to_close_notify(&mut stream).unwrap();
    assert_eq!(received.len(), TOTAL);
    assert!(received == random_bytes(9, TOTAL), "the bytes differ");
    let stopped = stops.recv_timeout(util::WAIT).unwrap();
    assert!(
        stopped > 0,
        "1 MiB never passed the high water mark: TLS-held output was not counted"
    );
    server.stop();
}

/// Writes `greeting` in `on_open`, before the handshake has finished (a server that speaks
/// first), optionally pausing its reading there too; then echoes.
struct FirstSpeaker {
    greeting: Vec<u8>,
    pause: bool,
}

impl Handler for FirstSpeaker {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        if self.pause {
            ctx.pause_reading();
        }
        ctx.write(&self.greeting);
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// Starts a TLS server whose connections greet with `size` bytes, connects, and returns
/// the greeting as read (a handshake that never finishes ends in the client's read timeout).
fn read_greeting_over_tls(size: usize, pause: bool) -> Vec<u8> {
    let pki = Pki::localhost();
    let tls = pki.server_config();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(tls),
            move |_: &_| {
                Some(FirstSpeaker {
                    greeting: random_bytes(13, size),
                    pause,
                })
            },
        )
    });
    let mut stream = tls_client(server.addr, pki.client_config());
    let mut greeting = vec![0; size];
    stream.read_exact(&mut greeting).expect("the greeting");
    drop(stream);
    server.stop();
    greeting
}

#[test]
fn a_handshake_finishes_when_the_handler_wrote_past_the_high_water_mark_before_it() {
    let size = 4 * Config::default().get_high_water();
    assert!(read_greeting_over_tls(size, false) == random_bytes(13, size));
}

#[test]
fn a_handshake_finishes_while_the_handler_has_paused_reading() {
    assert!(read_greeting_over_tls(100, true) == random_bytes(13, 100));
}

/// Writes `size` bytes from `on_open` of an outbound TLS connection, before its handshake
/// finished, and reports the echo it reads back.
struct Uploader {
    data: Vec<u8>,
    got: Vec<u8>,
    done: mpsc::Sender<Vec<u8>>,
}

impl Handler for Uploader {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(&self.data);
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.got.extend_from_slice(data);
        if self.got.len() >= self.data.len() {
            let _ = self.done.send(std::mem::take(&mut self.got));
            ctx.close();
        }
        data.len()
    }
}

#[test]
fn our_client_finishes_its_handshake_after_writing_past_the_high_water_mark_in_on_open() {
    let pki = Pki::localhost();
    let (server, _events) = tls_echo_server(Config::default(), pki.server_config());
    let data = random_bytes(14, 4 * Config::default().get_high_water());
    let (done_tx, done) = mpsc::channel();
    let (addr, client_config, sent) = (server.addr, pki.client_config(), data.clone());
    let client = Server::start(Config::default(), move |reactor| {
        let uploader = Uploader {
            data: sent,
            got: Vec::new(),
            done: done_tx,
        };
        reactor.connect(
            addr,
            ConnectOptions::default().tls(client_config, "localhost")?,
            uploader,
        )?;
        Ok(loopback())
    });
    let echo = done
        .recv_timeout(util::WAIT)
        .expect("the echo, before the handshake deadline");
    assert!(echo == data, "the echo differs");
    client.stop();
    server.stop();
}

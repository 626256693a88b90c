//! Hostile TLS peers: each costs only its own connection, with a close reason that says
//! what happened, while an honest client is served alongside.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, Config, Context, Handler, ListenOptions};
use util::tls::{close_notify_and_fin, handshake, tls_client, tls_echo_server, Pki};
use util::{client, loopback, next_close, random_bytes, Reporting, Server};

/// An honest client's echo still works on `server`.
fn honest_echo(addr: std::net::SocketAddr, pki: &Pki) {
    let mut honest = tls_client(addr, pki.client_config());
    honest.write_all(b"still here").unwrap();
    let mut echo = [0; 10];
    honest.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"still here");
    close_notify_and_fin(&mut honest); // an honest client ends politely
}

/// Reads what the server sends until it closes; true if it began with a TLS alert record.
fn got_alert(stream: &mut std::net::TcpStream) -> bool {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    all.first() == Some(&0x15) // ContentType::Alert
}

fn expect_tls_error(reason: CloseReason) -> String {
    match reason {
        CloseReason::Tls(why) => why,
        other => panic!("expected CloseReason::Tls, got {other:?}"),
    }
}

#[test]
fn plaintext_instead_of_a_client_hello_gets_an_alert_and_a_tls_close_reason() {
    let pki = Pki::localhost();
    let (server, events) = tls_echo_server(Config::default(), pki.server_config());
    let mut http = client(server.addr);
    http.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let why = expect_tls_error(next_close(&events));
    assert!(!why.is_empty());
    assert!(
        got_alert(&mut http),
        "rustls's alert went out before the FIN"
    );
    honest_echo(server.addr, &pki);
    server.stop();
}

#[test]
fn random_bytes_instead_of_a_client_hello_cost_only_their_connection() {
    let pki = Pki::localhost();
    let (server, events) = tls_echo_server(Config::default(), pki.server_config());
    for seed in 0..4 {
        let mut junk = client(server.addr);
        junk.write_all(&random_bytes(seed, 4096)).unwrap();
        expect_tls_error(next_close(&events));
    }
    honest_echo(server.addr, &pki);
    let stats = server.stop();
    assert_eq!(stats.closed.tls, 4);
}

#[test]
fn a_handshake_that_stops_halfway_is_closed_at_the_handshake_deadline() {
    let pki = Pki::localhost();
    let config = Config::default().tls_handshake_timeout(Duration::from_millis(300));
    let (server, events) = tls_echo_server(config, pki.server_config());
    // The first bytes of a real ClientHello, then nothing.
    let mut session = tls_client(server.addr, pki.client_config());
    let mut hello = Vec::new();
    session.conn.write_tls(&mut hello).unwrap();
    let mut stalled = client(server.addr);
    stalled.write_all(&hello[..hello.len() / 2]).unwrap();
    let silent = client(server.addr); // and one that sends nothing at all
    let started = Instant::now();
    assert_eq!(next_close(&events), CloseReason::TlsHandshakeTimeout);
    assert_eq!(next_close(&events), CloseReason::TlsHandshakeTimeout);
    assert!(started.elapsed() < util::WAIT);
    honest_echo(server.addr, &pki);
    drop(silent);
    server.stop();
}

#[test]
fn a_finished_handshake_is_not_closed_by_the_handshake_deadline() {
    let pki = Pki::localhost();
    let config = Config::default().tls_handshake_timeout(Duration::from_millis(200));
    let (server, events) = tls_echo_server(config, pki.server_config());
    let mut client = tls_client(server.addr, pki.client_config());
    handshake(&mut client).unwrap();
    // Well past the deadline, the connection still echoes.
    assert!(events.recv_timeout(Duration::from_millis(600)).is_ok()); // its on_open
    assert!(
        events.recv_timeout(Duration::from_millis(400)).is_err(),
        "no close"
    );
    client.write_all(b"late").unwrap();
    let mut echo = [0; 4];
    client.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"late");
    server.stop();
}

/// Echoes, and reports the most output it ever saw buffered.
struct MeasuringEcho {
    most: usize,
    report: mpsc::Sender<usize>,
}

impl Handler for MeasuringEcho {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        self.most = self.most.max(ctx.buffered_output());
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, _: &CloseReason) {
        let _ = self.report.send(self.most);
    }
}

#[test]
fn a_client_that_never_reads_is_stopped_by_backpressure_with_bounded_memory() {
    let pki = Pki::localhost();
    let (report_tx, report) = mpsc::channel();
    let config = Config::default().socket_send_buffer(Some(64 * 1024));
    let max_output = config.get_max_output();
    let tls = pki.server_config();
    let server = Server::start(config, move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(tls),
            move |_: &_| {
                Some(MeasuringEcho {
                    most: 0,
                    report: report_tx.clone(),
                })
            },
        )
    });
    let mut greedy = tls_client(server.addr, pki.client_config());
    handshake(&mut greedy).unwrap();
    greedy
        .sock
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    // Send up to 1 GiB without reading a byte: the server must stop reading long before.
    let chunk = random_bytes(5, 64 * 1024);
    let mut sent = 0usize;
    let blocked = loop {
        match greedy.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(err) => break err,
        }
        assert!(sent < 1 << 30, "the server never stopped reading");
    };
    // rustls's blocking stream reports a socket that stopped taking bytes as a timeout, or
    // (once its own buffer is full) as a write of zero.
    assert!(
        matches!(
            blocked.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::WriteZero
        ),
        "{blocked}"
    );
    honest_echo(server.addr, &pki);
    drop(greedy);
    let most = report
        .recv_timeout(util::WAIT)
        .expect("the greedy one closed");
    assert!(
        most <= max_output,
        "{most} B buffered, over max_output {max_output}"
    );
    println!("the server stopped reading after {sent} B; at most {most} B buffered");
    server.stop();
}

#[test]
fn a_client_certificate_that_does_not_verify_costs_only_its_connection() {
    let pki = Pki::localhost();
    let trusted_clients = Pki::new(&["client.example"]);
    let stranger = Pki::new(&["client.example"]); // same name, another CA
    let mut server_config = (*trusted_clients.server_config_requiring_client_certs()).clone();
    server_config.cert_resolver = pki.server_config().cert_resolver.clone();
    let server_config = std::sync::Arc::new(server_config);
    let (events, seen) = mpsc::channel();
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(server_config),
            move |_: &_| {
                Some(Reporting {
                    inner: util::Echo,
                    events: events.clone(),
                })
            },
        )
    });
    let mut bad = tls_client(server.addr, pki.client_config_with_cert_of(&stranger));
    // TLS 1.3: the client finishes its side first and learns of the refusal on its next read.
    let _ = bad.write_all(b"let me in");
    let mut buf = [0; 16];
    assert!(
        bad.read(&mut buf).is_err(),
        "the server refused the certificate"
    );
    let why = expect_tls_error(next_close(&seen));
    assert!(why.to_lowercase().contains("cert"), "{why}");
    let mut good = tls_client(
        server.addr,
        pki.client_config_with_cert_of(&trusted_clients),
    );
    good.write_all(b"friend").unwrap();
    let mut echo = [0; 6];
    good.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"friend");
    server.stop();
}

//! Checked against the TLS stacks people use: OpenSSL's `s_client` and `s_server`, and
//! Python's `ssl` module. Each test skips, saying why, when its program is missing; CI
//! installs both.

mod util;

use std::process::Command;
use std::sync::mpsc;

use mio_reactor::rustls::ProtocolVersion;
use mio_reactor::{CloseReason, Config, ConnectOptions, Context, Handler, ListenOptions};
use util::programs::{output_with_input, TIMEOUT};
use util::tls::{file, have, Pki};
use util::{loopback, random_bytes, Server};

/// Echoes, reports the protocol version once data flows, and closes (close_notify, FIN)
/// after echoing `expect` bytes, so that a client which reads to the end can stop.
struct EchoThenClose {
    expect: usize,
    echoed: usize,
    version: mpsc::Sender<Option<ProtocolVersion>>,
}

impl Handler for EchoThenClose {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if self.echoed == 0 {
            let _ = self
                .version
                .send(ctx.tls().and_then(|t| t.protocol_version()));
        }
        ctx.write(data);
        self.echoed += data.len();
        if self.echoed >= self.expect {
            ctx.close();
        }
        data.len()
    }
}

fn s_client_echo(version_flag: &str, expected: ProtocolVersion) {
    if !have("openssl") {
        eprintln!("note: openssl not found; skipping (CI installs it)");
        return;
    }
    let pki = Pki::localhost();
    let dir = pki.write_files("s_client");
    let data = random_bytes(21, 256 * 1024);
    let (version_tx, version) = mpsc::channel();
    let (expect, tls) = (data.len(), pki.server_config());
    let server = Server::start(Config::default(), move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(tls),
            move |_: &_| {
                Some(EchoThenClose {
                    expect,
                    echoed: 0,
                    version: version_tx.clone(),
                })
            },
        )
    });
    let mut command = Command::new("openssl");
    command
        .arg("s_client")
        .args(["-connect", &server.addr.to_string()])
        .args([
            "-servername",
            "localhost",
            "-CAfile",
            &file(dir.path(), "ca.pem"),
        ])
        .args([
            "-verify_return_error",
            "-quiet",
            "-nocommands",
            version_flag,
        ]);
    let output = output_with_input(command, data.clone(), TIMEOUT * 3);
    drop(dir);
    assert!(
        output.status.success(),
        "s_client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout.len(), data.len(), "echo length");
    assert!(output.stdout == data, "the echo differs from what was sent");
    assert_eq!(version.recv_timeout(TIMEOUT).unwrap(), Some(expected));
    server.stop();
}

#[test]
fn openssl_s_client_gets_a_byte_exact_echo_over_tls_1_3() {
    s_client_echo("-tls1_3", ProtocolVersion::TLSv1_3);
}

#[test]
fn openssl_s_client_gets_a_byte_exact_echo_over_tls_1_2() {
    s_client_echo("-tls1_2", ProtocolVersion::TLSv1_2);
}

/// Sends a line, reports the reply line and how the connection ended.
struct LineClient {
    got: Vec<u8>,
    done: mpsc::Sender<(Vec<u8>, CloseReason)>,
}

impl Handler for LineClient {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"hello from the reactor\n");
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        self.got.extend_from_slice(data);
        if self.got.ends_with(b"\n") {
            ctx.close();
        }
        data.len()
    }
    fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
        let _ = self
            .done
            .send((std::mem::take(&mut self.got), reason.clone()));
    }
}

#[test]
fn our_tls_client_talks_to_openssl_s_server() {
    if !have("openssl") {
        eprintln!("note: openssl not found; skipping (CI installs it)");
        return;
    }
    let pki = Pki::localhost();
    let dir = pki.write_files("s_server");
    // -rev: a line comes back reversed.
    let mut s_server = util::programs::Spawned::spawn(
        Command::new("openssl")
            .arg("s_server")
            .args(["-accept", "127.0.0.1:0", "-naccept", "1", "-rev"])
            .args([
                "-cert",
                &file(dir.path(), "cert.pem"),
                "-key",
                &file(dir.path(), "key.pem"),
            ]),
    );
    let port = loop {
        let line = s_server.next_line();
        if let Some(addr) = line.strip_prefix("ACCEPT ") {
            break addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        }
    };
    let (done_tx, done) = mpsc::channel();
    let client_config = pki.client_config();
    let client = Server::start(Config::default(), move |reactor| {
        let line = LineClient {
            got: Vec::new(),
            done: done_tx,
        };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        reactor.connect(
            addr,
            ConnectOptions::default().tls(client_config, "localhost")?,
            line,
        )?;
        Ok(loopback())
    });
    let (got, reason) = done.recv_timeout(TIMEOUT).expect("the client finished");
    assert_eq!(got, b"rotcaer eht morf olleh\n");
    assert!(reason.is_graceful(), "{reason:?}");
    client.wait();
    drop(s_server.finish());
    drop(dir);
}

const PYTHON_CLIENT: &str = r#"
import socket, ssl, sys
host, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=cafile)
data = bytes(range(256)) * 512
with socket.create_connection((host, port), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(data)
        echo = b""
        while len(echo) < len(data):
            chunk = tls.recv(65536)
            if not chunk:
                sys.exit("EOF before the whole echo")
            echo += chunk
        assert echo == data, "echo differs"
        print(tls.version(), len(echo))
        tls.unwrap()  # close_notify both ways
"#;

#[test]
fn python_ssl_client_gets_a_byte_exact_echo_and_a_close_notify() {
    if !have("python3") {
        eprintln!("note: python3 not found; skipping (CI installs it)");
        return;
    }
    let pki = Pki::localhost();
    let dir = pki.write_files("python");
    let (server, events) = util::tls::tls_echo_server(Config::default(), pki.server_config());
    let mut command = Command::new("python3");
    command
        .args(["-c", PYTHON_CLIENT])
        .arg(server.addr.ip().to_string())
        .arg(server.addr.port().to_string())
        .arg(file(dir.path(), "ca.pem"));
    let output = output_with_input(command, Vec::new(), TIMEOUT * 3);
    drop(dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "TLSv1.3 131072");
    // Python's unwrap() sent close_notify: the server saw a clean EOF.
    assert_eq!(util::next_close(&events), CloseReason::PeerClosed);
    server.stop();
}

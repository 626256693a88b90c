//! TLS test helpers: certificates made at test time (a CA and leaves it signs, with
//! `rcgen`), rustls configs from them, a TLS echo server, and a blocking rustls client.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use mio_reactor::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use mio_reactor::{Config, ListenOptions};

// A test that includes the stress suite too (`connection_properties`) loads these files
// twice, once here and once there: two copies of the same plain functions, harmless.
#[allow(clippy::duplicate_mod)]
#[path = "../../examples/support/tls.rs"]
mod example_tls;
#[allow(clippy::duplicate_mod)]
#[path = "../../examples/support/pki.rs"]
mod pki;

use super::{client, init_logging, loopback, Echo, Reporting, Seen, Server};

pub use pki::Pki;

impl Pki {
    /// A fresh CA and a leaf for `names` (DNS names or IP addresses).
    pub fn new(names: &[&str]) -> Pki {
        Pki::issue("mio-reactor test CA", names).unwrap()
    }

    /// The usual test PKI: a leaf for `localhost` and 127.0.0.1.
    pub fn localhost() -> Pki {
        Pki::new(&["localhost", "127.0.0.1"])
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.leaf_key.clone().into())
    }

    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(self.ca.clone())).unwrap();
        roots
    }

    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![CertificateDer::from(self.leaf.clone())]
    }

    /// A server config presenting the leaf, TLS 1.2 and 1.3, no client certificates.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        example_tls::server_config_from(self.chain(), self.key(), None).unwrap()
    }

    /// A server config that requires a client certificate signed by this CA.
    pub fn server_config_requiring_client_certs(&self) -> Arc<ServerConfig> {
        example_tls::server_config_from(self.chain(), self.key(), Some(self.roots())).unwrap()
    }

    /// A client config trusting this CA only.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        example_tls::client_config_from(self.roots(), None).unwrap()
    }

    /// A client config trusting this CA and presenting `other`'s leaf as its certificate.
    pub fn client_config_with_cert_of(&self, other: &Pki) -> Arc<ClientConfig> {
        example_tls::client_config_from(self.roots(), Some((other.chain(), other.key()))).unwrap()
    }

    /// Writes `ca.pem`, `cert.pem` and `key.pem` into a new directory of its own (for
    /// openssl and Python, which read files), removed when the returned value drops.
    /// One directory per call: tests run in parallel, and two PKIs sharing a path mix a CA
    /// with another CA's leaf ("certificate signature failure").
    pub fn write_files(&self, tag: &str) -> tempfile::TempDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mio-reactor-tls-{tag}-"))
            .tempdir()
            .unwrap();
        std::fs::write(dir.path().join("ca.pem"), &self.ca_pem).unwrap();
        std::fs::write(dir.path().join("cert.pem"), &self.leaf_pem).unwrap();
        std::fs::write(dir.path().join("key.pem"), &self.leaf_key_pem).unwrap();
        dir
    }
}

/// A TLS echo server whose connections report open and close.
pub fn tls_echo_server(config: Config, tls: Arc<ServerConfig>) -> (Server, Receiver<Seen>) {
    init_logging();
    let (events, seen) = mpsc::channel();
    let server = Server::start(config, move |reactor| {
        reactor.listen(
            loopback(),
            ListenOptions::default().tls(tls),
            move |_: &_| {
                Some(Reporting {
                    inner: Echo,
                    events: events.clone(),
                })
            },
        )
    });
    (server, seen)
}

/// A blocking rustls client over a TCP stream with the tests' bounded waits.
pub type TlsClient = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Connects to `addr` and starts a TLS session for "localhost" (the handshake runs on the
/// first read or write).
pub fn tls_client(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsClient {
    let name = ServerName::try_from("localhost").unwrap();
    let session = rustls::ClientConnection::new(config, name).unwrap();
    rustls::StreamOwned::new(session, client(addr))
}

/// Runs the handshake to completion (or its error).
pub fn handshake(stream: &mut TlsClient) -> io::Result<()> {
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(())
}

/// Reads plaintext until the server's close_notify (`Ok`) or an error: a TCP EOF without
/// close_notify is rustls's `UnexpectedEof`.
pub fn read_to_close_notify(stream: &mut TlsClient) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Sends our close_notify, then our FIN.
pub fn close_notify_and_fin(stream: &mut TlsClient) {
    stream.conn.send_close_notify();
    stream.flush().unwrap();
    stream.sock.shutdown(std::net::Shutdown::Write).unwrap();
}

/// Whether a program is on the PATH; tests that need it print why they skip without it.
pub fn have(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("version")
        .output()
        .is_ok()
}

/// The path of one of the files [`Pki::write_files`] wrote.
pub fn file(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

/// Sends `data` over TLS from one thread while another reads the echo, so that neither
/// waits for the other (a blocking client that wrote 64 MiB before reading would deadlock
/// on full socket buffers). With `half_close`, the client then sends its close_notify and
/// FIN and reads until the server's close_notify; without, it reads `data.len()` bytes.
///
/// # Errors
/// The reading side's: a TCP EOF without the server's close_notify is `UnexpectedEof`.
pub fn echo_through_tls(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    data: Arc<Vec<u8>>,
    half_close: bool,
) -> io::Result<Vec<u8>> {
    let mut stream = tls_client(addr, config);
    handshake(&mut stream)?;
    let rustls::StreamOwned { conn, sock } = stream;
    let conn = Arc::new(std::sync::Mutex::new(conn));
    let mut out_sock = sock.try_clone()?;
    let writer = {
        let (conn, data) = (conn.clone(), data.clone());
        std::thread::spawn(move || -> io::Result<()> {
            let mut records = Vec::new();
            for chunk in data.chunks(16 * 1024) {
                {
                    let mut conn = conn.lock().unwrap();
                    conn.writer().write_all(chunk)?;
                    while conn.wants_write() {
                        conn.write_tls(&mut records)?;
                    }
                }
                out_sock.write_all(&records)?;
                records.clear();
            }
            if half_close {
                {
                    let mut conn = conn.lock().unwrap();
                    conn.send_close_notify();
                    while conn.wants_write() {
                        conn.write_tls(&mut records)?;
                    }
                }
                out_sock.write_all(&records)?;
                out_sock.shutdown(std::net::Shutdown::Write)?;
            }
            Ok(())
        })
    };
    let mut in_sock = sock;
    let mut echo = Vec::with_capacity(data.len());
    let mut buf = vec![0; 64 * 1024];
    let result = loop {
        if !half_close && echo.len() >= data.len() {
            break Ok(());
        }
        let n = match in_sock.read(&mut buf) {
            Ok(n) => n,
            Err(err) => break Err(err),
        };
        let mut conn = conn.lock().unwrap();
        let mut records = &buf[..n];
        // read_tls takes what it can; the rest goes in once the session has processed it.
        loop {
            conn.read_tls(&mut records)?;
            conn.process_new_packets().map_err(io::Error::other)?;
            match conn.reader().read_to_end(&mut echo) {
                Ok(_) => return finish(writer, echo),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
            if records.is_empty() {
                break;
            }
        }
    };
    result?;
    finish(writer, echo)
}

fn finish(writer: std::thread::JoinHandle<io::Result<()>>, echo: Vec<u8>) -> io::Result<Vec<u8>> {
    writer.join().expect("writer thread")?;
    Ok(echo)
}

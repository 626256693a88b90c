//! The TLS entry points (the `tls` feature): listen, take handovers and connect with a rustls
//! config (one reactor, or a group of [`ReactorThreads`]), and what a handler can learn about
//! its session.
//!
//! Each is the plaintext call with a [`Security`] that asks for TLS: the same listener,
//! accept, connect and handler code runs underneath, and the session lives in the
//! connection's transport (`tls.rs`). So every [`Handler`] works unchanged over TLS:
//! `on_data` receives plaintext and [`Context::write`] encrypts.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rustls::{ClientConfig, ServerConfig};

use crate::config::Config;
use crate::context::Context;
use crate::handler::{Factory, Handler};
use crate::id::ConnId;
use crate::net::PeerAddr;
use crate::reactor::Reactor;
use crate::threads::ReactorThreads;
use crate::tls::{server_name, TlsInfo, TlsSetup};
use crate::transport::Security;

fn server(config: Arc<ServerConfig>) -> Security {
    Security {
        tls: Some(TlsSetup::Server(config)),
    }
}

fn client(config: Arc<ClientConfig>, name: &str) -> io::Result<Security> {
    Ok(Security {
        tls: Some(TlsSetup::Client(config, server_name(name)?)),
    })
}

impl Reactor {
    /// Listens for TLS connections over TCP on `addr`, as [`listen`](Reactor::listen) does
    /// for plaintext, and returns the address bound. Each accepted connection gets a TLS
    /// server session from `config` and a handler from `factory`, which hears plaintext.
    ///
    /// `on_open` runs when the TCP connection is established, before the handshake; what the
    /// handler writes then is held (and counted as buffered output) until the handshake
    /// finishes. The handshake must finish within
    /// [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout). A failed
    /// handshake sends rustls's alert and ends that connection with
    /// [`CloseReason::Tls`](crate::CloseReason::Tls).
    ///
    /// # Errors
    /// Those of [`listen`](Reactor::listen). A config that rustls cannot use for a session is
    /// found at the first connection, which is then dropped and the error logged.
    ///
    /// # Examples
    /// A TLS echo server with a certificate made on the spot (`rcgen`), and a blocking rustls
    /// client:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use mio_reactor::rustls::{self, pki_types::PrivateKeyDer, RootCertStore};
    /// use mio_reactor::{Context, Handler, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data); // encrypted on the way out
    ///         data.len()
    ///     }
    /// }
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let key = PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let server = rustls::ServerConfig::builder_with_provider(provider.clone())
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_no_client_auth()
    ///     .with_single_cert(vec![cert.cert.der().clone()], key)
    ///     .unwrap();
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen_tls("127.0.0.1:0".parse().unwrap(), Arc::new(server), |_| Some(Echo))?;
    /// let shutdown = reactor.shutdown_handle();
    /// let client = std::thread::spawn(move || -> std::io::Result<Vec<u8>> {
    ///     let mut roots = RootCertStore::empty();
    ///     roots.add(cert.cert.der().clone()).unwrap();
    ///     let config = rustls::ClientConfig::builder_with_provider(provider)
    ///         .with_safe_default_protocol_versions()
    ///         .unwrap()
    ///         .with_root_certificates(roots)
    ///         .with_no_client_auth();
    ///     let name = "localhost".try_into().unwrap();
    ///     let session = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    ///     let mut tls = rustls::StreamOwned::new(session, std::net::TcpStream::connect(addr)?);
    ///     tls.write_all(b"hello")?;
    ///     let mut reply = [0; 5];
    ///     tls.read_exact(&mut reply)?;
    ///     shutdown.shutdown();
    ///     Ok(reply.to_vec())
    /// });
    /// reactor.run()?;
    /// assert_eq!(client.join().unwrap()?, b"hello");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_tls<F, H>(
        &mut self,
        addr: SocketAddr,
        config: Arc<ServerConfig>,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        self.listen_secured(addr, Box::new(factory), server(config))
    }

    /// Listens for TLS connections over TCP on `addr` with `SO_REUSEPORT`, sharing the port
    /// with other reactors: [`listen_reuseport`](Reactor::listen_reuseport) with each
    /// connection secured as by [`listen_tls`](Reactor::listen_tls). Every reactor of the
    /// group may share one `config` (`Arc`): a rustls config is `Send + Sync`, each
    /// connection's session is its own.
    ///
    /// # Errors
    /// Those of [`listen_reuseport`](Reactor::listen_reuseport).
    pub fn listen_reuseport_tls<F, H>(
        &mut self,
        addr: SocketAddr,
        config: Arc<ServerConfig>,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        self.listen_reuseport_secured(addr, Box::new(factory), server(config))
    }

    /// Takes streams other threads hand over, as
    /// [`accept_handovers`](Reactor::accept_handovers) does, and serves each as the server
    /// side of a TLS connection with a session from `config`: the thread that accepted the
    /// stream moves only the socket, and the handshake runs here, under
    /// [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout). Replaces any
    /// factory (and TLS config) given before.
    pub fn accept_handovers_tls(&mut self, config: Arc<ServerConfig>, factory: impl Factory) {
        self.accept_handovers_secured(Box::new(factory), server(config));
    }

    /// Listens for TLS connections over a Unix-domain socket at `path`: [`listen_unix`]
    /// with each connection secured as by [`listen_tls`](Reactor::listen_tls).
    ///
    /// # Errors
    /// Those of [`listen_unix`].
    ///
    /// [`listen_unix`]: Reactor::listen_unix
    pub fn listen_unix_tls<F, H>(
        &mut self,
        path: impl AsRef<Path>,
        config: Arc<ServerConfig>,
        factory: F,
    ) -> io::Result<()>
    where
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        self.listen_unix_secured(path.as_ref(), Box::new(factory), server(config))
    }

    /// Opens an outbound TLS connection over TCP, as [`connect`](Reactor::connect) does for
    /// plaintext. `server_name` is the name the server's certificate must be valid for (and
    /// the SNI sent): a DNS name, or an IP address written out.
    ///
    /// `on_open` runs once the TCP connect completes, before the handshake; what the handler
    /// writes then is sent once the handshake finishes. A certificate that does not verify
    /// ends the connection with [`CloseReason::Tls`](crate::CloseReason::Tls).
    ///
    /// # Errors
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `server_name` is neither a DNS name
    /// nor an IP address, or if rustls cannot make a session from `config`; otherwise those
    /// of [`connect`](Reactor::connect).
    pub fn connect_tls(
        &mut self,
        addr: impl ToSocketAddrs,
        server_name: &str,
        config: Arc<ClientConfig>,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        self.connect_secured(addr, Box::new(handler), client(config, server_name)?)
    }

    /// Opens an outbound TLS connection over a Unix-domain socket: [`connect_unix`] secured
    /// as by [`connect_tls`](Reactor::connect_tls).
    ///
    /// # Errors
    /// Those of [`connect_tls`](Reactor::connect_tls) for `server_name` and `config`, and of
    /// [`connect_unix`].
    ///
    /// [`connect_unix`]: Reactor::connect_unix
    pub fn connect_unix_tls(
        &mut self,
        path: impl AsRef<Path>,
        server_name: &str,
        config: Arc<ClientConfig>,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        let security = client(config, server_name)?;
        self.core.now = Instant::now();
        self.core
            .connect_unix(path.as_ref(), Box::new(handler), security)
    }
}

impl ReactorThreads {
    /// Starts `count` reactors that all accept TLS connections on `addr` through
    /// `SO_REUSEPORT`: [`serve`](ReactorThreads::serve), with each reactor listening as by
    /// [`Reactor::listen_reuseport_tls`]. The reactors share `config`; each connection's TLS
    /// session lives on the thread that accepted it, and its handler hears plaintext.
    /// Returns the address bound (port 0 picks one free port for all of them).
    ///
    /// # Errors
    /// Those of [`serve`](ReactorThreads::serve). A config that rustls cannot use for a
    /// session is found at the first connection, as for [`Reactor::listen_tls`].
    ///
    /// # Examples
    /// Two TLS echo reactors on one port, with a certificate made on the spot (`rcgen`):
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use mio_reactor::rustls::{self, pki_types::PrivateKeyDer, RootCertStore};
    /// use mio_reactor::{Config, Context, Handler, ReactorThreads};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         ctx.write(data); // encrypted on the way out
    ///         data.len()
    ///     }
    /// }
    ///
    /// let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// let key = PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    /// let provider = Arc::new(rustls::crypto::ring::default_provider());
    /// let server = rustls::ServerConfig::builder_with_provider(provider.clone())
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_no_client_auth()
    ///     .with_single_cert(vec![cert.cert.der().clone()], key)
    ///     .unwrap();
    ///
    /// let addr = "127.0.0.1:0".parse().unwrap();
    /// let (threads, addr) =
    ///     ReactorThreads::serve_tls(2, Config::default(), addr, Arc::new(server), |_| |_: &_| Some(Echo))?;
    ///
    /// let mut roots = RootCertStore::empty();
    /// roots.add(cert.cert.der().clone()).unwrap();
    /// let client = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()
    ///     .unwrap()
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let session = rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap())
    ///     .unwrap();
    /// let mut tls = rustls::StreamOwned::new(session, std::net::TcpStream::connect(addr)?);
    /// tls.write_all(b"hello")?;
    /// let mut reply = [0; 5];
    /// tls.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"hello");
    /// drop(tls);
    /// threads.shutdown_handle().shutdown();
    /// let stats = threads.join()?;
    /// assert_eq!(stats.iter().map(|s| s.accepted).sum::<u64>(), 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn serve_tls<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        make_factory: M,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        ReactorThreads::serve_secured(count, config, addr, make_factory, server(tls))
    }

    /// Starts `count` reactors that serve TLS connections, and one more that accepts them on
    /// `addr` and hands each to the least loaded: [`serve_balanced`](ReactorThreads::serve_balanced),
    /// with each serving reactor taking handovers as by [`Reactor::accept_handovers_tls`].
    /// The acceptor moves only sockets: every handshake, and every record after it, is
    /// handled by the reactor that serves the connection.
    ///
    /// [`join`](ReactorThreads::join) returns `count + 1` stats, the acceptor's last, as for
    /// [`serve_balanced`](ReactorThreads::serve_balanced).
    ///
    /// # Errors
    /// Those of [`serve_balanced`](ReactorThreads::serve_balanced).
    pub fn serve_balanced_tls<M, F, H>(
        count: usize,
        config: Config,
        addr: SocketAddr,
        tls: Arc<ServerConfig>,
        make_factory: M,
    ) -> io::Result<(ReactorThreads, SocketAddr)>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut(&PeerAddr) -> Option<H> + 'static,
        H: Handler,
    {
        ReactorThreads::serve_balanced_secured(count, config, addr, make_factory, server(tls))
    }
}

impl Context<'_> {
    /// What this connection's TLS session negotiated; `None` for a plaintext connection.
    pub fn tls(&self) -> Option<TlsInfo<'_>> {
        let conn = self.core.conn_ref(self.slot)?;
        conn.transport_ref().tls().map(|tls| tls.info())
    }

    /// Opens an outbound TLS connection in this reactor, as
    /// [`Reactor::connect_tls`] does.
    ///
    /// # Errors
    /// Those of [`Reactor::connect_tls`].
    pub fn connect_tls(
        &mut self,
        addr: SocketAddr,
        server_name: &str,
        config: Arc<ClientConfig>,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        let security = client(config, server_name)?;
        self.core
            .connect(vec![PeerAddr::Tcp(addr)], Box::new(handler), security)
            .map_err(|(err, _)| err)
    }
}

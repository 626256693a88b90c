//! What is done to a socket's connections, as options of the one `listen` and the one
//! `connect`: [`ListenOptions`] and [`ConnectOptions`].
//!
//! Each option composes with every other and with every [`Endpoint`](crate::Endpoint): TLS
//! on a Unix socket, `SO_REUSEPORT` with TLS, a backlog for an inherited socket's... So a
//! new layer adds one option here, never a row of methods (Netty's bootstrap options; the
//! Twisted endpoints' parameters).

use std::fmt;
use std::sync::Arc;

use crate::dead_peers::DeadPeerDetection;
use crate::output_limits::OutputLimits;
use crate::proxy_protocol::ProxyProtocol;
use crate::transport::Security;

/// Connections the kernel completes and queues for a listener before we accept them: room
/// for a burst of connects between two accepts. Past it the kernel drops SYNs and each of
/// those clients waits for a retransmission, 1 s or more. (mio's `TcpListener::bind` listens
/// with 128, the standard library's value; tokio uses 1024. Linux caps it at
/// `net.core.somaxconn`, 4096 by default.)
pub(crate) const DEFAULT_BACKLOG: u32 = 1024;

/// Options of a [`Reactor::listen`](crate::Reactor::listen) (and of
/// [`ReactorThreads::serve`](crate::ReactorThreads::serve)): built from
/// [`ListenOptions::default()`] by chaining, `Clone + Send + Sync`, so one value can serve
/// several listens and several threads.
///
/// | option | default | applies to |
/// |---|---|---|
/// | [`reuse_port`](ListenOptions::reuse_port) | off | `tcp:` endpoints a listen binds |
/// | [`backlog`](ListenOptions::backlog) | 1024 | `tcp:` and `unix:` endpoints a listen binds |
/// | [`unix_mode`](ListenOptions::unix_mode) | the umask's | `unix:` endpoints a listen binds |
/// | `tls` (the `tls` feature) | plaintext | every connection of the listen |
/// | [`output_limits`](ListenOptions::output_limits) | the reactor's [`Config`](crate::Config) | every connection of the listen |
/// | [`dead_peer_detection`](ListenOptions::dead_peer_detection) | the reactor's [`Config`](crate::Config) | every TCP connection of the listen |
/// | [`proxy_protocol`](ListenOptions::proxy_protocol) | off | every connection a `listen` accepts |
///
/// Options that do not apply to an endpoint are ignored: an inherited socket (`fd:N`)
/// keeps the backlog and mode it was made with.
///
/// # Examples
/// ```
/// use mio_reactor::ListenOptions;
///
/// let options = ListenOptions::default().reuse_port(true).backlog(4096);
/// assert!(options.is_reuse_port());
/// assert_eq!(options.backlog_len(), 4096);
/// ```
#[derive(Clone, Default)]
pub struct ListenOptions {
    reuse_port: bool,
    backlog: Option<u32>,
    unix_mode: Option<u32>,
    pub(crate) security: Security,
    output_limits: Option<OutputLimits>,
    dead_peers: Option<DeadPeerDetection>,
    proxy: Option<Arc<ProxyProtocol>>,
}

impl ListenOptions {
    /// Sets `SO_REUSEPORT` on the listening socket, so that several sockets (one per
    /// reactor thread, or an old and a new process) can listen on one port; the kernel
    /// spreads connections over them by a hash of the addresses (`socket(7)`).
    #[must_use]
    pub fn reuse_port(mut self, on: bool) -> ListenOptions {
        self.reuse_port = on;
        self
    }

    /// Whether [`reuse_port`](ListenOptions::reuse_port) is on.
    pub fn is_reuse_port(&self) -> bool {
        self.reuse_port
    }

    /// The length of the queue of connections the kernel completed and we have not
    /// accepted yet (`listen(2)`'s `backlog`); Linux caps it at `net.core.somaxconn`.
    /// Default 1024 (tokio's; the standard library and mio use 128).
    #[must_use]
    pub fn backlog(mut self, connections: u32) -> ListenOptions {
        self.backlog = Some(connections);
        self
    }

    /// The backlog a listen asks for.
    pub fn backlog_len(&self) -> u32 {
        self.backlog.unwrap_or(DEFAULT_BACKLOG)
    }

    /// The file mode of a Unix-domain socket the listen creates, such as `0o660` (connecting
    /// needs write permission on the file, `unix(7)`); set right after `bind`, before the
    /// socket listens, so no client connects under the wider mode.
    #[must_use]
    pub fn unix_mode(mut self, mode: u32) -> ListenOptions {
        self.unix_mode = Some(mode);
        self
    }

    /// The mode [`unix_mode`](ListenOptions::unix_mode) set, if any.
    pub fn unix_mode_bits(&self) -> Option<u32> {
        self.unix_mode
    }

    /// Serves every connection of the listen over TLS, as the server, with sessions from
    /// `config` (the `tls` feature). The handler hears plaintext: `on_open` runs when the TCP
    /// connection is established, before the handshake, and what it writes waits for the
    /// handshake; the handshake must finish within
    /// [`Config::tls_handshake_timeout`](crate::Config::tls_handshake_timeout). A config
    /// that rustls cannot use for a session is found at the first connection, which is then
    /// dropped and the error logged.
    ///
    /// A failed handshake sends rustls's alert and ends that connection with
    /// [`CloseReason::Tls`](crate::CloseReason::Tls). A graceful close sends `close_notify`
    /// before the FIN.
    ///
    /// # Examples
    /// A TLS echo server with a certificate made on the spot (`rcgen`), and a blocking rustls
    /// client:
    /// ```
    /// use std::io::{Read, Write};
    /// use std::sync::Arc;
    /// use mio_reactor::rustls::{self, pki_types::PrivateKeyDer, RootCertStore};
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
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
    /// let options = ListenOptions::default().tls(Arc::new(server));
    /// let addr = reactor.listen("127.0.0.1:0", options, |_| Some(Echo))?.local_addr()?;
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
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> ListenOptions {
        self.security = crate::tls_api::server_security(config);
        self
    }

    /// Whether the listen serves TLS.
    pub fn is_tls(&self) -> bool {
        self.security.is_tls()
    }

    /// Gives every connection of the listen these output limits instead of the reactor's
    /// (see [`OutputLimits`]): a class of clients, as Redis's `client-output-buffer-limit
    /// pubsub`. The limits are checked by the listen, which fails with
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) if they contradict each other. A
    /// handler may still change its own connection's later
    /// ([`Context::set_output_limits`](crate::Context::set_output_limits)).
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{ListenOptions, OutputLimits};
    ///
    /// let bulk = OutputLimits::default().max_output(64 << 20);
    /// let options = ListenOptions::default().output_limits(bulk);
    /// assert_eq!(options.get_output_limits(), Some(bulk));
    /// assert_eq!(ListenOptions::default().get_output_limits(), None); // the reactor's
    /// ```
    #[must_use]
    pub fn output_limits(mut self, limits: OutputLimits) -> ListenOptions {
        self.output_limits = Some(limits);
        self
    }

    /// The limits [`output_limits`](ListenOptions::output_limits) set, if any (`None`: the
    /// reactor's [`Config`](crate::Config)).
    pub fn get_output_limits(&self) -> Option<OutputLimits> {
        self.output_limits
    }

    /// Gives every TCP connection of the listen this keepalive and user timeout instead of
    /// the reactor's (see [`DeadPeerDetection`]), set on each socket as it is accepted. The
    /// listen checks them and fails with [`InvalidInput`](std::io::ErrorKind::InvalidInput)
    /// for values the kernel does not take. Ignored by Unix-domain listens.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::{DeadPeerDetection, ListenOptions};
    ///
    /// let replicas = DeadPeerDetection::default().user_timeout(Some(Duration::from_secs(30)));
    /// let options = ListenOptions::default().dead_peer_detection(replicas);
    /// assert_eq!(options.get_dead_peer_detection(), Some(replicas));
    /// assert_eq!(ListenOptions::default().get_dead_peer_detection(), None); // the reactor's
    /// ```
    #[must_use]
    pub fn dead_peer_detection(mut self, settings: DeadPeerDetection) -> ListenOptions {
        self.dead_peers = Some(settings);
        self
    }

    /// What [`dead_peer_detection`](ListenOptions::dead_peer_detection) set, if anything
    /// (`None`: the reactor's [`Config`](crate::Config)).
    pub fn get_dead_peer_detection(&self) -> Option<DeadPeerDetection> {
        self.dead_peers
    }

    /// What each connection of the listen gets.
    pub(crate) fn connection_settings(&self) -> ConnectionSettings {
        ConnectionSettings {
            security: self.security.clone(),
            output_limits: self.output_limits,
            dead_peers: self.dead_peers,
        }
    }

    /// Reads a PROXY protocol header (HAProxy's spec, version 1 or 2) at the start of every
    /// connection the listen accepts, before anything else: the way a load balancer that
    /// relays TCP (HAProxy's `send-proxy`, `send-proxy-v2`; nginx's `proxy_protocol on`; AWS
    /// NLB, ...) tells the server whom it relays. See [`ProxyProtocol`] for who may send
    /// one, the deadline and the size limit.
    ///
    /// The factory is asked for a handler once the header is read, with the client's
    /// address; then [`Context::peer_addr`](crate::Context::peer_addr), the logs and the
    /// trace name the client, and [`Context::proxy_header`](crate::Context::proxy_header)
    /// the balancer and the header's TLVs. A connection whose header is missing, malformed,
    /// too long, late, or from an untrusted address is closed before any handler exists,
    /// with a [`CloseReason`](crate::CloseReason) that says which (counted in
    /// [`ClosedCounts::proxy_protocol`](crate::ClosedCounts::proxy_protocol)). With
    /// [`tls`](ListenOptions::tls) too, the header comes first, in plaintext, and the TLS
    /// handshake after it, as HAProxy sends it. A factory that refuses the client gets its
    /// connection aborted (counted in [`Stats::refused`](crate::Stats::refused) and as
    /// [`CloseReason::Aborted`](crate::CloseReason::Aborted)); a shutdown closes the
    /// connections still waiting for their header at once.
    ///
    /// Applies to connections a listen accepts itself: [`Reactor::listen`](crate::Reactor::listen)
    /// and [`ReactorThreads::serve`](crate::ReactorThreads::serve) with
    /// [`Spread::ReusePort`](crate::Spread::ReusePort). Streams accepted elsewhere
    /// ([`Reactor::adopt`](crate::Reactor::adopt), the `handover:` listen that
    /// [`Spread::LeastLoaded`](crate::Spread::LeastLoaded) serves with) refuse the option
    /// with [`Unsupported`](std::io::ErrorKind::Unsupported) rather than hand the header to
    /// handlers as data.
    ///
    /// # Examples
    /// A balancer (here a test client) sends a version 1 header, then the client's bytes:
    /// ```
    /// use std::io::{Read, Write};
    /// use mio_reactor::{Context, Handler, ListenOptions, ProxyProtocol, Reactor};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         let balancer = ctx.proxy_header().map(|h| h.proxy_addr().to_string());
    ///         let hello = format!("hello {} via {}\n", ctx.peer_addr(), balancer.unwrap());
    ///         ctx.write(hello.as_bytes());
    ///         ctx.close();
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let options = ListenOptions::default().proxy_protocol(ProxyProtocol::default());
    /// let addr = reactor.listen("127.0.0.1:0", options, |_| Some(Hello))?.local_addr()?;
    /// let shutdown = reactor.shutdown_handle();
    /// let balancer = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut conn = std::net::TcpStream::connect(addr)?;
    ///     let port = conn.local_addr()?.port();
    ///     conn.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 443\r\n")?;
    ///     let mut reply = String::new();
    ///     conn.read_to_string(&mut reply)?;
    ///     shutdown.shutdown();
    ///     Ok(reply.replace(&port.to_string(), "PORT"))
    /// });
    /// reactor.run()?;
    /// assert_eq!(balancer.join().unwrap()?, "hello 192.0.2.1:56324 via 127.0.0.1:PORT\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn proxy_protocol(mut self, proxy: ProxyProtocol) -> ListenOptions {
        self.proxy = Some(Arc::new(proxy));
        self
    }

    /// The PROXY protocol settings, if [`proxy_protocol`](ListenOptions::proxy_protocol) is
    /// on.
    pub fn get_proxy_protocol(&self) -> Option<&ProxyProtocol> {
        self.proxy.as_deref()
    }

    /// The PROXY protocol settings, shared with the listener.
    pub(crate) fn proxy(&self) -> Option<Arc<ProxyProtocol>> {
        self.proxy.clone()
    }

    /// The same options without TLS: an acceptor that only moves sockets to the reactors
    /// that secure them.
    pub(crate) fn plaintext(self) -> ListenOptions {
        ListenOptions {
            security: Security::default(),
            ..self
        }
    }
}

impl fmt::Debug for ListenOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListenOptions")
            .field("reuse_port", &self.reuse_port)
            .field("backlog", &self.backlog_len())
            .field("unix_mode", &self.unix_mode.map(|m| format!("{m:o}")))
            .field("tls", &self.is_tls())
            .field("output_limits", &self.output_limits)
            .field("dead_peer_detection", &self.dead_peers)
            .field("proxy_protocol", &self.proxy)
            .finish()
    }
}

/// Options of a `connect` ([`Reactor::connect`](crate::Reactor::connect),
/// [`Context::connect`](crate::Context::connect),
/// [`LoopContext::connect`](crate::LoopContext::connect)): built from
/// [`ConnectOptions::default()`] by chaining.
///
/// | option | default |
/// |---|---|
/// | `tls` (the `tls` feature): a client config and the server's name | plaintext |
/// | [`output_limits`](ConnectOptions::output_limits) | the reactor's [`Config`](crate::Config) |
/// | [`dead_peer_detection`](ConnectOptions::dead_peer_detection) | the reactor's [`Config`](crate::Config) |
///
/// # Examples
/// ```
/// use mio_reactor::ConnectOptions;
///
/// assert!(!ConnectOptions::default().is_tls());
/// ```
#[derive(Clone, Default)]
pub struct ConnectOptions {
    pub(crate) security: Security,
    output_limits: Option<OutputLimits>,
    dead_peers: Option<DeadPeerDetection>,
}

impl ConnectOptions {
    /// Secures the connection with TLS, as the client, with a session from `config`.
    /// `server_name` is the name the server's certificate must be valid for, and the SNI
    /// sent: a DNS name, or an IP address written out.
    ///
    /// `on_open` runs once the TCP connect completes, before the handshake; what the
    /// handler writes then is sent once the handshake finishes. A certificate that does not
    /// verify ends the connection with [`CloseReason::Tls`](crate::CloseReason::Tls).
    ///
    /// # Errors
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) if `server_name` is neither a
    /// DNS name nor an IP address.
    #[cfg(feature = "tls")]
    pub fn tls(
        mut self,
        config: Arc<rustls::ClientConfig>,
        server_name: &str,
    ) -> std::io::Result<ConnectOptions> {
        self.security = crate::tls_api::client_security(config, server_name)?;
        Ok(self)
    }

    /// Whether the connection will be secured with TLS.
    pub fn is_tls(&self) -> bool {
        self.security.is_tls()
    }

    /// Gives the connection these output limits instead of the reactor's (see
    /// [`OutputLimits`]). The connect checks them and fails with
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) if they contradict each other.
    ///
    /// # Examples
    /// ```
    /// use mio_reactor::{ConnectOptions, OutputLimits};
    ///
    /// let small = OutputLimits::default().low_water(1024).high_water(4096);
    /// let options = ConnectOptions::default().output_limits(small);
    /// assert_eq!(options.get_output_limits(), Some(small));
    /// ```
    #[must_use]
    pub fn output_limits(mut self, limits: OutputLimits) -> ConnectOptions {
        self.output_limits = Some(limits);
        self
    }

    /// The limits [`output_limits`](ConnectOptions::output_limits) set, if any (`None`: the
    /// reactor's [`Config`](crate::Config)).
    pub fn get_output_limits(&self) -> Option<OutputLimits> {
        self.output_limits
    }

    /// Gives a TCP connection this keepalive and user timeout instead of the reactor's
    /// (see [`DeadPeerDetection`]), set on the socket before the connect starts. The connect
    /// checks them and fails with [`InvalidInput`](std::io::ErrorKind::InvalidInput) for
    /// values the kernel does not take. Ignored for a Unix-domain connect.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::{ConnectOptions, DeadPeerDetection, Keepalive};
    ///
    /// let keepalive = Keepalive::new(Duration::from_secs(10), Duration::from_secs(2), 3);
    /// let backend = DeadPeerDetection::default().keepalive(Some(keepalive));
    /// let options = ConnectOptions::default().dead_peer_detection(backend);
    /// assert_eq!(options.get_dead_peer_detection(), Some(backend));
    /// ```
    #[must_use]
    pub fn dead_peer_detection(mut self, settings: DeadPeerDetection) -> ConnectOptions {
        self.dead_peers = Some(settings);
        self
    }

    /// What [`dead_peer_detection`](ConnectOptions::dead_peer_detection) set, if anything
    /// (`None`: the reactor's [`Config`](crate::Config)).
    pub fn get_dead_peer_detection(&self) -> Option<DeadPeerDetection> {
        self.dead_peers
    }

    /// What the connection is made with: its security, output limits and dead-peer
    /// detection.
    pub(crate) fn into_connection(self) -> ConnectionSettings {
        ConnectionSettings {
            security: self.security,
            output_limits: self.output_limits,
            dead_peers: self.dead_peers,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("tls", &self.is_tls())
            .field("output_limits", &self.output_limits)
            .field("dead_peer_detection", &self.dead_peers)
            .finish()
    }
}

/// What a listen, a connect or an adopt gives each of its connections; `None` fields take
/// the reactor's [`Config`](crate::Config).
///
/// `pub` only so that the sealed option traits can name it; this module is private.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSettings {
    pub(crate) security: Security,
    pub(crate) output_limits: Option<OutputLimits>,
    pub(crate) dead_peers: Option<DeadPeerDetection>,
}

impl ConnectionSettings {
    /// Checks the limits and the dead-peer settings.
    ///
    /// # Errors
    /// `InvalidInput` for values that contradict each other or that the kernel refuses.
    pub(crate) fn validate(&self) -> std::io::Result<()> {
        if let Some(limits) = self.output_limits {
            limits.validate()?;
        }
        self.dead_peers.map_or(Ok(()), |d| d.validate())
    }
}

/// The options [`adopt`](crate::Reactor::adopt) takes for a stream made elsewhere: a
/// [`ListenOptions`] when this side is the server (the stream was accepted elsewhere), a
/// [`ConnectOptions`] when it is the client (connected elsewhere). Only the options that
/// concern a connection apply (TLS, output limits, dead-peer detection); those of a listening
/// socket are ignored.
///
/// Sealed: implemented for those two types only.
pub trait StreamOptions: private::Sealed {}

pub(crate) mod private {
    use super::ConnectionSettings;

    /// What a stream's options give the reactor's connection: how to secure its transport,
    /// its output limits and dead-peer detection (`None`: the reactor's).
    pub trait Sealed {
        fn connection_settings(&self) -> ConnectionSettings;
        /// Whether the options ask for a PROXY protocol header (which a stream made
        /// elsewhere never had read).
        fn proxy_protocol(&self) -> bool {
            false
        }
    }

    impl Sealed for super::ListenOptions {
        fn connection_settings(&self) -> ConnectionSettings {
            super::ListenOptions::connection_settings(self)
        }
        fn proxy_protocol(&self) -> bool {
            self.proxy.is_some()
        }
    }

    impl Sealed for super::ConnectOptions {
        fn connection_settings(&self) -> ConnectionSettings {
            self.clone().into_connection()
        }
    }
}

impl StreamOptions for ListenOptions {}
impl StreamOptions for ConnectOptions {}

//! TLS for the examples: the options (`--tls-cert`/`--tls-key` for servers, `--tls`/`--ca`
//! for clients, one `clap` group each, flattened into every example that takes them), load
//! a certificate and key (PEM files, parsed by rustls's own `pki_types` PEM support), build
//! rustls configs, and listen or connect with or without TLS. Without the `tls` feature the
//! options are refused with a hint, and the examples need no `#[cfg]` of their own.
//! Included with `#[path = "support/tls.rs"] mod tls;`.
#![allow(dead_code)] // each example uses a different part

use std::io;
use std::path::{Path, PathBuf};

use mio_reactor::{
    Config, ConnId, ConnectOptions, Handler, IntoConnectTarget, IntoEndpoint, IntoListener,
    ListenOptions, Listening, PeerAddr, Reactor, ReactorThreads, Spread,
};

/// `--tls-cert FILE --tls-key FILE`: how every server example is asked to serve TLS
/// (`#[command(flatten)]` into its `Args`).
#[derive(clap::Args)]
pub struct ServerTlsArgs {
    /// Serve TLS on every --listen with this PEM certificate chain (needs --tls-key and a
    /// build with `--features tls`)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl ServerTlsArgs {
    /// The server config the options ask for, `None` without them.
    ///
    /// # Errors
    /// One line for a usage error: a file that does not load, or a build without TLS.
    pub fn config(&self) -> Result<Option<ServerTls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => server_config(cert, key).map(Some).map_err(|err| {
                match err.kind() {
                    // Without the `tls` feature no file is read: the two options are the
                    // culprit.
                    io::ErrorKind::Unsupported => format!("--tls-cert/--tls-key: {err}"),
                    // Names the option and the file.
                    _ => err.to_string(),
                }
            }),
            // clap makes each of the two require the other.
            _ => Ok(None),
        }
    }
}

/// `--tls --ca FILE [--server-name NAME]`: how every client example is asked to connect
/// over TLS (`#[command(flatten)]` into its `Args`).
#[derive(clap::Args)]
pub struct ClientTlsArgs {
    /// Connect over TLS (needs --ca and a build with `--features tls`)
    #[arg(long, requires = "ca")]
    tls: bool,
    /// Trust the CA certificates in this PEM file (with --tls)
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The name the server's certificate must be valid for [default: the server's host]
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
}

impl ClientTlsArgs {
    /// Whether `--tls` was given.
    pub fn is_on(&self) -> bool {
        self.tls
    }

    /// With `--tls`, the client config and the name the server's certificate is checked
    /// against: `--server-name`, else `host` (an IPv6 address's brackets removed).
    ///
    /// # Errors
    /// One line for a usage error: a CA file that does not load, or a build without TLS.
    pub fn config(&self, host: &str) -> Result<Option<(ClientTls, String)>, String> {
        if !self.tls {
            return Ok(None);
        }
        let ca = self.ca.as_deref().unwrap_or(Path::new(""));
        let config = client_config(ca).map_err(|err| match err.kind() {
            // Without the `tls` feature the CA file is never read: --tls is the culprit.
            io::ErrorKind::Unsupported => format!("--tls: {err}"),
            // Names --ca and the file.
            _ => err.to_string(),
        })?;
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
        Ok(Some((config, name)))
    }
}

/// Whether `reply` starts as a TLS alert record does (content type 21, protocol version
/// 3.x): what a TLS server sends a client that does not speak TLS, just before it closes.
/// Only a client without `--tls` can see one: over TLS the reactor takes the records.
pub fn starts_as_tls_alert(reply: &[u8]) -> bool {
    reply.starts_with(&[0x15, 0x03])
}

/// Whether `request` starts as a TLS handshake record does (content type 22, protocol
/// version 3.0 to 3.4): the ClientHello of a client that speaks TLS to a plaintext server.
/// In the tutorial's protocol these bytes would be a header length of 5,632-5,635 followed
/// by a header that does not start with `{`: never a request.
pub fn starts_as_tls_handshake(request: &[u8]) -> bool {
    matches!(request, [0x16, 0x03, 0x00..=0x04, ..])
}

/// Whether this connection is TLS (always `false` without the `tls` feature).
pub fn is_tls(ctx: &mio_reactor::Context<'_>) -> bool {
    #[cfg(feature = "tls")]
    return ctx.tls().is_some();
    #[cfg(not(feature = "tls"))]
    return {
        let _ = ctx;
        false
    };
}

/// What a plaintext server reports when a request was a TLS ClientHello.
pub const SPOKE_TLS: &str =
    "a TLS ClientHello: this server speaks plaintext (start it with --tls-cert FILE --tls-key FILE)";

/// Whether a TLS client's connection ended because the server answered with bytes that are
/// not TLS records (rustls: "received corrupt message of type InvalidContentType"): a
/// plaintext server, which our app_server answers with an error in plaintext.
pub fn answered_in_plaintext(reason: &mio_reactor::CloseReason) -> bool {
    matches!(reason, mio_reactor::CloseReason::Tls(message) if message.contains("InvalidContentType"))
}

/// What a client with `--tls` reports when the server answered in plaintext.
pub const ANSWERED_IN_PLAINTEXT: &str =
    "the server answered in plaintext, not TLS: it serves plaintext (try without --tls)";

/// What a client without `--tls` reports when the reply was a TLS alert.
pub const ANSWERED_WITH_TLS: &str =
    "the server answered with a TLS alert and closed: it serves TLS (try --tls --ca FILE)";

/// A server's TLS config.
#[cfg(feature = "tls")]
pub type ServerTls = std::sync::Arc<mio_reactor::rustls::ServerConfig>;
/// Stands in for a TLS config without the `tls` feature: nothing ever makes one.
#[cfg(not(feature = "tls"))]
pub struct NoTls(());
#[cfg(not(feature = "tls"))]
pub type ServerTls = NoTls;

/// A client's TLS config.
#[cfg(feature = "tls")]
pub type ClientTls = std::sync::Arc<mio_reactor::rustls::ClientConfig>;
#[cfg(not(feature = "tls"))]
pub type ClientTls = NoTls;

#[cfg(not(feature = "tls"))]
pub fn without_tls<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "built without TLS: run with `--features tls`",
    ))
}

#[cfg(feature = "tls")]
pub fn provider() -> std::sync::Arc<mio_reactor::rustls::crypto::CryptoProvider> {
    // The provider the library is built with (ring): see Cargo.toml.
    std::sync::Arc::new(mio_reactor::rustls::crypto::ring::default_provider())
}

/// An error about the file given to the option `flag`: "--tls-key: key.pem: ...".
#[cfg(feature = "tls")]
fn bad_file(flag: &str, path: &Path, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{flag}: {}: {err}", path.display()),
    )
}

/// Why a PEM file that should hold certificates does not do.
#[cfg(feature = "tls")]
const NO_CERTIFICATE: &str = "no PEM certificate (BEGIN CERTIFICATE) in it";

/// Why a PEM file that should hold a private key does not do.
#[cfg(feature = "tls")]
const NO_PRIVATE_KEY: &str = "no PEM private key (BEGIN PRIVATE KEY) in it";

/// The certificates in the PEM file given to `flag`: at least one (rustls would otherwise
/// say "peer sent no certificates", about a handshake, or fail every handshake later with
/// an unknown issuer). A file without any is named with what it holds instead, when that
/// is a private key: the certificate and key files swapped, or the key given to --ca.
#[cfg(feature = "tls")]
fn certificates(
    flag: &str,
    path: &Path,
) -> io::Result<Vec<mio_reactor::rustls::pki_types::CertificateDer<'static>>> {
    use mio_reactor::rustls::pki_types::pem::PemObject;
    use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| bad_file(flag, path, err))?;
    if !certs.is_empty() {
        return Ok(certs);
    }
    let hint = match PrivateKeyDer::from_pem_file(path) {
        Ok(_) => "; it holds a private key: is it the key file?",
        Err(_) => "",
    };
    Err(bad_file(flag, path, format!("{NO_CERTIFICATE}{hint}")))
}

/// The private key in the PEM file given to `flag`. A file without one is named with what
/// it holds instead, when that is a certificate (the two files swapped), not with rustls's
/// "no items found".
#[cfg(feature = "tls")]
fn private_key(
    flag: &str,
    path: &Path,
) -> io::Result<mio_reactor::rustls::pki_types::PrivateKeyDer<'static>> {
    use mio_reactor::rustls::pki_types::pem::{self, PemObject};
    use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    match PrivateKeyDer::from_pem_file(path) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let holds_certificates = CertificateDer::pem_file_iter(path)
                .is_ok_and(|mut certs| certs.next().is_some_and(|cert| cert.is_ok()));
            let hint = match holds_certificates {
                true => "; it holds a certificate: is it the certificate file?",
                false => "",
            };
            Err(bad_file(flag, path, format!("{NO_PRIVATE_KEY}{hint}")))
        }
        Err(err) => Err(bad_file(flag, path, err)),
    }
}

/// A server config from a PEM certificate chain (`--tls-cert`) and a PEM private key
/// (`--tls-key`); each error names the option (both, when the two do not go together).
#[cfg(feature = "tls")]
pub fn server_config(cert: &Path, key: &Path) -> io::Result<ServerTls> {
    let chain = certificates("--tls-cert", cert)?;
    let key_der = private_key("--tls-key", key)?;
    server_config_from(chain, key_der, None)
        .map_err(|err| io::Error::new(err.kind(), format!("--tls-cert/--tls-key: {err}")))
}

/// A server config presenting `chain` and `key`, TLS 1.2 and 1.3; with `client_roots`, it
/// requires a client certificate that verifies against them.
#[cfg(feature = "tls")]
pub fn server_config_from(
    chain: Vec<mio_reactor::rustls::pki_types::CertificateDer<'static>>,
    key: mio_reactor::rustls::pki_types::PrivateKeyDer<'static>,
    client_roots: Option<mio_reactor::rustls::RootCertStore>,
) -> io::Result<ServerTls> {
    use mio_reactor::rustls::server::WebPkiClientVerifier;
    let invalid =
        |err: mio_reactor::rustls::Error| io::Error::new(io::ErrorKind::InvalidInput, err);
    let builder = mio_reactor::rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?;
    let builder = match client_roots {
        None => builder.with_no_client_auth(),
        Some(roots) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider())
                    .build()
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain, key).map_err(invalid)?;
    Ok(std::sync::Arc::new(config))
}

#[cfg(not(feature = "tls"))]
pub fn server_config(_cert: &Path, _key: &Path) -> io::Result<ServerTls> {
    without_tls()
}

/// A client config trusting the CA certificates in the PEM file `ca` (`--ca`); each error
/// names the option and the file.
#[cfg(feature = "tls")]
pub fn client_config(ca: &Path) -> io::Result<ClientTls> {
    let mut roots = mio_reactor::rustls::RootCertStore::empty();
    for cert in certificates("--ca", ca)? {
        roots.add(cert).map_err(|err| bad_file("--ca", ca, err))?;
    }
    client_config_from(roots, None)
}

/// A client config trusting `roots`, TLS 1.2 and 1.3; with `identity` (a certificate chain
/// and its key), it presents a client certificate when the server asks for one.
#[cfg(feature = "tls")]
pub fn client_config_from(
    roots: mio_reactor::rustls::RootCertStore,
    identity: Option<(
        Vec<mio_reactor::rustls::pki_types::CertificateDer<'static>>,
        mio_reactor::rustls::pki_types::PrivateKeyDer<'static>,
    )>,
) -> io::Result<ClientTls> {
    let invalid =
        |err: mio_reactor::rustls::Error| io::Error::new(io::ErrorKind::InvalidInput, err);
    let builder = mio_reactor::rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_root_certificates(roots);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(invalid)?,
    };
    Ok(std::sync::Arc::new(config))
}

#[cfg(not(feature = "tls"))]
pub fn client_config(_ca: &Path) -> io::Result<ClientTls> {
    without_tls()
}

/// `options` secured as `tls` says: TLS with that server config, plaintext without.
pub fn listen_options(
    options: ListenOptions,
    tls: Option<&ServerTls>,
) -> io::Result<ListenOptions> {
    match tls {
        None => Ok(options),
        #[cfg(feature = "tls")]
        Some(config) => Ok(options.tls(config.clone())),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

/// The connect options for `tls`: TLS with that client config, verifying the server's
/// certificate for the name, plaintext without.
pub fn connect_options(tls: Option<(&ClientTls, &str)>) -> io::Result<ConnectOptions> {
    match tls {
        None => Ok(ConnectOptions::default()),
        #[cfg(feature = "tls")]
        Some((config, name)) => ConnectOptions::default().tls(config.clone(), name),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

/// Listens on `on` (an endpoint, its text, an address, or a `std` listener) with `options`,
/// over TLS if `tls` is given; what it bound.
pub fn listen<L, F, H>(
    reactor: &mut Reactor,
    on: L,
    (options, tls): (ListenOptions, Option<&ServerTls>),
    factory: F,
) -> io::Result<Listening>
where
    L: IntoListener,
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    reactor.listen(on, listen_options(options, tls)?, factory)
}

/// Starts `count` reactor threads serving `endpoint` with `options` (sharing it through
/// `SO_REUSEPORT`, or behind one acceptor, as `spread` says), over TLS if `tls` is given (every thread with the
/// same config).
pub fn serve_threads<M, F, H>(
    count: usize,
    config: Config,
    endpoint: impl IntoEndpoint,
    (options, tls): (ListenOptions, Option<&ServerTls>),
    spread: Spread,
    make_factory: M,
) -> io::Result<ReactorThreads>
where
    M: Fn(&mut Reactor, usize) -> F + Send + Sync + 'static,
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    ReactorThreads::serve(
        count,
        config,
        endpoint,
        listen_options(options, tls)?,
        spread,
        make_factory,
    )
}

/// Connects to `endpoint` (a name's addresses, or a list, tried in order until one
/// answers), over TLS (verifying `server_name`) if `tls` is given.
pub fn connect(
    reactor: &mut Reactor,
    endpoint: impl IntoConnectTarget,
    tls: Option<(&ClientTls, &str)>,
    handler: impl Handler,
) -> io::Result<ConnId> {
    reactor.connect(endpoint, connect_options(tls)?, handler)
}

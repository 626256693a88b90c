//! TLS for the examples: the options (`--tls-cert`/`--tls-key` for servers, `--tls`/`--ca`
//! for clients, one `clap` group each, flattened into every example that takes them), load
//! a certificate and key (PEM files, parsed by rustls's own `pki_types` PEM support), build
//! rustls configs, and listen or connect with or without TLS. Without the `tls` feature the
//! options are refused with a hint, and the examples need no `#[cfg]` of their own.
//! Included with `#[path = "support/tls.rs"] mod tls;`.
#![allow(dead_code)] // each example uses a different part

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use mio_reactor::{ConnId, Handler, PeerAddr, Reactor};

/// `--tls-cert FILE --tls-key FILE`: how every server example is asked to serve TLS
/// (`#[command(flatten)]` into its `Args`).
#[derive(clap::Args)]
pub struct ServerTlsArgs {
    /// Serve TLS with this PEM certificate chain (needs --tls-key and a build with
    /// `--features tls`)
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
            (Some(cert), Some(key)) => server_config(cert, key)
                .map(Some)
                .map_err(|err| format!("--tls-cert/--tls-key: {err}")),
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
        let config = client_config(ca).map_err(|err| {
            // Without the `tls` feature the CA file is never read: --tls is the culprit.
            let option = match err.kind() {
                io::ErrorKind::Unsupported => "--tls",
                _ => "--ca",
            };
            format!("{option}: {err}")
        })?;
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| host.trim_matches(['[', ']']).to_string());
        Ok(Some((config, name)))
    }
}

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

#[cfg(feature = "tls")]
fn bad_pem(path: &Path, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {err}", path.display()),
    )
}

/// Why a PEM file that should hold certificates does not do.
#[cfg(feature = "tls")]
const NO_CERTIFICATE: &str = "no PEM certificate (BEGIN CERTIFICATE) in it";

/// A server config from a PEM certificate chain and a PEM private key.
#[cfg(feature = "tls")]
pub fn server_config(cert: &Path, key: &Path) -> io::Result<ServerTls> {
    use mio_reactor::rustls::pki_types::pem::PemObject;
    use mio_reactor::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| bad_pem(cert, err))?;
    if chain.is_empty() {
        // rustls would say "peer sent no certificates", which is about a handshake.
        return Err(bad_pem(cert, NO_CERTIFICATE));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|err| bad_pem(key, err))?;
    server_config_from(chain, key_der, None)
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

/// A client config trusting the CA certificates in the PEM file `ca`.
#[cfg(feature = "tls")]
pub fn client_config(ca: &Path) -> io::Result<ClientTls> {
    use mio_reactor::rustls::pki_types::pem::PemObject;
    use mio_reactor::rustls::pki_types::CertificateDer;
    let mut roots = mio_reactor::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|err| bad_pem(ca, err))? {
        roots
            .add(cert.map_err(|err| bad_pem(ca, err))?)
            .map_err(|err| bad_pem(ca, err))?;
    }
    if roots.is_empty() {
        // Or every handshake would fail later with an unknown issuer.
        return Err(bad_pem(ca, NO_CERTIFICATE));
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

/// Listens on `addr`, over TLS if `tls` is given.
pub fn listen<F, H>(
    reactor: &mut Reactor,
    addr: SocketAddr,
    tls: Option<&ServerTls>,
    factory: F,
) -> io::Result<SocketAddr>
where
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    match tls {
        None => reactor.listen(addr, factory),
        #[cfg(feature = "tls")]
        Some(config) => reactor.listen_tls(addr, config.clone(), factory),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

/// Listens on the Unix-domain socket `path`, over TLS if `tls` is given.
pub fn listen_unix<F, H>(
    reactor: &mut Reactor,
    path: &str,
    tls: Option<&ServerTls>,
    factory: F,
) -> io::Result<()>
where
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    match tls {
        None => reactor.listen_unix(path, factory),
        #[cfg(feature = "tls")]
        Some(config) => reactor.listen_unix_tls(path, config.clone(), factory),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

/// Connects to the first of `addrs` that answers, over TLS (verifying `server_name`) if
/// `tls` is given.
pub fn connect(
    reactor: &mut Reactor,
    addrs: &[SocketAddr],
    tls: Option<(&ClientTls, &str)>,
    handler: impl Handler,
) -> io::Result<ConnId> {
    match tls {
        None => reactor.connect(addrs, handler),
        #[cfg(feature = "tls")]
        Some((config, name)) => reactor.connect_tls(addrs, name, config.clone(), handler),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

/// Connects to the Unix-domain socket `path`, over TLS if `tls` is given.
pub fn connect_unix(
    reactor: &mut Reactor,
    path: &str,
    tls: Option<(&ClientTls, &str)>,
    handler: impl Handler,
) -> io::Result<ConnId> {
    match tls {
        None => reactor.connect_unix(path, handler),
        #[cfg(feature = "tls")]
        Some((config, name)) => reactor.connect_unix_tls(path, name, config.clone(), handler),
        #[cfg(not(feature = "tls"))]
        Some(_) => without_tls(),
    }
}

//! TLS for the examples: load a certificate and key (PEM files, parsed by rustls's own
//! `pki_types` PEM support), build rustls configs, and listen or connect with or without
//! TLS. Without the `tls` feature the flags are refused with a hint, and the examples need
//! no `#[cfg]` of their own. Included with `#[path = "support/tls.rs"] mod tls;`.
#![allow(dead_code)] // each example uses a different part

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use mio_reactor::{Config, ConnId, Handler, PeerAddr, Reactor, ReactorThreads};

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
fn without_tls<T>() -> io::Result<T> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "built without TLS: run with `--features tls`",
    ))
}

#[cfg(feature = "tls")]
fn provider() -> std::sync::Arc<mio_reactor::rustls::crypto::CryptoProvider> {
    // The provider the library is built with (ring): see Cargo.toml.
    std::sync::Arc::new(mio_reactor::rustls::crypto::ring::default_provider())
}

/// An error about the file given to `flag`: "--tls-key key.pem: ...".
#[cfg(feature = "tls")]
fn bad_file(flag: &str, path: &Path, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{flag} {}: {err}", path.display()),
    )
}

/// The certificates in the PEM file given to `flag`: at least one. A file without any
/// gets an error that says what was expected, and whether the file is a private key
/// instead (--tls-cert and --tls-key swapped, or a key given to --ca).
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
    let hint = if PrivateKeyDer::from_pem_file(path).is_ok() {
        ": this file holds a private key (was the key file given for the certificate?)"
    } else {
        " (expected PEM blocks `-----BEGIN CERTIFICATE-----`)"
    };
    Err(bad_file(flag, path, format!("no certificate found{hint}")))
}

/// The private key in the PEM file given to `flag`, or an error that says what was
/// expected, and whether the file is a certificate instead (the two files swapped).
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
            let hint = if holds_certificates {
                ": this file holds a certificate (were the certificate and key files swapped?)"
            } else {
                " (expected a PEM block such as `-----BEGIN PRIVATE KEY-----`)"
            };
            Err(bad_file(flag, path, format!("no private key found{hint}")))
        }
        Err(err) => Err(bad_file(flag, path, err)),
    }
}

/// A server config from a PEM certificate chain (`--tls-cert`) and a PEM private key
/// (`--tls-key`); each error names the option and the file it is about.
#[cfg(feature = "tls")]
pub fn server_config(cert: &Path, key: &Path) -> io::Result<ServerTls> {
    let chain = certificates("--tls-cert", cert)?;
    let key_der = private_key("--tls-key", key)?;
    let config = mio_reactor::rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|builder| {
            builder
                .with_no_client_auth()
                .with_single_cert(chain, key_der)
        })
        .map_err(|err| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--tls-cert/--tls-key: {err}"),
            )
        })?;
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
    let config = mio_reactor::rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?
        .with_root_certificates(roots)
        .with_no_client_auth();
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

/// Starts `count` reactor threads sharing `addr` through `SO_REUSEPORT`, over TLS if `tls`
/// is given (every thread with the same config).
pub fn serve_threads<M, F, H>(
    count: usize,
    config: Config,
    addr: SocketAddr,
    tls: Option<&ServerTls>,
    make_factory: M,
) -> io::Result<(ReactorThreads, SocketAddr)>
where
    M: Fn(usize) -> F + Send + Sync + 'static,
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    match tls {
        None => ReactorThreads::serve(count, config, addr, make_factory),
        #[cfg(feature = "tls")]
        Some(tls) => ReactorThreads::serve_tls(count, config, addr, tls.clone(), make_factory),
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

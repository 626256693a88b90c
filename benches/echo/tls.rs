//! TLS for the benchmark: one certificate made in-process (`rcgen`), and the rustls
//! configs every TLS server and client here is built from.
//!
//! The driver writes the certificate and its key to a temporary directory (`TlsFiles`)
//! and hands the directory to the child processes (`--tls-dir`): the servers load their
//! [`server_config`] from it and the connection-holding helpers their [`client_config`].
//! Every TLS server under test gets the same `ServerConfig`, so the comparison is of the
//! loops around rustls, not of the TLS settings: the same version (TLS 1.3 is negotiated),
//! cipher suite, key type (ECDSA P-256, rcgen's default) and `ring` provider.
//!
//! Session resumption is off on both sides (no session cache and no tickets on the server,
//! `Resumption::disabled()` on the client), so that every handshake is a full one and no
//! server spends time issuing tickets nobody uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::NoServerSessionStorage;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::Fallible;

/// The name the certificate is for, and the one clients verify.
pub const SERVER_NAME: &str = "localhost";

const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// A self-signed certificate for [`SERVER_NAME`] and its key, in a directory removed when
/// this is dropped.
pub struct TlsFiles {
    dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn generate() -> Fallible<TlsFiles> {
        let cert = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()])?;
        let dir = tempfile::Builder::new()
            .prefix("echo-bench-tls")
            .tempdir()?;
        std::fs::write(dir.path().join(CERT_FILE), cert.cert.pem())?;
        std::fs::write(dir.path().join(KEY_FILE), cert.key_pair.serialize_pem())?;
        Ok(TlsFiles { dir })
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

fn provider() -> Arc<CryptoProvider> {
    // The provider the library is built with (see Cargo.toml), for every side.
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificate(dir: &Path) -> Fallible<CertificateDer<'static>> {
    Ok(CertificateDer::from_pem_file(dir.join(CERT_FILE))?)
}

/// The config of every TLS server under test: the certificate in `dir`, no client
/// certificates, no resumption.
pub fn server_config(dir: &Path) -> Fallible<Arc<ServerConfig>> {
    let key = PrivateKeyDer::from_pem_file(dir.join(KEY_FILE))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![certificate(dir)?], key)?;
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// The config of every TLS client here: trusts the certificate in `dir`, never resumes.
pub fn client_config(dir: &Path) -> Fallible<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(certificate(dir)?)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from(SERVER_NAME).expect("a valid DNS name")
}

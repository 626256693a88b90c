//! A small certificate authority and a certificate it signs, made in-process with `rcgen`:
//! what `gen_cert` writes to files, and what the TLS tests and the stress suite's TLS
//! scenarios use in memory. Never a key checked into the repository. rustls configs are
//! built from them by `support/tls.rs` (`server_config_from`, `client_config_from`).
//! Included with `#[path = ".../examples/support/pki.rs"] mod pki;`.
#![allow(dead_code)] // each includer uses a different part

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA certificate (its key thrown away once it has signed) and a leaf it signed, as DER
/// (what rustls takes) and PEM (what files, openssl and Python take).
pub struct Pki {
    pub ca: Vec<u8>,
    pub ca_pem: String,
    pub leaf: Vec<u8>,
    pub leaf_pem: String,
    /// The leaf's private key, PKCS#8 DER.
    pub leaf_key: Vec<u8>,
    pub leaf_key_pem: String,
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

impl Pki {
    /// A fresh CA named `ca_name` and a leaf for `names` (DNS names or IP addresses; the
    /// first is also its common name), with ECDSA P-256 keys (rcgen's default).
    ///
    /// # Errors
    /// rcgen's, for a name that is neither a DNS name nor an IP address.
    pub fn issue(ca_name: &str, names: &[&str]) -> Result<Pki, rcgen::Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Distinct names for the CA and the leaf: OpenSSL takes a certificate whose issuer
        // equals its subject for self-signed, and rcgen gives both the same default name.
        ca_params.distinguished_name = name(ca_name);
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut leaf_params = CertificateParams::new(names.clone())?;
        leaf_params.distinguished_name = name(names.first().map_or("localhost", String::as_str));
        let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key)?;
        Ok(Pki {
            ca: ca.der().to_vec(),
            ca_pem: ca.pem(),
            leaf: leaf.der().to_vec(),
            leaf_pem: leaf.pem(),
            leaf_key: leaf_key.serialize_der(),
            leaf_key_pem: leaf_key.serialize_pem(),
        })
    }
}

//! Makes a certificate for `localhost` in one command, for trying the TLS examples.
//!
//! ```text
//! cargo run --example gen_cert                  # writes tls/ca.pem, tls/cert.pem, tls/key.pem
//! cargo run --example gen_cert -- --dir /tmp/x  # somewhere else
//! ```
//! It makes a small certificate authority (`ca.pem`, whose key is thrown away) and a
//! certificate for `localhost`, `127.0.0.1` and `::1` signed by it (`cert.pem`, key in
//! `key.pem`). Give the server the certificate and key, and the clients the CA:
//!
//! ```text
//! cargo run --release --features tls --example echo_server -- --tls-cert tls/cert.pem --tls-key tls/key.pem
//! openssl s_client -connect 127.0.0.1:65432 -CAfile tls/ca.pem -servername localhost
//! cargo run --release --features tls --example echo_client -- --tls --ca tls/ca.pem
//! ```
//! For trying things out only: a real server gets its certificate from a real CA.

#[path = "support/cli.rs"]
mod cli;
#[path = "support/pki.rs"]
mod pki;

use std::path::PathBuf;

use clap::Parser;

/// Writes a test CA (ca.pem) and a certificate for localhost signed by it (cert.pem, key.pem).
#[derive(Parser)]
#[command(name = "gen_cert", version)]
struct Args {
    /// Where to write them
    #[arg(long, value_name = "DIR", default_value = "tls")]
    dir: PathBuf,
}

fn main() {
    let Args { dir } = cli::parse();
    if let Err(err) = generate(&dir) {
        eprintln!("gen_cert: {err}");
        std::process::exit(1);
    }
}

fn generate(dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let pki = pki::Pki::issue("mio-reactor example CA", &["localhost", "127.0.0.1", "::1"])?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem)?;
    std::fs::write(dir.join("cert.pem"), &pki.leaf_pem)?;
    write_private(&dir.join("key.pem"), &pki.leaf_key_pem)?;
    println!(
        "wrote {}/ca.pem, cert.pem and key.pem (for localhost, 127.0.0.1, ::1)",
        dir.display()
    );
    Ok(())
}

/// A private key readable by its owner only.
fn write_private(path: &std::path::Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(pem.as_bytes())
}

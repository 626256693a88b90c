//! The TLS echo server a tokio user would write: tokio-rustls's `TlsAcceptor` on the
//! current-thread runtime, then the same echo task as the plaintext tokio server.
//!
//! tokio-rustls is built on the same rustls as this crate, with the same `ring` provider
//! (see Cargo.toml; `cargo tree -i rustls` shows one version), and is handed the same
//! `ServerConfig` as our TLS server: what differs is only the loop around the session.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::servers::{serve_tokio_with, tokio_echo, ServeOptions};
use crate::Fallible;

pub fn serve(addr: SocketAddr, options: ServeOptions, config: Arc<ServerConfig>) -> Fallible<()> {
    let acceptor = TlsAcceptor::from(config);
    serve_tokio_with(addr, move |socket| {
        let handshake = acceptor.accept(socket);
        async move {
            // A failed handshake costs only its task, as it does in our server.
            if let Ok(stream) = handshake.await {
                tokio_echo(stream, options).await;
            }
        }
    })
}

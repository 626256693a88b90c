//! The TLS parts of the API (the `tls` feature): what secures a listen's or a connect's
//! connections ([`ListenOptions::tls`](crate::ListenOptions::tls),
//! [`ConnectOptions::tls`](crate::ConnectOptions::tls)), and what a handler can learn about
//! its session ([`Context::tls`]).
//!
//! TLS is an option, not a door of its own: the same listener, accept, connect and handler
//! code runs underneath, and the session lives in the connection's transport (`tls.rs`). So
//! every [`Handler`](crate::Handler) works unchanged over TLS: `on_data` receives plaintext
//! and [`Context::write`] encrypts.

use std::io;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};

use crate::context::Context;
use crate::tls::{server_name, TlsInfo, TlsSetup};
use crate::transport::Security;

/// Server sessions from `config`.
pub(crate) fn server_security(config: Arc<ServerConfig>) -> Security {
    Security {
        tls: Some(TlsSetup::Server(config)),
    }
}

/// Client sessions from `config`, for a server that must prove it is `name`.
pub(crate) fn client_security(config: Arc<ClientConfig>, name: &str) -> io::Result<Security> {
    Ok(Security {
        tls: Some(TlsSetup::Client(config, server_name(name)?)),
    })
}

impl Context<'_> {
    /// What this connection's TLS session negotiated; `None` for a plaintext connection.
    pub fn tls(&self) -> Option<TlsInfo<'_>> {
        let conn = self.core.entries.conn_ref(self.slot)?;
        conn.transport_ref().tls().map(|tls| tls.info())
    }
}

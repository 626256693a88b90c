//! Binding a Unix-domain socket path without stealing it, and cleaning it up afterwards.
//!
//! A Unix listener is a file. A server that crashes leaves it behind, and `bind` then fails
//! with `AddrInUse` although nobody listens. Deleting the file blindly would hijack the path
//! of a server that *is* running. So: probe with a connect. Refused means stale: remove and
//! bind again. Accepted means alive: fail. And only a socket file is ever removed: on Linux a
//! connect to a regular file is refused too (`ECONNREFUSED`), and that file is someone's data.

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

use mio::net::UnixListener;

use crate::net::listen_error;

/// Binds `path`, replacing a stale socket file but never a live one. Errors name the path
/// ("listen on unix:PATH: ...").
pub(crate) fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    bind_or_replace_stale(path)
        .map_err(|err| listen_error(format_args!("unix:{}", path.display()), err))
}

fn bind_or_replace_stale(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(err) if err.kind() == io::ErrorKind::AddrInUse && !is_socket_file(path) => {
            Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "the file exists and is not a socket",
            ))
        }
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => match StdUnixStream::connect(path) {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "in use by a running server",
            )),
            Err(probe) if probe.kind() == io::ErrorKind::ConnectionRefused => {
                log::info!("removing stale socket file {}", path.display());
                std::fs::remove_file(path)?;
                UnixListener::bind(path)
            }
            Err(_) => Err(err),
        },
        result => result,
    }
}

fn is_socket_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_socket())
}

/// Removes the socket file a listener created.
pub(crate) fn remove_socket_file(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => log::debug!("removed socket file {}", path.display()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => log::warn!("could not remove socket file {}: {err}", path.display()),
    }
}

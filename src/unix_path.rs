//! Binding a Unix-domain socket path without stealing it, and cleaning it up afterwards.
//!
//! A Unix listener is a file. A server that crashes leaves it behind, and `bind` then fails
//! with `AddrInUse` although nobody listens. Deleting the file blindly would hijack the path
//! of a server that *is* running. So: probe with a connect. Refused means stale: remove and
//! bind again. Accepted means alive: fail. And only a socket file is ever removed: on Linux a
//! connect to a regular file is refused too (`ECONNREFUSED`), and that file is someone's data.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::Path;

use mio::net::UnixListener;

use crate::endpoint::Endpoint;
use crate::net::{backlog, listen_error};
use crate::options::ListenOptions;

/// Binds `path` and listens with the backlog and file mode of `options`, replacing a stale
/// socket file but never a live one. Errors name the path ("listen on unix:PATH: ...").
pub(crate) fn bind_unix(path: &Path, options: &ListenOptions) -> io::Result<UnixListener> {
    bind_or_replace_stale(path, options)
        .map_err(|err| listen_error(Endpoint::Unix(path.to_path_buf()), err))
}

fn bind_or_replace_stale(path: &Path, options: &ListenOptions) -> io::Result<UnixListener> {
    match listening(path, options) {
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
                listening(path, options)
            }
            Err(_) => Err(err),
        },
        result => result,
    }
}

/// A non-blocking Unix-domain socket bound to `path`, given the mode of `options` before it
/// listens (so no client connects under a wider one), listening with its backlog.
fn listening(path: &Path, options: &ListenOptions) -> io::Result<UnixListener> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    if let Some(mode) = options.unix_mode_bits() {
        let set = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
        if let Err(err) = set {
            let _ = std::fs::remove_file(path);
            return Err(err);
        }
    }
    if let Err(err) = socket.listen(backlog(options)) {
        let _ = std::fs::remove_file(path);
        return Err(err);
    }
    let listener: std::os::unix::net::UnixListener = socket.into();
    Ok(UnixListener::from_std(listener))
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

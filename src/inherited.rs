//! Sockets this process inherited through systemd's socket activation protocol
//! (`sd_listen_fds(3)`): what `fd:N` and `systemd:NAME` endpoints name.
//!
//! The protocol is environment variables: `LISTEN_PID` (this process), `LISTEN_FDS` (how
//! many descriptors, from 3 or `LISTEN_FDS_FIRST_FD`) and `LISTEN_FDNAMES` (their names,
//! colon-separated). The `listenfd` crate reads the first two and turns a descriptor into a
//! `std` socket after checking its kind, which is the part that needs `unsafe`; it also
//! removes `LISTEN_PID` and `LISTEN_FDS`, so that a child does not take the descriptors for
//! its own. The environment is therefore read once per process, here, and every endpoint
//! takes its socket from that one reading: each descriptor at most once.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixListener;
use std::sync::{Mutex, OnceLock, PoisonError};

use listenfd::ListenFd;

use crate::endpoint::Endpoint;

/// The process's inherited descriptors, read from the environment at first use.
struct Inherited {
    fds: ListenFd,
    /// The descriptor number of index 0.
    first: i32,
    names: Vec<String>,
}

fn inherited() -> &'static Mutex<Inherited> {
    static INHERITED: OnceLock<Mutex<Inherited>> = OnceLock::new();
    INHERITED.get_or_init(|| {
        let first = std::env::var("LISTEN_FDS_FIRST_FD")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let names = std::env::var("LISTEN_FDNAMES")
            .map(|v| v.split(':').map(str::to_string).collect())
            .unwrap_or_default();
        let fds = ListenFd::from_env();
        if fds.len() > 0 {
            // listenfd removed LISTEN_PID and LISTEN_FDS; the names go with them.
            std::env::remove_var("LISTEN_FDNAMES");
            log::debug!("inherited {} sockets (names {names:?})", fds.len());
        }
        Mutex::new(Inherited { fds, first, names })
    })
}

/// An inherited socket, of the kind its descriptor turned out to be.
#[derive(Debug)]
pub(crate) enum InheritedSocket {
    Tcp(TcpListener),
    Unix(UnixListener),
    Udp(UdpSocket),
}

/// Takes the socket `endpoint` (`fd:N` or `systemd:NAME`) names. Each inherited descriptor
/// can be taken once.
///
/// # Errors
/// `NotFound` if nothing inherited has that number or name (the message lists what was
/// inherited), `AlreadyExists` if it was taken before, `InvalidInput` if it is neither a
/// listening TCP or Unix stream socket nor a UDP socket.
pub(crate) fn take(endpoint: &Endpoint) -> io::Result<InheritedSocket> {
    let mut inherited = inherited().lock().unwrap_or_else(PoisonError::into_inner);
    let index = inherited.index_of(endpoint)?;
    let fds = &mut inherited.fds;
    let taken = match fds.take_tcp_listener(index) {
        Ok(Some(listener)) => Some(InheritedSocket::Tcp(listener)),
        Ok(None) => None,
        Err(_) => match fds.take_unix_listener(index) {
            Ok(listener) => listener.map(InheritedSocket::Unix),
            Err(_) => fds
                .take_udp_socket(index)
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "neither a TCP or Unix-domain stream socket nor a UDP socket",
                    )
                })?
                .map(InheritedSocket::Udp),
        },
    };
    taken.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "taken already: each inherited socket serves one listen",
        )
    })
}

impl Inherited {
    fn index_of(&self, endpoint: &Endpoint) -> io::Result<usize> {
        let count = self.fds.len();
        let found = match endpoint {
            Endpoint::Fd(fd) => usize::try_from(fd - self.first).ok().filter(|&i| i < count),
            Endpoint::Systemd(name) => self.names.iter().take(count).position(|n| n == name),
            _ => None,
        };
        found.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no such inherited socket ({})", self.describe()),
            )
        })
    }

    /// What was inherited, for error messages: "inherited: fd:3 (web), fd:4".
    fn describe(&self) -> String {
        if self.fds.len() == 0 {
            return "this process inherited none: LISTEN_FDS is not set for it".to_string();
        }
        let each: Vec<String> = (0..self.fds.len())
            .map(|i| {
                let fd = self.first + i as i32;
                match self.names.get(i) {
                    Some(name) if !name.is_empty() => format!("fd:{fd} (systemd:{name})"),
                    _ => format!("fd:{fd}"),
                }
            })
            .collect();
        format!("inherited: {}", each.join(", "))
    }
}

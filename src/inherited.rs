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
//!
//! A successor started by an upgrade (`upgrade.rs`) inherits its predecessor's listeners
//! the same way (descriptors from 3, `LISTEN_FDS`, no `LISTEN_PID`: the predecessor cannot
//! know its child's PID before the fork, and `listenfd` accepts its absence, as `systemfd`
//! relies on), plus [`UPGRADE_ENDPOINTS`]: the endpoint each one was listened on, so that a
//! listen on the same endpoint adopts it instead of binding, and a last descriptor, the
//! channel on which the successor says it is ready.

use std::io;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Mutex, OnceLock, PoisonError};

use listenfd::ListenFd;

use crate::endpoint::Endpoint;

/// The variable that marks a successor: the endpoint each inherited listener was listened
/// on by the predecessor, one per line, in descriptor order; the descriptor after the last
/// listener is the ready channel.
pub(crate) const UPGRADE_ENDPOINTS: &str = "MIO_REACTOR_UPGRADE_ENDPOINTS";

/// Every variable of the inheritance protocols: removed from the environment once read, and
/// from a successor's before it is given its own, so that no other child takes a descriptor
/// meant for this process.
pub(crate) const VARIABLES: [&str; 5] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "LISTEN_FDS_FIRST_FD",
    UPGRADE_ENDPOINTS,
];

/// The process's inherited descriptors, read from the environment at first use.
struct Inherited {
    fds: ListenFd,
    /// The descriptor number of index 0.
    first: i32,
    names: Vec<String>,
    /// In a successor: what the predecessor handed over, taken at once.
    upgrade: Option<Predecessor>,
}

/// What an upgrade's predecessor handed over: its listeners, each with the endpoint it was
/// listened on (`None` once a listen adopted it), and the channel to say "ready" on.
struct Predecessor {
    listeners: Vec<(String, Option<InheritedSocket>)>,
    ready: Option<UnixStream>,
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
        let endpoints = std::env::var(UPGRADE_ENDPOINTS).ok();
        let fds = ListenFd::from_env();
        if fds.len() > 0 {
            log::debug!("inherited {} sockets (names {names:?})", fds.len());
        }
        // listenfd removed LISTEN_PID and LISTEN_FDS if they were for us; whether or not,
        // no child of ours may take them.
        for variable in VARIABLES {
            std::env::remove_var(variable);
        }
        let mut inherited = Inherited {
            fds,
            first,
            names,
            upgrade: None,
        };
        if let Some(endpoints) = endpoints {
            inherited.upgrade = Some(inherited.take_from_predecessor(&endpoints));
        }
        Mutex::new(inherited)
    })
}

/// Reads (and clears) the inheritance variables now, if nothing did yet: a reactor does it
/// when it is made, so that a child the program starts later never sees them.
pub(crate) fn read_environment() {
    let _ = inherited();
}

/// In a successor, takes every listener the predecessor listened on `endpoint` with (several
/// for a host name): a listen on the same endpoint adopts them instead of binding. Empty if
/// none (or not a successor).
pub(crate) fn take_from_predecessor(endpoint: &Endpoint) -> Vec<InheritedSocket> {
    let mut inherited = lock();
    let Some(upgrade) = inherited.upgrade.as_mut() else {
        return Vec::new();
    };
    let name = endpoint.to_string();
    upgrade
        .listeners
        .iter_mut()
        .filter(|(listened_on, _)| *listened_on == name)
        .filter_map(|(_, socket)| socket.take())
        .collect()
}

/// In a successor, takes the channel to tell the predecessor it is ready (once).
pub(crate) fn take_ready_channel() -> Option<UnixStream> {
    lock().upgrade.as_mut()?.ready.take()
}

/// In a successor, closes the handed-over listeners no listen adopted (a listen removed
/// from the configuration): kept open, their accept queues would fill with connections that
/// nobody accepts. Returns their endpoints.
pub(crate) fn close_unadopted() -> Vec<String> {
    let mut inherited = lock();
    let Some(upgrade) = inherited.upgrade.as_mut() else {
        return Vec::new();
    };
    upgrade
        .listeners
        .iter_mut()
        .filter_map(|(endpoint, socket)| socket.take().map(|_| endpoint.clone()))
        .collect()
}

fn lock() -> std::sync::MutexGuard<'static, Inherited> {
    inherited().lock().unwrap_or_else(PoisonError::into_inner)
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
    let mut inherited = lock();
    let index = inherited.index_of(endpoint)?;
    inherited.take_index(index)?.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "taken already: each inherited socket serves one listen",
        )
    })
}

impl Inherited {
    /// Takes what a predecessor handed over: one listener per line of `endpoints`, then the
    /// ready channel. Taking them at once marks them close-on-exec (listenfd does), so that
    /// no child of ours holds them open.
    fn take_from_predecessor(&mut self, endpoints: &str) -> Predecessor {
        let listeners: Vec<(String, Option<InheritedSocket>)> = endpoints
            .lines()
            .enumerate()
            .map(|(index, endpoint)| {
                let socket = self.take_index(index).unwrap_or_else(|err| {
                    log::error!("the listener handed over for {endpoint}: {err}");
                    None
                });
                (endpoint.to_string(), socket)
            })
            .collect();
        let ready = self
            .fds
            .take_custom::<UnixStream>(
                listeners.len(),
                libc::AF_UNIX,
                libc::SOCK_STREAM,
                "the upgrade's ready channel",
            )
            .unwrap_or_else(|err| {
                log::error!("the upgrade's ready channel: {err}");
                None
            });
        Predecessor { listeners, ready }
    }

    /// Takes the descriptor at `index` as the kind of socket it is; `None` if taken before.
    fn take_index(&mut self, index: usize) -> io::Result<Option<InheritedSocket>> {
        let fds = &mut self.fds;
        Ok(match fds.take_tcp_listener(index) {
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
        })
    }

    fn index_of(&self, endpoint: &Endpoint) -> io::Result<usize> {
        if let Some(upgrade) = &self.upgrade {
            // A successor inherited its predecessor's listeners, adopted by endpoint, and
            // the ready channel: no descriptor of it is anyone's `fd:N`.
            let endpoints: Vec<&str> = upgrade.listeners.iter().map(|(e, _)| e.as_str()).collect();
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no such inherited socket (this process is an upgrade's successor; it \
                     inherited the listeners of {})",
                    endpoints.join(", ")
                ),
            ));
        }
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

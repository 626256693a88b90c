//! Restarts without a gap: on SIGUSR2 a reactor starts its successor (the program at the path
//! it was started from, with the same arguments), hands it the listening sockets, and once the
//! successor says it is ready, stops accepting and drains. No connection is refused (the
//! sockets never close: the successor holds them before the predecessor lets go) and none
//! queued is reset (the accept queue belongs to the socket, which the successor keeps).
//!
//! This is nginx's binary upgrade (SIGUSR2, the listeners inherited across `exec`, the old
//! master draining) and Cloudflare's tableflip. HAProxy and Envoy send the descriptors over a
//! Unix socket with `SCM_RIGHTS` instead, because their new process is started by someone
//! else (a service manager, a wrapper). Here the old process starts the successor itself, as
//! nginx does, so inheritance is the simpler way: no socket path to agree on, secure and
//! clean up, no protocol to frame descriptors in, and the successor reads what it inherited
//! the way it reads systemd's sockets (`inherited.rs`). `command-fds` places the descriptors
//! at 3.. in the child without `unsafe` here.
//!
//! # The hand-over
//! 1. SIGUSR2: the predecessor duplicates each listening socket's descriptor and starts the
//!    successor with them at 3.., `LISTEN_FDS`, and `MIO_REACTOR_UPGRADE_ENDPOINTS` (the
//!    endpoint each was listened on); the descriptor after them is one end of a socket pair,
//!    the *ready channel*.
//! 2. The successor's listens on those endpoints adopt the sockets instead of binding.
//!    When its reactor first turns (every listen made, about to accept), it writes its PID
//!    file (if it has one) and then `ready` on the channel.
//! 3. The predecessor, on `ready`, closes its descriptors of the listeners (the sockets live
//!    on in the successor; a Unix socket's file stays) and shuts down gracefully: each handler
//!    decides in [`Handler::on_shutdown`](crate::Handler::on_shutdown), with
//!    [`Context::is_upgrading`](crate::Context::is_upgrading), where its protocol may
//!    stop; at [`Config::shutdown_timeout`](crate::Config::shutdown_timeout) what is left is
//!    aborted. [`Reactor::run`] then returns.
//! 4. If the successor exits first (the channel reaches EOF) or is not ready within
//!    [`Upgrade::ready_timeout`], the predecessor kills it and goes on serving.
//!
//! The channel rather than the PID file is how readiness is told: an EOF says at once that
//! the successor died, where a file would have to be polled until a timeout, and a file can
//! hold a stale or half-written PID. The PID file is still written first, so that whoever
//! reads it after the hand-over finds the process that now serves.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::raw::c_int;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::rc::Rc;
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use mio::Interest;

use crate::core::Core;
use crate::endpoint::Endpoint;
use crate::id::{LoopTimerId, WatchId};
use crate::inherited::{self, UPGRADE_ENDPOINTS, VARIABLES};
use crate::listen::release_listeners;
use crate::reactor::Reactor;
use crate::watch_handler::{Readiness, WatchContext};

/// The first descriptor of a successor's inherited listeners, as in systemd's protocol.
const FIRST_FD: i32 = 3;

/// What the successor writes on the ready channel.
const READY: &[u8] = b"ready\n";

/// How a reactor upgrades: which program to start as its successor, with which arguments,
/// the PID file, and how long the successor has to be ready. Given to
/// [`Reactor::upgrade_on_signal`].
///
/// # Examples
/// ```no_run
/// use mio_reactor::{Reactor, Upgrade};
///
/// let mut reactor = Reactor::new()?;
/// // ... listens ...
/// reactor.shutdown_on_signals()?;
/// reactor.upgrade_on_signal(Upgrade::new()?.pid_file("/run/echo.pid"))?;
/// reactor.run()?; // returns after a hand-over's drain too
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Upgrade {
    program: PathBuf,
    args: Vec<OsString>,
    pid_file: Option<PathBuf>,
    ready_timeout: Duration,
}

impl Upgrade {
    /// How long a successor has to be ready unless [`ready_timeout`](Upgrade::ready_timeout)
    /// says otherwise.
    pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

    /// This program as it was started: the path of its executable (read now, so that a new
    /// version installed at that path later is what a successor runs) and its arguments;
    /// no PID file; [`DEFAULT_READY_TIMEOUT`](Upgrade::DEFAULT_READY_TIMEOUT).
    ///
    /// # Errors
    /// [`std::env::current_exe`]'s: the executable's path cannot be read.
    pub fn new() -> io::Result<Upgrade> {
        Ok(Upgrade {
            program: std::env::current_exe()?,
            args: std::env::args_os().skip(1).collect(),
            pid_file: None,
            ready_timeout: Upgrade::DEFAULT_READY_TIMEOUT,
        })
    }

    /// Starts this program as the successor instead.
    pub fn program(mut self, program: impl Into<PathBuf>) -> Upgrade {
        self.program = program.into();
        self
    }

    /// With these arguments instead.
    pub fn args<I, S>(mut self, args: I) -> Upgrade
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Writes this process's PID to `path` when its reactor is ready (its first turn), and
    /// so, in a successor, before it tells its predecessor. Replaced atomically (written
    /// beside it, then renamed), so a reader sees the old PID or the new one. Never removed
    /// by this crate: after a hand-over it names the successor.
    pub fn pid_file(mut self, path: impl Into<PathBuf>) -> Upgrade {
        self.pid_file = Some(path.into());
        self
    }

    /// How long a successor has, from its start, to say it is ready; then it is killed and
    /// this process goes on serving.
    pub fn ready_timeout(mut self, timeout: Duration) -> Upgrade {
        self.ready_timeout = timeout;
        self
    }
}

/// Where an upgrade is, in the process that may start one.
enum Stage {
    /// Serving; SIGUSR2 starts a successor.
    Serving,
    /// A successor runs and holds the listeners too; not ready yet.
    Starting(Starting),
    /// The listeners are the successor's; this process drains.
    Upgraded,
}

struct Starting {
    /// `None` once it took over.
    successor: Option<Child>,
    /// The watch of the ready channel.
    channel: WatchId,
    /// The ready timeout's timer.
    deadline: LoopTimerId,
}

impl Drop for Starting {
    /// A successor that did not take over is killed and reaped, whatever ended the upgrade
    /// (a failure, or a reactor that stopped meanwhile): it must not serve alone.
    fn drop(&mut self) {
        if let Some(successor) = self.successor.take() {
            end_successor(successor);
        }
    }
}

type SharedStage = Rc<RefCell<Stage>>;

impl Reactor {
    /// Makes SIGUSR2 upgrade this process without a gap, as nginx's binary upgrade does:
    /// start `upgrade`'s program (by default this program, from the path it was started
    /// from, with the same arguments) as a successor that inherits every listening socket,
    /// and once it is ready, stop accepting and drain (see [`Upgrade`] and the module's
    /// steps); [`run`](Reactor::run) returns when the drain is over. If the successor exits
    /// or is not ready in time, it is killed and this process goes on serving. A SIGUSR2
    /// during an upgrade or a shutdown is ignored.
    ///
    /// In a process started as a successor, this is also what tells the predecessor it is
    /// ready: on the reactor's first turn (call it after the listens), after writing the PID
    /// file. A listen on an endpoint the predecessor listened on adopts its socket (with the
    /// socket options it was made with); handed-over sockets no listen adopted are closed
    /// then. Without a successor, the first turn writes the PID file.
    ///
    /// A handler learns that a drain follows a hand-over from
    /// [`Context::is_upgrading`](crate::Context::is_upgrading).
    ///
    /// # Notes
    /// Listening sockets are handed over; UDP sockets are not (a successor that binds the
    /// same `udp:` address fails to start unless it uses `SO_REUSEPORT`), nor is anything a
    /// process keeps in memory.
    ///
    /// # Errors
    /// As [`on_signals`](Reactor::on_signals).
    pub fn upgrade_on_signal(&mut self, upgrade: Upgrade) -> io::Result<WatchId> {
        self.core.read_clock();
        let upgrade = Rc::new(upgrade);
        let ready = upgrade.clone();
        self.core.set_loop_timer(
            Duration::ZERO,
            None,
            Box::new(move |_, _| announce_ready(&ready)),
        );
        let stage: SharedStage = Rc::new(RefCell::new(Stage::Serving));
        self.core
            .watch_signals(&[libc::SIGUSR2], move |signal: c_int, ctx| {
                start_upgrade(&upgrade, &stage, signal, ctx)
            })
    }
}

/// The successor's side: every listen is made; write the PID file, then say ready.
fn announce_ready(upgrade: &Upgrade) {
    for endpoint in inherited::close_unadopted() {
        log::warn!("closed the listener on {endpoint} handed over but not listened on again");
    }
    if let Some(path) = &upgrade.pid_file {
        if let Err(err) = write_pid_file(path) {
            // Not ready: the predecessor times out and serves on.
            log::error!("could not write the PID file {}: {err}", path.display());
            return;
        }
    }
    if let Some(mut channel) = inherited::take_ready_channel() {
        match channel.write_all(READY) {
            Ok(()) => log::info!("ready: told the predecessor to hand over"),
            Err(err) => log::error!("could not tell the predecessor it is ready: {err}"),
        }
    }
}

/// Writes this process's PID to `path` atomically: beside it, then renamed over it.
fn write_pid_file(path: &Path) -> io::Result<()> {
    let pid = std::process::id();
    let mut beside = path.as_os_str().to_os_string();
    beside.push(format!(".{pid}.tmp"));
    std::fs::write(&beside, format!("{pid}\n"))?;
    std::fs::rename(&beside, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&beside);
    })
}

/// The predecessor's side, on SIGUSR2: start the successor and wait for it in the loop.
fn start_upgrade(
    upgrade: &Upgrade,
    stage: &SharedStage,
    signal: c_int,
    ctx: &mut WatchContext<'_>,
) {
    let name = crate::signals::name(signal);
    if ctx.is_shutting_down() || !matches!(*stage.borrow(), Stage::Serving) {
        log::warn!("{name} received during an upgrade or a shutdown: ignored");
        return;
    }
    let program = upgrade.program.display();
    let (successor, channel) = match start_successor(upgrade, ctx.core) {
        Ok(started) => started,
        Err(err) => {
            log::error!("{name} received: could not start {program}: {err}; serving on");
            return;
        }
    };
    log::info!(
        "{name} received: started {program} (PID {}) to take over the listeners",
        successor.id()
    );
    let on_ready = stage.clone();
    let watched = ctx.core.add_watch(
        mio::net::UnixStream::from_std(channel),
        Interest::READABLE,
        move |channel: &mut mio::net::UnixStream, _: Readiness, ctx: &mut WatchContext<'_>| {
            read_channel(channel, &on_ready, ctx)
        },
    );
    let channel = match watched {
        Ok(id) => id,
        Err(err) => {
            log::error!("could not watch the successor's ready channel: {err}; serving on");
            end_successor(successor);
            return;
        }
    };
    let timed_out = stage.clone();
    let timeout = upgrade.ready_timeout;
    let deadline = ctx.core.set_loop_timer(
        timeout,
        None,
        Box::new(move |ctx, _| {
            fail(
                &timed_out,
                ctx.core,
                &format!("was not ready within {timeout:?}"),
            )
        }),
    );
    *stage.borrow_mut() = Stage::Starting(Starting {
        successor: Some(successor),
        channel,
        deadline,
    });
}

/// Starts the successor with the listeners at 3.. and the ready channel after them; returns
/// it and this process's end of the channel (non-blocking).
fn start_successor(upgrade: &Upgrade, core: &Core) -> io::Result<(Child, UnixStream)> {
    let listeners = core.listener_descriptors()?;
    if listeners.is_empty() {
        return Err(io::Error::other("no listening socket to hand over"));
    }
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let endpoints: Vec<String> = listeners.iter().map(|(e, _)| e.to_string()).collect();
    let mut mappings: Vec<FdMapping> = Vec::with_capacity(listeners.len() + 1);
    for (child_fd, (_, parent_fd)) in (FIRST_FD..).zip(listeners) {
        mappings.push(FdMapping {
            parent_fd,
            child_fd,
        });
    }
    mappings.push(FdMapping {
        parent_fd: theirs.into(),
        child_fd: FIRST_FD + endpoints.len() as i32,
    });
    let mut command = Command::new(&upgrade.program);
    command.args(&upgrade.args);
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .env("LISTEN_FDS", (endpoints.len() + 1).to_string())
        .env("LISTEN_FDS_FIRST_FD", FIRST_FD.to_string())
        .env(UPGRADE_ENDPOINTS, endpoints.join("\n"))
        .fd_mappings(mappings)
        .map_err(|_| io::Error::other("two descriptors mapped to one"))?;
    let successor = command.spawn()?;
    // `command` drops here, and with it our copies of the successor's descriptors: the
    // channel's other end is then the successor's alone, and reaches EOF if it exits.
    Ok((successor, ours))
}

/// Reads the ready channel: `ready` hands over; EOF means the successor exited first.
fn read_channel(
    channel: &mut mio::net::UnixStream,
    stage: &SharedStage,
    ctx: &mut WatchContext<'_>,
) {
    let mut buf = [0u8; 64];
    loop {
        match channel.read(&mut buf) {
            Ok(0) => return fail(stage, ctx.core, "exited before it was ready"),
            Ok(_) => return hand_over(stage, ctx),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) => return fail(stage, ctx.core, &format!("channel error: {err}")),
        }
    }
}

/// The successor is ready: let go of the listeners (their sockets and queues live on in
/// it) and drain. Unless this reactor began shutting down meanwhile (SIGTERM during the
/// upgrade): its listeners are closed already, a Unix socket's file removed, so the
/// successor could not serve as this process did; both stop.
fn hand_over(stage: &SharedStage, ctx: &mut WatchContext<'_>) {
    if ctx.is_shutting_down() {
        return fail(
            stage,
            ctx.core,
            "was ready after this process began shutting down",
        );
    }
    let Stage::Starting(mut starting) =
        std::mem::replace(&mut *stage.borrow_mut(), Stage::Upgraded)
    else {
        return;
    };
    ctx.core.cancel_loop_timer(starting.deadline);
    ctx.unwatch();
    // The successor outlives this process; it is not waited for (its parent becomes the
    // init process or the nearest subreaper, as in nginx's upgrade).
    if let Some(successor) = starting.successor.take() {
        log::info!(
            "the successor (PID {}) is ready: handing over the listeners and draining",
            successor.id()
        );
    }
    release_listeners(&mut ctx.core.entries);
    ctx.core.lifecycle.upgraded();
}

/// The upgrade failed: end the successor (dropping `Starting` does) and serve on.
fn fail(stage: &SharedStage, core: &mut Core, why: &str) {
    let Stage::Starting(starting) = std::mem::replace(&mut *stage.borrow_mut(), Stage::Serving)
    else {
        return;
    };
    core.cancel_loop_timer(starting.deadline);
    core.unwatch(starting.channel.0);
    let pid = starting.successor.as_ref().map_or(0, Child::id);
    log::error!("upgrade failed: the successor (PID {pid}) {why}; serving on");
}

/// Kills a successor that will not take over and reaps it.
fn end_successor(mut successor: Child) {
    let _ = successor.kill();
    if let Err(err) = successor.wait() {
        log::warn!("waiting for the failed successor: {err}");
    }
}

impl Core {
    /// A descriptor of each listening socket (a `dup`), with the endpoint its listen was
    /// given, in the order the listens were made: what a successor inherits.
    pub(crate) fn listener_descriptors(&self) -> io::Result<Vec<(Endpoint, std::os::fd::OwnedFd)>> {
        let mut listeners: Vec<_> = self.entries.listeners().collect();
        listeners.sort_by_key(|l| l.id);
        listeners
            .into_iter()
            .map(|l| Ok((l.endpoint.clone(), l.socket.try_clone_fd()?)))
            .collect()
    }
}

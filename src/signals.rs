//! Unix signals as events of the loop.
//!
//! A signal handler may do almost nothing safely (no allocation, no lock, no logging), so
//! `signal-hook-mio` does the one safe thing: it writes to a socket pair whose other end is a
//! [`mio::event::Source`]. The reactor watches that end like any other source
//! (`watch.rs`), and the application's handler runs on the loop's thread, in a turn, where it
//! can do anything a callback can. SIGTERM is how `docker stop`, `systemctl stop` and
//! Kubernetes stop a service, so [`Reactor::shutdown_on_signals`](crate::Reactor) makes it
//! (and SIGINT, Ctrl-C) a graceful shutdown.

use std::io;
use std::os::raw::c_int;

use mio::Interest;
use signal_hook_mio::v1_0::Signals;

use crate::core::Core;
use crate::id::WatchId;
use crate::watch_handler::{Readiness, WatchContext};

/// The signals [`Reactor::shutdown_on_signals`](crate::Reactor::shutdown_on_signals) handles.
pub(crate) const SHUTDOWN_SIGNALS: [c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// Signals no handler may take: SIGKILL and SIGSTOP cannot be caught, and returning from a
/// handler of SIGILL, SIGFPE or SIGSEGV is undefined behaviour (signal-hook's own list).
const FORBIDDEN: [c_int; 5] = [
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGSEGV,
];

/// A signal's conventional name, for the log.
pub(crate) fn name(signal: c_int) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".to_string(),
        libc::SIGINT => "SIGINT".to_string(),
        libc::SIGHUP => "SIGHUP".to_string(),
        libc::SIGQUIT => "SIGQUIT".to_string(),
        libc::SIGUSR1 => "SIGUSR1".to_string(),
        libc::SIGUSR2 => "SIGUSR2".to_string(),
        libc::SIGCHLD => "SIGCHLD".to_string(),
        libc::SIGKILL => "SIGKILL".to_string(),
        libc::SIGSTOP => "SIGSTOP".to_string(),
        other => format!("signal {other}"),
    }
}

impl Core {
    /// Watches `signals`; `handler` is called once per signal received, in arrival order
    /// (the same signal twice before the loop looks may be merged into one, as the kernel
    /// does).
    pub(crate) fn watch_signals(
        &mut self,
        signals: &[c_int],
        mut handler: impl FnMut(c_int, &mut WatchContext<'_>) + 'static,
    ) -> io::Result<WatchId> {
        if let Some(&signal) = signals.iter().find(|s| FORBIDDEN.contains(s)) {
            // signal-hook panics on these instead of returning an error.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} cannot be handled", name(signal)),
            ));
        }
        let source = Signals::new(signals)?;
        self.add_watch(
            source,
            Interest::READABLE,
            move |source: &mut Signals, _: Readiness, ctx: &mut WatchContext<'_>| {
                // Reads the socket pair until it would block: all signals since the last time.
                for signal in source.pending() {
                    handler(signal, ctx);
                }
            },
        )
    }
}

/// The first SIGTERM or SIGINT drains gracefully; the next one aborts what is left.
pub(crate) fn shut_down_on(signal: c_int, ctx: &mut WatchContext<'_>) {
    if ctx.is_shutting_down() {
        log::warn!("{} received again: aborting what is left", name(signal));
    } else {
        log::info!(
            "{} received: shutting down gracefully (send it again to abort)",
            name(signal)
        );
    }
    ctx.shutdown_reactor();
}

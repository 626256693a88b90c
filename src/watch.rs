//! A watched source's record in the slab, and what happens when it is ready: hand the
//! readiness to its handler, once per turn at most, and remove it when the watch ends.
//!
//! Watches do not keep a finished reactor alive: once a shutdown has drained every
//! listener, connection and socket, the watches still there are ended, so that a signal
//! watch (`signals.rs`) cannot hold `run()` forever.

use std::io;

use mio::event::Source;
use mio::Interest;

use crate::core::Core;
use crate::entries::Entry;
use crate::id::{Slot, WatchId};
use crate::panics::call_user;
use crate::trace::{trace_record, Record};
use crate::watch_handler::{Readiness, WatchContext, WatchHandler};

/// A source and its handler, their types erased for the slab.
pub(crate) trait Watched {
    fn source(&mut self) -> &mut dyn Source;
    fn on_ready(&mut self, readiness: Readiness, ctx: &mut WatchContext<'_>);
}

struct Watching<S, H> {
    source: S,
    handler: H,
}

impl<S: Source, H: WatchHandler<S>> Watched for Watching<S, H> {
    fn source(&mut self) -> &mut dyn Source {
        &mut self.source
    }

    fn on_ready(&mut self, readiness: Readiness, ctx: &mut WatchContext<'_>) {
        self.handler.on_ready(&mut self.source, readiness, ctx);
    }
}

/// Everything the reactor keeps for one watched source.
pub(crate) struct Watch {
    pub(crate) slot: Slot,
    /// Taken out while its handler runs.
    watched: Option<Box<dyn Watched>>,
    /// What the events said since the handler last ran.
    pub(crate) pending: Readiness,
    pub(crate) queued: bool,
    /// The watch ended: its handler is not called again; removed at the end of the turn.
    ended: bool,
}

impl Core {
    /// Registers `source` with `interest` and puts it in the slab.
    pub(crate) fn add_watch<S: Source + 'static>(
        &mut self,
        mut source: S,
        interest: Interest,
        handler: impl WatchHandler<S>,
    ) -> io::Result<WatchId> {
        let slot = self.entries.next_slot();
        if let Err(err) = self.entries.register(&mut source, slot, interest) {
            return Err(unpollable(err));
        }
        let watch = Watch {
            slot,
            watched: Some(Box::new(Watching { source, handler })),
            pending: Readiness::default(),
            queued: false,
            ended: false,
        };
        self.entries.insert(slot, Entry::Watch(watch));
        log::debug!("{} watched", WatchId(slot));
        Ok(WatchId(slot))
    }

    /// Calls the handler with what the events said.
    pub(crate) fn drive_watch(&mut self, slot: Slot) {
        let catch = self.config().catch_panics;
        let Some(watch) = self.entries.watch(slot) else {
            return;
        };
        if watch.ended {
            return;
        }
        let readiness = std::mem::take(&mut watch.pending);
        let Some(mut watched) = watch.watched.take() else {
            return;
        };
        let id = WatchId(slot);
        trace_record!(
            self,
            Record::WatchReady {
                watch: id,
                readiness
            }
        );
        let called = call_user(catch, || {
            watched.on_ready(readiness, &mut WatchContext::new(self, slot))
        });
        if let Err(message) = called {
            log::error!("{id} handler panicked: {message}; the watch ends");
            self.stats.handler_panics += 1;
            self.unwatch(slot);
        }
        // Put back even after a panic: removal deregisters the source it holds.
        if let Some(watch) = self.entries.watch(slot) {
            watch.watched = Some(watched);
        }
    }

    /// Ends a watch; it is removed at the end of the turn. Returns whether it was watched.
    pub(crate) fn unwatch(&mut self, slot: Slot) -> bool {
        let Some(watch) = self.entries.watch(slot) else {
            return false;
        };
        if std::mem::replace(&mut watch.ended, true) {
            return false;
        }
        self.queues.list_closed(slot);
        true
    }

    /// Deregisters and drops the source and its handler.
    pub(crate) fn remove_watch(&mut self, slot: Slot) {
        let Some(mut watch) = self.entries.take_watch(slot) else {
            return;
        };
        if let Some(watched) = watch.watched.as_mut() {
            if let Err(err) = self.entries.deregister(watched.source()) {
                log::debug!("{} deregister: {err}", WatchId(slot));
            }
        }
        drop(watch);
        trace_record!(
            self,
            Record::Unwatched {
                watch: WatchId(slot)
            }
        );
        log::debug!("{} unwatched", WatchId(slot));
    }

    /// A shutdown has nothing left to drain but watches: end them, so that `run` returns.
    pub(crate) fn end_watches_if_alone(&mut self) {
        if !self.lifecycle.is_shutting_down() {
            return;
        }
        if !self.entries.only_watches() {
            return;
        }
        for slot in self.entries.watch_slots() {
            self.remove_watch(slot);
        }
    }
}

/// A clearer error for what epoll cannot poll: a regular file or a directory (`EPERM`),
/// which are always "ready" and must be read directly (or on a worker thread).
fn unpollable(err: io::Error) -> io::Error {
    if err.raw_os_error() == Some(libc::EPERM) {
        return io::Error::new(
            io::ErrorKind::Unsupported,
            "this descriptor cannot be watched: epoll does not poll regular files or \
             directories (EPERM); read them directly, or on a worker thread",
        );
    }
    err
}

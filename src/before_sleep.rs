//! The per-turn hook: a callback that runs once per turn, right before the loop polls.
//!
//! Redis's `beforeSleep` and libuv's prepare handles: work batched per turn (flush what
//! handlers queued in a shared structure, publish a snapshot, write replies gathered from
//! many connections) runs once, after the turn's timers and before the loop sleeps, instead
//! of once per event. Unset, it costs one `Option` test per turn.

use std::fmt;

use crate::core::Core;
use crate::panics::call_user;
use crate::post::LoopContext;

/// The hook's callback.
pub(crate) type Hook = Box<dyn FnMut(&mut LoopContext<'_>)>;

/// The loop's part that keeps the hook.
#[derive(Default)]
pub(crate) struct BeforeSleep {
    hook: Option<Hook>,
}

impl BeforeSleep {
    /// Sets (or, with `None`, removes) the hook; returns the one it replaces.
    pub(crate) fn set(&mut self, hook: Option<Hook>) -> Option<Hook> {
        std::mem::replace(&mut self.hook, hook)
    }

    /// Whether a hook is set.
    pub(crate) fn is_set(&self) -> bool {
        self.hook.is_some()
    }
}

impl fmt::Debug for BeforeSleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BeforeSleep")
            .field("set", &self.is_set())
            .finish()
    }
}

impl Core {
    /// Runs the hook, if one is set, and sends what it wrote. A panic is caught (as
    /// [`Config::catch_panics`](crate::Config::catch_panics) says), logged, counted, and
    /// removes the hook.
    #[inline]
    pub(crate) fn run_before_sleep(&mut self) {
        let Some(mut hook) = self.before_sleep.hook.take() else {
            return;
        };
        let catch = self.config().catch_panics;
        match call_user(catch, || hook(&mut LoopContext { core: self })) {
            Ok(()) => {
                // Unless it was replaced meanwhile (nothing in a `LoopContext` can, today).
                if self.before_sleep.hook.is_none() {
                    self.before_sleep.hook = Some(hook);
                }
            }
            Err(message) => {
                log::error!("the before-sleep hook panicked: {message}; it is removed");
                self.stats.handler_panics += 1;
            }
        }
        // What it wrote leaves in this turn, before the poll.
        self.flush_gathered();
    }
}

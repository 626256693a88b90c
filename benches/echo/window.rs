//! A load run's timeline: a warm-up, then the measurement window, with `mark` called at the
//! window's edges (it samples the server, and starts or stops counting its system calls).
//! Shared by the stream load generator (`load.rs`) and the datagram one (`udp_load.rs`).

use std::time::{Duration, Instant};

use crate::load::Mark;
use crate::process_counters;
use crate::Fallible;

/// Where a run is on its timeline.
pub struct Window {
    opens_at: Instant,
    duration: Duration,
    /// Once open: when, and the load generator's CPU time then.
    opened: Option<(Instant, u64)>,
}

/// What [`Window::step`] did.
pub enum Edge {
    /// Nothing: still warming up, or inside the window.
    Inside,
    /// The window just opened, at this instant (after `mark` returned).
    Opened(Instant),
    /// The window just closed: the run is over.
    Closed(Span),
}

/// The measurement window, once closed.
pub struct Span {
    pub length: Duration,
    /// The load generator's own CPU time in the window (this thread's).
    pub client_cpu_ns: u64,
}

impl Window {
    pub fn new(started: Instant, warmup: Duration, duration: Duration) -> Window {
        Window {
            opens_at: started + warmup,
            duration,
            opened: None,
        }
    }

    /// Opens or closes the window if `now` is past its edge, calling `mark`.
    pub fn step(
        &mut self,
        now: Instant,
        mark: &mut impl FnMut(Mark) -> Fallible<()>,
    ) -> Fallible<Edge> {
        match self.opened {
            None if now >= self.opens_at => {
                mark(Mark::Start)?;
                let opened = Instant::now();
                self.opened = Some((opened, process_counters::thread_cpu_ns()));
                Ok(Edge::Opened(opened))
            }
            Some((opened, cpu_at_open)) if now >= opened + self.duration => {
                let closed = Instant::now();
                let client_cpu_ns = process_counters::thread_cpu_ns() - cpu_at_open;
                mark(Mark::End)?;
                Ok(Edge::Closed(Span {
                    length: closed - opened,
                    client_cpu_ns,
                }))
            }
            _ => Ok(Edge::Inside),
        }
    }

    /// Whether echoes now count (the window is open).
    pub fn is_open(&self) -> bool {
        self.opened.is_some()
    }

    /// When the current phase (warm-up or window) ends.
    pub fn phase_ends(&self) -> Instant {
        match self.opened {
            None => self.opens_at,
            Some((opened, _)) => opened + self.duration,
        }
    }
}

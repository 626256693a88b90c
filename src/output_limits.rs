//! A connection's own output limits: water marks, a hard cap and a soft limit over time.
//!
//! The reactor's [`Config`] gives every connection the same limits; a listen, a connect, an
//! adopted stream or the handler itself may give a connection its own ([`OutputLimits`]),
//! as Redis's `client-output-buffer-limit` classes and Netty's per-channel
//! `WriteBufferWaterMark` do. The connection copies them once when it opens, so the hot path
//! compares against its own fields where it compared against the configuration before.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::close_reason::{CloseReason, Limit};
use crate::config::Config;
use crate::core::{Core, TimerTask};
use crate::decisions::{
    after_write, soft_clock, soft_limit_passed, SoftClock, WaterMarks, WriteStep,
};
use crate::id::Slot;
use crate::trace::{trace_record, Record};

/// A connection's output limits: the water marks of backpressure, the hard cap, and an
/// optional soft limit over time.
///
/// - **Low and high water** ([`low_water`](OutputLimits::low_water),
///   [`high_water`](OutputLimits::high_water)): above the high mark the connection stops
///   reading (so its handler stops producing replies); at the low mark reading resumes and
///   [`Handler::on_drain`](crate::Handler::on_drain) runs.
/// - **Hard cap** ([`max_output`](OutputLimits::max_output)): a write that leaves more
///   buffered ends the connection at once with
///   [`CloseReason::LimitExceeded`](crate::CloseReason::LimitExceeded)`(`[`Limit::Output`](crate::Limit::Output)`)`.
/// - **Soft limit** ([`soft_limit`](OutputLimits::soft_limit), off by default): a
///   connection whose buffered output stays above `bytes` for longer than `duration` is
///   aborted with [`Limit::SoftOutput`](crate::Limit::SoftOutput); going down to `bytes` or
///   below resets the clock. It is Redis's soft `client-output-buffer-limit`: a subscriber
///   may fall behind for a moment, but not for long. A timer runs only while the output is
///   above the soft limit: nothing is checked per turn, and a connection without a soft
///   limit pays nothing for it.
///
/// The defaults are [`Config`]'s (16 KiB, 64 KiB, 4 MiB, no soft limit);
/// [`OutputLimits::from(&config)`](OutputLimits::from) takes those of another
/// configuration. A connection gets the reactor's unless its
/// [`ListenOptions::output_limits`](crate::ListenOptions::output_limits) or
/// [`ConnectOptions::output_limits`](crate::ConnectOptions::output_limits) say otherwise,
/// and a handler may change its own at any time with
/// [`Context::set_output_limits`](crate::Context::set_output_limits).
///
/// Limits are checked where they are used (a listen, connect, adopt, or
/// `set_output_limits`), as a [`Config`] is checked when the reactor is built: `low_water
/// <= high_water <= max_output`, `max_output` at least 1, and a soft limit of at least 1
/// byte below `max_output`; anything else is an
/// [`InvalidInput`](std::io::ErrorKind::InvalidInput) error.
///
/// # Examples
/// Redis's limits for pub/sub clients (a 32 MiB hard cap; above 8 MiB for 60 s is too long):
/// ```
/// use std::time::Duration;
/// use mio_reactor::{ListenOptions, OutputLimits, Reactor};
/// # use mio_reactor::{Context, Handler};
/// # struct Subscriber;
/// # impl Handler for Subscriber {
/// #     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize { data.len() }
/// # }
///
/// let pubsub = OutputLimits::default()
///     .max_output(32 << 20)
///     .soft_limit(8 << 20, Duration::from_secs(60));
/// assert!(pubsub.validate().is_ok());
///
/// let mut reactor = Reactor::new()?;
/// let options = ListenOptions::default().output_limits(pubsub);
/// reactor.listen("127.0.0.1:0", options, |_| Some(Subscriber))?;
///
/// // Limits that contradict each other are refused where they are used.
/// let wrong = OutputLimits::default().high_water(8 << 20).max_output(1 << 20);
/// let options = ListenOptions::default().output_limits(wrong);
/// let err = reactor.listen("127.0.0.1:0", options, |_| Some(Subscriber)).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OutputLimits {
    pub(crate) marks: WaterMarks,
    pub(crate) soft: Option<SoftLimit>,
}

/// Above `bytes` of buffered output for longer than `duration` closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SoftLimit {
    pub(crate) bytes: usize,
    pub(crate) duration: Duration,
}

impl Default for OutputLimits {
    fn default() -> OutputLimits {
        OutputLimits::from(&Config::default())
    }
}

impl From<&Config> for OutputLimits {
    /// The limits of `config`: its water marks and `max_output`, without a soft limit.
    ///
    /// ```
    /// use mio_reactor::{Config, OutputLimits};
    ///
    /// let limits = OutputLimits::from(&Config::default().max_output(1 << 20));
    /// assert_eq!(limits.get_max_output(), 1 << 20);
    /// assert_eq!(limits.get_soft_limit(), None);
    /// ```
    fn from(config: &Config) -> OutputLimits {
        OutputLimits {
            marks: config.water_marks(),
            soft: None,
        }
    }
}

impl OutputLimits {
    /// Reading resumes once buffered output falls to this many bytes.
    ///
    /// ```
    /// use mio_reactor::OutputLimits;
    ///
    /// assert_eq!(OutputLimits::default().low_water(1024).get_low_water(), 1024);
    /// ```
    #[must_use]
    pub fn low_water(mut self, bytes: usize) -> OutputLimits {
        self.marks.low = bytes;
        self
    }

    /// Reading pauses once buffered output rises above this many bytes.
    ///
    /// ```
    /// use mio_reactor::OutputLimits;
    ///
    /// assert_eq!(OutputLimits::default().high_water(1 << 20).get_high_water(), 1 << 20);
    /// ```
    #[must_use]
    pub fn high_water(mut self, bytes: usize) -> OutputLimits {
        self.marks.high = bytes;
        self
    }

    /// The hard cap: a write that leaves more than this many bytes buffered aborts the
    /// connection with [`Limit::Output`](crate::Limit::Output).
    ///
    /// ```
    /// use mio_reactor::OutputLimits;
    ///
    /// assert_eq!(OutputLimits::default().max_output(64 << 20).get_max_output(), 64 << 20);
    /// ```
    #[must_use]
    pub fn max_output(mut self, bytes: usize) -> OutputLimits {
        self.marks.max = bytes;
        self
    }

    /// The soft limit: buffered output above `bytes` for longer than `duration` aborts the
    /// connection with [`Limit::SoftOutput`](crate::Limit::SoftOutput). `bytes` must be
    /// below [`max_output`](OutputLimits::max_output).
    ///
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::OutputLimits;
    ///
    /// let limits = OutputLimits::default().soft_limit(1 << 20, Duration::from_secs(10));
    /// assert_eq!(limits.get_soft_limit(), Some((1 << 20, Duration::from_secs(10))));
    /// ```
    #[must_use]
    pub fn soft_limit(mut self, bytes: usize, duration: Duration) -> OutputLimits {
        self.soft = Some(SoftLimit { bytes, duration });
        self
    }

    /// The same limits without a soft limit.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::OutputLimits;
    ///
    /// let limits = OutputLimits::default().soft_limit(1024, Duration::from_secs(1));
    /// assert_eq!(limits.no_soft_limit(), OutputLimits::default());
    /// ```
    #[must_use]
    pub fn no_soft_limit(mut self) -> OutputLimits {
        self.soft = None;
        self
    }

    /// The low water mark, in bytes.
    ///
    /// ```
    /// assert_eq!(mio_reactor::OutputLimits::default().get_low_water(), 16 * 1024);
    /// ```
    pub fn get_low_water(&self) -> usize {
        self.marks.low
    }

    /// The high water mark, in bytes.
    ///
    /// ```
    /// assert_eq!(mio_reactor::OutputLimits::default().get_high_water(), 64 * 1024);
    /// ```
    pub fn get_high_water(&self) -> usize {
        self.marks.high
    }

    /// The hard cap, in bytes.
    ///
    /// ```
    /// assert_eq!(mio_reactor::OutputLimits::default().get_max_output(), 4 << 20);
    /// ```
    pub fn get_max_output(&self) -> usize {
        self.marks.max
    }

    /// The soft limit as bytes and duration, if one is set.
    ///
    /// ```
    /// assert_eq!(mio_reactor::OutputLimits::default().get_soft_limit(), None);
    /// ```
    pub fn get_soft_limit(&self) -> Option<(usize, Duration)> {
        self.soft.map(|soft| (soft.bytes, soft.duration))
    }

    /// Checks the limits as their users do: `low_water <= high_water <= max_output`,
    /// `max_output` at least 1, a soft limit of at least 1 byte and below `max_output`.
    ///
    /// # Errors
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput), saying which rule was broken.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::OutputLimits;
    ///
    /// let soft_above_hard = OutputLimits::default().soft_limit(8 << 20, Duration::from_secs(1));
    /// let err = soft_above_hard.validate().unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn validate(&self) -> io::Result<()> {
        let WaterMarks { low, high, max } = self.marks;
        let why = if max == 0 {
            Some("max_output must be at least 1")
        } else if low > high {
            Some("low_water must not exceed high_water")
        } else if high > max {
            Some("high_water must not exceed max_output")
        } else {
            match self.soft {
                Some(soft) if soft.bytes == 0 => Some("a soft limit must be at least 1 byte"),
                Some(soft) if soft.bytes >= max => Some("a soft limit must be below max_output"),
                _ => None,
            }
        };
        match why {
            None => Ok(()),
            Some(why) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("output limits: {why}"),
            )),
        }
    }
}

impl fmt::Debug for OutputLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputLimits")
            .field("low_water", &self.marks.low)
            .field("high_water", &self.marks.high)
            .field("max_output", &self.marks.max)
            .field("soft_limit", &self.get_soft_limit())
            .finish()
    }
}

/// A connection's limits, inside the loop's state.
impl Core {
    /// Gives the connection `slot` new output limits, applied at once to what it has
    /// buffered: above the new hard cap it is aborted with [`Limit::Output`], above the new
    /// high water mark its reading pauses, and the soft limit's clock starts afresh. Reading
    /// paused for backpressure resumes at the next flush that finds output at the new low
    /// water mark.
    pub(crate) fn set_output_limits(&mut self, slot: Slot, limits: OutputLimits) -> io::Result<()> {
        limits.validate()?;
        let Some(conn) = self.entries.conn(slot) else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such connection",
            ));
        };
        conn.marks = limits.marks;
        conn.soft_limit = limits.soft;
        if let Some(timer) = conn.soft_timer.take() {
            self.timers.cancel(timer);
        }
        let (buffered, paused) = (conn.buffered_output(), conn.paused_by_backpressure());
        if conn.state().is_active() {
            match after_write(buffered, paused, limits.marks) {
                WriteStep::OverLimit => {
                    log::warn!(
                        "{} to {}: {buffered} B of output exceed the new limit of {} B",
                        conn.id(),
                        conn.peer(),
                        limits.marks.max
                    );
                    self.close_now(slot, CloseReason::LimitExceeded(Limit::Output));
                    return Ok(());
                }
                WriteStep::PauseReading => {
                    conn.backpressure_started();
                    self.stats.read_pauses += 1;
                    let conn = crate::ConnId(slot);
                    trace_record!(self, Record::ReadingPaused { conn, buffered });
                }
                WriteStep::Carry => {}
            }
        }
        self.track_soft_limit(slot);
        Ok(())
    }

    /// Buffered output changed: start or stop the soft limit's clock. Called only for a
    /// connection that has a soft limit or a running clock, so that the others pay nothing.
    pub(crate) fn track_soft_limit(&mut self, slot: Slot) {
        let now = self.now();
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        let soft = conn.soft_limit;
        let bytes = soft.map(|soft| soft.bytes);
        match soft_clock(conn.buffered_output(), bytes, conn.soft_timer.is_some()) {
            SoftClock::Start => {
                if let Some(soft) = soft {
                    let deadline = now + soft.duration;
                    let timer = self
                        .timers
                        .insert(deadline, TimerTask::SoftOutputLimit(slot));
                    conn.soft_timer = Some(timer);
                }
            }
            SoftClock::Stop => {
                if let Some(timer) = conn.soft_timer.take() {
                    self.timers.cancel(timer);
                }
            }
            SoftClock::Keep => {}
        }
    }

    /// The soft limit's timer fired: output stayed above the soft limit for its duration.
    pub(crate) fn soft_limit_timer_fired(&mut self, slot: Slot) {
        let Some(conn) = self.entries.conn(slot) else {
            return;
        };
        conn.soft_timer = None;
        let Some(soft) = conn.soft_limit else { return };
        let buffered = conn.buffered_output();
        if !soft_limit_passed(conn.state(), buffered, Some(soft.bytes)) {
            return;
        }
        let limit = Limit::SoftOutput {
            bytes: soft.bytes,
            duration: soft.duration,
        };
        log::warn!(
            "{} to {}: {buffered} B of output, {}",
            conn.id(),
            conn.peer(),
            CloseReason::LimitExceeded(limit)
        );
        self.close_now(slot, CloseReason::LimitExceeded(limit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_configs_and_valid() {
        let limits = OutputLimits::default();
        assert_eq!(limits.marks, Config::default().water_marks());
        assert!(limits.validate().is_ok());
    }

    #[test]
    fn contradictions_are_rejected() {
        let second = Duration::from_secs(1);
        for wrong in [
            OutputLimits::default().low_water(100).high_water(10),
            OutputLimits::default().high_water(100).max_output(10),
            OutputLimits::default()
                .low_water(0)
                .high_water(0)
                .max_output(0),
            OutputLimits::default().soft_limit(4 << 20, second),
            OutputLimits::default().soft_limit(0, second),
        ] {
            let err = wrong.validate().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{wrong:?}");
        }
        assert!(OutputLimits::default()
            .soft_limit((4 << 20) - 1, second)
            .validate()
            .is_ok());
    }
}

//! The per-connection decisions, as functions of plain values that return what to do.
//!
//! Whether a read drained the socket, whether the handler is offered input again, what a
//! close request or a deadline does in each state, when backpressure starts and lifts, when
//! the FIN goes out: none of it needs a socket to decide. So it is decided here, from values,
//! and `dispatch.rs`, `close.rs` and `connect.rs` carry the answers out. The tests below check
//! the rules state by state without a socket, as smoltcp tests its TCP socket from plain
//! `socket_<state>()` fixtures; the tests in `tests/` check that the loop carries them out.

use std::time::{Duration, Instant};

use crate::close_reason::CloseReason;
use crate::state::State;

/// After a read of `len` bytes into a buffer of `capacity`: was the socket drained?
///
/// A short read means the socket was drained at that moment, and a new edge will announce
/// more (epoll(7) signals every arrival on an edge-triggered socket; mio only promises "read
/// until `WouldBlock`", tokio relies on the same kernel behaviour). Reading again just to
/// hear `WouldBlock` would cost a system call per message. But if an event said the peer
/// closed, read on for the EOF, which no further edge would announce.
pub(crate) fn drained_after_read(len: usize, capacity: usize, read_closed: bool) -> bool {
    len < capacity && !read_closed
}

/// A TLS stream ended without the peer's `close_notify`: how does the connection end?
///
/// While input is still delivered, the handler might take a cut-short message for a whole
/// one: the connection ends with [`CloseReason::TlsTruncated`], never as a clean EOF. Once
/// we are closing, input is discarded anyway and nothing was lost: an EOF like any other
/// (many TLS clients close TCP right after our `close_notify`, without replying).
pub(crate) fn truncation(state: State) -> Option<CloseReason> {
    state.delivers_data().then_some(CloseReason::TlsTruncated)
}

/// Before reading: what the read loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadStep {
    /// Read once more.
    Read,
    /// Stop: nothing to read, the state reads no more, or delivery is paused.
    Stop,
    /// Stop and queue the connection again: the budget is spent with bytes maybe still in
    /// the kernel, and no new edge will come for those.
    Requeue,
}

/// What the read loop does next, given the readiness flag, the state, whether delivery is
/// paused, and the bytes left in this dispatch's budget.
pub(crate) fn next_read(readable: bool, state: State, paused: bool, budget: usize) -> ReadStep {
    // A closing connection reads (and discards) even while paused: it waits for the EOF.
    if !readable || !state.may_read() || (state.delivers_data() && paused) {
        ReadStep::Stop
    } else if budget == 0 {
        ReadStep::Requeue
    } else {
        ReadStep::Read
    }
}

/// After the handler consumed `took` of the offered bytes (`consumed` of `offered` in all):
/// offer the rest again now?
///
/// Yes while it makes progress and still takes input, so that a handler may consume one
/// message per call without stalling whole messages behind it until more bytes arrive.
pub(crate) fn offer_again(
    took: usize,
    consumed: usize,
    offered: usize,
    state: State,
    paused: bool,
) -> bool {
    took > 0 && consumed < offered && state.delivers_data() && !paused
}

/// When reading resumes: offer the input kept while paused, since no new bytes may ever come
/// to trigger it?
pub(crate) fn reoffer_due(pending: bool, paused: bool, state: State) -> bool {
    pending && !paused && state.delivers_data()
}

/// What a request for a graceful close does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseStep {
    /// End the connection now (a connect in progress has nothing to flush).
    EndNow(CloseReason),
    /// Start a graceful close with this reason: flush, FIN, wait for the peer's EOF.
    Graceful(CloseReason),
    /// Already closing or closed: the first request's reason stands.
    Ignore,
}

/// What a close request with `reason` does in `state`.
pub(crate) fn close_request(state: State, reason: CloseReason) -> CloseStep {
    match state {
        State::Connecting => CloseStep::EndNow(reason),
        // After the peer's EOF, a close completes an exchange the peer ended.
        State::PeerHalfClosed if reason == CloseReason::Local => {
            CloseStep::Graceful(CloseReason::PeerClosed)
        }
        state if state.is_active() => CloseStep::Graceful(reason),
        _ => CloseStep::Ignore,
    }
}

/// The close deadline fired: with what reason does the connection end, if at all?
///
/// `None` when it is not closing any more. If the output was flushed and our FIN sent, only
/// the peer's EOF is missing and nothing was lost: the close keeps its `reason` (or `Local`).
/// Otherwise bytes are still queued, and the close becomes an abort.
pub(crate) fn close_deadline(
    state: State,
    buffered: usize,
    fin_sent: bool,
    reason: Option<CloseReason>,
) -> Option<CloseReason> {
    if !matches!(state, State::Closing { .. }) {
        return None;
    }
    Some(if buffered == 0 && fin_sent {
        reason.unwrap_or(CloseReason::Local)
    } else {
        CloseReason::CloseTimeout
    })
}

/// Does ending a connection for `reason` discard output, so that the peer must hear a reset
/// rather than a FIN it would take for a complete stream?
pub(crate) fn resets(reason: &CloseReason) -> bool {
    matches!(
        reason,
        CloseReason::Aborted
            | CloseReason::LimitExceeded(_)
            | CloseReason::CloseTimeout
            | CloseReason::ShutdownAborted
            | CloseReason::HandlerPanicked(_)
    )
}

/// The idle timer fired: what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdleStep {
    /// Idle for the whole timeout: close gracefully.
    Close,
    /// Active since the timer was armed: sleep again until this deadline. (Checking lazily
    /// beats re-arming a timer on every read and write.)
    Rearm(Instant),
    /// No timeout any more, or the connection is past the point where idleness matters.
    Nothing,
}

/// What the idle timer does at `now`, for a connection last active at `last_active`.
pub(crate) fn idle_check(
    state: State,
    timeout: Option<Duration>,
    last_active: Instant,
    now: Instant,
) -> IdleStep {
    let Some(timeout) = timeout.filter(|_| state.is_active()) else {
        return IdleStep::Nothing;
    };
    let deadline = last_active + timeout;
    if now >= deadline {
        IdleStep::Close
    } else {
        IdleStep::Rearm(deadline)
    }
}

/// The output water marks and hard cap, in bytes (a connection's own, from its
/// [`OutputLimits`](crate::OutputLimits) or the [`Config`](crate::Config)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaterMarks {
    pub(crate) low: usize,
    pub(crate) high: usize,
    pub(crate) max: usize,
}

/// What a handler's write leads to, once its bytes are sent or buffered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteStep {
    /// Nothing changes.
    Carry,
    /// Output rose above the high water mark: stop reading (and so stop producing output)
    /// until the peer takes some.
    PauseReading,
    /// Output passed the hard cap: the peer is not reading; end the connection.
    OverLimit,
}

/// What `buffered` bytes of output mean for a connection whose reading is (or is not)
/// already paused for backpressure.
pub(crate) fn after_write(buffered: usize, paused: bool, marks: WaterMarks) -> WriteStep {
    if buffered > marks.max {
        WriteStep::OverLimit
    } else if buffered > marks.high && !paused {
        WriteStep::PauseReading
    } else {
        WriteStep::Carry
    }
}

/// What a handler's write does with its bytes, before any system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendStep {
    /// The socket is full: queue the bytes behind the rest; the next writable edge sends
    /// them.
    Queue,
    /// Hold the bytes with what this callback wrote before: all of it leaves in one system
    /// call when the callback returns.
    Gather,
    /// Send now, in one system call: a plain `write` when nothing is held, a `writev` of the
    /// held bytes and the new ones (which then need no copy) when something is.
    SendNow,
}

/// What a write of `piece` bytes does, given whether the socket may take bytes, the bytes
/// already held (`buffered`), and the most a callback may hold before sending (`limit`).
///
/// With `TCP_NODELAY` every `write` is a segment, and every segment costs a system call here
/// and a wake-up at the peer: a reply written as a header and a body, or sixteen pipelined
/// replies, should leave together. Holding is bounded: once the held bytes would pass
/// `limit`, everything goes out at once, so that gathering alone never holds more than the
/// limit (kept at or under the high water mark, so it never pauses reading by itself) and a
/// large piece is never copied.
pub(crate) fn send_step(writable: bool, buffered: usize, piece: usize, limit: usize) -> SendStep {
    if !writable {
        SendStep::Queue
    } else if buffered.saturating_add(piece) <= limit {
        SendStep::Gather
    } else {
        SendStep::SendNow
    }
}

/// The most a callback's writes are held before they are sent: the gather cap, or the high
/// water mark if lower, so that held bytes alone never pause reading.
pub(crate) fn gather_limit(cap: usize, marks: WaterMarks) -> usize {
    cap.min(marks.high)
}

/// After a flush: does backpressure lift? Only at the low water mark, not just under the
/// high one, so that reading does not flap on and off around one mark (hysteresis).
pub(crate) fn backpressure_lifts(buffered: usize, paused: bool, marks: WaterMarks) -> bool {
    paused && buffered <= marks.low
}

/// What the soft limit's clock does after buffered output changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SoftClock {
    /// Output just passed the soft limit: start the clock (arm the timer).
    Start,
    /// Output is at or below the soft limit again (or there is no soft limit any more):
    /// stop the clock, so that the next excursion starts from zero.
    Stop,
    /// Nothing changes: still above with the clock running, or still below without one.
    Keep,
}

/// The soft limit's clock for `buffered` bytes of output, a soft limit of `soft` bytes (if
/// any), and whether the clock is `running`. Only above the limit does time count, as in
/// Redis's `client-output-buffer-limit`: dipping to the limit resets it.
pub(crate) fn soft_clock(buffered: usize, soft: Option<usize>, running: bool) -> SoftClock {
    let above = soft.is_some_and(|soft| buffered > soft);
    match (above, running) {
        (true, false) => SoftClock::Start,
        (false, true) => SoftClock::Stop,
        _ => SoftClock::Keep,
    }
}

/// The soft limit's timer fired: is the connection to be closed? Only if its output is
/// still above the limit (the clock is stopped whenever it falls, so this guards only
/// against a missed stop), and it is not closed already.
pub(crate) fn soft_limit_passed(state: State, buffered: usize, soft: Option<usize>) -> bool {
    state != State::Closed && soft.is_some_and(|soft| buffered > soft)
}

/// After a flush: what the write side does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinStep {
    /// Output is still queued, or the state wants no FIN.
    Wait,
    /// Send our FIN now, then the state hears `Flushed`.
    SendFin,
    /// The FIN went out earlier: the state hears `Flushed` again (a close that waited for the
    /// peer's EOF may now finish).
    Flushed,
}

/// The FIN waits for the flush: it is due once the state wants it and no output is queued.
pub(crate) fn after_flush(state: State, buffered: usize, fin_sent: bool) -> FinStep {
    match (state.wants_fin() && buffered == 0, fin_sent) {
        (false, _) => FinStep::Wait,
        (true, false) => FinStep::SendFin,
        (true, true) => FinStep::Flushed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::close_reason::Limit;

    const MARKS: WaterMarks = WaterMarks {
        low: 16,
        high: 64,
        max: 1024,
    };

    fn closing() -> State {
        State::Closing { peer_eof: false }
    }

    fn closing_after_eof() -> State {
        State::Closing { peer_eof: true }
    }

    // --- reads ---

    #[test]
    fn a_short_read_means_drained() {
        assert!(drained_after_read(100, 65536, false));
        assert!(
            !drained_after_read(65536, 65536, false),
            "a full buffer may have more"
        );
    }

    #[test]
    fn a_short_read_after_a_hang_up_hint_reads_on_for_the_eof() {
        assert!(!drained_after_read(100, 65536, true));
    }

    #[test]
    fn an_open_connection_reads_until_not_readable() {
        assert_eq!(next_read(true, State::Open, false, 10), ReadStep::Read);
        assert_eq!(next_read(false, State::Open, false, 10), ReadStep::Stop);
    }

    #[test]
    fn a_spent_budget_requeues() {
        assert_eq!(next_read(true, State::Open, false, 0), ReadStep::Requeue);
    }

    #[test]
    fn a_paused_connection_stops_reading_but_a_closing_one_reads_to_eof() {
        assert_eq!(next_read(true, State::Open, true, 10), ReadStep::Stop);
        assert_eq!(
            next_read(true, State::WriteShutdown, true, 10),
            ReadStep::Stop
        );
        assert_eq!(next_read(true, closing(), true, 10), ReadStep::Read);
    }

    #[test]
    fn after_the_peers_eof_nothing_is_read() {
        for state in [State::PeerHalfClosed, closing_after_eof(), State::Closed] {
            assert_eq!(
                next_read(true, state, false, 10),
                ReadStep::Stop,
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_pending_connect_reads_nothing() {
        assert_eq!(
            next_read(true, State::Connecting, false, 10),
            ReadStep::Stop
        );
    }

    #[test]
    fn a_truncated_tls_stream_is_an_error_while_input_is_delivered() {
        for state in [State::Open, State::WriteShutdown] {
            assert_eq!(
                truncation(state),
                Some(CloseReason::TlsTruncated),
                "{state:?}"
            );
        }
    }

    #[test]
    fn a_truncated_tls_stream_is_an_eof_once_we_are_closing() {
        assert_eq!(truncation(closing()), None);
    }

    // --- the handler's input ---

    #[test]
    fn the_rest_is_offered_again_while_the_handler_makes_progress() {
        assert!(offer_again(10, 10, 30, State::Open, false));
        assert!(!offer_again(0, 10, 30, State::Open, false), "no progress");
        assert!(!offer_again(20, 30, 30, State::Open, false), "all consumed");
    }

    #[test]
    fn the_rest_waits_once_the_handler_paused_or_closed() {
        assert!(!offer_again(10, 10, 30, State::Open, true));
        assert!(!offer_again(10, 10, 30, closing(), false));
        assert!(!offer_again(10, 10, 30, State::PeerHalfClosed, false));
        assert!(offer_again(10, 10, 30, State::WriteShutdown, false));
    }

    #[test]
    fn kept_input_is_offered_again_when_reading_resumes_in_a_delivering_state() {
        assert!(reoffer_due(true, false, State::Open));
        assert!(!reoffer_due(false, false, State::Open));
        assert!(!reoffer_due(true, true, State::Open));
        assert!(!reoffer_due(true, false, closing()));
    }

    // --- closing ---

    #[test]
    fn closing_a_pending_connect_ends_it_now() {
        assert_eq!(
            close_request(State::Connecting, CloseReason::Local),
            CloseStep::EndNow(CloseReason::Local)
        );
    }

    #[test]
    fn closing_an_open_connection_is_graceful_with_the_given_reason() {
        for state in [State::Open, State::WriteShutdown] {
            assert_eq!(
                close_request(state, CloseReason::IdleTimeout),
                CloseStep::Graceful(CloseReason::IdleTimeout)
            );
        }
    }

    #[test]
    fn a_local_close_after_the_peers_eof_completes_the_peers_close() {
        assert_eq!(
            close_request(State::PeerHalfClosed, CloseReason::Local),
            CloseStep::Graceful(CloseReason::PeerClosed)
        );
        let reason = CloseReason::Protocol("bad frame".into());
        assert_eq!(
            close_request(State::PeerHalfClosed, reason.clone()),
            CloseStep::Graceful(reason),
            "a reason of the handler's own stands"
        );
    }

    #[test]
    fn a_second_close_request_changes_nothing() {
        for state in [closing(), closing_after_eof(), State::Closed] {
            assert_eq!(close_request(state, CloseReason::Local), CloseStep::Ignore);
        }
    }

    #[test]
    fn the_close_deadline_keeps_the_reason_when_only_the_peers_eof_is_missing() {
        assert_eq!(
            close_deadline(closing(), 0, true, Some(CloseReason::IdleTimeout)),
            Some(CloseReason::IdleTimeout)
        );
        assert_eq!(
            close_deadline(closing(), 0, true, None),
            Some(CloseReason::Local)
        );
    }

    #[test]
    fn the_close_deadline_aborts_when_output_is_still_queued() {
        assert_eq!(
            close_deadline(closing(), 5, false, Some(CloseReason::Local)),
            Some(CloseReason::CloseTimeout)
        );
        assert_eq!(
            close_deadline(closing_after_eof(), 0, false, None),
            Some(CloseReason::CloseTimeout),
            "the FIN never went out"
        );
    }

    #[test]
    fn the_close_deadline_misses_a_connection_no_longer_closing() {
        for state in [State::Open, State::PeerHalfClosed, State::Closed] {
            assert_eq!(close_deadline(state, 0, true, None), None, "{state:?}");
        }
    }

    #[test]
    fn closes_that_discard_output_reset() {
        assert!(resets(&CloseReason::Aborted));
        assert!(resets(&CloseReason::LimitExceeded(Limit::Output)));
        assert!(resets(&CloseReason::CloseTimeout));
        assert!(resets(&CloseReason::ShutdownAborted));
        assert!(!resets(&CloseReason::Local));
        assert!(!resets(&CloseReason::PeerClosed));
        assert!(
            !resets(&CloseReason::Reset),
            "the peer reset it: nothing to say"
        );
    }

    #[test]
    fn an_idle_connection_closes_at_its_deadline() {
        let start = Instant::now();
        let timeout = Some(Duration::from_secs(5));
        let later = start + Duration::from_secs(5);
        assert_eq!(
            idle_check(State::Open, timeout, start, later),
            IdleStep::Close
        );
    }

    #[test]
    fn activity_since_the_timer_was_armed_moves_the_deadline() {
        let start = Instant::now();
        let timeout = Some(Duration::from_secs(5));
        let active = start + Duration::from_secs(3);
        assert_eq!(
            idle_check(State::Open, timeout, active, start + Duration::from_secs(5)),
            IdleStep::Rearm(active + Duration::from_secs(5))
        );
    }

    #[test]
    fn idleness_does_not_matter_once_closing_or_without_a_timeout() {
        let start = Instant::now();
        let late = start + Duration::from_secs(60);
        let timeout = Some(Duration::from_secs(5));
        assert_eq!(
            idle_check(closing(), timeout, start, late),
            IdleStep::Nothing
        );
        assert_eq!(
            idle_check(State::Open, None, start, late),
            IdleStep::Nothing
        );
    }

    // --- backpressure ---

    #[test]
    fn output_above_the_high_water_mark_pauses_reading_once() {
        assert_eq!(after_write(64, false, MARKS), WriteStep::Carry);
        assert_eq!(after_write(65, false, MARKS), WriteStep::PauseReading);
        assert_eq!(
            after_write(65, true, MARKS),
            WriteStep::Carry,
            "already paused"
        );
    }

    #[test]
    fn output_above_the_cap_is_over_the_limit_paused_or_not() {
        assert_eq!(after_write(1025, false, MARKS), WriteStep::OverLimit);
        assert_eq!(after_write(1025, true, MARKS), WriteStep::OverLimit);
    }

    #[test]
    fn backpressure_lifts_at_the_low_water_mark_not_below_the_high_one() {
        assert!(!backpressure_lifts(40, true, MARKS), "hysteresis");
        assert!(backpressure_lifts(16, true, MARKS));
        assert!(!backpressure_lifts(0, false, MARKS), "not paused");
    }

    // --- gathering a callback's writes ---

    #[test]
    fn writes_within_the_limit_are_gathered() {
        assert_eq!(send_step(true, 0, 10, 64), SendStep::Gather);
        assert_eq!(
            send_step(true, 54, 10, 64),
            SendStep::Gather,
            "up to the limit"
        );
    }

    #[test]
    fn a_write_that_would_pass_the_limit_sends_everything_now() {
        assert_eq!(send_step(true, 55, 10, 64), SendStep::SendNow);
        assert_eq!(
            send_step(true, 0, 65, 64),
            SendStep::SendNow,
            "a large piece alone"
        );
        assert_eq!(
            send_step(true, 10, usize::MAX, 64),
            SendStep::SendNow,
            "no overflow"
        );
    }

    #[test]
    fn a_full_socket_queues_whatever_the_size() {
        assert_eq!(send_step(false, 0, 10, 64), SendStep::Queue);
        assert_eq!(send_step(false, 100, 1000, 64), SendStep::Queue);
    }

    #[test]
    fn the_gather_limit_never_passes_the_high_water_mark() {
        assert_eq!(gather_limit(16 * 1024, MARKS), 64);
        let roomy = WaterMarks {
            high: 1 << 20,
            ..MARKS
        };
        assert_eq!(gather_limit(16 * 1024, roomy), 16 * 1024);
    }

    // --- the FIN ---

    #[test]
    fn the_fin_waits_for_the_flush() {
        assert_eq!(after_flush(State::WriteShutdown, 10, false), FinStep::Wait);
        assert_eq!(
            after_flush(State::WriteShutdown, 0, false),
            FinStep::SendFin
        );
        assert_eq!(after_flush(closing_after_eof(), 0, false), FinStep::SendFin);
    }

    #[test]
    fn the_fin_goes_out_once() {
        assert_eq!(after_flush(closing(), 0, true), FinStep::Flushed);
    }

    #[test]
    fn states_that_keep_writing_send_no_fin() {
        for state in [State::Open, State::PeerHalfClosed, State::Connecting] {
            assert_eq!(after_flush(state, 0, false), FinStep::Wait, "{state:?}");
        }
    }

    #[test]
    fn the_soft_clock_runs_only_above_the_soft_limit() {
        assert_eq!(soft_clock(101, Some(100), false), SoftClock::Start);
        assert_eq!(soft_clock(101, Some(100), true), SoftClock::Keep);
        assert_eq!(soft_clock(100, Some(100), true), SoftClock::Stop);
        assert_eq!(soft_clock(100, Some(100), false), SoftClock::Keep);
        // No soft limit (any more): never started, and a running clock stops.
        assert_eq!(soft_clock(1 << 30, None, false), SoftClock::Keep);
        assert_eq!(soft_clock(1 << 30, None, true), SoftClock::Stop);
    }

    #[test]
    fn the_soft_limit_closes_only_what_is_still_above_it() {
        assert!(soft_limit_passed(State::Open, 101, Some(100)));
        assert!(!soft_limit_passed(State::Open, 100, Some(100)));
        assert!(!soft_limit_passed(State::Open, 101, None));
        assert!(!soft_limit_passed(State::Closed, 101, Some(100)));
    }
}

//! Properties of the connection state machine (`State::on`) over random input sequences:
//! what must hold whatever a peer, a handler and the kernel do, in whatever order.
//! (`src/state.rs` has the unit tests of single transitions.)

use mio_reactor::{Input, State};
use proptest::prelude::*;

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        Just(Input::Connected),
        Just(Input::PeerEof),
        Just(Input::ShutdownWrite),
        Just(Input::Close),
        Just(Input::Flushed),
        Just(Input::Fail),
    ]
}

/// A connection starts accepted (`Open`) or connecting out (`Connecting`).
fn any_start() -> impl Strategy<Value = State> {
    prop_oneof![Just(State::Open), Just(State::Connecting)]
}

/// A state reached by some history.
fn any_reachable() -> impl Strategy<Value = State> {
    (any_start(), prop::collection::vec(any_input(), 0..24))
        .prop_map(|(start, inputs)| inputs.into_iter().fold(start, State::on))
}

/// The transitions `docs/architecture.md` documents; any other input must change nothing.
fn documented(from: State, input: Input, to: State) -> bool {
    use Input::*;
    use State::*;
    matches!(
        (from, input, to),
        (_, Fail, Closed)
            | (Connecting, Connected, Open)
            | (Connecting, Close, Closed)
            | (Open, PeerEof, PeerHalfClosed)
            | (Open, ShutdownWrite, WriteShutdown)
            | (Open, Close, Closing { peer_eof: false })
            | (WriteShutdown, Close, Closing { peer_eof: false })
            | (WriteShutdown, PeerEof, Closing { peer_eof: true })
            | (
                PeerHalfClosed,
                Close | ShutdownWrite,
                Closing { peer_eof: true }
            )
            | (
                Closing { peer_eof: false },
                PeerEof,
                Closing { peer_eof: true }
            )
            | (Closing { peer_eof: true }, Flushed, Closed)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Closed is final; `Fail` always closes; every change of state is a documented one.
    #[test]
    fn closed_is_final_fail_always_closes_and_every_change_is_documented(
        start in any_start(),
        inputs in prop::collection::vec(any_input(), 0..48),
    ) {
        let mut state = start;
        for input in inputs {
            let next = state.on(input);
            if state == State::Closed {
                prop_assert_eq!(next, State::Closed, "left Closed on {:?}", input);
            }
            if input == Input::Fail {
                prop_assert_eq!(next, State::Closed, "{:?} survived Fail", state);
            }
            if next != state {
                prop_assert!(
                    documented(state, input, next),
                    "{:?} --{:?}--> {:?}", state, input, next
                );
            }
            state = next;
        }
    }

    /// Once a direction is closed it stays closed: no history reopens reading, writing,
    /// delivering data or the handler's callbacks, and a FIN once due stays due.
    #[test]
    fn no_history_reopens_a_closed_half(
        start in any_start(),
        inputs in prop::collection::vec(any_input(), 0..48),
    ) {
        let mut state = start;
        for input in inputs {
            let next = state.on(input);
            // Connecting opens both directions when it connects; from any other state
            // nothing opens.
            if state != State::Connecting {
                let step = format!("{state:?} --{input:?}--> {next:?}");
                prop_assert!(state.may_write() || !next.may_write(), "reopened writing: {}", step);
                prop_assert!(state.may_read() || !next.may_read(), "reopened reading: {}", step);
                prop_assert!(
                    state.delivers_data() || !next.delivers_data(),
                    "delivers again: {}", step
                );
                prop_assert!(state.is_active() || !next.is_active(), "reactivated: {}", step);
                prop_assert!(
                    !state.wants_fin() || next.wants_fin() || next == State::Closed,
                    "took back a FIN: {}", step
                );
            }
            state = next;
        }
    }

    /// From wherever a connection is, a graceful close finishes once the peer sends its EOF
    /// and the output is flushed; a connection already closing needs only those two.
    #[test]
    fn a_graceful_close_always_reaches_closed_by_peer_eof_and_flush(state in any_reachable()) {
        let closed = state.on(Input::Close).on(Input::PeerEof).on(Input::Flushed);
        prop_assert_eq!(closed, State::Closed, "stuck from {:?}", state);
        if let State::Closing { .. } = state {
            prop_assert_eq!(state.on(Input::PeerEof).on(Input::Flushed), State::Closed);
        }
    }

    /// What each state allows is consistent: data is delivered only where reading is on,
    /// a FIN is due only where writing is over, and only active states may write.
    #[test]
    fn what_a_state_allows_is_consistent(state in any_reachable()) {
        prop_assert!(!state.delivers_data() || state.may_read());
        prop_assert!(!state.wants_fin() || !state.may_write());
        prop_assert!(!state.may_write() || state.is_active());
        prop_assert!(!state.delivers_data() || state.is_active());
    }
}

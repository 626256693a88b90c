//! The connection state machine, free of I/O so that every transition can be tested alone.
//!
//! A TCP connection is two independent byte streams. Each side can finish its half with a FIN
//! while the other half keeps flowing; that *half-close* is why "the peer sent EOF" does not
//! mean "the connection is over". The states below name which halves are still open, and
//! [`State::on`] is the one place where they change. [`State`]'s docs draw the machine.

/// Where a connection is in its life.
///
/// The reactor keeps one per connection; you meet it in
/// [`Record::Transition`](crate::Record::Transition) and in the logs, and can run the
/// machine yourself to see what a sequence of events leads to.
///
/// ```text
///                    Connected                 PeerEof
///   Connecting ──────────────────▶ Open ─────────────────▶ PeerHalfClosed
///        │                          │  ╲ ShutdownWrite           │ Close / ShutdownWrite
///        │ Fail / Close             │   ╲                        ▼
///        │                    Close │    ▶ WriteShutdown ──▶ Closing { peer_eof: true }
///        │                          ▼         PeerEof  ▲               │ Flushed
///        │               Closing { peer_eof: false } ──┘ PeerEof       ▼
///        └───────────────────────────────────────────────────────▶  Closed
///                              (Fail from any state)
/// ```
///
/// # The kernel's TCP states
/// These are the reactor's states, not the kernel's: the kernel's TCP state machine
/// (RFC 9293 §3.3.2, which replaces RFC 793; tcp(7); the `State` column of `ss -t`) moves on
/// its own as segments are acknowledged, without telling the reactor. While a TCP connection is
/// in one of the states on the left, the kernel's socket is in one of those on the right:
///
/// | `State` | the kernel's TCP state |
/// |---|---|
/// | `Connecting` | SYN-SENT: our SYN is out, no answer yet |
/// | `Open` | ESTABLISHED |
/// | `PeerHalfClosed` | CLOSE-WAIT: the peer's FIN arrived, ours is not sent |
/// | `WriteShutdown` | ESTABLISHED while our output is still buffered here; FIN-WAIT-1 once our FIN is sent (`shutdown(SHUT_WR)`); FIN-WAIT-2 once the peer acknowledged it |
/// | `Closing { peer_eof: false }` | the same as `WriteShutdown`: ESTABLISHED, then FIN-WAIT-1, then FIN-WAIT-2 |
/// | `Closing { peer_eof: true }` | CLOSE-WAIT (the peer's FIN came first and ours waits for the output to flush); or, if both FINs crossed before ours was acknowledged, the kernel's CLOSING |
/// | `Closed` | the reactor closes the descriptor at the end of the turn; see below |
///
/// After `Closed`, what the kernel keeps is its business, not the reactor's: after a
/// graceful close, the side whose FIN went first holds TIME-WAIT for 2 MSL (60 s on Linux),
/// and the other waits in LAST-ACK for the acknowledgment of its FIN. An abort
/// ([`Context::abort`](crate::Context::abort), an output limit, a close that timed out with
/// output unsent) sets `SO_LINGER` to zero first, so the close sends a reset (RST) and the
/// kernel forgets the connection at once, with no TIME-WAIT. A close deadline that fires
/// when everything was sent and only the peer's FIN is missing closes without a reset, and the
/// kernel keeps the orphaned FIN-WAIT-2 socket for `tcp_fin_timeout` (tcp(7), 60 s by default).
///
/// **`Closing` is not RFC 793's CLOSING.** The RFC's CLOSING is a simultaneous close: both
/// sides sent a FIN and ours is not acknowledged yet. The reactor's `Closing` is a graceful
/// close that this side asked for and that is still in progress (flush, FIN, wait for the
/// peer's EOF); the kernel meanwhile goes through ESTABLISHED or CLOSE-WAIT, FIN-WAIT-1/2 or
/// LAST-ACK, and reaches its CLOSING only when the FINs cross.
///
/// Unix-domain stream connections run the same machine (the half-close is `shutdown(2)` on
/// them too), but the kernel keeps no TCP states for them: a close there is immediate.
///
/// # Examples
/// The peer's FIN is a half-close: the handler may still write until it closes too.
/// ```
/// use mio_reactor::{Input, State};
///
/// let state = State::Open.on(Input::PeerEof);
/// assert_eq!(state, State::PeerHalfClosed);
/// assert!(state.may_write() && !state.may_read());
///
/// let state = state.on(Input::Close);
/// assert_eq!(state, State::Closing { peer_eof: true });
/// assert!(state.wants_fin()); // sent once the output is flushed
/// assert_eq!(state.on(Input::Flushed), State::Closed);
///
/// // Display gives the short name, as in pictures of the machine.
/// assert_eq!(State::Closing { peer_eof: false }.to_string(), "Closing");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// An outbound connect is in progress (the kernel's SYN-SENT).
    Connecting,
    /// Both directions are open (ESTABLISHED).
    Open,
    /// The peer sent its FIN (we read EOF); we may still write (CLOSE-WAIT).
    PeerHalfClosed,
    /// The handler shut down our write side: the FIN goes out once the output is flushed
    /// (then FIN-WAIT-1, FIN-WAIT-2). We still read and deliver data.
    WriteShutdown,
    /// A graceful close: flush the output, send the FIN, then read and discard until the
    /// peer's EOF (so that unread data does not turn our close into a reset) or the deadline.
    ///
    /// Not RFC 793's CLOSING (a simultaneous close): see [the kernel's TCP
    /// states](State#the-kernels-tcp-states).
    Closing {
        /// Whether the peer's EOF has been seen.
        peer_eof: bool,
    },
    /// Finished. The socket is closed at the end of the reactor turn (the kernel may keep
    /// it in TIME-WAIT, LAST-ACK or FIN-WAIT-2 a while longer; an abort leaves nothing).
    Closed,
}

/// What happened to a connection, as far as its state is concerned.
///
/// # Examples
/// Our side finishes first: shut down our writes, then hear the peer's EOF.
/// ```
/// use mio_reactor::{Input, State};
///
/// let inputs = [Input::ShutdownWrite, Input::PeerEof, Input::Flushed];
/// let path: Vec<State> = inputs
///     .iter()
///     .scan(State::Open, |state, &input| {
///         *state = state.on(input);
///         Some(*state)
///     })
///     .collect();
/// assert_eq!(
///     path,
///     [State::WriteShutdown, State::Closing { peer_eof: true }, State::Closed]
/// );
///
/// // An input that means nothing in a state leaves it unchanged; Fail ends any state.
/// assert_eq!(State::Open.on(Input::Flushed), State::Open);
/// assert_eq!(State::Connecting.on(Input::Fail), State::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A non-blocking connect completed.
    Connected,
    /// A read returned 0: the peer will send nothing more.
    PeerEof,
    /// The handler asked to shut down the write side.
    ShutdownWrite,
    /// The handler (or the reactor) asked for a graceful close.
    Close,
    /// All output is written and our FIN is sent.
    Flushed,
    /// An error, an abort or a deadline: the connection ends now.
    Fail,
}

impl State {
    /// The state after `input`. Inputs that mean nothing in a state leave it unchanged.
    pub fn on(self, input: Input) -> State {
        use Input::*;
        use State::*;
        match (self, input) {
            (_, Fail) | (Closed, _) => Closed,
            (Connecting, Connected) => Open,
            (Connecting, Close) => Closed,
            (Open, PeerEof) => PeerHalfClosed,
            (Open, ShutdownWrite) => WriteShutdown,
            (Open, Close) | (WriteShutdown, Close) => Closing { peer_eof: false },
            (PeerHalfClosed, Close) | (PeerHalfClosed, ShutdownWrite) => Closing { peer_eof: true },
            (WriteShutdown, PeerEof) | (Closing { .. }, PeerEof) => Closing { peer_eof: true },
            (Closing { peer_eof: true }, Flushed) => Closed,
            (state, _) => state,
        }
    }

    /// The handler may still write: our write side is open.
    pub fn may_write(self) -> bool {
        matches!(self, State::Open | State::PeerHalfClosed)
    }

    /// The socket should be read: the peer's side is open and someone wants the bytes
    /// (the handler, or a graceful close waiting for EOF).
    pub fn may_read(self) -> bool {
        matches!(
            self,
            State::Open | State::WriteShutdown | State::Closing { peer_eof: false }
        )
    }

    /// Bytes read are handed to the handler (rather than discarded by a closing connection).
    pub fn delivers_data(self) -> bool {
        matches!(self, State::Open | State::WriteShutdown)
    }

    /// Our FIN is due once the output is flushed.
    pub fn wants_fin(self) -> bool {
        matches!(self, State::WriteShutdown | State::Closing { .. })
    }

    /// The handler still receives callbacks other than `on_close` (timers, shutdown, EOF).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            State::Connecting | State::Open | State::PeerHalfClosed | State::WriteShutdown
        )
    }
}

impl State {
    /// The state's short name, without its fields (`Closing`), for logs and pictures.
    pub fn name(self) -> &'static str {
        match self {
            State::Connecting => "Connecting",
            State::Open => "Open",
            State::PeerHalfClosed => "PeerHalfClosed",
            State::WriteShutdown => "WriteShutdown",
            State::Closing { .. } => "Closing",
            State::Closed => "Closed",
        }
    }
}

impl std::fmt::Display for State {
    /// The state's [short name](State::name).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::Input::*;
    use super::State::*;
    use super::*;

    const ALL_STATES: [State; 7] = [
        Connecting,
        Open,
        PeerHalfClosed,
        WriteShutdown,
        Closing { peer_eof: false },
        Closing { peer_eof: true },
        Closed,
    ];
    const ALL_INPUTS: [Input; 6] = [Connected, PeerEof, ShutdownWrite, Close, Flushed, Fail];

    #[test]
    fn a_connect_opens_both_directions() {
        assert_eq!(Connecting.on(Connected), Open);
    }

    #[test]
    fn eof_is_a_half_close_not_a_close() {
        let state = Open.on(PeerEof);
        assert_eq!(state, PeerHalfClosed);
        assert!(state.may_write(), "we can still reply after the peer's FIN");
        assert!(!state.may_read());
    }

    #[test]
    fn closing_after_eof_finishes_once_flushed() {
        let state = Open.on(PeerEof).on(Close);
        assert_eq!(state, Closing { peer_eof: true });
        assert!(state.wants_fin());
        assert_eq!(state.on(Flushed), Closed);
    }

    #[test]
    fn a_local_close_waits_for_the_peers_eof() {
        let state = Open.on(Close);
        assert_eq!(state.on(Flushed), Closing { peer_eof: false });
        assert!(
            state.may_read(),
            "reads continue, to be discarded, until EOF"
        );
        assert!(!state.delivers_data());
        assert_eq!(state.on(Flushed).on(PeerEof).on(Flushed), Closed);
    }

    #[test]
    fn shutting_down_the_write_side_keeps_reading() {
        let state = Open.on(ShutdownWrite);
        assert_eq!(state, WriteShutdown);
        assert!(state.delivers_data());
        assert!(!state.may_write());
        assert!(state.wants_fin());
        assert_eq!(state.on(PeerEof), Closing { peer_eof: true });
    }

    #[test]
    fn shutting_down_the_write_side_after_eof_is_a_close() {
        assert_eq!(PeerHalfClosed.on(ShutdownWrite), Closing { peer_eof: true });
    }

    #[test]
    fn closing_a_pending_connect_ends_it() {
        assert_eq!(Connecting.on(Close), Closed);
    }

    #[test]
    fn fail_ends_every_state() {
        for state in ALL_STATES {
            assert_eq!(state.on(Fail), Closed, "from {state:?}");
        }
    }

    #[test]
    fn closed_is_final() {
        for input in ALL_INPUTS {
            assert_eq!(Closed.on(input), Closed, "on {input:?}");
        }
    }

    #[test]
    fn no_transition_reopens_a_closed_half() {
        // Once a state stops allowing reads or writes, nothing it can reach allows them again.
        for state in ALL_STATES {
            for input in ALL_INPUTS {
                let next = state.on(input);
                if state != Connecting {
                    assert!(
                        state.may_write() || !next.may_write(),
                        "{state:?} --{input:?}--> {next:?} reopened writing"
                    );
                    assert!(
                        state.may_read() || !next.may_read(),
                        "{state:?} --{input:?}--> {next:?} reopened reading"
                    );
                }
            }
        }
    }

    #[test]
    fn meaningless_inputs_change_nothing() {
        assert_eq!(Open.on(Connected), Open);
        assert_eq!(Open.on(Flushed), Open);
        assert_eq!(PeerHalfClosed.on(PeerEof), PeerHalfClosed);
        assert_eq!(Connecting.on(Flushed), Connecting);
    }
}

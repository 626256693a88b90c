//! Properties of real connections: random sequences of client actions (write random
//! chunks, pause, stop and resume reading, half-close, reset) against an echo reactor. Whatever
//! the sequence, the reactor does not panic, every echo is a byte-exact prefix of what was
//! sent (all of it, after a half-close), and its stats stay consistent: every accepted
//! connection is closed exactly once and none is left open.

mod util;

#[path = "../examples/support/stress/mod.rs"]
mod stress;

use std::sync::mpsc;
use std::time::Duration;

use mio_reactor::{CloseReason, Config, ListenOptions};
use proptest::prelude::*;
use stress::pattern::{Kind, Pattern};
use stress::swarm::{End, Step, Swarm};
use util::{loopback, next_close, Echo, Reporting, Server};

/// A client action in the middle of a connection's life (one or two steps: waiting for
/// the echo needs reading on).
fn any_action() -> impl Strategy<Value = Vec<Step>> {
    prop_oneof![
        4 => (1u64..=16 * 1024).prop_map(|n| vec![Step::Send(n)]),
        1 => (0u64..=3).prop_map(|ms| vec![Step::Pause(Duration::from_millis(ms))]),
        1 => Just(vec![Step::StopReading]),
        1 => Just(vec![Step::StartReading]),
        1 => Just(vec![Step::StartReading, Step::AwaitEcho]),
    ]
}

/// How a connection's life ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Half-close, then read everything up to the server's EOF.
    HalfClose,
    /// Close without waiting for anything.
    Close,
    /// Close with a reset.
    Reset,
}

fn any_ending() -> impl Strategy<Value = Ending> {
    prop_oneof![
        Just(Ending::HalfClose),
        Just(Ending::Close),
        Just(Ending::Reset)
    ]
}

/// At most 8 writes of 16 KiB: even unread, the echo fits in the kernel's buffers and the
/// server's (below its output cap), so a client that stops reading never blocks for good.
fn any_client() -> impl Strategy<Value = (Vec<Step>, Ending)> {
    let actions = prop::collection::vec(any_action(), 0..8);
    (actions.prop_map(|a| a.concat()), any_ending())
}

fn script(actions: Vec<Step>, ending: Ending) -> Vec<Step> {
    let mut script = actions;
    match ending {
        Ending::HalfClose => {
            script.extend([Step::StartReading, Step::HalfClose, Step::AwaitEof]);
        }
        Ending::Close => {}
        Ending::Reset => script.push(Step::Reset),
    }
    script
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        max_shrink_iters: 32,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_of_client_actions_leaves_the_reactor_consistent(
        clients in prop::collection::vec(any_client(), 1..4),
    ) {
        let (tx, events) = mpsc::channel();
        let server = Server::start(Config::default(), move |reactor| {
            reactor.listen(loopback(), ListenOptions::default(), move |_| {
                Some(Reporting { inner: Echo, events: tx.clone() })
            })
        });
        let mut swarm = Swarm::new().unwrap();
        for (index, (actions, ending)) in clients.iter().enumerate() {
            let pattern = Pattern::new(index as u64, Kind::Random);
            swarm.add(server.addr, None, pattern, script(actions.clone(), *ending));
        }
        // A healthy case takes milliseconds; the bound only turns a hang into a failure.
        let bound = Duration::from_secs(10);
        let finished = swarm.run_until(bound, |s| s.ended() == clients.len()).unwrap();
        prop_assert!(finished, "clients still running");
        for (peer, (_, ending)) in swarm.peers().iter().zip(&clients) {
            // Echo bytes were compared as they came; anything else ended the client early.
            prop_assert_eq!(peer.end, Some(End::Done), "{:?}", ending);
            if *ending == Ending::HalfClose {
                prop_assert_eq!(peer.received, peer.sent, "all echoed before EOF");
            }
        }
        // The server closes each connection once, on its own: no shutdown needed.
        let reasons: Vec<CloseReason> = clients.iter().map(|_| next_close(&events)).collect();
        let stats = server.stop();
        prop_assert_eq!(stats.open_connections, 0);
        prop_assert_eq!(stats.accepted, clients.len() as u64);
        prop_assert_eq!(stats.closed.total(), stats.accepted, "{:?}", stats);
        prop_assert_eq!(stats.closed.shutdown, 0, "closed before the shutdown: {:?}", reasons);
        prop_assert_eq!(stats.closed.io_error, 0, "{:?}", reasons);
    }
}

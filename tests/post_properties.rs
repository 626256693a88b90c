//! Properties of posting from many threads at once, whatever the queue's capacity, the
//! loop's budget and the moment a shutdown arrives: every item runs exactly once or comes
//! back to its sender, and each sender's items run in the order it posted them.

mod util;

use std::collections::HashSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use mio_reactor::{Config, ListenOptions, PostError, Reactor};
use proptest::prelude::*;
use util::{init_logging, loopback, Echo, WAIT};

/// One sender's outcome: the items it got back, and the first one refused for shutdown.
struct Sent {
    returned: Vec<usize>,
    first_refused: Option<usize>,
}

/// Posts `count` items numbered from 0, retrying a full queue; after `shutdown_at` items
/// (if given) asks for a shutdown. Each item records `(sender, index)` when it runs.
fn send(
    handle: mio_reactor::LoopHandle,
    shutdown: mio_reactor::ShutdownHandle,
    sender: usize,
    count: usize,
    shutdown_at: Option<usize>,
    ran: Arc<Mutex<Vec<(usize, usize)>>>,
) -> Sent {
    let mut sent = Sent {
        returned: Vec::new(),
        first_refused: None,
    };
    let deadline = Instant::now() + WAIT;
    for index in 0..count {
        if shutdown_at == Some(index) {
            shutdown.shutdown();
        }
        let ran = ran.clone();
        let mut item = move |_: &mut mio_reactor::LoopContext<'_>| {
            ran.lock().unwrap().push((sender, index));
        };
        loop {
            match handle.post(item) {
                Ok(()) => break,
                Err(PostError::Full(back)) => {
                    assert!(Instant::now() < deadline, "the queue stayed full");
                    item = back;
                    std::thread::yield_now();
                }
                Err(PostError::ShuttingDown(_)) => {
                    sent.returned.push(index);
                    sent.first_refused.get_or_insert(index);
                    break;
                }
            }
        }
    }
    sent
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn every_item_runs_once_in_order_per_sender_or_comes_back(
        counts in prop::collection::vec(1usize..300, 1..4),
        capacity in 1usize..64,
        budget in 1usize..16,
        shutdown in prop::option::of((0usize..4, 0usize..300)),
    ) {
        init_logging();
        let config = Config::default().post_queue_capacity(capacity).post_budget(budget);
        let (ready, handles) = mpsc::channel();
        let reactor = std::thread::spawn(move || {
            let mut reactor = Reactor::with_config(config).expect("reactor");
            reactor.listen(loopback(), ListenOptions::default(), |_: &_| Some(Echo)).expect("listen");
            ready.send((reactor.handle(), reactor.shutdown_handle())).unwrap();
            reactor.run().expect("run");
        });
        let (handle, stop) = handles.recv_timeout(WAIT).expect("reactor started");
        let ran = Arc::new(Mutex::new(Vec::new()));
        let senders: Vec<_> = counts
            .iter()
            .enumerate()
            .map(|(sender, &count)| {
                let shutdown_at = shutdown
                    .filter(|&(who, _)| who == sender)
                    .map(|(_, at)| at);
                let (handle, stop, ran) = (handle.clone(), stop.clone(), ran.clone());
                std::thread::spawn(move || send(handle, stop, sender, count, shutdown_at, ran))
            })
            .collect();
        let sent: Vec<Sent> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        stop.shutdown();
        reactor.join().unwrap();

        let ran = ran.lock().unwrap().clone();
        let unique: HashSet<_> = ran.iter().collect();
        prop_assert_eq!(unique.len(), ran.len(), "an item ran twice");
        for (sender, (&count, outcome)) in counts.iter().zip(&sent).enumerate() {
            let order: Vec<usize> =
                ran.iter().filter(|(s, _)| *s == sender).map(|&(_, i)| i).collect();
            prop_assert!(order.windows(2).all(|w| w[0] < w[1]), "out of order: {:?}", order);
            let mut all: Vec<usize> = order.iter().chain(&outcome.returned).copied().collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..count).collect::<Vec<_>>(), "an item was lost");
            // Once refused for shutdown, always refused: nothing after it ran.
            if let Some(first) = outcome.first_refused {
                prop_assert!(order.iter().all(|&i| i < first));
            }
            // The sender that asked for the shutdown had every later item refused.
            if let Some((who, at)) = shutdown {
                if who == sender && at < count {
                    prop_assert_eq!(outcome.first_refused, Some(at));
                }
            }
        }
    }
}

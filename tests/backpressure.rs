//! A peer that sends but does not read must not grow the server's memory: reading pauses
//! above the high water mark, resumes at the low one, and nothing is lost.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use mio_reactor::{Config, Context, Handler, ListenOptions};
use util::{client, fnv1a, loopback, random_bytes, Server, WAIT};

/// Echo that records the most output it ever had buffered, and how often it drained.
struct WatchedEcho {
    max_buffered: Arc<AtomicUsize>,
    drains: Arc<AtomicUsize>,
}

impl Handler for WatchedEcho {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        self.max_buffered
            .fetch_max(ctx.buffered_output(), Ordering::SeqCst);
        data.len()
    }
    fn on_drain(&mut self, _: &mut Context<'_>) {
        self.drains.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_peer_that_stops_reading_stops_being_read_and_loses_nothing() {
    const TOTAL: usize = 48 * 1024 * 1024;
    let config = Config::default();
    let bound = config.get_high_water() + config.get_read_buffer_size();
    let max_buffered = Arc::new(AtomicUsize::new(0));
    let drains = Arc::new(AtomicUsize::new(0));
    let (max, dr) = (max_buffered.clone(), drains.clone());
    let server = Server::start(config, move |reactor| {
        reactor.listen(loopback(), ListenOptions::default(), move |_| {
            Some(WatchedEcho {
                max_buffered: max.clone(),
                drains: dr.clone(),
            })
        })
    });

    let mut reader = client(server.addr);
    let mut writer = reader.try_clone().unwrap();
    // The writer notices when the whole path is full: the server stopped reading.
    writer
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (stalled_tx, stalled) = mpsc::channel();
    let data = random_bytes(3, TOTAL);
    let expected = fnv1a(&data);
    let sender = std::thread::spawn(move || {
        let mut sent = 0;
        let mut reported = false;
        while sent < data.len() {
            match writer.write(&data[sent..(sent + 65_536).min(data.len())]) {
                Ok(n) => sent += n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if !reported {
                        reported = true;
                        let _ = stalled_tx.send(sent);
                    }
                }
                Err(e) => panic!("write failed: {e}"),
            }
        }
    });

    let stalled_at = stalled.recv_timeout(WAIT).expect("the writer stalls");
    assert!(stalled_at < TOTAL, "kernel buffers cannot hold 48 MiB");
    let buffered = max_buffered.load(Ordering::SeqCst);
    assert!(
        buffered <= bound,
        "server buffered {buffered} B while the peer did not read (bound {bound} B)"
    );

    // Now read: everything comes back, and the server resumes reading.
    let mut echo = vec![0; TOTAL];
    reader.read_exact(&mut echo).unwrap();
    sender.join().unwrap();
    assert_eq!(fnv1a(&echo), expected, "nothing lost or reordered");
    assert!(drains.load(Ordering::SeqCst) >= 1, "on_drain was called");
    assert!(max_buffered.load(Ordering::SeqCst) <= bound);
    drop(reader);
    let stats = server.stop();
    assert!(stats.read_pauses >= 1);
}

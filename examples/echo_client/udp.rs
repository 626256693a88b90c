//! `echo_client --udp`: the same check over datagrams.
//!
//! UDP has no connection and no delivery guarantee, so each socket sends one datagram at a
//! time, waits for its echo, and gives up on it after a timeout: that datagram is *lost*, a
//! figure to report, not an error. A reply that differs from what was sent still is an error.
//! Each datagram starts with its sequence number, so a late echo of a datagram already
//! given up on is recognised and ignored.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, DatagramContext, DatagramHandler, TimerId};

use crate::{next_byte, seed, Quota, Results};

/// The largest UDP payload over IPv4.
pub const MAX_PAYLOAD: usize = 65_507;

/// How long to wait for an echo before counting the datagram as lost.
const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// One UDP socket: sends datagrams to the server one at a time and checks each echo.
pub struct DatagramCheck {
    server: SocketAddr,
    size: usize,
    quota: Quota,
    results: Rc<RefCell<Results>>,
    rng: u64,
    sent: u64,
    /// The datagram in flight, when it was sent, and its loss timer.
    in_flight: Option<(Vec<u8>, Instant, TimerId)>,
}

impl DatagramCheck {
    pub fn new(
        index: usize,
        server: SocketAddr,
        size: usize,
        quota: Quota,
        results: Rc<RefCell<Results>>,
    ) -> DatagramCheck {
        DatagramCheck {
            server,
            size,
            quota,
            results,
            rng: seed(index),
            sent: 0,
            in_flight: None,
        }
    }

    /// Sends the next datagram, or closes once the quota is used.
    fn send_next(&mut self, ctx: &mut DatagramContext<'_>) {
        if !self.quota.allows(self.sent, ctx.now()) {
            ctx.close();
            return;
        }
        // The sequence number first (when it fits), then pseudo-random bytes.
        let mut datagram: Vec<u8> = self
            .sent
            .to_be_bytes()
            .into_iter()
            .take(self.size)
            .collect();
        while datagram.len() < self.size {
            datagram.push(next_byte(&mut self.rng));
        }
        self.sent += 1;
        if let Err(err) = ctx.send_to(&datagram, self.server) {
            let message = format!("send: {err}");
            let mut results = self.results.borrow_mut();
            if err.kind() == std::io::ErrorKind::ConnectionRefused {
                results.errors.add_nobody_listening(message);
            } else {
                results.errors.add(message);
            }
            drop(results);
            ctx.close();
            return;
        }
        let timer = ctx.set_timer(LOSS_TIMEOUT);
        self.in_flight = Some((datagram, Instant::now(), timer));
    }
}

impl DatagramHandler for DatagramCheck {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        self.send_next(ctx);
    }

    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        let Some((expected, sent_at, timer)) = self.in_flight.take() else {
            return; // a late echo of a datagram already counted as lost
        };
        let sequence = &expected[..expected.len().min(8)];
        if from != self.server || !data.starts_with(sequence) {
            self.in_flight = Some((expected, sent_at, timer)); // not the one we wait for
            return;
        }
        if data != expected.as_slice() {
            self.results
                .borrow_mut()
                .errors
                .add("echoed datagram differs");
            return ctx.close();
        }
        ctx.cancel_timer(timer);
        let mut results = self.results.borrow_mut();
        results.latency.record(sent_at.elapsed(), data.len());
        results.bytes += data.len() as u64;
        drop(results);
        self.send_next(ctx);
    }

    fn on_timer(&mut self, ctx: &mut DatagramContext<'_>, timer: TimerId) {
        if matches!(&self.in_flight, Some((_, _, t)) if *t == timer) {
            self.in_flight = None;
            self.results.borrow_mut().lost += 1;
            self.send_next(ctx);
        }
    }

    fn on_close(&mut self, ctx: &mut DatagramContext<'_>, _: &CloseReason) {
        let mut results = self.results.borrow_mut();
        results.running -= 1;
        if results.running == 0 {
            ctx.shutdown_reactor();
        }
    }
}

//! `echo_client --udp`: the same check over datagrams.
//!
//! UDP has no connection and no delivery guarantee. Each socket keeps `--pipeline K`
//! datagrams in flight (default one), each with a loss timer of its own: a datagram whose
//! echo has not come back within [`LOSS_TIMEOUT`] is given up on, counted as *lost* (a figure
//! to report, not an error) and not re-sent; a fresh datagram takes its place, so the offered
//! load stays K per socket, as a load generator's should. A reply that differs from what was
//! sent still is an error.
//!
//! Datagrams may come back in any order, so each is matched to what was sent by the
//! sequence number it starts with (little-endian, so that even a datagram shorter than eight
//! bytes carries its low bits; the rest are pseudo-random). A late echo of a datagram
//! already given up on matches nothing in flight and is ignored.

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

/// Bytes of the sequence number at the start of each datagram (fewer if the datagram is
/// shorter).
const SEQUENCE_LEN: usize = 8;

/// One datagram sent and not yet echoed.
struct InFlight {
    datagram: Vec<u8>,
    /// When it was handed to the reactor: `Instant::now()`, not the turn's clock (see
    /// `on_datagram`).
    sent_at: Instant,
    /// Its loss timer.
    timer: TimerId,
}

impl InFlight {
    /// The sequence-number bytes the echo must start with.
    fn sequence(&self) -> &[u8] {
        &self.datagram[..self.datagram.len().min(SEQUENCE_LEN)]
    }
}

/// One UDP socket: keeps `pipeline` datagrams in flight to the server and checks each echo.
pub struct DatagramCheck {
    server: SocketAddr,
    size: usize,
    pipeline: usize,
    quota: Quota,
    results: Rc<RefCell<Results>>,
    rng: u64,
    sent: u64,
    /// At most `pipeline` entries, so finding an echo's datagram by a scan is cheap.
    in_flight: Vec<InFlight>,
}

impl DatagramCheck {
    pub fn new(
        index: usize,
        server: SocketAddr,
        size: usize,
        pipeline: usize,
        quota: Quota,
        results: Rc<RefCell<Results>>,
    ) -> DatagramCheck {
        DatagramCheck {
            server,
            size,
            pipeline,
            quota,
            results,
            rng: seed(index),
            sent: 0,
            in_flight: Vec::with_capacity(pipeline),
        }
    }

    /// Sends datagrams until `pipeline` are in flight or the quota is used; closes once
    /// the quota is used and nothing is left in flight.
    fn fill_pipeline(&mut self, ctx: &mut DatagramContext<'_>) {
        let now = ctx.now();
        while self.in_flight.len() < self.pipeline && self.quota.allows(self.sent, now) {
            if !self.send_one(ctx) {
                return ctx.close();
            }
        }
        if self.in_flight.is_empty() {
            ctx.close();
        }
    }

    /// Sends the next datagram; false if sending failed (an error, reported).
    fn send_one(&mut self, ctx: &mut DatagramContext<'_>) -> bool {
        let mut datagram: Vec<u8> = self
            .sent
            .to_le_bytes()
            .into_iter()
            .take(self.size)
            .collect();
        while datagram.len() < self.size {
            datagram.push(next_byte(&mut self.rng));
        }
        self.sent += 1;
        let sent_at = Instant::now();
        if let Err(err) = ctx.send_to(&datagram, self.server) {
            let message = format!("send: {err}");
            let mut results = self.results.borrow_mut();
            if err.kind() == std::io::ErrorKind::ConnectionRefused {
                results.errors.add_nobody_listening(message);
            } else {
                results.errors.add(message);
            }
            return false;
        }
        let timer = ctx.set_timer(LOSS_TIMEOUT);
        self.in_flight.push(InFlight {
            datagram,
            sent_at,
            timer,
        });
        true
    }
}

impl DatagramHandler for DatagramCheck {
    fn on_open(&mut self, ctx: &mut DatagramContext<'_>) {
        self.fill_pipeline(ctx);
    }

    fn on_datagram(&mut self, ctx: &mut DatagramContext<'_>, data: &[u8], from: SocketAddr) {
        if from != self.server {
            return;
        }
        let Some(index) = self
            .in_flight
            .iter()
            .position(|sent| data.starts_with(sent.sequence()))
        else {
            return; // a late echo of a datagram already counted as lost
        };
        let echoed = self.in_flight.swap_remove(index);
        if data != echoed.datagram.as_slice() {
            self.results
                .borrow_mut()
                .errors
                .add("echoed datagram differs");
            return ctx.close();
        }
        ctx.cancel_timer(echoed.timer);
        // Timed with the wall clock, not `ctx.now()`: the reactor receives the echoes of a
        // batch sent in this turn within the same turn, and the turn's clock would time
        // each of them as 0.
        let round_trip = echoed.sent_at.elapsed();
        let mut results = self.results.borrow_mut();
        results.latency.record(round_trip, data.len());
        results.bytes += data.len() as u64;
        drop(results);
        self.fill_pipeline(ctx);
    }

    fn on_timer(&mut self, ctx: &mut DatagramContext<'_>, timer: TimerId) {
        if let Some(index) = self.in_flight.iter().position(|sent| sent.timer == timer) {
            self.in_flight.swap_remove(index);
            self.results.borrow_mut().lost += 1;
            self.fill_pipeline(ctx);
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

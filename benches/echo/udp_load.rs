//! The datagram load generator (the `udp-*` scenarios): one thread, one `mio::Poll`, many
//! UDP sockets, every echoed byte checked.
//!
//! Each socket is connected to the server (so the kernel hands it only the server's
//! datagrams) and either keeps `depth` datagrams in flight (closed loop) or sends its turn
//! of a fixed total rate, round-robin over the sockets (paced, as `load.rs` paces streams).
//! A datagram is its sequence number (8 bytes, little-endian) followed by the socket's
//! pattern stream from `sequence × size` (`pattern.rs`), so each echo is matched to what was
//! sent and checked byte for byte whatever order echoes come back in.
//!
//! A datagram not echoed within [`LOSS_TIMEOUT`] is counted lost and, in a closed loop,
//! replaced at once, so that the offered load stays `depth` per socket; a late echo of it is
//! still checked, then ignored. Loss is a figure of the run; a wrong byte, an echo of a
//! datagram never sent, an echo of the wrong length or a socket error (the server's port
//! closed) fails it.
//!
//! Round trips are timed per datagram, with `Instant::now()` just before it is handed to the
//! kernel and just after its echo is read: a clock read once per wake-up would time an echo
//! read in the wake-up that sent it as 0.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::histogram::Histogram;
use crate::load::{LoadOutcome, LoadSpec, Mark};
use crate::pattern::{Pattern, CHUNK};
use crate::window::{Edge, Window};
use crate::Fallible;

/// How long to wait for an echo before counting the datagram as lost (as
/// `echo_client --udp` does).
pub const LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// No echo at all for this long is a failure, not a lossy server.
const STALL: Duration = Duration::from_secs(10);

/// Bytes of the sequence number at the start of each datagram.
const SEQUENCE_LEN: usize = 8;

/// The largest UDP payload over IPv4.
const MAX_PAYLOAD: usize = 65_507;

/// One client socket and the datagrams it has in flight.
struct Client {
    socket: UdpSocket,
    /// Its number, for error messages.
    index: usize,
    /// Where its stream starts in the pattern table.
    start: usize,
    /// The sequence number of the next datagram it sends.
    next_sequence: u64,
    /// Sequence number and send time of each datagram in flight, oldest first (so sorted by
    /// sequence number too).
    in_flight: VecDeque<(u64, Instant)>,
    /// Datagrams due but not sent yet: the kernel refused them for now (`WouldBlock`).
    owed: usize,
}

impl Client {
    fn open(poll: &Poll, index: usize, server: SocketAddr) -> Fallible<Client> {
        let any_port = match server {
            SocketAddr::V4(_) => SocketAddr::from(([127, 0, 0, 1], 0)),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
        };
        let mut socket = UdpSocket::bind(any_port)?;
        socket.connect(server)?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut socket, Token(index), interest)?;
        Ok(Client {
            socket,
            index,
            start: Pattern::start_of(index),
            next_sequence: 0,
            in_flight: VecDeque::new(),
            owed: 0,
        })
    }

    /// Sends the datagrams owed until none is left or the kernel refuses one for now.
    fn flush(&mut self, pattern: &Pattern, size: usize, datagram: &mut Vec<u8>) -> Fallible<()> {
        while self.owed > 0 {
            let sequence = self.next_sequence;
            datagram.clear();
            datagram.extend_from_slice(&sequence.to_le_bytes());
            let offset = sequence * size as u64;
            datagram.extend_from_slice(pattern.slice(self.start, offset, size - SEQUENCE_LEN));
            let sent_at = Instant::now();
            match self.socket.send(datagram) {
                Ok(n) if n == size => {}
                Ok(n) => return Err(self.error(format!("sent {n} of {size} bytes"))),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.error(format!("send: {err}"))),
            }
            self.in_flight.push_back((sequence, sent_at));
            self.next_sequence += 1;
            self.owed -= 1;
        }
        Ok(())
    }

    /// Reads echoes until `WouldBlock`, checks each, and calls `echoed` with the round trip of
    /// each one still in flight; late echoes (of datagrams already counted lost) are checked
    /// and ignored.
    fn read(
        &mut self,
        pattern: &Pattern,
        size: usize,
        buf: &mut [u8],
        mut echoed: impl FnMut(Duration),
    ) -> Fallible<()> {
        loop {
            let n = match self.socket.recv(buf) {
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.error(format!("receive: {err}"))),
            };
            let received_at = Instant::now();
            let sequence = self.check(pattern, size, &buf[..n])?;
            if let Ok(i) = self.in_flight.binary_search_by_key(&sequence, |&(s, _)| s) {
                let (_, sent_at) = self.in_flight.remove(i).expect("found");
                echoed(received_at.saturating_duration_since(sent_at));
            }
        }
    }

    /// The sequence number of a correct echo; an error for anything else.
    fn check(&self, pattern: &Pattern, size: usize, echo: &[u8]) -> Fallible<u64> {
        if echo.len() != size {
            let len = echo.len();
            return Err(self.error(format!("an echo of {len} bytes, sent {size}")));
        }
        let (head, tail) = echo.split_at(SEQUENCE_LEN);
        let sequence = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        if sequence >= self.next_sequence {
            return Err(self.error(format!("an echo of datagram {sequence}, never sent")));
        }
        let offset = sequence * size as u64;
        pattern.check(self.start, offset, tail).map_err(|at| {
            let at = SEQUENCE_LEN + at;
            self.error(format!("datagram {sequence}: wrong byte at {at}"))
        })?;
        Ok(sequence)
    }

    /// Gives up on the datagrams sent before `sent_before`; returns how many.
    fn expire(&mut self, sent_before: Instant) -> usize {
        let before = self.in_flight.len();
        while self
            .in_flight
            .front()
            .is_some_and(|&(_, sent_at)| sent_at < sent_before)
        {
            self.in_flight.pop_front();
        }
        before - self.in_flight.len()
    }

    fn error(&self, what: String) -> Box<dyn std::error::Error> {
        format!("udp socket {}: {what}", self.index).into()
    }
}

pub fn run(
    server: SocketAddr,
    spec: &LoadSpec,
    mut mark: impl FnMut(Mark) -> Fallible<()>,
) -> Fallible<LoadOutcome> {
    if !(SEQUENCE_LEN..=MAX_PAYLOAD.min(CHUNK + SEQUENCE_LEN)).contains(&spec.size) {
        return Err(format!("UDP datagrams are {SEQUENCE_LEN} to {MAX_PAYLOAD} bytes here").into());
    }
    let pattern = Pattern::new();
    let mut poll = Poll::new()?;
    let mut clients = (0..spec.conns)
        .map(|index| Client::open(&poll, index, server))
        .collect::<Fallible<Vec<Client>>>()?;
    let mut events = Events::with_capacity(1024);
    let mut datagram = Vec::with_capacity(spec.size);
    let mut buf = vec![0; MAX_PAYLOAD];

    let started = Instant::now();
    let mut window = Window::new(started, spec.warmup, spec.duration);
    let mut latency = Histogram::default();
    let (mut echoed, mut lost) = (0, 0);
    let mut last_echo = started;

    // Paced: datagram k goes to socket k % conns at `next_due`.
    let interval = spec.rate.map(|rate| Duration::from_secs_f64(1.0 / rate));
    let closed_loop = interval.is_none();
    let mut next_due = started;
    let mut next_client = 0;
    if closed_loop {
        for client in clients.iter_mut() {
            client.owed = spec.depth;
            client.flush(&pattern, spec.size, &mut datagram)?;
        }
    }

    loop {
        let now = Instant::now();
        match window.step(now, &mut mark)? {
            Edge::Inside => {}
            Edge::Opened(opened) => {
                // Do not make up for the time `mark` took with a burst.
                next_due = next_due.max(opened);
                continue;
            }
            Edge::Closed(span) => {
                return Ok(LoadOutcome {
                    messages: echoed,
                    lost,
                    window: span.length,
                    latency,
                    client_cpu_ns: span.client_cpu_ns,
                });
            }
        }

        let mut wake_at = window.phase_ends();
        if let Some(interval) = interval {
            while next_due <= now {
                let client = &mut clients[next_client];
                client.owed += 1;
                client.flush(&pattern, spec.size, &mut datagram)?;
                next_client = (next_client + 1) % clients.len();
                next_due += interval;
            }
            wake_at = wake_at.min(next_due);
        }
        let oldest = clients
            .iter()
            .filter_map(|client| client.in_flight.front().map(|&(_, sent_at)| sent_at))
            .min();
        if let Some(oldest) = oldest {
            wake_at = wake_at.min(oldest + LOSS_TIMEOUT);
        }

        match poll.poll(&mut events, Some(wake_at.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err.into()),
        }
        let recording = window.is_open();
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            let mut got = 0;
            client.read(&pattern, spec.size, &mut buf, |round_trip| {
                got += 1;
                if recording {
                    latency.record(round_trip.as_nanos() as u64);
                }
            })?;
            if got > 0 {
                last_echo = Instant::now();
                if recording {
                    echoed += got as u64;
                }
                if closed_loop {
                    client.owed += got;
                }
            }
            client.flush(&pattern, spec.size, &mut datagram)?;
        }

        let now = Instant::now();
        if let Some(sent_before) = now.checked_sub(LOSS_TIMEOUT) {
            for client in clients.iter_mut() {
                let given_up = client.expire(sent_before);
                if given_up == 0 {
                    continue;
                }
                if recording {
                    lost += given_up as u64;
                }
                if closed_loop {
                    client.owed += given_up;
                    client.flush(&pattern, spec.size, &mut datagram)?;
                }
            }
        }
        if now.duration_since(last_echo) > STALL {
            return Err(format!("no echo for {STALL:?}: the server stopped answering").into());
        }
    }
}

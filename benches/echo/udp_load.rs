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

/// Datagrams per `sendmmsg` or `recvmmsg` call: the load generator batches as the reactor
/// does, so that it is not what limits a fast server (with one call per datagram it was).
const BATCH: usize = 32;

/// The buffers of one batch each way, shared by every client socket.
struct Batch {
    send: Vec<Vec<u8>>,
    /// `BATCH` slots of `slot` bytes: one more than a datagram, so a longer echo shows.
    receive: Vec<u8>,
    slot: usize,
}

impl Batch {
    fn new(size: usize) -> Batch {
        Batch {
            send: (0..BATCH).map(|_| Vec::with_capacity(size)).collect(),
            receive: vec![0; BATCH * (size + 1)],
            slot: size + 1,
        }
    }
}

/// `sendmmsg(2)` on a connected socket: how many of `datagrams` the kernel took.
fn send_many(socket: &UdpSocket, datagrams: &[Vec<u8>]) -> io::Result<usize> {
    use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
    use std::io::IoSlice;

    let iovs: Vec<[IoSlice<'_>; 1]> = datagrams.iter().map(|d| [IoSlice::new(d)]).collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut messages: Vec<MMsgHdr<'_>> = iovs
        .iter()
        .zip(&mut controls)
        .map(|(iov, control)| MMsgHdr::new(iov, control))
        .collect();
    Ok(sendmmsg(socket, &mut messages, SendFlags::empty())?)
}

/// `recvmmsg(2)` into the slots of `buf`: each datagram's full length (`MSG_TRUNC`: a
/// longer one than its slot still says how long it was).
fn receive_many(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Vec<usize>> {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    let slot = buf.len() / BATCH;
    let mut slots: Vec<[IoSliceMut<'_>; 1]> =
        buf.chunks_mut(slot).map(|s| [IoSliceMut::new(s)]).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let fd = socket.as_raw_fd();
    let received = recvmmsg(
        fd,
        &mut headers,
        slots.iter_mut(),
        MsgFlags::MSG_TRUNC,
        None,
    )?;
    Ok(received.map(|message| message.bytes).collect())
}

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
        // Readable only: every datagram sent would raise a writable edge (see `flush`).
        poll.registry()
            .register(&mut socket, Token(index), Interest::READABLE)?;
        Ok(Client {
            socket,
            index,
            start: Pattern::start_of(index),
            next_sequence: 0,
            in_flight: VecDeque::new(),
            owed: 0,
        })
    }

    /// Sends the datagrams owed, up to [`BATCH`] per `sendmmsg` call, until none is left or
    /// the kernel refuses them for now (then the socket waits for writable readiness).
    fn flush(
        &mut self,
        poll: &Poll,
        pattern: &Pattern,
        size: usize,
        batch: &mut Batch,
    ) -> Fallible<()> {
        while self.owed > 0 {
            let count = self.owed.min(BATCH);
            for (i, datagram) in batch.send[..count].iter_mut().enumerate() {
                let sequence = self.next_sequence + i as u64;
                datagram.clear();
                datagram.extend_from_slice(&sequence.to_le_bytes());
                let offset = sequence * size as u64;
                datagram.extend_from_slice(pattern.slice(self.start, offset, size - SEQUENCE_LEN));
            }
            let sent_at = Instant::now();
            let sent = match send_many(&self.socket, &batch.send[..count]) {
                Ok(sent) => sent,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    poll.registry()
                        .reregister(&mut self.socket, Token(self.index), interest)?;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.error(format!("send: {err}"))),
            };
            for _ in 0..sent {
                self.in_flight.push_back((self.next_sequence, sent_at));
                self.next_sequence += 1;
            }
            self.owed -= sent;
        }
        Ok(())
    }

    /// Reads echoes, up to [`BATCH`] per `recvmmsg` call, until the socket is drained (a
    /// short batch, or `WouldBlock`), checks each, and calls `echoed` with the round trip of
    /// each one still in flight; late echoes (of datagrams already counted lost) are checked
    /// and ignored.
    fn read(
        &mut self,
        pattern: &Pattern,
        size: usize,
        batch: &mut Batch,
        mut echoed: impl FnMut(Duration),
    ) -> Fallible<()> {
        loop {
            let lens = match receive_many(&self.socket, &mut batch.receive) {
                Ok(lens) => lens,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(self.error(format!("receive: {err}"))),
            };
            let received_at = Instant::now();
            for (slot, &len) in batch.receive.chunks(batch.slot).zip(&lens) {
                let sequence = self.check(pattern, size, &slot[..len.min(slot.len())], len)?;
                if let Ok(i) = self.in_flight.binary_search_by_key(&sequence, |&(s, _)| s) {
                    let (_, sent_at) = self.in_flight.remove(i).expect("found");
                    echoed(received_at.saturating_duration_since(sent_at));
                }
            }
            if lens.len() < BATCH {
                return Ok(()); // drained: a later echo raises a new readable edge
            }
        }
    }

    /// The sequence number of a correct echo; an error for anything else.
    fn check(&self, pattern: &Pattern, size: usize, echo: &[u8], len: usize) -> Fallible<u64> {
        if len != size {
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
    let mut batch = Batch::new(spec.size);

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
            client.flush(&poll, &pattern, spec.size, &mut batch)?;
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
                client.flush(&poll, &pattern, spec.size, &mut batch)?;
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
            client.read(&pattern, spec.size, &mut batch, |round_trip| {
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
            client.flush(&poll, &pattern, spec.size, &mut batch)?;
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
                    client.flush(&poll, &pattern, spec.size, &mut batch)?;
                }
            }
        }
        if now.duration_since(last_echo) > STALL {
            return Err(format!("no echo for {STALL:?}: the server stopped answering").into());
        }
    }
}

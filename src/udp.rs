//! A UDP socket's record in the slab, and what happens when it is ready: flush the send
//! queue, receive datagrams up to a budget, finish a close.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::UdpSocket;

pub(crate) mod gro;
pub(crate) mod gso;
pub(crate) mod kernel_drops;
pub(crate) mod recv_batch;
pub(crate) mod send_batch;
pub(crate) mod socket_options;

use gro::Gro;
use kernel_drops::KernelDrops;
use recv_batch::RecvBatch;
use send_batch::take_positions;

use crate::close_reason::CloseReason;
use crate::core::{Core, TimerTask};
use crate::datagram::{DatagramContext, DatagramHandler, SendOutcome};
use crate::endpoint::Endpoint;
use crate::entries::Entry;
use crate::id::{Slot, TimerId, UdpId};
use crate::inherited::{self, InheritedSocket};
use crate::panics::call_user;
use crate::trace::{trace_record, Record};

/// The largest UDP payload over IPv4 is 65,507 bytes (IPv6 jumbograms aside): a receive
/// buffer (a batch's slot) of 64 KiB never truncates a datagram.
pub(crate) const MAX_DATAGRAM: usize = 64 * 1024;

/// Datagrams received per dispatch before other entries get their turn.
const RECV_BUDGET: usize = 256;

/// Everything the reactor keeps for one datagram socket.
pub(crate) struct Udp {
    pub(crate) slot: Slot,
    pub(crate) socket: UdpSocket,
    pub(crate) local_addr: SocketAddr,
    pub(crate) handler: Option<Box<dyn DatagramHandler>>,
    pub(crate) readable: bool,
    /// Sends may go: false from a `WouldBlock` until the next writable edge.
    pub(crate) writable: bool,
    /// Registered for writable readiness too: only while sends are blocked. Every datagram
    /// sent raises a writable edge when the kernel frees its buffer (`sock_wfree`), so a
    /// socket always registered for it wakes the loop once more per send, for nothing; a
    /// stream raises one only after its buffer was full. (Netty's epoll transport likewise
    /// asks for `EPOLLOUT` only while a write is pending.)
    pub(crate) write_interest: bool,
    pub(crate) queued: bool,
    /// Datagrams waiting for the next flush (every `send_to` queues), oldest first; bounded
    /// by `Config::max_queued_datagrams`.
    pub(crate) send_queue: VecDeque<(Vec<u8>, SocketAddr)>,
    /// The segment size the socket's sends carry (`udp/gso.rs`).
    pub(crate) gso: gso::SocketGso,
    /// A close was requested: finish once the queue is flushed.
    pub(crate) closing: Option<CloseReason>,
    pub(crate) finished: bool,
    pub(crate) close_reason: Option<CloseReason>,
    /// Whether received messages may hold many datagrams (`UDP_GRO`).
    pub(crate) gro: Gro,
    /// The kernel's drop count as last seen (`SO_RXQ_OVFL`).
    pub(crate) kernel_drops: KernelDrops,
}

/// The datagram socket `endpoint` names: bound on its address (the first of a name's that
/// binds), or inherited (`fd:N`, `systemd:NAME`). Blocks to resolve a name.
///
/// # Errors
/// `InvalidInput` for an endpoint that is not a datagram socket; those of binding (the last
/// address's) or of taking an inherited socket.
pub(crate) fn bind(endpoint: &Endpoint) -> io::Result<UdpSocket> {
    match endpoint {
        Endpoint::Udp(_) | Endpoint::UdpName { .. } => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            for addr in endpoint.resolve()? {
                match UdpSocket::bind(addr) {
                    Ok(socket) => return Ok(socket),
                    Err(err) => last = err,
                }
            }
            Err(last)
        }
        Endpoint::Fd(_) | Endpoint::Systemd(_) => match inherited::take(endpoint)? {
            InheritedSocket::Udp(socket) => {
                socket.set_nonblocking(true)?;
                Ok(UdpSocket::from_std(socket))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a stream socket: Reactor::listen takes it",
            )),
        },
        Endpoint::Tcp(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a stream endpoint (a bare IP literal means TCP: write udp:HOST:PORT)",
        )),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a datagram endpoint (expected udp:HOST:PORT, fd:N or systemd:NAME)",
        )),
    }
}

impl Udp {
    pub(crate) fn new(slot: Slot, socket: UdpSocket, local_addr: SocketAddr) -> Udp {
        Udp {
            slot,
            socket,
            local_addr,
            handler: None,
            readable: false,
            writable: true,
            write_interest: false,
            queued: false,
            send_queue: VecDeque::new(),
            gso: gso::SocketGso::default(),
            closing: None,
            finished: false,
            close_reason: None,
            gro: Gro::default(),
            kernel_drops: KernelDrops::default(),
        }
    }
}

impl Core {
    /// Runs `f` with the socket's handler and a context for it; `None` if the socket is gone,
    /// or if the handler panicked (caught here: the handler is dropped, the socket closed and
    /// its queue discarded).
    pub(crate) fn with_datagram_handler<R>(
        &mut self,
        slot: Slot,
        f: impl FnOnce(&mut dyn DatagramHandler, &mut DatagramContext<'_>) -> R,
    ) -> Option<R> {
        let mut handler = self.entries.udp(slot)?.handler.take()?;
        let called = call_user(self.config().catch_panics, || {
            f(handler.as_mut(), &mut DatagramContext::new(self, slot))
        });
        match called {
            Ok(result) => {
                if let Some(udp) = self.entries.udp(slot) {
                    udp.handler = Some(handler);
                }
                Some(result)
            }
            Err(message) => {
                drop(handler); // never called again, not even `on_close`
                log::error!(
                    "{} handler panicked: {message}; the socket is closed",
                    UdpId(slot)
                );
                self.stats.handler_panics += 1;
                self.finish_udp(slot, CloseReason::HandlerPanicked(message));
                None
            }
        }
    }

    /// Registers a bound UDP socket and opens its handler.
    pub(crate) fn add_udp(
        &mut self,
        mut socket: UdpSocket,
        handler: Box<dyn DatagramHandler>,
    ) -> io::Result<SocketAddr> {
        let local_addr = socket.local_addr()?;
        let slot = self.entries.next_slot();
        // Readable only, and assumed writable: see `Udp::write_interest`. Sends from
        // `on_open` wait in the queue until the turn's next flush.
        self.entries
            .register(&mut socket, slot, mio::Interest::READABLE)?;
        let mut udp = Udp::new(slot, socket, local_addr);
        udp.handler = Some(handler);
        // Both are read from control messages, which only batches (`recvmmsg`) read.
        if self.recv_batch.in_batches() {
            kernel_drops::enable(&udp.socket);
            udp.gro = Gro::enable(&udp.socket);
        }
        self.entries.insert(slot, Entry::Udp(udp));
        log::info!("listening on udp:{local_addr}");
        self.with_datagram_handler(slot, |h, ctx| h.on_open(ctx));
        Ok(local_addr)
    }

    /// Dispatches one ready datagram socket: what waited for a writable edge leaves, then
    /// datagrams are received (each batch's replies leaving after it).
    pub(crate) fn drive_udp(&mut self, slot: Slot) {
        self.flush_udp(slot);
        self.receive_datagrams(slot);
        let Some(udp) = self.entries.udp(slot) else {
            return;
        };
        if let (Some(reason), true) = (udp.closing.clone(), udp.send_queue.is_empty()) {
            self.finish_udp(slot, reason);
        }
    }

    /// Receives datagrams in batches (`recvmmsg`, [`RecvBatch`]) and hands each to the
    /// handler, until the socket's queue is empty (`WouldBlock`, or a batch shorter than
    /// asked for), a close, or [`RECV_BUDGET`] datagrams (or calls: errors count too) this
    /// dispatch; then the socket goes to the back of the ready queue. A call asks for at most
    /// the budget's rest in messages; with GRO their datagrams may pass it, by at most a
    /// batch (32 messages of up to 64 datagrams).
    ///
    /// A short batch ends the reads without the trailing call that would only hear
    /// `WouldBlock`: on Linux a UDP socket raises readiness on every datagram queued
    /// (`sk_data_ready` wakes epoll, edge-triggered or not), so whatever arrives after the
    /// batch brings a new event. tokio reads the same way: a partial read clears readiness
    /// on epoll and kqueue (`tokio/src/io/poll_evented.rs`, tokio-rs/tokio#5866). A
    /// `recvfrom` (the fallback) asks for one, so it is never short.
    fn receive_datagrams(&mut self, slot: Slot) {
        let mut batch = std::mem::replace(&mut self.recv_batch, RecvBatch::new(false));
        let (mut delivered, mut calls) = (0, 0);
        while delivered < RECV_BUDGET && calls < RECV_BUDGET {
            let Some(udp) = self.entries.udp(slot) else {
                break;
            };
            if !udp.readable || udp.closing.is_some() {
                break;
            }
            calls += 1;
            match batch.receive(&udp.socket, &udp.gro, RECV_BUDGET - delivered) {
                Ok(()) => {
                    self.stats.datagram_receive_calls += 1;
                    if batch.was_short() {
                        udp.readable = false;
                    }
                    delivered += self.deliver_datagrams(slot, &batch);
                    // The replies to this batch leave now: the send queue need only hold
                    // those of one batch, not of the whole budget.
                    self.flush_udp(slot);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => udp.readable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                // An error about one datagram (an ICMP report for an earlier send): the
                // socket itself is fine.
                Err(err) => log::debug!("{} recv: {err}", UdpId(slot)),
            }
        }
        if matches!(self.entries.udp(slot), Some(u) if u.readable && u.closing.is_none()) {
            self.queue(slot);
        }
        self.recv_batch = batch;
    }

    /// Hands the batch's datagrams to the handler, one call each (those a message coalesced
    /// by GRO holds, in order, each with the message's sender), while the socket is open;
    /// returns how many it handed or skipped. (Those after a close are dropped, as those
    /// still in the kernel's buffer are.) Counts the kernel's drops the messages report.
    ///
    /// The queued replies leave whenever they fill a send batch (or the queue): a message
    /// coalesced by GRO holds up to 64 datagrams, a batch of 32 such messages 2,048, whose
    /// replies would otherwise overflow the queue before the batch's flush.
    fn deliver_datagrams(&mut self, slot: Slot, batch: &RecvBatch) -> usize {
        let full = self.config().max_queued_datagrams.min(recv_batch::SLOTS);
        let mut delivered = 0;
        for (i, message) in batch.messages().iter().enumerate() {
            self.count_kernel_drops(slot, message);
            delivered += message.segments.lost;
            let Some(from) = message.from else {
                continue; // never from a UDP socket; counted as lost
            };
            for range in message.segments.ranges() {
                let queue_full = match self.entries.udp(slot) {
                    Some(udp) if udp.closing.is_none() => udp.send_queue.len() >= full,
                    _ => return delivered,
                };
                if queue_full {
                    self.flush_udp(slot);
                }
                delivered += 1;
                self.deliver_datagram(slot, batch.datagram(i, range), from);
            }
        }
        delivered
    }

    /// Adds the drops `message` reports to the socket's and the reactor's counts, and those
    /// of its datagrams lost to truncation.
    fn count_kernel_drops(&mut self, slot: Slot, message: &recv_batch::Message) {
        if message.segments.lost > 0 {
            let lost = message.segments.lost;
            log::debug!(
                "{} recv: {lost} datagram(s) dropped (truncated, or a message not split)",
                UdpId(slot)
            );
            self.stats.datagrams_dropped += lost as u64;
        }
        if let (Some(count), Some(udp)) = (message.kernel_drops, self.entries.udp(slot)) {
            self.stats.datagram_receive_overflows += udp.kernel_drops.record(count);
        }
    }

    /// Hands one datagram to the handler.
    fn deliver_datagram(&mut self, slot: Slot, datagram: &[u8], from: SocketAddr) {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        self.trace_datagram(slot, datagram.len(), from, true);
        self.with_datagram_handler(slot, |h, ctx| h.on_datagram(ctx, datagram, from));
    }

    /// Sets a datagram handler's own timer.
    pub(crate) fn set_udp_timer(&mut self, slot: Slot, delay: Duration) -> TimerId {
        TimerId(
            self.timers
                .insert(self.now() + delay, TimerTask::UdpUser(slot)),
        )
    }

    /// Calls the handler's `on_timer`, unless the socket is closing or gone.
    pub(crate) fn fire_udp_timer(&mut self, slot: Slot, timer: TimerId) {
        if matches!(self.entries.udp(slot), Some(u) if u.closing.is_none()) {
            self.with_datagram_handler(slot, |h, ctx| h.on_timer(ctx, timer));
            self.queue(slot);
        }
    }

    /// Queues one datagram for a handler (else drops it, the queue being full); the queue
    /// leaves in batches at the end of the dispatch (`flush_gathered`), or after each
    /// received batch.
    pub(crate) fn udp_send(
        &mut self,
        slot: Slot,
        data: &[u8],
        to: SocketAddr,
    ) -> io::Result<SendOutcome> {
        let max_queued = self.config().max_queued_datagrams;
        let udp = self
            .entries
            .udp(slot)
            .filter(|udp| udp.closing.is_none() && !udp.finished)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket closed"))?;
        if udp.send_queue.len() >= max_queued {
            self.stats.datagrams_dropped += 1;
            return Ok(SendOutcome::Dropped);
        }
        udp.send_queue.push_back((data.to_vec(), to));
        if udp.send_queue.len() == 1 {
            self.queues.list_unflushed(slot);
        }
        Ok(SendOutcome::Queued)
    }

    /// Sends queued datagrams in batches while the socket takes them. A datagram the kernel
    /// refuses is dropped and counted; those after it still go.
    pub(crate) fn flush_udp(&mut self, slot: Slot) {
        // Borrow the entry and the counters separately: two parts of the core.
        let Some(udp) = self.entries.udp(slot) else {
            return;
        };
        let stats = &mut self.stats;
        let tracing = self.trace.is_on();
        let mut sent = Vec::new(); // (bytes, to), for trace records once the borrows end
        while udp.writable && !udp.send_queue.is_empty() {
            match self
                .send_batch
                .send(&udp.socket, &mut udp.gso, &udp.send_queue)
            {
                Ok(positions) => {
                    stats.datagram_send_calls += 1;
                    for (data, to) in take_positions(&mut udp.send_queue, &positions) {
                        stats.datagrams_out += 1;
                        stats.bytes_out += data.len() as u64;
                        if tracing {
                            sent.push((data.len(), to));
                        }
                    }
                }
                Err(failed) if failed.error.kind() == io::ErrorKind::WouldBlock => {
                    udp.writable = false;
                }
                Err(failed) => {
                    for (_, to) in take_positions(&mut udp.send_queue, &failed.dropped) {
                        let err = &failed.error;
                        log::debug!("{} send to {to}: {err} (dropped)", UdpId(slot));
                        stats.datagram_send_errors += 1;
                        stats.datagrams_dropped += 1;
                    }
                }
            }
        }
        let blocked = !udp.writable;
        if blocked != udp.write_interest {
            self.watch_writable(slot, blocked);
        }
        for (bytes, to) in sent {
            self.trace_datagram(slot, bytes, to, false);
        }
    }

    /// Registers the socket for writable readiness too (`on`), or for readable only. A
    /// modified registration reports readiness the socket already has (`EPOLL_CTL_MOD`
    /// polls it), so a buffer freed between the `WouldBlock` and this call is not missed.
    fn watch_writable(&mut self, slot: Slot, on: bool) {
        let interest = if on {
            mio::Interest::READABLE | mio::Interest::WRITABLE
        } else {
            mio::Interest::READABLE
        };
        match self.entries.reregister_udp(slot, interest) {
            Ok(()) => {
                if let Some(udp) = self.entries.udp(slot) {
                    udp.write_interest = on;
                }
            }
            // `write_interest` unchanged: the next flush tries the registration again.
            Err(err) => log::warn!("{} reregister: {err}", UdpId(slot)),
        }
    }

    /// A `Record::Datagram` of `bytes` from (`incoming`) or to `peer`, if tracing.
    fn trace_datagram(&mut self, slot: Slot, bytes: usize, peer: SocketAddr, incoming: bool) {
        let socket = UdpId(slot);
        trace_record!(
            self,
            Record::Datagram {
                socket,
                bytes,
                peer,
                incoming
            }
        );
    }

    /// Closes once the send queue is flushed.
    pub(crate) fn udp_close(&mut self, slot: Slot, reason: CloseReason) {
        if let Some(udp) = self.entries.udp(slot) {
            udp.closing.get_or_insert(reason);
            self.queue(slot);
        }
    }

    /// Ends the socket now; it is removed at the end of the turn.
    pub(crate) fn finish_udp(&mut self, slot: Slot, reason: CloseReason) {
        let Some(udp) = self.entries.udp(slot) else {
            return;
        };
        if udp.finished {
            return;
        }
        udp.finished = true;
        let dropped = udp.send_queue.len() as u64;
        udp.send_queue.clear();
        udp.close_reason = Some(reason);
        self.stats.datagrams_dropped += dropped;
        self.queues.list_closed(slot);
    }

    /// `on_close`, deregister, drop.
    pub(crate) fn remove_udp(&mut self, slot: Slot) {
        let Some(udp) = self.entries.udp(slot) else {
            return;
        };
        let reason = udp.close_reason.clone().unwrap_or(CloseReason::Local);
        self.with_datagram_handler(slot, |h, ctx| h.on_close(ctx, &reason));
        if let Some(mut udp) = self.entries.take_udp(slot) {
            if let Err(err) = self.entries.deregister(&mut udp.socket) {
                log::debug!("{} deregister: {err}", UdpId(slot));
            }
            log::debug!("udp {} closed: {reason}", udp.local_addr);
        }
    }
}

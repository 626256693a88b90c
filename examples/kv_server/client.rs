//! One client connection: requests in, replies out, in order.
//!
//! Each `on_data` call answers the complete requests in its input (pipelining) and gathers
//! their replies into one write, consuming exactly the bytes of the requests it answered.
//! It stops early, leaving the rest in the reactor's input, when the output it has made
//! passes the high water mark (reading then pauses, and the rest is offered again after
//! `on_drain`), and when a reply is a large value: that value is sent in pieces as the
//! client reads (`on_drain`), straight from the stored bytes, so a 64 MiB `GET` to a slow
//! reader holds one piece of output at a time, and the requests pipelined behind it wait
//! their turn. A protocol error is answered and closes the connection, as Redis does.
//!
//! Per-connection policies: a client that subscribes gets Redis's pub/sub output limits
//! (hard cap and soft limit) and no idle timeout; when it has unsubscribed from everything
//! it is a normal client again. What each client holds (its unconsumed input, its output,
//! a subscriber's undelivered messages) is counted against `--maxmemory-clients`, and past
//! it the biggest clients are evicted (`eviction.rs`).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;
use mio_reactor::{CloseReason, ConnId, Context, Handler, OutputLimits};

use crate::commands::{self, After, Call};
use crate::pubsub::{Deliveries, Subscriptions};
use crate::resp::{reply, Parsed, Request};
use crate::server::Server;

/// Replies gather in the connection's own buffer up to about this many bytes, then go to
/// the reactor's output in one write.
const GATHER_LIMIT: usize = 64 * 1024;

/// A large value being sent: the shared bytes and how many of them are written.
#[derive(Debug)]
struct Streaming {
    value: Bytes,
    sent: usize,
}

/// What Redis replies to a client over `maxclients`, before closing it.
const MAX_CLIENTS_REACHED: &[u8] = b"-ERR max number of clients reached\r\n";

/// One client's state between callbacks.
#[derive(Debug)]
pub struct Client {
    server: Rc<RefCell<Server>>,
    request: Request,
    /// Replies gathered during one `on_data`; empty between calls.
    out: Vec<u8>,
    subscriptions: Subscriptions,
    streaming: Option<Streaming>,
    /// Counted among the server's clients (not refused by `maxclients`).
    admitted: bool,
    /// Closing: nothing more is read.
    closing: bool,
    /// The limits of a normal client (the listen's), restored after pub/sub.
    normal_limits: Option<OutputLimits>,
}

impl Client {
    pub fn new(server: Rc<RefCell<Server>>) -> Client {
        Client {
            server,
            request: Request::default(),
            out: Vec::new(),
            subscriptions: Subscriptions::default(),
            streaming: None,
            admitted: false,
            closing: false,
            normal_limits: None,
        }
    }

    /// Parses and runs the request at the front of `input` (already parsed into
    /// `self.request`): the lookup, arity and pub/sub context checks of Redis's
    /// `processCommand`, then the command.
    fn execute(&mut self, id: ConnId, input: &[u8], now: &mut Option<i64>) -> After {
        let args = self.request.args(input);
        let command = match commands::lookup(&args) {
            Ok(command) => command,
            Err(text) => {
                reply::error(&mut self.out, &text);
                return After::Continue;
            }
        };
        if !command.arity_fits(args.len()) {
            reply::error(&mut self.out, &commands::wrong_arity(command));
            return After::Continue;
        }
        if self.subscriptions.count() > 0 && !command.in_pubsub {
            reply::error(&mut self.out, &commands::not_in_pubsub(command));
            return After::Continue;
        }
        let mut server = self.server.borrow_mut();
        let mut call = Call {
            args,
            server: &mut server,
            id,
            subscriptions: &mut self.subscriptions,
            out: &mut self.out,
            now,
        };
        (command.run)(&mut call)
    }

    /// Sends what was gathered.
    fn flush(&mut self, ctx: &mut Context<'_>) {
        if !self.out.is_empty() {
            ctx.write(&self.out);
            self.out.clear();
        }
        if self.out.capacity() > GATHER_LIMIT * 4 {
            self.out = Vec::new(); // after a large reply: do not keep its buffer
        }
    }

    /// Writes the next pieces of the value being streamed while the output is at or below
    /// the high water mark, so that the last piece passes it and `on_drain` follows; ends
    /// the reply when all is written.
    fn pump(&mut self, ctx: &mut Context<'_>) {
        let Some(streaming) = &mut self.streaming else {
            return;
        };
        let high_water = ctx.output_limits().get_high_water();
        while streaming.sent < streaming.value.len() && ctx.buffered_output() <= high_water {
            let end = (streaming.sent + GATHER_LIMIT).min(streaming.value.len());
            ctx.write(&streaming.value[streaming.sent..end]);
            streaming.sent = end;
        }
        if streaming.sent == streaming.value.len() {
            ctx.write(b"\r\n");
            self.streaming = None;
        }
    }

    /// Writes a published message to each receiver, and counts what each then holds
    /// against `maxmemory-clients`. A receiver whose output is past its limit is closed by
    /// the reactor; the publisher is not affected.
    fn deliver(&self, ctx: &mut Context<'_>, deliveries: &Deliveries) {
        let mut server = self.server.borrow_mut();
        for &(id, start, end) in &deliveries.targets {
            if let Err(err) = ctx.write_to(id, &deliveries.frames[start..end]) {
                log::debug!("{id}: message not delivered: {err}");
            }
            let held = ctx.buffered_output_of(id).unwrap_or(0);
            server.memory.set_output(id, held);
        }
    }

    /// Counts what this client holds now: `kept` bytes of input it has not consumed, its
    /// own reply buffer, and its output waiting for the kernel.
    fn count_memory(&self, ctx: &Context<'_>, kept: usize) {
        let mut server = self.server.borrow_mut();
        server.memory.set_own(ctx.id(), kept + self.out.capacity());
        server.memory.set_output(ctx.id(), ctx.buffered_output());
    }

    /// Evicts the clients holding the most memory if all together hold
    /// `maxmemory-clients` or more (`eviction.rs`); returns whether this one was evicted.
    fn evict_clients(&mut self, ctx: &mut Context<'_>) -> bool {
        let victims = self
            .server
            .borrow_mut()
            .memory
            .evict_if_over(|id| ctx.buffered_output_of(id));
        let mut evicted = false;
        for id in victims {
            // Out of pub/sub at once, as Redis frees an evicted client: not counted by a
            // PUBLISH handled before its close completes.
            self.server.borrow_mut().pubsub.forget_everywhere(id);
            if id == ctx.id() {
                evicted = true;
                self.closing = true;
                ctx.abort();
            } else {
                ctx.abort_conn(id);
            }
        }
        evicted
    }

    /// A client enters pub/sub with its first subscription and leaves it with its last
    /// unsubscription: its output limits and idle timeout follow (Redis's pub/sub client
    /// class, and `timeout` never closes subscribers).
    fn switch_class(&mut self, ctx: &mut Context<'_>, was_subscribed: bool) {
        let subscribed = self.subscriptions.count() > 0;
        if subscribed == was_subscribed {
            return;
        }
        let settings = self.server.borrow().settings.clone();
        let limits = if subscribed {
            let normal = ctx.output_limits();
            self.normal_limits = Some(normal);
            ctx.set_idle_timeout(None);
            settings.pubsub_limits(normal)
        } else {
            ctx.set_idle_timeout(settings.timeout);
            self.normal_limits
                .take()
                .unwrap_or_else(|| ctx.output_limits())
        };
        if let Err(err) = ctx.set_output_limits(limits) {
            log::warn!("{}: output limits not changed: {err}", ctx.id());
        }
    }

    /// Replies to a protocol error and closes, as Redis does after one.
    fn refuse(&mut self, ctx: &mut Context<'_>, error: crate::resp::ProtocolError) {
        log::debug!(
            "{} from {}: protocol error: {error}",
            ctx.id(),
            ctx.peer_addr()
        );
        error.write_reply(&mut self.out);
        self.close_after_reply(
            ctx,
            Some(CloseReason::Protocol(format!("Protocol error: {error}"))),
        );
    }

    /// Sends what is gathered and closes once it is written (QUIT, a protocol error). The
    /// subscriptions end now, not when the close completes: Redis frees such a client as
    /// soon as its reply is written, so a PUBLISH meanwhile no longer counts it. Its
    /// `--maxclients` slot is free at once too, as Redis's is, not when the peer has
    /// closed its side (up to the shutdown timeout later).
    fn close_after_reply(&mut self, ctx: &mut Context<'_>, reason: Option<CloseReason>) {
        self.flush(ctx);
        self.closing = true;
        let subscriptions = std::mem::take(&mut self.subscriptions);
        let mut server = self.server.borrow_mut();
        server.pubsub.forget(ctx.id(), &subscriptions);
        if std::mem::take(&mut self.admitted) {
            server.clients -= 1;
        }
        drop(server);
        match reason {
            Some(reason) => ctx.close_with(reason),
            None => ctx.close(),
        }
    }

    /// Answers the complete requests at the front of `data`; returns the bytes consumed
    /// (all of them once the connection is closing).
    fn answer(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if self.streaming.is_some() {
            return 0; // behind a large reply: offered again after on_drain
        }
        let max_bulk = self.server.borrow().settings.max_bulk;
        let mut now = None;
        let mut consumed = 0;
        loop {
            let input = &data[consumed..];
            let length = match self.request.parse(input, max_bulk) {
                Parsed::Incomplete => break,
                Parsed::Nothing(length) => {
                    consumed += length;
                    continue;
                }
                Parsed::Error(error) => {
                    self.refuse(ctx, error);
                    return data.len();
                }
                Parsed::Command(length) => length,
            };
            let was_subscribed = self.subscriptions.count() > 0;
            let after = self.execute(ctx.id(), input, &mut now);
            consumed += length;
            match after {
                After::Continue => {}
                After::Close => {
                    self.close_after_reply(ctx, None);
                    return data.len();
                }
                After::Stream(value) => {
                    self.flush(ctx);
                    self.streaming = Some(Streaming { value, sent: 0 });
                    self.pump(ctx);
                    if self.streaming.is_some() {
                        return consumed;
                    }
                }
                After::Deliver(deliveries) => {
                    self.deliver(ctx, &deliveries);
                    // The published request is consumed: it is no longer this client's to
                    // hold when the biggest clients are picked.
                    self.count_memory(ctx, data.len() - consumed);
                    if self.evict_clients(ctx) {
                        return data.len();
                    }
                }
            }
            self.switch_class(ctx, was_subscribed);
            if self.out.len() >= GATHER_LIMIT {
                self.flush(ctx);
                if ctx.buffered_output() > ctx.output_limits().get_high_water() {
                    return consumed; // reading pauses; the rest comes back after on_drain
                }
            }
        }
        self.flush(ctx);
        consumed
    }
}

impl Handler for Client {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let mut server = self.server.borrow_mut();
        if server.clients >= server.settings.max_clients {
            ctx.write(MAX_CLIENTS_REACHED);
            self.closing = true;
            ctx.close();
            return;
        }
        server.clients += 1;
        server.memory.open(ctx.id());
        self.admitted = true;
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        if self.closing {
            return data.len();
        }
        let consumed = self.answer(ctx, data);
        if !self.closing {
            self.count_memory(ctx, data.len() - consumed);
            if self.evict_clients(ctx) {
                return data.len();
            }
        }
        consumed
    }

    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        self.pump(ctx);
        let held = ctx.buffered_output();
        self.server.borrow_mut().memory.set_output(ctx.id(), held);
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        log::debug!("{}: closed: {reason}", ctx.id());
        let mut server = self.server.borrow_mut();
        server.memory.forget(ctx.id());
        if self.admitted {
            server.clients -= 1;
            server.pubsub.forget(ctx.id(), &self.subscriptions);
        }
    }
}

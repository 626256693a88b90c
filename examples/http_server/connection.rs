//! The handler of one HTTP/1.x connection: requests in, responses out, in order.
//!
//! Each `on_data` call answers every complete request in its input (pipelining) and writes
//! all the responses with one `ctx.write`, so that 16 pipelined requests cost one `send`, not
//! 16. It consumes exactly the bytes of the requests it answered: the start of the next
//! request stays in the reactor's input buffer and comes back, with more bytes, in the next
//! call. A request that is not complete within the request timeout gets a 408 (slowloris);
//! a request the server refuses gets its status and a close, and costs only its connection.

use std::rc::Rc;
use std::time::Duration;

use mio_reactor::{CloseReason, Context, Handler, PeerAddr, TimerId};

use crate::date::DateCache;
use crate::request::{self, Limits, Parsed, Request};
use crate::response::{self, Persistence, Response, Status};
use crate::routes::{self, Answer};
use crate::stats_board::StatsBoard;

/// What all connections of one reactor thread share.
#[derive(Debug)]
pub struct Shared {
    pub date: DateCache,
    pub board: StatsBoard,
    pub limits: Limits,
    /// How long a request may take to arrive, from its first byte (the 408 deadline).
    pub request_timeout: Duration,
}

/// Responses pile up in the output buffer until this many bytes, then go out in one write:
/// large enough that pipelined small responses share a system call, small enough that a
/// flood of pipelined requests never holds much.
const GATHER_LIMIT: usize = 64 * 1024;

/// During an upgrade's drain, how long an idle keep-alive connection stays open for its next
/// request (answered with `Connection: close`) before it is closed. Closing it at once
/// races a request already on its way: the client (or a load balancer reusing the
/// connection) would see the connection close under it, with no response. Envoy's drain
/// does the same: `Connection: close` on responses, idle connections closed after a while.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// One connection's state between callbacks.
#[derive(Debug)]
pub struct HttpConnection {
    shared: Rc<Shared>,
    /// Responses gathered during one `on_data`; empty between calls, capacity kept.
    out: Vec<u8>,
    /// The timer for the request being received, if one is incomplete.
    deadline: Option<TimerId>,
    /// `100 Continue` was sent for the request being received.
    continue_sent: bool,
    /// A request is in progress: partly received, or complete but held back by
    /// backpressure. A shutdown waits for it to be answered.
    in_progress: bool,
    /// The reactor is shutting down: the next response says `Connection: close`, and the
    /// connection closes after it (or at once, if no request is in progress).
    closing: bool,
    /// During an upgrade's drain, the timer that closes the connection if no request came
    /// ([`DRAIN_GRACE`]).
    drain_grace: Option<TimerId>,
}

impl HttpConnection {
    pub fn new(shared: Rc<Shared>) -> HttpConnection {
        HttpConnection {
            shared,
            out: Vec::new(),
            deadline: None,
            continue_sent: false,
            in_progress: false,
            closing: false,
            drain_grace: None,
        }
    }

    /// Appends the response to `request`; returns whether the connection stays open.
    fn respond(&mut self, request: &Request<'_>, peer: &PeerAddr, date: &[u8]) -> bool {
        let answer = routes::answer(request, peer, &self.shared.board);
        let keep_alive = request.keep_alive && !self.closing;
        let persistence = match (keep_alive, request.is_http10) {
            (false, _) => Persistence::Close,
            (true, false) => Persistence::KeepAlive,
            (true, true) => Persistence::KeepAliveHttp10,
        };
        self.append(
            &answer,
            request.method == request::Method::Head,
            persistence,
            date,
        );
        keep_alive
    }

    fn append(
        &mut self,
        answer: &Answer<'_>,
        head_only: bool,
        persistence: Persistence,
        date: &[u8],
    ) {
        Response {
            status: answer.status,
            content_type: answer.content_type,
            body: &answer.body,
            head_only,
            persistence,
            extra_header: answer.extra_header,
        }
        .write_to(&mut self.out, date);
    }

    /// Answers a refused request with `status` and closes: after a request that cannot be
    /// framed, where the next one starts is unknown.
    fn refuse(&mut self, ctx: &mut Context<'_>, status: Status, why: String) {
        log::warn!("{} from {}: {status:?}: {why}", ctx.id(), ctx.peer_addr());
        let date = self.shared.date.at(ctx.now());
        let answer = Answer::text(status, format!("{why}\n"));
        self.append(&answer, false, Persistence::Close, &date);
        self.flush(ctx);
        self.cancel_deadline(ctx);
        ctx.close_with(CloseReason::Protocol(why));
    }

    /// Sends what was gathered, in one write.
    fn flush(&mut self, ctx: &mut Context<'_>) {
        if !self.out.is_empty() {
            ctx.write(&self.out);
            self.out.clear();
        }
        if self.out.capacity() > GATHER_LIMIT * 2 {
            self.out = Vec::new(); // after a large echo: do not keep its buffer
        }
    }

    fn cancel_deadline(&mut self, ctx: &mut Context<'_>) {
        if let Some(timer) = self.deadline.take() {
            ctx.cancel_timer(timer);
        }
    }
}

impl Handler for HttpConnection {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let date = self.shared.date.at(ctx.now());
        let limits = self.shared.limits;
        let mut consumed = 0;
        let mut answered = 0;
        let mut held_back = false;
        while consumed < data.len() {
            match request::parse(&data[consumed..], limits) {
                Parsed::Complete(request) => {
                    consumed += request.len;
                    answered += 1;
                    self.continue_sent = false;
                    if !self.respond(&request, ctx.peer_addr(), &date) {
                        // Connection: close (asked, or ours while shutting down; or
                        // HTTP/1.0): what follows is discarded.
                        self.flush(ctx);
                        self.cancel_deadline(ctx);
                        ctx.close();
                        return data.len();
                    }
                    if self.out.len() >= GATHER_LIMIT {
                        self.flush(ctx);
                        // Backpressure: the peer is not reading its responses. Stop
                        // answering; the reactor has paused reading, keeps the rest of the
                        // input, and offers it again once the output drains.
                        if ctx.buffered_output() > ctx.config().get_high_water() {
                            held_back = true;
                            break;
                        }
                    }
                }
                Parsed::Partial { wants_continue } => {
                    if wants_continue && !self.continue_sent {
                        response::write_continue(&mut self.out);
                        self.continue_sent = true;
                    }
                    break;
                }
                Parsed::Refused { status, why } => {
                    self.refuse(ctx, status, why);
                    return data.len();
                }
            }
        }
        self.flush(ctx);
        // The deadline runs from the first byte of the request being received; requests
        // held back by backpressure are complete, and the idle timeout covers a peer that
        // never reads again.
        let incomplete = consumed < data.len() && !held_back;
        if !incomplete || answered > 0 {
            self.cancel_deadline(ctx);
        }
        if incomplete && self.deadline.is_none() {
            self.deadline = Some(ctx.set_timer(self.shared.request_timeout));
        }
        self.in_progress = consumed < data.len();
        if self.closing && !self.in_progress {
            // The response in progress is out: the clean point a shutdown waited for.
            ctx.close_with(CloseReason::Shutdown);
        }
        consumed
    }

    /// A shutdown (SIGTERM, or the drain after a SIGUSR2 upgrade) closes between requests,
    /// so that nothing a client sent before the shutdown goes unanswered (the deadline
    /// permitting): after the response in progress, which says `Connection: close`. An idle
    /// connection closes at once on SIGTERM; during an upgrade's drain it waits
    /// [`DRAIN_GRACE`] for a request that may already be on its way, answers it with
    /// `Connection: close`, and closes (RFC 9112, section 9.6).
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        self.closing = true;
        if self.in_progress {
            return;
        }
        if ctx.is_upgrading() {
            self.drain_grace = Some(ctx.set_timer(DRAIN_GRACE));
        } else {
            ctx.close_with(CloseReason::Shutdown);
        }
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        if self.drain_grace == Some(timer) {
            self.drain_grace = None;
            // A request begun in the meantime is answered first (its deadline permitting).
            if !self.in_progress {
                ctx.close_with(CloseReason::Shutdown);
            }
            return;
        }
        if self.deadline == Some(timer) {
            self.deadline = None;
            let timeout = self.shared.request_timeout;
            self.refuse(
                ctx,
                Status::RequestTimeout,
                format!("request not complete within {timeout:?}"),
            );
        }
    }
}

//! What you write: a [`Handler`] per connection and a [`Factory`] per listener.

use std::any::Any;

use crate::close_reason::CloseReason;
use crate::context::Context;
use crate::id::TimerId;
use crate::net::PeerAddr;

/// Your protocol, one instance per connection.
///
/// # Lifecycle
/// ```text
/// on_open  (data | drain | timer | message)*  [eof (data? ...)]  [shutdown]  on_close
/// ```
/// - [`on_open`](Handler::on_open) once the connection is established (accepted, or an
///   outbound connect completed). A failed connect skips straight to `on_close`.
/// - [`on_data`](Handler::on_data) with **all unconsumed input**; return how many bytes you
///   consumed. If you consumed some, the rest is offered again at once (so handling one
///   message per call is fine); otherwise it waits, kept, for more bytes, or for reading to
///   resume after a pause (after `on_drain`). Framing needs no copy.
/// - [`on_eof`](Handler::on_eof) when the peer shuts down its write side. The connection is
///   now half-closed: you may still write (the default closes gracefully, after your output).
/// - [`on_drain`](Handler::on_drain) when output that had passed the high water mark has
///   fallen to the low one: reading has resumed.
/// - [`on_timer`](Handler::on_timer) for each timer set with
///   [`Context::set_timer`](crate::Context::set_timer).
/// - [`on_message`](Handler::on_message) for each message another thread sent it with
///   [`LoopHandle::send_to`](crate::LoopHandle::send_to).
/// - [`on_shutdown`](Handler::on_shutdown) once, when the reactor is asked to shut down.
/// - [`on_close`](Handler::on_close) **exactly once**, with the reason. Nothing follows it.
///
/// After you call [`Context::close`](crate::Context::close) or
/// [`Context::abort`](crate::Context::abort) the handler receives only `on_close`.
///
/// # Examples
/// An echo handler:
/// ```
/// use mio_reactor::{Context, Handler};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         ctx.write(data);
///         data.len()
///     }
/// }
/// # let _ = Echo;
/// ```
///
/// The lifecycle, seen from a handler that notes each callback. The peer sends `hi` and its
/// FIN; the handler still answers after the EOF, then closes.
/// ```
/// use std::cell::RefCell;
/// use std::io::{Read, Write};
/// use std::net::Shutdown;
/// use std::rc::Rc;
/// use std::time::Duration;
/// use mio_reactor::{CloseReason, Context, Handler, ListenOptions, Reactor};
///
/// struct Noting {
///     notes: Rc<RefCell<Vec<String>>>,
/// }
///
/// impl Noting {
///     fn note(&self, what: String) {
///         self.notes.borrow_mut().push(what);
///     }
/// }
///
/// impl Handler for Noting {
///     fn on_open(&mut self, _: &mut Context<'_>) {
///         self.note("open".into());
///     }
///
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         self.note(format!("data {:?}", String::from_utf8_lossy(data)));
///         ctx.write(data);
///         data.len()
///     }
///
///     fn on_eof(&mut self, ctx: &mut Context<'_>) {
///         self.note("eof".into());
///         ctx.write(b"!"); // only the peer's half is closed
///         ctx.close();
///     }
///
///     fn on_close(&mut self, _: &mut Context<'_>, reason: &CloseReason) {
///         self.note(format!("close: {reason}"));
///     }
/// }
///
/// let notes = Rc::new(RefCell::new(Vec::new()));
/// let sink = notes.clone();
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_| {
///     Some(Noting { notes: sink.clone() })
/// })?.local_addr()?;
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut stream = std::net::TcpStream::connect(addr)?;
/// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
///     stream.write_all(b"hi")?;
///     stream.shutdown(Shutdown::Write)?; // our FIN
///     let mut reply = String::new();
///     stream.read_to_string(&mut reply)?;
///     Ok(reply)
/// });
/// for _ in 0..1000 {
///     if reactor.stats().closed.total() == 1 {
///         break;
///     }
///     reactor.turn(Some(Duration::from_millis(10)))?;
/// }
/// assert_eq!(client.join().unwrap()?, "hi!");
/// assert_eq!(*notes.borrow(), ["open", "data \"hi\"", "eof", "close: peer closed"]);
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Handler: 'static {
    /// The connection is established.
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// `data` is all input not yet consumed. Return how many bytes from its front you
    /// consumed (values above `data.len()` count as `data.len()`).
    ///
    /// While you consume something and input is left, `on_data` is called again at once with
    /// the rest: a handler may take one message per call. That stops when you return 0, or
    /// when reading is paused (your output passed the high water mark, or you called
    /// [`Context::pause_reading`](crate::Context::pause_reading)), or when the connection
    /// is closing. What is left is kept, up to
    /// [`Config::max_input`](crate::Config::max_input), and **offered again**, from its
    /// first unconsumed byte:
    /// - **when more bytes arrive**, with them appended. After you returned 0 ("not
    ///   enough for a message") this is the only way: no new bytes, no new call.
    /// - **when reading resumes**, with or without new bytes: right after
    ///   [`on_drain`](Handler::on_drain) (output that had passed the high water mark fell to
    ///   the low one), or after [`Context::resume_reading`](crate::Context::resume_reading).
    ///   So requests a client pipelined behind a large reply are answered once the reply
    ///   has drained, even if the client sends nothing more.
    ///
    /// # Examples
    /// Pipelining: a client sends many requests at once, each answered with 256 KiB. Each
    /// call takes one request; when a reply passes the high water mark (64 KiB by default)
    /// the calls stop, the rest of the requests wait in the connection's input, and they are
    /// offered again after `on_drain`, as the client reads. Memory stays near the high water
    /// mark plus one reply, however deep the client pipelines.
    /// ```
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
    ///
    /// const REPLY: usize = 256 * 1024;
    ///
    /// struct Big;
    /// impl Handler for Big {
    ///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
    ///         let Some(end) = data.iter().position(|&b| b == b'\n') else {
    ///             return 0; // half a request: offered again with the next bytes
    ///         };
    ///         ctx.write(&vec![b'x'; REPLY]); // may pause reading: no more calls until on_drain
    ///         end + 1 // one request per call
    ///     }
    ///     fn on_drain(&mut self, _: &mut Context<'_>) {
    ///         // Nothing to do: the loop offers the waiting requests again right after this.
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Big))?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     stream.write_all(&b"get\n".repeat(40))?; // 40 requests, one write, nothing after
    ///     let mut replies = vec![0; 40 * REPLY];
    ///     stream.read_exact(&mut replies)?; // 10 MiB: far more than the socket buffers hold
    ///     Ok(replies.len())
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, 40 * REPLY);
    /// // Reading paused at least once, and every request was still answered.
    /// assert!(reactor.stats().read_pauses >= 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize;

    /// The peer will send nothing more. The default closes gracefully: output already written
    /// is still delivered. Override it to keep writing on a half-closed connection.
    ///
    /// Not called after [`Context::shutdown_write`](crate::Context::shutdown_write): with both
    /// sides finished, the peer's EOF completes the close and `on_close` follows.
    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        ctx.close();
    }

    /// Output fell back to the low water mark after passing the high one; reading resumed.
    ///
    /// # Notes
    /// Only output that went *above* [`Config::high_water`](crate::Config::high_water) is
    /// followed by `on_drain`; output that stops at or below it never is.
    ///
    /// # Examples
    /// A producer that sends 8 MiB to a slow reader without holding it all in memory: it
    /// writes while the output is at or below the high water mark, so that the last write
    /// passes it, and goes on in `on_drain`. (The kernel takes the first few MiB itself.)
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Producer {
    ///     left: usize,
    /// }
    ///
    /// impl Producer {
    ///     fn produce(&mut self, ctx: &mut Context<'_>) {
    ///         let chunk = [b'x'; 8 * 1024];
    ///         while self.left > 0 && ctx.buffered_output() <= ctx.config().get_high_water() {
    ///             let n = self.left.min(chunk.len());
    ///             ctx.write(&chunk[..n]);
    ///             self.left -= n;
    ///         }
    ///         if self.left == 0 {
    ///             ctx.close(); // after the output is flushed
    ///         }
    ///     }
    /// }
    ///
    /// impl Handler for Producer {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         self.produce(ctx);
    ///     }
    ///
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    ///
    ///     fn on_drain(&mut self, ctx: &mut Context<'_>) {
    ///         self.produce(ctx);
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| {
    ///     Some(Producer { left: 8 << 20 })
    /// })?.local_addr()?;
    /// let client = std::thread::spawn(move || -> std::io::Result<usize> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     std::thread::sleep(Duration::from_millis(50)); // slow to start reading
    ///     let mut received = Vec::new();
    ///     stream.read_to_end(&mut received)?;
    ///     Ok(received.len())
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, 8 << 20);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        let _ = ctx;
    }

    /// A timer set with [`Context::set_timer`](crate::Context::set_timer) fired.
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        let _ = (ctx, timer);
    }

    /// The reactor is shutting down. The default closes gracefully with
    /// [`CloseReason::Shutdown`]; a handler may instead finish its current exchange first.
    /// Connections still open at the shutdown deadline are aborted.
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        ctx.close_with(CloseReason::Shutdown);
    }

    /// A message sent to this connection with [`LoopHandle::send_to`](crate::LoopHandle::send_to),
    /// typically a worker thread's result; downcast it with `message.downcast::<T>()`.
    ///
    /// Delivered only while the connection is open (after `on_open`, before a close):
    /// a message for a connection that has closed is dropped and counted in
    /// [`Stats::posts_missed`](crate::Stats::posts_missed). The default drops the message.
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Box<dyn Any + Send>) {
        log::debug!("{}: message dropped (no on_message)", ctx.id());
        drop(message);
    }

    /// The connection is closed; called exactly once. `ctx` can still reach other connections
    /// ([`Context::write_to`](crate::Context::write_to)) but no longer this one.
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let _ = (ctx, reason);
    }
}

/// A boxed handler is a handler, so one factory can choose among handler types per peer:
/// `|_| -> Option<Box<dyn Handler>> { ... }`.
impl<H: Handler + ?Sized> Handler for Box<H> {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        (**self).on_open(ctx)
    }
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        (**self).on_data(ctx, data)
    }
    fn on_eof(&mut self, ctx: &mut Context<'_>) {
        (**self).on_eof(ctx)
    }
    fn on_drain(&mut self, ctx: &mut Context<'_>) {
        (**self).on_drain(ctx)
    }
    fn on_timer(&mut self, ctx: &mut Context<'_>, timer: TimerId) {
        (**self).on_timer(ctx, timer)
    }
    fn on_shutdown(&mut self, ctx: &mut Context<'_>) {
        (**self).on_shutdown(ctx)
    }
    fn on_message(&mut self, ctx: &mut Context<'_>, message: Box<dyn Any + Send>) {
        (**self).on_message(ctx, message)
    }
    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        (**self).on_close(ctx, reason)
    }
}

/// Makes a [`Handler`] for each connection a listener accepts; shared state lives here.
///
/// Any `FnMut(&PeerAddr) -> Option<H>` closure is a factory, and that is what
/// [`Reactor::listen`](crate::Reactor::listen) and its siblings take: write `|_| Some(Echo)`
/// or `|peer| ...`, no type annotation needed. Returning `None` refuses the peer: the
/// connection is closed at once and counted in [`Stats::refused`](crate::Stats).
///
/// A type of your own that implements `Factory` is passed through a closure,
/// `move |peer| factory.new_handler(peer)` (a boxed handler is a handler). The listen methods
/// cannot take it directly: Rust infers a closure that accepts a `&PeerAddr` of any lifetime
/// only when the parameter it is passed to is bounded by `FnMut` itself, which no struct
/// can implement on stable Rust.
///
/// # Examples
/// ```
/// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
///
/// struct Discard;
/// impl Handler for Discard {
///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// // Serves everyone.
/// reactor.listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Discard))?;
/// // Refuses everyone but loopback peers.
/// reactor.listen("127.0.0.1:0", ListenOptions::default(), |peer| match peer.tcp() {
///     Some(addr) if addr.ip().is_loopback() => Some(Discard),
///     _ => None,
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Factory: 'static {
    /// A handler for a new connection from `peer`, or `None` to refuse it.
    fn new_handler(&mut self, peer: &PeerAddr) -> Option<Box<dyn Handler>>;
}

impl<F, H> Factory for F
where
    F: FnMut(&PeerAddr) -> Option<H> + 'static,
    H: Handler,
{
    fn new_handler(&mut self, peer: &PeerAddr) -> Option<Box<dyn Handler>> {
        self(peer).map(|handler| Box::new(handler) as Box<dyn Handler>)
    }
}

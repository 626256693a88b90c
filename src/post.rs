//! Talking to the loop from other threads: a [`LoopHandle`] posts work and messages into a
//! bounded queue that the loop drains at one point of each turn, right after `poll`.
//!
//! Why a `Mutex<VecDeque>` and not a channel: three things must be decided atomically with
//! the push: whether the queue is full, whether the reactor has begun shutting down, and
//! (for the loop) whether the queue is empty when it declares itself finished. A channel's
//! `try_send` answers the first, but "shut down" would be a second flag checked apart from
//! the push, and an item pushed between the check and the loop's last drain would be neither
//! run nor handed back. Under one lock, every item is either run or returned. The lock is
//! held for a push or for taking one turn's batch, never while user code runs, so contention
//! is a few hundred nanoseconds at worst.
//!
//! Wake-ups coalesce: the first post after the loop took its batch sets `wake_pending` and
//! calls [`mio::Waker::wake`] (one `eventfd` write); later posts see the flag and skip the
//! syscall. The loop clears the flag just before it takes the next batch, so a post that
//! misses that batch always wakes the loop again. Netty's `wakenUp` flag is the same idea.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use mio::Waker;

use crate::connect::{IntoConnectTarget, Lookup};
use crate::context::WriteError;
use crate::core::Core;
use crate::handler::Handler;
use crate::id::{ConnId, LoopTimerId, TimerId};
use crate::loop_timers::Every;
use crate::options::ConnectOptions;
use crate::panics::call_user;
use crate::state::State;

/// Work posted with [`LoopHandle::post`]: runs once, on the loop's thread.
type Work = Box<dyn FnOnce(&mut LoopContext<'_>) + Send>;

/// What the queue holds.
enum Posted {
    /// A closure to run with a [`LoopContext`].
    Work(Work),
    /// A message for one connection's [`Handler::on_message`].
    Message(ConnId, Box<dyn Any + Send>),
}

/// Why [`LoopHandle::post`] or [`LoopHandle::send_to`] did not take an item. Either way the
/// item is handed back, unrun: nothing posted is ever dropped silently.
///
/// # Examples
/// ```
/// use mio_reactor::{Config, PostError, Reactor};
///
/// let reactor = Reactor::with_config(Config::default().post_queue_capacity(1))?;
/// let handle = reactor.handle();
/// handle.post(|_| println!("first")).unwrap();
/// // The loop has not turned yet, so the queue is full: the second closure comes back.
/// let err = handle.post(|_| println!("second")).unwrap_err();
/// assert!(matches!(err, PostError::Full(_)));
/// let _closure = err.into_inner(); // retry later, run it elsewhere, or drop it
/// # Ok::<(), std::io::Error>(())
/// ```
pub enum PostError<T> {
    /// The queue holds [`Config::post_queue_capacity`](crate::Config::post_queue_capacity)
    /// items already: the loop is behind. Retry later, or shed the load.
    Full(T),
    /// The reactor has begun shutting down (a [`ShutdownHandle`](crate::ShutdownHandle) or
    /// [`Context::shutdown_reactor`](crate::Context::shutdown_reactor) asked), or it is gone:
    /// nothing posted now would run.
    ShuttingDown(T),
}

impl<T> PostError<T> {
    /// The item that was not posted.
    pub fn into_inner(self) -> T {
        match self {
            PostError::Full(item) | PostError::ShuttingDown(item) => item,
        }
    }
}

impl<T> fmt::Debug for PostError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PostError::Full(_) => "Full(..)",
            PostError::ShuttingDown(_) => "ShuttingDown(..)",
        })
    }
}

impl<T> fmt::Display for PostError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PostError::Full(_) => "the reactor's post queue is full",
            PostError::ShuttingDown(_) => "the reactor is shutting down",
        })
    }
}

impl<T> std::error::Error for PostError<T> {}

/// The queue and its flags, shared by every [`LoopHandle`] and the loop.
struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    /// A wake is on its way or the loop has yet to take its next batch: no need to wake.
    wake_pending: AtomicBool,
    /// `Waker::wake` calls made for posts.
    wakes: AtomicU64,
    waker: Arc<Waker>,
    /// The shutdown counter the [`ShutdownHandle`](crate::ShutdownHandle) increments: once it
    /// is non-zero, posts are refused even before the loop has seen the request.
    shutdown_requests: Arc<AtomicUsize>,
    /// The reactor's open connections, published by the loop once per turn.
    open: AtomicUsize,
    /// Streams handed to the reactor and not yet registered by it.
    handovers: AtomicUsize,
}

struct Queue {
    items: VecDeque<Posted>,
    /// The loop will take nothing more: it finished after a shutdown, or was dropped.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while the lock is held (push and pop only), so a poisoned lock
        // still guards a consistent queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push<T>(&self, item: T, wrap: impl FnOnce(T) -> Posted) -> Result<(), PostError<T>> {
        {
            let mut queue = self.lock();
            if queue.closed || self.shutdown_requests.load(Ordering::SeqCst) > 0 {
                return Err(PostError::ShuttingDown(item));
            }
            if queue.items.len() >= self.capacity {
                return Err(PostError::Full(item));
            }
            queue.items.push_back(wrap(item));
        }
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            self.wakes.fetch_add(1, Ordering::Relaxed);
            if let Err(err) = self.waker.wake() {
                // The item is queued; the loop takes it on its next turn whatever wakes it.
                log::error!("could not wake the reactor for posted work: {err}");
            }
        }
        Ok(())
    }
}

/// A `Send + Sync + Clone` handle through which any thread talks to one
/// [`Reactor`](crate::Reactor): run work on the loop's thread ([`post`](LoopHandle::post)),
/// or hand a message to one connection's handler ([`send_to`](LoopHandle::send_to)).
///
/// Get one from [`Reactor::handle`](crate::Reactor::handle) or
/// [`Context::handle`](crate::Context::handle).
///
/// # Guarantees
/// - **FIFO per sender**: items posted by one thread run in the order posted (items from
///   different threads interleave in the order they took the queue's lock).
/// - **Exactly once, or handed back**: an item that was accepted (`Ok`) runs exactly once,
///   even if a shutdown begins meanwhile; an item that was not comes back in the
///   [`PostError`]. The one exception: dropping the [`Reactor`](crate::Reactor) without
///   running it to the end drops what is still queued, unrun.
/// - **Bounded**: at most [`Config::post_queue_capacity`](crate::Config::post_queue_capacity)
///   items wait; past it, [`PostError::Full`].
/// - **Closed at shutdown**: once a shutdown has been requested, [`PostError::ShuttingDown`].
/// - **Wake-ups coalesce**: however many items are posted while the loop sleeps or works,
///   at most one `mio::Waker::wake` syscall is made until the loop takes its next batch
///   (counted in [`Stats::wakes`](crate::Stats::wakes)).
/// - **I/O keeps flowing**: the loop runs at most
///   [`Config::post_budget`](crate::Config::post_budget) items per turn, then polls again
///   (without blocking) before the next batch.
///
/// # Examples
/// A worker thread's result written to the connection that asked for it:
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use mio_reactor::{Context, Handler, ListenOptions, Reactor};
///
/// struct Slow;
/// impl Handler for Slow {
///     fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
///         let (handle, id) = (ctx.handle(), ctx.id());
///         let question = String::from_utf8_lossy(data).trim().to_string();
///         std::thread::spawn(move || {
///             let answer = format!("{} has {} letters\n", question, question.len()); // blocking work
///             // Back on the loop's thread; a connection that closed meanwhile is missed.
///             let _ = handle.post(move |lc| {
///                 let _ = lc.write(id, answer.as_bytes());
///             });
///         });
///         data.len()
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), |_: &_| Some(Slow))?.local_addr()?;
/// let shutdown = reactor.shutdown_handle();
/// let client = std::thread::spawn(move || -> std::io::Result<String> {
///     let mut stream = BufReader::new(std::net::TcpStream::connect(addr)?);
///     stream.get_mut().write_all(b"reactor\n")?;
///     let mut answer = String::new();
///     stream.read_line(&mut answer)?;
///     shutdown.shutdown();
///     Ok(answer)
/// });
/// reactor.run()?;
/// assert_eq!(client.join().unwrap()?, "reactor has 7 letters\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl LoopHandle {
    /// Runs `work` on the loop's thread, in a later turn, with a [`LoopContext`].
    ///
    /// # Errors
    /// The closure is handed back, unrun: [`PostError::Full`] when
    /// [`Config::post_queue_capacity`](crate::Config::post_queue_capacity) items are
    /// waiting; [`PostError::ShuttingDown`] once a shutdown was requested or the reactor is
    /// gone.
    pub fn post<F>(&self, work: F) -> Result<(), PostError<F>>
    where
        F: FnOnce(&mut LoopContext<'_>) + Send + 'static,
    {
        self.shared.push(work, |work| Posted::Work(Box::new(work)))
    }

    /// Delivers `message` to the handler of connection `id`, through
    /// [`Handler::on_message`], in a later turn. The handler downcasts it
    /// (`message.downcast::<T>()`).
    ///
    /// A connection that closed meanwhile (or is closing) does not get it: the message is
    /// dropped on the loop's thread and counted in
    /// [`Stats::posts_missed`](crate::Stats::posts_missed).
    ///
    /// # Errors
    /// As for [`post`](LoopHandle::post): the message is handed back on
    /// [`PostError::Full`] and [`PostError::ShuttingDown`].
    ///
    /// # Examples
    /// A handler that tells another thread its id, and hears back through a message:
    /// ```
    /// use std::any::Any;
    /// use std::io::Read;
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use mio_reactor::{ConnId, Context, Handler, ListenOptions, Reactor};
    ///
    /// struct Ticker {
    ///     ids: mpsc::Sender<ConnId>,
    /// }
    ///
    /// impl Handler for Ticker {
    ///     fn on_open(&mut self, ctx: &mut Context<'_>) {
    ///         let _ = self.ids.send(ctx.id());
    ///     }
    ///     fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
    ///         data.len()
    ///     }
    ///     fn on_message(&mut self, ctx: &mut Context<'_>, message: Box<dyn Any + Send>) {
    ///         if let Ok(price) = message.downcast::<u32>() {
    ///             ctx.write(format!("price {price}\n").as_bytes());
    ///             ctx.close();
    ///         }
    ///     }
    /// }
    ///
    /// let (ids, opened) = mpsc::channel();
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen("127.0.0.1:0", ListenOptions::default(), move |_: &_| {
    ///     Some(Ticker { ids: ids.clone() })
    /// })?.local_addr()?;
    /// let handle = reactor.handle();
    /// std::thread::spawn(move || {
    ///     let id = opened.recv().expect("a connection opened");
    ///     handle.send_to(id, 42_u32).expect("queued");
    /// });
    /// let client = std::thread::spawn(move || -> std::io::Result<String> {
    ///     let mut stream = std::net::TcpStream::connect(addr)?;
    /// #   stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    ///     let mut text = String::new();
    ///     stream.read_to_string(&mut text)?;
    ///     Ok(text)
    /// });
    /// while !client.is_finished() {
    ///     reactor.turn(Some(Duration::from_millis(10)))?;
    /// }
    /// assert_eq!(client.join().unwrap()?, "price 42\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn send_to<M>(&self, id: ConnId, message: M) -> Result<(), PostError<M>>
    where
        M: Any + Send,
    {
        self.shared
            .push(message, |message| Posted::Message(id, Box::new(message)))
    }

    /// How loaded the reactor is: its open connections (as of its last turn) plus the
    /// streams handed to it from other threads and not yet
    /// registered. An acceptor compares this to pick the least loaded reactor.
    pub fn load(&self) -> usize {
        let shared = &self.shared;
        shared.open.load(Ordering::Relaxed) + shared.handovers.load(Ordering::Relaxed)
    }

    /// Posts the work `work` makes of `item`, counting it in [`load`](LoopHandle::load)
    /// until it has run: a stream on its way to this reactor.
    pub(crate) fn push_handover<T, W>(
        &self,
        item: T,
        work: impl FnOnce(T) -> W,
    ) -> Result<(), PostError<T>>
    where
        W: FnOnce(&mut LoopContext<'_>) + Send + 'static,
    {
        let shared = self.shared.clone();
        self.shared.handovers.fetch_add(1, Ordering::Relaxed);
        let pushed = self.shared.push(item, |item| {
            let work = work(item);
            Posted::Work(Box::new(move |lc: &mut LoopContext<'_>| {
                shared.handovers.fetch_sub(1, Ordering::Relaxed);
                work(lc)
            }))
        });
        if pushed.is_err() {
            self.shared.handovers.fetch_sub(1, Ordering::Relaxed);
        }
        pushed
    }

    /// Whether two handles reach the same reactor.
    pub fn same_reactor(&self, other: &LoopHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("capacity", &self.shared.capacity)
            .field("load", &self.load())
            .finish()
    }
}

/// The loop's side of the queue: kept in the reactor's core.
pub(crate) struct Inbox {
    shared: Arc<Shared>,
    /// Taken under the lock, run after releasing it; kept to reuse its allocation.
    batch: VecDeque<Posted>,
    /// Items were left in the queue after a full budget: poll without blocking.
    more: bool,
}

impl Inbox {
    pub(crate) fn new(
        waker: Arc<Waker>,
        shutdown_requests: Arc<AtomicUsize>,
        capacity: usize,
    ) -> Inbox {
        Inbox {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    items: VecDeque::new(),
                    closed: false,
                }),
                capacity,
                wake_pending: AtomicBool::new(false),
                wakes: AtomicU64::new(0),
                waker,
                shutdown_requests,
                open: AtomicUsize::new(0),
                handovers: AtomicUsize::new(0),
            }),
            batch: VecDeque::new(),
            more: false,
        }
    }

    pub(crate) fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }

    /// Items wait beyond this turn's budget: the next poll must not block.
    pub(crate) fn has_more(&self) -> bool {
        self.more
    }

    pub(crate) fn wakes(&self) -> u64 {
        self.shared.wakes.load(Ordering::Relaxed)
    }

    /// Publishes the reactor's open connections for [`LoopHandle::load`].
    pub(crate) fn publish_load(&self, open: usize) {
        self.shared.open.store(open, Ordering::Relaxed);
    }

    /// Whether nothing is queued and nothing can be any more: the loop may stop.
    ///
    /// While a [`LoopHandle`] exists and no shutdown was requested, more may come (a stream
    /// handed over, work posted), so the loop goes on even with nothing else to serve.
    /// After a shutdown, the queue closes in the same step as the last look finds it empty,
    /// so that no item can slip in after it.
    pub(crate) fn is_done(&self, shutting_down: bool) -> bool {
        let mut queue = self.shared.lock();
        if !queue.items.is_empty() {
            return false;
        }
        if shutting_down {
            queue.closed = true;
            return true;
        }
        // The inbox holds one reference; any other is a handle that may still post.
        Arc::strong_count(&self.shared) == 1
    }
}

impl Drop for Inbox {
    /// The reactor is gone: refuse further posts; what is still queued is dropped unrun.
    fn drop(&mut self) {
        let mut queue = self.shared.lock();
        queue.closed = true;
        if !queue.items.is_empty() {
            log::warn!(
                "reactor dropped with {} posted items not run",
                queue.items.len()
            );
        }
        queue.items.clear();
    }
}

/// Draining the queue: the one point of the turn where posted work enters the loop.
impl Core {
    /// Runs up to [`Config::post_budget`](crate::Config::post_budget) posted items, in order.
    pub(crate) fn run_posted(&mut self) {
        let shared = self.inbox.shared.clone();
        if !self.inbox.more && !shared.wake_pending.load(Ordering::SeqCst) {
            return;
        }
        // Cleared before taking: a post that misses this batch sees the flag down and wakes
        // the loop again, so nothing waits for an unrelated event.
        shared.wake_pending.store(false, Ordering::SeqCst);
        let mut batch = std::mem::take(&mut self.inbox.batch);
        {
            let mut queue = shared.lock();
            let take = queue.items.len().min(self.config().post_budget);
            batch.extend(queue.items.drain(..take));
            self.inbox.more = !queue.items.is_empty();
        }
        for item in batch.drain(..) {
            self.stats.posts_run += 1;
            match item {
                Posted::Work(work) => self.run_work(work),
                Posted::Message(id, message) => self.deliver_message(id, message),
            }
        }
        self.inbox.batch = batch;
        // What the items wrote leaves now, gathered per connection: not after the turn.
        self.flush_gathered();
    }

    /// Runs one posted closure. A panic in it is caught at this boundary like a handler's
    /// ([`Config::catch_panics`](crate::Config::catch_panics)): logged, counted in
    /// [`Stats::handler_panics`](crate::Stats::handler_panics), and the loop goes on with the
    /// next item; what the closure did before it panicked stands.
    fn run_work(&mut self, work: Work) {
        let catch = self.config().catch_panics;
        if let Err(message) = call_user(catch, || work(&mut LoopContext { core: self })) {
            log::error!("posted work panicked: {message}");
            self.stats.handler_panics += 1;
        }
    }

    fn deliver_message(&mut self, id: ConnId, message: Box<dyn Any + Send>) {
        // Open, not closing and past its connect: the handler has had `on_open`, and will
        // hear more than `on_close`.
        let active = self.entries.conn_ref(id.0).is_some_and(|c| {
            matches!(
                c.state(),
                State::Open | State::PeerHalfClosed | State::WriteShutdown
            )
        });
        let delivered = active
            && self
                .with_handler(id.0, |h, ctx| h.on_message(ctx, message))
                .is_some();
        if delivered {
            self.queue(id.0);
        } else {
            log::debug!("message for {id} missed: the connection is gone");
            self.stats.posts_missed += 1;
        }
    }
}

/// What posted work may do, on the loop's thread: reach any connection by [`ConnId`],
/// open connections, and stop the reactor.
///
/// It is a [`Context`](crate::Context) without a connection of its own: every operation
/// names its target. An id of a connection that has closed misses (its generation no longer
/// matches), and each miss is counted in [`Stats::posts_missed`](crate::Stats::posts_missed).
pub struct LoopContext<'a> {
    pub(crate) core: &'a mut Core,
}

impl LoopContext<'_> {
    /// The time at the start of this reactor turn.
    pub fn now(&self) -> Instant {
        self.core.now()
    }

    /// A handle to this reactor, to post more work or hand to another thread.
    pub fn handle(&self) -> LoopHandle {
        self.core.inbox.handle()
    }

    /// Sends `data` to connection `id`, as its own [`Context::write`](crate::Context::write)
    /// would.
    ///
    /// # Errors
    /// Those of [`Context::write_to`](crate::Context::write_to):
    /// [`WriteError::NoSuchConnection`] (also counted as a miss),
    /// [`WriteError::Closed`], [`WriteError::LimitExceeded`].
    pub fn write(&mut self, id: ConnId, data: &[u8]) -> Result<(), WriteError> {
        let result = self.core.write_conn(id.0, data);
        if result == Err(WriteError::NoSuchConnection) {
            self.core.stats.posts_missed += 1;
        }
        result
    }

    /// Bytes written to connection `id` but not yet taken by the kernel, as
    /// [`Context::buffered_output_of`](crate::Context::buffered_output_of) says; `None` if
    /// no such connection is open (not counted as a miss: nothing was sent).
    ///
    /// ```
    /// use mio_reactor::{ConnId, LoopContext};
    ///
    /// /// Posted work that publishes to the subscribers that keep up.
    /// fn publish(loop_ctx: &mut LoopContext<'_>, subscribers: &[ConnId], message: &[u8]) {
    ///     for &id in subscribers {
    ///         if loop_ctx.buffered_output(id).is_some_and(|behind| behind < 1 << 20) {
    ///             let _ = loop_ctx.write(id, message);
    ///         }
    ///     }
    /// }
    /// # let _ = publish;
    /// ```
    pub fn buffered_output(&self, id: ConnId) -> Option<usize> {
        self.core
            .entries
            .conn_ref(id.0)
            .filter(|conn| conn.state() != crate::State::Closed)
            .map(|conn| conn.buffered_output())
    }

    /// Gives connection `id` new output limits, as its own
    /// [`Context::set_output_limits`](crate::Context::set_output_limits) would.
    ///
    /// # Errors
    /// [`InvalidInput`](std::io::ErrorKind::InvalidInput) if the limits contradict each
    /// other; [`NotFound`](std::io::ErrorKind::NotFound) (counted as a miss) if no such
    /// connection is open.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::{ConnId, LoopContext, OutputLimits};
    ///
    /// /// Posted work: the client `id` subscribed, so it gets Redis's pub/sub limits.
    /// fn subscribed(loop_ctx: &mut LoopContext<'_>, id: ConnId) -> std::io::Result<()> {
    ///     let pubsub = OutputLimits::default()
    ///         .max_output(32 << 20)
    ///         .soft_limit(8 << 20, Duration::from_secs(60));
    ///     loop_ctx.set_output_limits(id, pubsub)
    /// }
    /// # let _ = subscribed;
    /// ```
    pub fn set_output_limits(
        &mut self,
        id: ConnId,
        limits: crate::OutputLimits,
    ) -> std::io::Result<()> {
        limits.validate()?;
        let open = self
            .core
            .entries
            .conn_ref(id.0)
            .is_some_and(|c| c.state() != crate::State::Closed);
        if !self.count_miss(open) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{id} is not open"),
            ));
        }
        self.core.set_output_limits(id.0, limits)
    }

    /// Closes connection `id` gracefully, as [`Context::close_conn`](crate::Context::close_conn)
    /// does. Returns `false` (and counts a miss) if no such connection is open.
    pub fn close(&mut self, id: ConnId) -> bool {
        let hit = self.core.close_conn(id.0);
        self.count_miss(hit)
    }

    /// Aborts connection `id`, as [`Context::abort_conn`](crate::Context::abort_conn) does.
    /// Returns `false` (and counts a miss) if no such connection is open.
    pub fn abort(&mut self, id: ConnId) -> bool {
        let hit = self.core.abort_conn(id.0);
        self.count_miss(hit)
    }

    /// Sets a timer for connection `id`: its handler's
    /// [`on_timer`](crate::Handler::on_timer) runs after `delay`. `None` (and a miss) if no
    /// such connection is open.
    pub fn set_timer(&mut self, id: ConnId, delay: Duration) -> Option<TimerId> {
        let open = self
            .core
            .entries
            .conn_ref(id.0)
            .is_some_and(|c| c.state().is_active());
        self.count_miss(open)
            .then(|| self.core.set_timer(id.0, delay))
    }

    /// Sets a timer of the loop, which belongs to no connection: `callback` runs once after
    /// `delay`, with a [`LoopContext`] of its own. As [`Reactor::set_loop_timer`](crate::Reactor::set_loop_timer).
    ///
    /// # Examples
    /// Posted work that sets a timer: a worker thread's "retry in 10 ms".
    /// ```
    /// use std::time::Duration;
    /// use mio_reactor::Reactor;
    ///
    /// let mut reactor = Reactor::new()?;
    /// let handle = reactor.handle();
    /// std::thread::spawn(move || {
    ///     handle.post(|lc| {
    ///         lc.set_loop_timer(Duration::from_millis(10), |lc, _| lc.shutdown_reactor());
    ///     }).unwrap();
    /// }).join().unwrap();
    /// reactor.run()?;
    /// assert_eq!(reactor.stats().loop_timers_fired, 1);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_loop_timer(
        &mut self,
        delay: Duration,
        callback: impl FnMut(&mut LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_timer(delay, None, Box::new(callback))
    }

    /// Sets a periodic timer of the loop: `callback` runs every period as `every` says,
    /// until cancelled. As [`Reactor::set_loop_interval`](crate::Reactor::set_loop_interval).
    pub fn set_loop_interval(
        &mut self,
        every: Every,
        callback: impl FnMut(&mut LoopContext<'_>, LoopTimerId) + 'static,
    ) -> LoopTimerId {
        self.core.set_loop_interval(every, Box::new(callback))
    }

    /// Cancels a timer of the loop, whoever set it; returns whether it was pending. As
    /// [`Reactor::cancel_loop_timer`](crate::Reactor::cancel_loop_timer).
    pub fn cancel_loop_timer(&mut self, id: LoopTimerId) -> bool {
        self.core.cancel_loop_timer(id)
    }

    /// Opens an outbound connection served by `handler`, as
    /// [`Context::connect`](crate::Context::connect) does: to an endpoint that needs no name
    /// lookup.
    ///
    /// # Errors
    /// Those of [`Context::connect`](crate::Context::connect).
    pub fn connect(
        &mut self,
        target: impl IntoConnectTarget,
        options: ConnectOptions,
        handler: impl Handler,
    ) -> io::Result<ConnId> {
        let peers = target.into_peers(Lookup::Refused)?;
        self.core
            .connect(peers, Box::new(handler), options.into_connection())
            .map_err(|(err, _)| err)
    }

    /// Asks the reactor to shut down, as a [`ShutdownHandle`](crate::ShutdownHandle) would.
    pub fn shutdown_reactor(&mut self) {
        self.core.lifecycle.request_shutdown();
    }

    /// Whether the reactor is shutting down.
    pub fn is_shutting_down(&self) -> bool {
        self.core.lifecycle.is_shutting_down()
    }

    /// How many connections are open.
    pub fn open_connections(&self) -> usize {
        self.core.stats.open_connections
    }

    /// A snapshot of this reactor's counters, as [`Reactor::stats`](crate::Reactor::stats)
    /// gives them: what a [`before_sleep`](crate::Reactor::before_sleep) hook publishes to
    /// other threads (a `/stats` page), as of the start of this turn (the turns before it
    /// complete, this one's timers fired).
    ///
    /// # Examples
    /// Each turn's counters, published before the loop sleeps:
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use mio_reactor::{Reactor, Stats};
    ///
    /// let published = Arc::new(Mutex::new(Stats::default()));
    /// let mut reactor = Reactor::new()?;
    /// let board = published.clone();
    /// reactor.before_sleep(move |lc| *board.lock().unwrap() = lc.stats());
    /// let _handle = reactor.handle(); // keeps it running with nothing to serve
    /// for _ in 0..3 {
    ///     reactor.turn(Some(Duration::ZERO))?;
    /// }
    /// assert_eq!(published.lock().unwrap().turns, 2); // as the third turn began
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stats(&self) -> crate::Stats {
        self.core.stats_snapshot()
    }

    fn count_miss(&mut self, hit: bool) -> bool {
        if !hit {
            self.core.stats.posts_missed += 1;
        }
        hit
    }
}

impl fmt::Debug for LoopContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopContext")
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

//! A tiny chat room: every line a client sends goes to all the other clients.
//!
//! ```text
//! cargo run --release --example chat_server -- --listen tcp:127.0.0.1:7000 --listen unix:/tmp/chat.sock
//! nc 127.0.0.1 7000            # in one terminal
//! nc -U /tmp/chat.sock          # in another: TCP and Unix clients share one room
//! ```
//! It shows two things the echo server does not:
//! - **Writes to other connections**, by [`ConnId`]: the room is shared state, kept in the
//!   listeners' factories (`Rc<RefCell<Room>>`: one thread, no locks).
//! - **Backpressure per client**: a client that stops reading is not allowed to grow the
//!   server's memory. Each broadcast is queued on every member's connection; once one
//!   member's unread output passes `--max-backlog`, the reactor closes that member (reason:
//!   output limit exceeded) and everyone else carries on.
//!
//! Lines longer than `--max-line` bytes close their sender: a chat line is not a file
//! transfer, and an unbounded line would be unbounded memory.
//!
//! With `--threads N`, N reactors serve the members (one acceptor hands each new client to
//! the least loaded) and the room spans them: each thread keeps its own members, and a line
//! for members on another thread travels as work posted to that thread's loop
//! ([`mio_reactor::LoopHandle::post`]). One sender's posts run in the order sent, so every
//! member hears each other member's lines in order.

#[path = "support/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use clap::Parser;
use mio_reactor::{
    CloseReason, Config, ConnId, Context, DeadPeerDetection, Endpoint, Handler, ListenOptions,
    LoopHandle, PeerAddr, Reactor, ReactorThreads, Spread, WriteError,
};

/// Everyone in the chat on this reactor's thread, by connection id, with their names.
#[derive(Default)]
struct Room {
    members: BTreeMap<ConnId, String>,
    joined: u64,
    /// With `--threads`: the room's other parts, and which one this is.
    across: Option<(usize, Arc<Across>)>,
}

/// What the reactor threads share: a handle to each thread that has members, to post
/// lines to, and the count of joins (for guest names).
#[derive(Default)]
struct Across {
    threads: Mutex<Vec<Option<LoopHandle>>>,
    joined: AtomicU64,
}

thread_local! {
    /// This reactor thread's part of the room, for lines posted from other threads: posted
    /// work runs on this thread, but must be `Send`, so it finds the room here.
    static THREAD_ROOM: RefCell<Option<Rc<RefCell<Room>>>> = const { RefCell::new(None) };
}

impl Room {
    /// Sends `text` to every member except `from`, here and on the other threads. A member
    /// whose backlog overflows is closed by the reactor; its `on_close` then removes it.
    fn broadcast(&self, ctx: &mut Context<'_>, from: ConnId, text: &str) {
        self.deliver(Some(from), text, |member, bytes| {
            ctx.write_to(member, bytes)
        });
        let Some((me, across)) = &self.across else {
            return;
        };
        let threads = across.threads.lock().expect("never poisoned");
        for (index, handle) in threads.iter().enumerate() {
            let Some(handle) = handle.as_ref().filter(|_| index != *me) else {
                continue;
            };
            let text = text.to_string();
            let posted = handle.post(move |lc| {
                THREAD_ROOM.with(|room| {
                    if let Some(room) = room.borrow().as_ref() {
                        // Ids are per reactor: the sender's id means nothing on this thread.
                        room.borrow()
                            .deliver(None, &text, |member, bytes| lc.write(member, bytes));
                    }
                })
            });
            if let Err(err) = posted {
                log::warn!("a line not delivered to thread {index}: {err}");
            }
        }
    }

    /// Writes `text` to this thread's members except `from`.
    fn deliver(
        &self,
        from: Option<ConnId>,
        text: &str,
        mut write: impl FnMut(ConnId, &[u8]) -> Result<(), WriteError>,
    ) {
        for &member in self.members.keys().filter(|&&m| Some(m) != from) {
            if let Err(err) = write(member, text.as_bytes()) {
                log::debug!("not delivered to {member}: {err}");
            }
        }
    }

    /// A new member's number, counted across threads.
    fn next_guest(&mut self, ctx: &Context<'_>) -> u64 {
        self.joined += 1;
        let Some((me, across)) = &self.across else {
            return self.joined;
        };
        let mut threads = across.threads.lock().expect("never poisoned");
        if threads[*me].is_none() {
            // The first member here: from now on the other threads post lines to us.
            threads[*me] = Some(ctx.handle());
        }
        across.joined.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// One client in the room.
struct Member {
    room: Rc<RefCell<Room>>,
    name: String,
    max_line: usize,
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        let mut room = self.room.borrow_mut();
        self.name = format!("guest{}", room.next_guest(ctx));
        let welcome = format!(
            "* welcome, {}: {} others here\n",
            self.name,
            room.members.len()
        );
        ctx.write(welcome.as_bytes());
        room.members.insert(ctx.id(), self.name.clone());
        let joined = format!("* {} joined from {}\n", self.name, ctx.peer_addr());
        room.broadcast(ctx, ctx.id(), &joined);
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        // Consume complete lines only; a partial line stays in the reactor's input buffer
        // and is offered again, whole, once its newline arrives.
        let complete = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let room = self.room.borrow();
        for line in data[..complete].split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim_end_matches('\r');
            if !line.is_empty() {
                room.broadcast(ctx, ctx.id(), &format!("{}: {line}\n", self.name));
            }
        }
        if data.len() - complete > self.max_line {
            let why = format!("line longer than {} bytes", self.max_line);
            ctx.write(format!("* {why}: bye\n").as_bytes());
            ctx.close_with(CloseReason::Protocol(why));
            return data.len();
        }
        complete
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, reason: &CloseReason) {
        let mut room = self.room.borrow_mut();
        if room.members.remove(&ctx.id()).is_some() {
            log::info!("{} left: {reason}", self.name);
            room.broadcast(ctx, ctx.id(), &format!("* {} left ({reason})\n", self.name));
        }
    }
}

/// A chat room: each line a client sends is broadcast to all the other clients.
#[derive(Parser)]
#[command(name = "chat_server", version, after_help = cli::CHAT_SIGNALS_HELP)]
struct Args {
    #[command(flatten)]
    listen: cli::ListenArgs,
    /// Alias of --listen tcp:HOST:PORT, announced without the `tcp:` (repeatable)
    /// [default: 127.0.0.1:7000 unless --unix or --listen is given]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Vec<String>,
    /// Alias of --listen unix:PATH (repeatable)
    #[arg(long, value_name = "PATH")]
    unix: Vec<String>,
    /// Unread output a client may accumulate before it is dropped (at least 1024)
    #[arg(long, value_name = "BYTES", default_value = "262144", value_parser = at_least_1024)]
    max_backlog: usize,
    /// Longest line accepted
    #[arg(long, value_name = "BYTES", default_value = "4096")]
    max_line: usize,
    /// Serve the room from N reactor threads behind one acceptor (one --addr or one
    /// --listen only)
    #[arg(long, value_name = "N", default_value = "1", value_parser = cli::at_least_one)]
    threads: usize,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
    #[command(flatten)]
    dead_peers: cli::DeadPeerArgs,
}

/// Below this, the water marks derived from the backlog would be too small to be useful.
fn at_least_1024(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(bytes) if bytes >= 1024 => Ok(bytes),
        Ok(_) => Err("must be at least 1024".to_string()),
        Err(err) => Err(err.to_string()),
    }
}

struct Options {
    /// `--listen`: announced in the endpoint grammar.
    listens: Vec<Endpoint>,
    /// `--addr` (or the default): announced as before, `127.0.0.1:7000`.
    addrs: Vec<String>,
    unix_paths: Vec<String>,
    max_backlog: usize,
    max_line: usize,
    threads: usize,
    stop_on_stdin_eof: bool,
    dead_peers: DeadPeerDetection,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let listens = args.listen.streams::<Args>();
    let mut addrs = args.addr;
    if addrs.is_empty() && args.unix.is_empty() && listens.is_empty() {
        addrs.push("127.0.0.1:7000".to_string());
    }
    let one = addrs.len() + listens.len() == 1;
    if args.threads > 1 && (!one || !args.unix.is_empty()) {
        cli::usage_error::<Args>("--threads serves one TCP --addr or one --listen (and no --unix)");
    }
    Options {
        listens,
        addrs,
        unix_paths: args.unix,
        max_backlog: args.max_backlog,
        max_line: args.max_line,
        threads: args.threads,
        stop_on_stdin_eof: args.stop_on_stdin_eof,
        dead_peers: args.dead_peers.detection(),
    }
}

fn main() {
    cli::init_logging();
    let options = parse_options();
    if let Err(err) = serve(options) {
        eprintln!("chat_server: {err}");
        std::process::exit(1);
    }
}

fn serve(options: Options) -> std::io::Result<()> {
    // Reading pauses for a client whose output passes the high water mark, but broadcasts
    // from *other* clients keep coming: max_output is what bounds a silent member.
    let high_water = (options.max_backlog / 4).max(512);
    let config = Config::default()
        .max_output(options.max_backlog)
        .high_water(high_water)
        .low_water(high_water / 4)
        .max_input(options.max_line + 1)
        .dead_peer_detection(options.dead_peers);
    let max_line = options.max_line;
    let factory = move |room: Rc<RefCell<Room>>| {
        move |_: &PeerAddr| {
            Some(Member {
                room: room.clone(),
                name: String::new(),
                max_line,
            })
        }
    };
    if options.threads > 1 {
        return serve_threads(&options, config, factory);
    }
    let mut reactor = Reactor::with_config(config)?;
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts.
    reactor.shutdown_on_signals()?;
    cli::refuse_upgrades(&mut reactor, "the room lives in this process")?;
    let room = Rc::new(RefCell::new(Room::default()));
    for endpoint in &options.listens {
        let listening =
            reactor.listen(endpoint, ListenOptions::default(), factory(room.clone()))?;
        cli::announce("chat server", listening.bound(), false);
    }
    // The older flags, announced as they always were.
    for addr in &options.addrs {
        for resolved in cli::resolve(addr)? {
            let bound = reactor
                .listen(resolved, ListenOptions::default(), factory(room.clone()))?
                .local_addr()?;
            println!("chat server listening on {bound}");
        }
    }
    for path in &options.unix_paths {
        let unix = Endpoint::Unix(path.into());
        reactor.listen(unix, ListenOptions::default(), factory(room.clone()))?;
        println!("chat server listening on unix:{path}");
    }
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(reactor.shutdown_handle());
    }
    reactor.run()?;
    println!(
        "chat server stopped: {} members joined",
        room.borrow().joined
    );
    Ok(())
}

/// `--threads N`: N reactors behind one acceptor, one room across them.
fn serve_threads<F, H>(options: &Options, config: Config, factory: F) -> std::io::Result<()>
where
    F: Fn(Rc<RefCell<Room>>) -> H + Send + Sync + 'static,
    H: FnMut(&PeerAddr) -> Option<Member> + 'static,
{
    let endpoint = match options.listens.first() {
        Some(endpoint) => endpoint.clone(),
        None => Endpoint::Tcp(cli::resolve(&options.addrs[0])?[0]),
    };
    let across = Arc::new(Across {
        threads: Mutex::new(vec![None; options.threads]),
        joined: AtomicU64::new(0),
    });
    let shared = across.clone();
    let threads = ReactorThreads::serve(
        options.threads,
        config,
        endpoint,
        ListenOptions::default(),
        Spread::LeastLoaded,
        move |_reactor, index| {
            let room = Rc::new(RefCell::new(Room {
                across: Some((index, shared.clone())),
                ..Room::default()
            }));
            THREAD_ROOM.with(|slot| *slot.borrow_mut() = Some(room.clone()));
            factory(room)
        },
    )?;
    // Signals are watched before the address is announced: none can be missed.
    cli::forward_signals(threads.shutdown_handle())?;
    if options.stop_on_stdin_eof {
        cli::stop_on_stdin_eof(threads.shutdown_handle());
    }
    if options.listens.is_empty() {
        println!(
            "chat server listening on {} ({} threads)",
            threads.local_addr()?,
            options.threads
        );
    } else {
        for bound in threads.bound() {
            println!(
                "chat server listening on {bound} ({} threads)",
                options.threads
            );
        }
    }
    threads.join()?;
    println!(
        "chat server stopped: {} members joined",
        across.joined.load(Ordering::Relaxed)
    );
    Ok(())
}

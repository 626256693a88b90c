//! A tiny chat room: every line a client sends goes to all the other clients.
//!
//! ```text
//! cargo run --release --example chat_server -- --addr 127.0.0.1:7000 --unix /tmp/chat.sock
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

#[path = "support/cli.rs"]
mod cli;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use clap::Parser;
use mio_reactor::{CloseReason, Config, ConnId, Context, Handler, PeerAddr, Reactor};

/// Everyone in the chat, by connection id, with their display names.
#[derive(Default)]
struct Room {
    members: BTreeMap<ConnId, String>,
    joined: u64,
}

impl Room {
    /// Sends `text` to every member except `from`. A member whose backlog overflows is
    /// closed by the reactor; its `on_close` then removes it from the room.
    fn broadcast(&self, ctx: &mut Context<'_>, from: ConnId, text: &str) {
        for &member in self.members.keys().filter(|&&m| m != from) {
            if let Err(err) = ctx.write_to(member, text.as_bytes()) {
                log::debug!("not delivered to {member}: {err}");
            }
        }
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
        room.joined += 1;
        self.name = format!("guest{}", room.joined);
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
#[command(name = "chat_server", version, after_help = cli::SERVER_SIGNALS_HELP)]
struct Args {
    /// Listen for TCP clients (repeatable) [default: 127.0.0.1:7000 unless --unix is given]
    #[arg(long, value_name = "HOST:PORT")]
    addr: Vec<String>,
    /// Listen for Unix-domain clients (repeatable)
    #[arg(long, value_name = "PATH")]
    unix: Vec<String>,
    /// Unread output a client may accumulate before it is dropped (at least 1024)
    #[arg(long, value_name = "BYTES", default_value = "262144", value_parser = at_least_1024)]
    max_backlog: usize,
    /// Longest line accepted
    #[arg(long, value_name = "BYTES", default_value = "4096")]
    max_line: usize,
    /// Shut down gracefully when standard input closes
    #[arg(long)]
    stop_on_stdin_eof: bool,
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
    addrs: Vec<String>,
    unix_paths: Vec<String>,
    max_backlog: usize,
    max_line: usize,
    stop_on_stdin_eof: bool,
}

fn parse_options() -> Options {
    let args: Args = cli::parse();
    let mut addrs = args.addr;
    if addrs.is_empty() && args.unix.is_empty() {
        addrs.push("127.0.0.1:7000".to_string());
    }
    Options {
        addrs,
        unix_paths: args.unix,
        max_backlog: args.max_backlog,
        max_line: args.max_line,
        stop_on_stdin_eof: args.stop_on_stdin_eof,
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
        .max_input(options.max_line + 1);
    let mut reactor = Reactor::with_config(config)?;
    // SIGTERM or SIGINT: the first drains gracefully, the second aborts.
    reactor.shutdown_on_signals()?;
    let room = Rc::new(RefCell::new(Room::default()));
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
    for addr in &options.addrs {
        for resolved in cli::resolve(addr)? {
            let bound = reactor.listen(resolved, factory(room.clone()))?;
            println!("chat server listening on {bound}");
        }
    }
    for path in &options.unix_paths {
        reactor.listen_unix(path, factory(room.clone()))?;
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

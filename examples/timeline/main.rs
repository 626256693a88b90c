//! A short scripted session with an echo server, drawn as a timeline: one lane per
//! connection, its states as coloured spans, its reads and writes as marks.
//!
//! ```text
//! cargo run --example timeline -- --out docs/timeline.svg --html docs/timeline.html
//! RUST_LOG=mio_reactor=trace cargo run --example timeline     # the same story, as text
//! ```
//! Open the SVG (or the HTML page, which adds how to read it, a table and the records) in a
//! browser; hovering over any mark shows the record behind it. `docs/timeline.md` explains
//! how to read it.
//!
//! Everything happens in this one process:
//!
//! 1. a reactor serves an echo handler on 127.0.0.1:0, with an **observer** that keeps every
//!    [`Record`] with its timestamp (`Reactor::set_observer`);
//! 2. client threads play a script (`script.rs`): three echo clients, a slow reader, a
//!    half-close and a reset, with ordinary blocking sockets;
//! 3. this thread turns the loop (`Reactor::turn`) until the script is done and has shut
//!    the reactor down;
//! 4. the records become lanes (`lanes.rs`), the lanes become an SVG drawn by hand
//!    (`svg.rs`), and optionally an HTML page around it (`html.rs`).

#[path = "../support/cli.rs"]
mod cli;
mod html;
mod lanes;
mod noticeboard;
mod script;
mod svg;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use mio_reactor::{Context, Handler, ListenOptions, Reactor, Record};

use lanes::Timeline;
use noticeboard::{Noticeboard, Watcher};
use script::Script;

/// The session must end well within this, or something is broken.
const SESSION_LIMIT: Duration = Duration::from_secs(10);

/// The protocol: write back whatever arrives, and consume all of it. `on_eof` keeps its
/// default: close gracefully once the echo is flushed.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(data);
        data.len()
    }
}

/// Runs a short scripted session against an in-process echo server and draws its
/// timeline: one lane per connection, states as spans, reads and writes as marks.
#[derive(Parser)]
#[command(name = "timeline", version, after_help = cli::DEFAULT_SIGNALS_HELP)]
struct Options {
    /// Write the SVG here
    #[arg(long = "out", value_name = "PATH", default_value = "timeline.svg")]
    svg: PathBuf,
    /// Also write a self-contained HTML page (picture, table, records)
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
}

fn main() {
    cli::init_logging();
    let options: Options = cli::parse();
    if let Err(err) = run(&options) {
        eprintln!("timeline: {err}");
        std::process::exit(1);
    }
}

fn run(options: &Options) -> io::Result<()> {
    let session = record_session()?;
    let timeline = Timeline::build(session.start, &session.records, |peer| {
        let role = peer.tcp().and_then(|addr| session.roles.get(&addr))?;
        Some(role.to_string())
    });
    let picture = svg::draw(&timeline);
    write(&options.svg, &picture)?;
    if let Some(path) = &options.html {
        let page = html::page(&timeline, &picture, session.start, &session.records);
        write(path, &page)?;
    }
    println!(
        "timeline: {} connections, {} turns, {} records over {:.0} ms",
        timeline.lanes.len(),
        timeline.turns.len(),
        session.records.len(),
        timeline.duration
    );
    Ok(())
}

/// What a recorded session leaves: the records, when it started, who played which role.
struct Session {
    records: Vec<(Instant, Record)>,
    start: Instant,
    roles: HashMap<SocketAddr, script::Role>,
}

/// Runs the scripted session against a reactor turned here, recording every record.
fn record_session() -> io::Result<Session> {
    let mut reactor = Reactor::new()?;

    // The observer runs inside the loop, on this thread: it only stores the record and
    // updates the counters the clients wait on.
    let records = Rc::new(RefCell::new(Vec::new()));
    let board = Arc::new(Noticeboard::default());
    let (sink, mut watcher) = (records.clone(), Watcher::new(board.clone()));
    reactor.set_observer(move |at: Instant, record: &Record| {
        watcher.record(record);
        sink.borrow_mut().push((at, record.clone()));
    });

    let addr = reactor
        .listen("127.0.0.1:0", ListenOptions::default(), |_| Some(Echo))?
        .local_addr()?;
    let start = Instant::now();
    let script = Script::start(addr, board, reactor.shutdown_handle());

    // The script shuts the reactor down when it is done; then nothing is left to serve.
    let deadline = start + SESSION_LIMIT;
    while !reactor.is_finished() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the session did not end within {SESSION_LIMIT:?}"),
            ));
        }
        reactor.turn(Some(left))?;
    }
    let roles = script.finish()?;
    reactor.clear_observer(); // drops the observer's handle on the records
    let records = records.take();
    Ok(Session {
        records,
        start,
        roles,
    })
}

fn write(path: &PathBuf, text: &str) -> io::Result<()> {
    std::fs::write(path, text)
        .map_err(|err| io::Error::new(err.kind(), format!("{}: {err}", path.display())))?;
    println!("wrote {}", path.display());
    Ok(())
}

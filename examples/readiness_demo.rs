//! Readiness, one event at a time: raw mio, one listener, one connection, every event and
//! every `read` result printed, `WouldBlock` included.
//!
//! ```text
//! cargo run --example readiness_demo                 # drain on every event: all bytes, EOF
//! cargo run --example readiness_demo -- --read-once  # one read per event: bytes get stuck
//! ```
//! Chapter 2 of the guide (`docs/guide/02-nonblocking-and-readiness.md`) walks through the
//! output.
//!
//! A thread plays the peer: it connects, sends 6 bytes, then 10,000 bytes in one write, then
//! shuts down its write side (FIN), pausing 300 ms between steps. The main thread is a
//! minimal event loop on `mio::Poll`, reading into a 4 KiB buffer.
//!
//! mio is *edge-triggered*: an event means "something new happened on this socket", not
//! "this socket has bytes". Bytes still sitting in the kernel after you stop reading raise
//! no new event. So the loop reads until the kernel answers `WouldBlock` (drained). With
//! `--read-once` it reads once per event, as a loop written for level-triggered `select()`
//! would, and the end of the data and the EOF are never seen: no event comes for them.

#[path = "support/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

/// Prints every readiness event and every read result for one connection.
#[derive(Parser)]
#[command(name = "readiness_demo", version)]
struct Args {
    /// Read once per event instead of until WouldBlock
    #[arg(long)]
    read_once: bool,
}

/// Tokens are how events name their socket: any `usize` we choose at registration.
const LISTENER: Token = Token(0);
const CONN: Token = Token(1);

/// How long the peer waits between steps, and how long a poll may block.
const STEP: Duration = Duration::from_millis(300);
const POLL_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> io::Result<()> {
    let Args { read_once } = cli::parse();

    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(16);
    // mio sockets are non-blocking from birth: accept and read never wait.
    let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap())?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let peer = thread::spawn({
        let addr = listener.local_addr()?;
        move || play_peer(addr)
    });

    let mut conn: Option<TcpStream> = None;
    let mut buf = [0; 4096];
    let (mut total, mut eof, mut quiet_polls) = (0, false, 0);
    while !eof && quiet_polls < 2 {
        poll.poll(&mut events, Some(POLL_TIMEOUT))?;
        if events.is_empty() {
            println!("poll: no event for {POLL_TIMEOUT:?}");
            quiet_polls += 1;
            continue;
        }
        for event in events.iter() {
            let name = if event.token() == LISTENER {
                "listener"
            } else {
                "conn"
            };
            println!(
                "event for {name}: readable={} writable={} read_closed={}",
                event.is_readable(),
                event.is_writable(),
                event.is_read_closed()
            );
            if event.token() == LISTENER {
                // Accept until WouldBlock, like reads: one event may stand for several peers.
                loop {
                    match listener.accept() {
                        Ok((mut stream, from)) => {
                            println!("  accept -> {from}");
                            // Both interests, once. The reactor does the same (Core::insert_conn).
                            poll.registry().register(
                                &mut stream,
                                CONN,
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            conn = Some(stream);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            println!("  accept -> WouldBlock: no one else is waiting");
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
            } else if let (CONN, Some(stream)) = (event.token(), conn.as_mut()) {
                if !(event.is_readable() || event.is_read_closed()) {
                    continue; // only writable: we have nothing to write
                }
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) => {
                            println!("  read -> 0: EOF, the peer will send nothing more");
                            eof = true;
                            break;
                        }
                        Ok(n) => {
                            println!("  read -> {n} bytes");
                            total += n;
                            if read_once {
                                println!("  (--read-once: back to poll without draining)");
                                break;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            println!("  read -> WouldBlock: drained; wait for the next event");
                            break;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    let sent = peer.join().expect("the peer thread")?;
    println!("read {total} of {sent} bytes; EOF seen: {eof}");
    if total < sent || !eof {
        println!(
            "{} bytes and the EOF are still in the kernel, and no event will say so",
            sent - total
        );
    }
    Ok(())
}

/// The peer: connect, send 6 bytes, then 10,000 bytes, then FIN. Returns the bytes sent.
fn play_peer(addr: SocketAddr) -> io::Result<usize> {
    // A plain blocking std socket: the peer does not need an event loop.
    let mut stream = std::net::TcpStream::connect(addr)?;
    thread::sleep(STEP);
    println!("peer: sends 6 bytes");
    stream.write_all(b"hello\n")?;
    thread::sleep(STEP);
    println!("peer: sends 10000 bytes in one write");
    stream.write_all(&[b'x'; 10_000])?;
    thread::sleep(STEP);
    println!("peer: shuts down its write side (FIN)");
    stream.shutdown(Shutdown::Write)?;
    Ok(10_006)
}

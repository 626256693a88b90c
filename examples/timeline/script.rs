//! The scripted session: six ordinary blocking clients, each playing one role.
//!
//! Each role shows one thing a student should be able to find in the picture:
//!
//! | role | what it does | what the server's lane shows |
//! | --- | --- | --- |
//! | `echo 1..3` | a few messages, each echoed before the next, then close | reads and writes in pairs, then `peer closed` |
//! | `slow reader` | sends MiBs without reading, reads only later | reading paused (backpressure), then resumed |
//! | `half-close` | sends, shuts down its write side, reads the rest | `Open → PeerHalfClosed → Closing → Closed` |
//! | `reset` | closes with `SO_LINGER` 0 while its echo is in flight | `reset by peer` |
//!
//! Clients wait for what the server did (through the [`Noticeboard`]), not for a clock. The
//! few sleeps left only spread the picture in time, so that a student can tell the roles
//! apart; none of them is needed for correctness. Every byte echoed is checked.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use mio_reactor::{CloseReason, ShutdownHandle};

use crate::noticeboard::{Noticeboard, Seen};

/// What one client does. Its name is the label of its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A polite echo client (numbered from 1).
    Echo(u8),
    /// Sends a lot without reading, then reads everything.
    SlowReader,
    /// Shuts down its write side and reads the rest of the echo.
    HalfClose,
    /// Resets the connection in the middle of the stream.
    Reset,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Echo(n) => write!(f, "echo {n}"),
            Role::SlowReader => f.write_str("slow reader"),
            Role::HalfClose => f.write_str("half-close"),
            Role::Reset => f.write_str("reset"),
        }
    }
}

/// When each role starts, in milliseconds after the script starts.
const PLAN: [(u64, Role); 6] = [
    (0, Role::Echo(1)),
    (40, Role::Echo(2)),
    (80, Role::Echo(3)),
    (160, Role::SlowReader),
    (420, Role::HalfClose),
    (560, Role::Reset),
];

/// The slow reader sends until the server pauses reading it (a few MiB on Linux), then this
/// much more...
const SLOW_READER_AFTER_PAUSE: u64 = 6 * 1024 * 1024;
/// ...and gives up if the server never pauses.
const SLOW_READER_MAX: u64 = 64 * 1024 * 1024;

/// The running script: one thread per role, and a director that waits for them.
#[derive(Debug)]
pub struct Script {
    director: thread::JoinHandle<io::Result<()>>,
    roles: Arc<Mutex<HashMap<SocketAddr, Role>>>,
}

impl Script {
    /// Starts the roles against `server`. When all have finished (or one failed), the
    /// reactor is asked to shut down through `stop`, which ends the main loop.
    pub fn start(server: SocketAddr, board: Arc<Noticeboard>, stop: ShutdownHandle) -> Script {
        let roles = Arc::new(Mutex::new(HashMap::new()));
        let stage = Stage {
            server,
            board,
            roles: roles.clone(),
        };
        let director = thread::spawn(move || {
            let players: Vec<_> = PLAN
                .iter()
                .map(|&(start_ms, role)| {
                    let stage = stage.clone();
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(start_ms));
                        play(role, &stage)
                            .map_err(|err| io::Error::new(err.kind(), format!("{role}: {err}")))
                    })
                })
                .collect();
            let mut result = Ok(());
            for player in players {
                let outcome = player
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("a client panicked")));
                result = result.and(outcome);
            }
            stop.shutdown();
            result
        });
        Script { director, roles }
    }

    /// Waits for the script to end; returns which client address played which role.
    pub fn finish(self) -> io::Result<HashMap<SocketAddr, Role>> {
        self.director
            .join()
            .map_err(|_| io::Error::other("the script panicked"))??;
        let roles = self.roles.lock().expect("roles lock").clone();
        Ok(roles)
    }
}

/// What every client shares: where to connect, where to see what the server did, and where
/// to say which address plays which role.
#[derive(Debug, Clone)]
struct Stage {
    server: SocketAddr,
    board: Arc<Noticeboard>,
    roles: Arc<Mutex<HashMap<SocketAddr, Role>>>,
}

fn play(role: Role, stage: &Stage) -> io::Result<()> {
    match role {
        Role::Echo(n) => echo(n, stage),
        Role::SlowReader => slow_reader(stage),
        Role::HalfClose => half_close(stage),
        Role::Reset => reset(stage),
    }
}

/// A few messages of different sizes, each echoed before the next, then close.
fn echo(n: u8, stage: &Stage) -> io::Result<()> {
    let mut client = Client::connect(Role::Echo(n), stage, None)?;
    for (i, size) in [120, 3_000, 40_000, 600].into_iter().enumerate() {
        if i > 0 {
            pause(70);
        }
        client.round_trip(&pattern(n + i as u8, size))?;
    }
    client.close_and_expect(CloseReason::PeerClosed)
}

/// Sends a lot without reading. The echo fills our receive buffer, then the server's send
/// buffer, then the server's output buffer: past its high water mark, the server stops
/// reading us. Only then do we start reading, and the server resumes.
fn slow_reader(stage: &Stage) -> io::Result<()> {
    // A fixed receive buffer: left alone, Linux grows it to many MiB on loopback.
    let client = Client::connect(Role::SlowReader, stage, Some(64 * 1024))?;
    let mut writer = client.stream.try_clone()?;
    thread::scope(|scope| {
        // A second thread writes: a writer blocked on a full socket must not stop us from
        // reading, or neither side would ever move again.
        let sending = scope.spawn(|| -> io::Result<u64> {
            // How much the kernel buffers depends on the machine, so send until the server
            // pauses, then a little more, which waits in the kernel while it is paused.
            let (mut sent, mut until) = (0, SLOW_READER_MAX);
            while sent < until {
                if until == SLOW_READER_MAX && client.seen().pauses > 0 {
                    until = sent + SLOW_READER_AFTER_PAUSE;
                }
                writer.write_all(&stream_bytes(sent, 64 * 1024))?;
                sent += 64 * 1024;
            }
            writer.shutdown(Shutdown::Write)?;
            Ok(sent)
        });
        client.wait_for("reading paused", |seen| seen.pauses > 0)?;
        pause(200); // keep not reading, so that the pause shows
        let received = read_stream(&client)?;
        let sent = sending
            .join()
            .map_err(|_| io::Error::other("writer panicked"))??;
        if received == sent {
            Ok(())
        } else {
            Err(io::Error::other(format!("{received} B echoed of {sent} B")))
        }
    })?;
    client.expect_closed(CloseReason::PeerClosed)
}

/// Reads to EOF, checking every byte against [`stream_bytes`]; returns the count. Reads at
/// a limited pace while the server is still sending, so that its pausing and resuming shows.
fn read_stream(client: &Client<'_>) -> io::Result<u64> {
    let mut buf = vec![0; 128 * 1024];
    let mut received = 0;
    loop {
        let n = (&client.stream).read(&mut buf)?;
        if n == 0 {
            return Ok(received);
        }
        if buf[..n] != stream_bytes(received, n)[..] {
            return Err(io::Error::other(format!("echo differs after {received} B")));
        }
        received += n as u64;
        if client.seen().closed.is_none() {
            pause(2);
        }
    }
}

/// Talks a little, then sends a last message and its FIN at once, and reads the rest of the
/// echo only after the server has seen the FIN. Half-closed, the server may still write: it
/// echoes the last message, then closes (the default `on_eof`). On loopback the kernel's
/// buffers take the whole echo, so all of that happens in one turn; the echo then waits in
/// our receive buffer until we read it.
fn half_close(stage: &Stage) -> io::Result<()> {
    let mut client = Client::connect(Role::HalfClose, stage, None)?;
    client.round_trip(&pattern(21, 300))?;
    pause(60);
    client.round_trip(&pattern(22, 5_000))?;
    pause(60);
    // Under the high water mark: the server never pauses reading before it sees our FIN,
    // which we wait for.
    let last = pattern(23, 60 * 1024);
    client.stream.write_all(&last)?;
    client.stream.shutdown(Shutdown::Write)?;
    client.wait_for("EOF read", |seen| seen.eof)?;
    pause(60); // the echo waits in the kernel
    let mut rest = Vec::new();
    client.stream.read_to_end(&mut rest)?;
    check_echo(&rest, &last)?;
    client.expect_closed(CloseReason::PeerClosed)
}

/// Talks a little, then sends a bigger message and, as soon as its echo starts flowing,
/// closes with `SO_LINGER` 0: the kernel sends a reset instead of a FIN.
fn reset(stage: &Stage) -> io::Result<()> {
    let mut client = Client::connect(Role::Reset, stage, None)?;
    let mut sent = 0;
    for i in 0..3u8 {
        if i > 0 {
            pause(50);
        }
        let message = pattern(30 + i, 1_000);
        client.round_trip(&message)?;
        sent += message.len() as u64;
    }
    pause(50);
    client.stream.write_all(&pattern(40, 100 * 1024))?;
    client.wait_for("echo started", |seen| seen.bytes_out > sent)?;
    socket2::SockRef::from(&client.stream).set_linger(Some(Duration::ZERO))?;
    let Client { stream, local, .. } = client;
    drop(stream);
    expect(&stage.board, local, CloseReason::Reset)
}

/// One client's socket, and its own address: the `peer` the server knows it by.
struct Client<'a> {
    stream: TcpStream,
    local: SocketAddr,
    board: &'a Noticeboard,
}

impl<'a> Client<'a> {
    /// Connects, with a small receive buffer if asked, and says which role this address
    /// plays. Every read and write gets a timeout, so that a broken run fails.
    fn connect(role: Role, stage: &'a Stage, receive_buffer: Option<usize>) -> io::Result<Self> {
        let stream = match receive_buffer {
            None => TcpStream::connect(stage.server)?,
            Some(size) => {
                // The buffer must be set before connecting: it decides the window announced
                // in the handshake.
                let socket = socket2::Socket::new(
                    socket2::Domain::for_address(stage.server),
                    socket2::Type::STREAM,
                    None,
                )?;
                socket.set_recv_buffer_size(size)?;
                socket.connect(&stage.server.into())?;
                socket.into()
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.set_write_timeout(Some(Duration::from_secs(5)))?;
        let local = stream.local_addr()?;
        stage.roles.lock().expect("roles lock").insert(local, role);
        Ok(Client {
            stream,
            local,
            board: &stage.board,
        })
    }

    /// Sends `message` and reads its echo, checked.
    fn round_trip(&mut self, message: &[u8]) -> io::Result<()> {
        self.stream.write_all(message)?;
        let mut echoed = vec![0; message.len()];
        self.stream.read_exact(&mut echoed)?;
        check_echo(&echoed, message)
    }

    /// What the server has done to us so far.
    fn seen(&self) -> Seen {
        self.board.seen(self.local)
    }

    fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) -> io::Result<Seen> {
        self.board.wait_until(self.local, what, done)
    }

    /// Closes our socket (a FIN) and checks how the server ended the connection.
    fn close_and_expect(self, reason: CloseReason) -> io::Result<()> {
        let Client {
            stream,
            local,
            board,
        } = self;
        drop(stream);
        expect(board, local, reason)
    }

    /// Checks how the server ended the connection.
    fn expect_closed(&self, reason: CloseReason) -> io::Result<()> {
        expect(self.board, self.local, reason)
    }
}

fn expect(board: &Noticeboard, local: SocketAddr, reason: CloseReason) -> io::Result<()> {
    let seen = board.wait_until(local, "close", |seen| seen.closed.is_some())?;
    match seen.closed {
        Some(closed) if closed == reason => Ok(()),
        other => Err(io::Error::other(format!(
            "closed as {other:?}, expected {reason:?}"
        ))),
    }
}

fn check_echo(echoed: &[u8], sent: &[u8]) -> io::Result<()> {
    if echoed == sent {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "echo differs: {} B back for {} B sent",
            echoed.len(),
            sent.len()
        )))
    }
}

/// Bytes that differ from one message to the next, so that a mixed-up echo shows.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i * 31 + i / 251 + seed as usize * 7) as u8)
        .collect()
}

/// `len` bytes of an endless stream, from `offset`: what the slow reader sends.
fn stream_bytes(offset: u64, len: usize) -> Vec<u8> {
    (offset..offset + len as u64)
        .map(|i| (i * 17 + i / 509) as u8)
        .collect()
}

/// A pause that only spreads the picture in time.
fn pause(ms: u64) {
    thread::sleep(Duration::from_millis(ms));
}

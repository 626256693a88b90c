//! How a client thread waits for something the *server* did, instead of sleeping and hoping.
//!
//! The reactor's observer runs inside the loop and sees every record. For each client
//! (known by its address, which is the server's `peer`) it keeps a few counters here: bytes
//! the server wrote to it, how often reading paused, how the connection closed. A client
//! thread then waits, with a bound, until the counters say what it needs ("the server has
//! stopped reading me"), the way a test waits on a condition rather than on a clock.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio_reactor::{CloseReason, ConnId, Record};

/// How long any wait may take. A healthy run never comes close; a broken one fails instead
/// of hanging.
const WAIT: Duration = Duration::from_secs(5);

/// What the server has done to one client so far.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Bytes the server handed to the kernel for this client.
    pub bytes_out: u64,
    /// Times the server paused reading this client (backpressure).
    pub pauses: u32,
    /// Times it resumed.
    pub resumes: u32,
    /// The server has read this client's EOF.
    pub eof: bool,
    /// Why the server closed the connection, once it has.
    pub closed: Option<CloseReason>,
}

/// Counters per client, written by the observer (on the loop's thread), read by clients.
#[derive(Debug, Default)]
pub struct Noticeboard {
    seen: Mutex<HashMap<SocketAddr, Seen>>,
    changed: Condvar,
}

impl Noticeboard {
    /// Updates what was seen for `peer` and wakes the waiting clients.
    pub fn post(&self, peer: SocketAddr, update: impl FnOnce(&mut Seen)) {
        let mut seen = self.seen.lock().expect("noticeboard lock");
        update(seen.entry(peer).or_default());
        self.changed.notify_all();
    }

    /// What was seen for `peer` so far.
    pub fn seen(&self, peer: SocketAddr) -> Seen {
        let seen = self.seen.lock().expect("noticeboard lock");
        seen.get(&peer).cloned().unwrap_or_default()
    }

    /// Waits until `done` holds for `peer` (a client's own local address), at most [`WAIT`].
    /// `what` names the condition in the error.
    pub fn wait_until(
        &self,
        peer: SocketAddr,
        what: &str,
        done: impl Fn(&Seen) -> bool,
    ) -> io::Result<Seen> {
        let deadline = Instant::now() + WAIT;
        let mut seen = self.seen.lock().expect("noticeboard lock");
        loop {
            let current = seen.get(&peer).cloned().unwrap_or_default();
            if done(&current) {
                return Ok(current);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{peer}: waited {WAIT:?} for the server: {what} ({current:?})"),
                ));
            }
            seen = self
                .changed
                .wait_timeout(seen, left)
                .expect("noticeboard lock")
                .0;
        }
    }
}

/// The observer's half: turns the reactor's records into the counters clients wait on.
#[derive(Debug)]
pub struct Watcher {
    board: Arc<Noticeboard>,
    /// Which client each connection serves, learnt from `Accepted`.
    peers: HashMap<ConnId, SocketAddr>,
}

impl Watcher {
    /// A watcher posting to `board`.
    pub fn new(board: Arc<Noticeboard>) -> Watcher {
        Watcher {
            board,
            peers: HashMap::new(),
        }
    }

    /// Called by the observer for every record.
    pub fn record(&mut self, record: &Record) {
        match record {
            Record::Accepted { conn, peer } => {
                if let Some(addr) = peer.tcp() {
                    self.peers.insert(*conn, addr);
                }
            }
            Record::Write { conn, bytes, .. } => {
                self.post(conn, |seen| seen.bytes_out += *bytes as u64)
            }
            Record::Read { conn, bytes: 0, .. } => self.post(conn, |seen| seen.eof = true),
            Record::ReadingPaused { conn, .. } => self.post(conn, |seen| seen.pauses += 1),
            Record::ReadingResumed { conn } => self.post(conn, |seen| seen.resumes += 1),
            Record::Closed { conn, reason, .. } => {
                self.post(conn, |seen| seen.closed = Some(reason.clone()))
            }
            _ => {}
        }
    }

    fn post(&self, conn: &ConnId, update: impl FnOnce(&mut Seen)) {
        if let Some(&peer) = self.peers.get(conn) {
            self.board.post(peer, update);
        }
    }
}

//! A swarm of scripted TCP clients on one `mio::Poll`: thousands of connections from one
//! thread, each following its own script (send, pause, wait for the echo, stop reading,
//! half-close, reset...) and checking every byte that comes back against what it sent.
//!
//! The swarm is deliberately *not* built on `mio_reactor`: the clients that judge the
//! reactor should not share its bugs. It is a plain edge-triggered loop: flags set by
//! events, cleared by `WouldBlock`.
//!
//! Each client sends a [`Pattern`] and expects its echo to be a prefix of what it sent (a
//! line server echoes only complete lines; that is still a prefix). Any other byte, or a
//! byte more than was sent, ends the client with [`End::Corrupt`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, SockRef, Socket, Type};

use super::pattern::{Fnv, Pattern};

/// One step of a client's script. Steps run in order; each waits until it is done.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send the next `n` bytes of the pattern; done once the kernel took them all.
    Send(u64),
    /// Wait this long.
    Pause(Duration),
    /// Wait until everything sent so far has come back.
    AwaitEcho,
    /// Wait until the driver opens the gate ([`Swarm::open_gate`]).
    AwaitGate,
    /// Stop reading: the echo piles up in the kernel, then in the server.
    StopReading,
    /// Read again.
    StartReading,
    /// Shut down the write side (send a FIN); reading goes on.
    HalfClose,
    /// Wait for the server's EOF.
    AwaitEof,
    /// Close with `SO_LINGER` 0, which sends a reset; the script ends here.
    Reset,
    /// Send `chunk` bytes every `every`, forever: a paced stream (one byte at a time: a
    /// slowloris). Never done: the server's EOF or reset ends it.
    Stream { chunk: u64, every: Duration },
}

/// How a client ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The script ran to its end; the socket was closed (or reset, if the script said so).
    Done,
    /// The server closed (EOF) while the script still had steps to run.
    ServerClosed,
    /// The server reset the connection (`ECONNRESET`, `EPIPE`).
    ServerReset,
    /// The echo differed from what was sent at this offset (or went past it).
    Corrupt(u64),
    /// The connect failed.
    ConnectFailed(io::ErrorKind),
    /// Any other socket error.
    Error(io::ErrorKind),
}

/// One scripted client and what happened to it.
pub struct Peer {
    pub target: SocketAddr,
    pub source: Option<IpAddr>,
    /// The client's own address once connected: the server's name for it.
    pub local: Option<SocketAddr>,
    pub connected: bool,
    pub sent: u64,
    pub received: u64,
    /// FNV-1a of the bytes sent and received, if [`Swarm::hash`] is on.
    pub sent_hash: Fnv,
    pub received_hash: Fnv,
    pub end: Option<End>,
    pub ended_at: Option<Instant>,
    script: Vec<Step>,
    step: usize,
    step_started: bool,
    stream: Option<TcpStream>,
    sender: Pattern,
    checker: Pattern,
    /// Generated but not yet taken by the kernel.
    pending: Vec<u8>,
    pending_at: usize,
    /// Bytes of the current `Send` (or trickle) not generated yet.
    to_send: u64,
    reading: bool,
    /// Compare what comes back with what was sent (off for a peer whose reply is not an
    /// echo, such as a protocol error).
    checking: bool,
    readable: bool,
    writable: bool,
    /// An event carried an error or hang-up: ask the socket (even a peer that does not read
    /// must notice a reset).
    error_hint: bool,
    eof: bool,
    wake_at: Option<Instant>,
}

impl Peer {
    /// Whether everything sent so far came back.
    pub fn echoed_all(&self) -> bool {
        self.sent > 0 && self.received == self.sent
    }

    fn current(&self) -> Option<&Step> {
        self.script.get(self.step)
    }
}

/// Many scripted clients driven by one poll loop.
pub struct Swarm {
    poll: Poll,
    events: Events,
    peers: Vec<Peer>,
    /// Peers not connecting yet: connects are started a window at a time, so that a burst
    /// stays well within the server's accept backlog (1024) and no SYN is dropped.
    waiting: VecDeque<usize>,
    connecting: usize,
    /// Connects in flight at most.
    pub max_connecting: usize,
    /// `SO_RCVBUF` and `SO_SNDBUF` for new sockets (`None`: the kernel's autotuning). Small
    /// buffers keep what is in flight per connection small.
    pub socket_buffer: Option<usize>,
    /// Keep FNV-1a hashes of what each client sent and received (costs more CPU than the
    /// byte-by-byte check, which is always done).
    pub hash: bool,
    gate_open: bool,
    wakes: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Clients that used up their budget with work left: driven again next turn (no new
    /// edge will come for it), so that one fast client cannot starve the others.
    again: Vec<usize>,
    read_buf: Vec<u8>,
    expected: Vec<u8>,
    connected: usize,
    ended: usize,
}

const CHUNK: usize = 64 * 1024;

/// Read-write rounds one client gets per turn before the others have theirs.
const ROUNDS: usize = 4;

impl Swarm {
    pub fn new() -> io::Result<Swarm> {
        Ok(Swarm {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            peers: Vec::new(),
            waiting: VecDeque::new(),
            connecting: 0,
            max_connecting: 64,
            hash: false,
            socket_buffer: None,
            gate_open: false,
            wakes: BinaryHeap::new(),
            again: Vec::new(),
            read_buf: vec![0; CHUNK],
            expected: vec![0; CHUNK],
            connected: 0,
            ended: 0,
        })
    }

    /// Adds a client that will connect to `target` (from `source`, port 0, if given),
    /// send `pattern` and follow `script`. Returns its index.
    pub fn add(
        &mut self,
        target: SocketAddr,
        source: Option<IpAddr>,
        pattern: Pattern,
        script: Vec<Step>,
    ) -> usize {
        let index = self.peers.len();
        self.peers.push(Peer {
            target,
            source,
            local: None,
            connected: false,
            sent: 0,
            received: 0,
            sent_hash: Fnv::default(),
            received_hash: Fnv::default(),
            end: None,
            ended_at: None,
            script,
            step: 0,
            step_started: false,
            stream: None,
            checker: pattern.clone(),
            sender: pattern,
            pending: Vec::new(),
            pending_at: 0,
            to_send: 0,
            reading: true,
            checking: true,
            readable: false,
            writable: false,
            error_hint: false,
            eof: false,
            wake_at: None,
        });
        self.waiting.push_back(index);
        index
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Clients whose connect completed.
    pub fn connected(&self) -> usize {
        self.connected
    }

    /// Clients that ended, for whatever reason.
    pub fn ended(&self) -> usize {
        self.ended
    }

    /// Clients matching `keep`.
    pub fn count(&self, keep: impl Fn(&Peer) -> bool) -> usize {
        self.peers.iter().filter(|peer| keep(peer)).count()
    }

    /// Lets every client waiting at [`Step::AwaitGate`] (and any that gets there later) go on.
    pub fn open_gate(&mut self) {
        self.gate_open = true;
        for index in 0..self.peers.len() {
            self.drive(index);
        }
    }

    /// Counts what comes back to this client without comparing it with what it sent.
    pub fn ignore_echo(&mut self, index: usize) {
        self.peers[index].checking = false;
    }

    /// Makes a client read again (or stop), whatever its script says.
    pub fn set_reading(&mut self, index: usize, reading: bool) {
        let peer = &mut self.peers[index];
        peer.reading = reading;
        // Bytes that arrived meanwhile raised their edge already: try a read.
        peer.readable |= reading;
        self.drive(index);
    }

    /// Runs the loop until `done` says so (`Ok(true)`) or `limit` passes (`Ok(false)`).
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut done: impl FnMut(&Swarm) -> bool,
    ) -> io::Result<bool> {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            self.turn((deadline - now).min(Duration::from_millis(20)))?;
        }
    }

    /// Runs the loop for `duration`.
    pub fn run_for(&mut self, duration: Duration) -> io::Result<()> {
        self.run_until(duration, |_| false).map(|_| ())
    }

    /// One iteration: start connects, poll, handle events and due wake-ups.
    fn turn(&mut self, max_wait: Duration) -> io::Result<()> {
        self.start_connects();
        let now = Instant::now();
        let timeout = match self.wakes.peek() {
            _ if !self.again.is_empty() => Duration::ZERO,
            Some(Reverse((at, _))) => at.saturating_duration_since(now).min(max_wait),
            None => max_wait,
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
        let ready: Vec<usize> = self
            .events
            .iter()
            .map(|event| {
                let peer = &mut self.peers[event.token().0];
                let hint = event.is_error() || event.is_read_closed() || event.is_write_closed();
                peer.readable |= event.is_readable() || hint;
                peer.writable |= event.is_writable() || hint;
                peer.error_hint |= event.is_error();
                event.token().0
            })
            .collect();
        for index in std::mem::take(&mut self.again).into_iter().chain(ready) {
            self.drive(index);
        }
        let now = Instant::now();
        while let Some(&Reverse((at, index))) = self.wakes.peek() {
            if at > now {
                break;
            }
            self.wakes.pop();
            self.drive(index);
        }
        Ok(())
    }

    fn start_connects(&mut self) {
        while self.connecting < self.max_connecting {
            let Some(index) = self.waiting.pop_front() else {
                return;
            };
            match self.open_socket(index) {
                Ok(()) => self.connecting += 1,
                Err(err) => self.finish(index, End::ConnectFailed(err.kind())),
            }
        }
    }

    /// A non-blocking connect, bound to the client's source address first if it has one.
    fn open_socket(&mut self, index: usize) -> io::Result<()> {
        let peer = &mut self.peers[index];
        let socket = Socket::new(Domain::for_address(peer.target), Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        // Each piece leaves as it is written: fragmentation must reach the server as sent.
        socket.set_nodelay(true)?;
        if let Some(size) = self.socket_buffer {
            socket.set_recv_buffer_size(size)?;
            socket.set_send_buffer_size(size)?;
        }
        if let Some(ip) = peer.source {
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match socket.connect(&peer.target.into()) {
            Ok(()) => {}
            Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(err) => return Err(err),
        }
        let mut stream = TcpStream::from_std(socket.into());
        self.poll.registry().register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        peer.stream = Some(stream);
        Ok(())
    }

    /// Does everything the client can do now: finish its connect, read, write, run steps.
    fn drive(&mut self, index: usize) {
        if self.peers[index].end.is_some() || self.peers[index].stream.is_none() {
            return;
        }
        if !self.peers[index].connected && !self.check_connect(index) {
            return;
        }
        for round in 0.. {
            if round == ROUNDS {
                self.again.push(index);
                return;
            }
            if let Some(end) = self.check_error(index) {
                return self.finish(index, end);
            }
            let read = match self.read(index) {
                Ok(progress) => progress,
                Err(end) => return self.finish(index, end),
            };
            let written = match self.write(index) {
                Ok(progress) => progress,
                Err(end) => return self.finish(index, end),
            };
            let stepped = match self.advance(index) {
                Ok(progress) => progress,
                Err(end) => return self.finish(index, end),
            };
            if !(read || written || stepped) {
                break;
            }
        }
        if self.peers[index].eof {
            // The server's EOF came and no step is waiting for it.
            self.finish(index, End::ServerClosed);
        }
    }

    /// Whether the connect completed; a failure ends the client.
    fn check_connect(&mut self, index: usize) -> bool {
        let peer = &mut self.peers[index];
        if !peer.writable && !peer.readable {
            return false;
        }
        let stream = peer
            .stream
            .as_ref()
            .expect("connecting clients have a socket");
        let outcome = match stream.take_error() {
            Ok(Some(err)) | Err(err) => Err(err),
            Ok(None) => stream.peer_addr().map(|_| ()),
        };
        match outcome {
            Ok(()) => {
                peer.connected = true;
                peer.local = stream.local_addr().ok();
                peer.error_hint = false;
                self.connecting -= 1;
                self.connected += 1;
                true
            }
            Err(err) if err.kind() == io::ErrorKind::NotConnected => {
                peer.readable = false;
                peer.writable = false;
                false
            }
            Err(err) => {
                self.connecting -= 1;
                self.finish(index, End::ConnectFailed(err.kind()));
                false
            }
        }
    }

    /// A reset reaches a client that does not read only through `SO_ERROR`.
    fn check_error(&mut self, index: usize) -> Option<End> {
        let peer = &mut self.peers[index];
        if !std::mem::take(&mut peer.error_hint) {
            return None;
        }
        match peer.stream.as_ref()?.take_error() {
            Ok(Some(err)) | Err(err) => Some(classify(&err)),
            Ok(None) => None,
        }
    }

    /// Reads and checks everything available. Returns whether anything happened.
    fn read(&mut self, index: usize) -> Result<bool, End> {
        let peer = &mut self.peers[index];
        let mut progress = false;
        let mut budget = CHUNK;
        while peer.reading && peer.readable && !peer.eof && budget > 0 {
            let stream = peer
                .stream
                .as_mut()
                .expect("connected clients have a socket");
            match stream.read(&mut self.read_buf) {
                Ok(0) => {
                    peer.eof = true;
                    progress = true;
                }
                Ok(n) => {
                    progress = true;
                    budget = budget.saturating_sub(n);
                    let got = &self.read_buf[..n];
                    if peer.checking {
                        if peer.received + n as u64 > peer.sent {
                            return Err(End::Corrupt(peer.sent));
                        }
                        let expected = &mut self.expected[..n];
                        peer.checker.fill(expected);
                        if got != expected {
                            let at = got.iter().zip(expected.iter()).position(|(a, b)| a != b);
                            return Err(End::Corrupt(peer.received + at.unwrap_or(0) as u64));
                        }
                    }
                    if self.hash {
                        peer.received_hash.update(got);
                    }
                    peer.received += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => peer.readable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(classify(&err)),
            }
        }
        Ok(progress)
    }

    /// Writes what the current step wants sent. Returns whether anything was written.
    fn write(&mut self, index: usize) -> Result<bool, End> {
        let peer = &mut self.peers[index];
        let mut progress = false;
        let mut budget = CHUNK;
        while peer.writable
            && (peer.pending_at < peer.pending.len() || peer.to_send > 0)
            && budget > 0
        {
            if peer.pending_at == peer.pending.len() {
                let n = peer.to_send.min(CHUNK as u64) as usize;
                peer.pending.resize(n, 0);
                peer.sender.fill(&mut peer.pending);
                peer.pending_at = 0;
                peer.to_send -= n as u64;
            }
            let stream = peer
                .stream
                .as_mut()
                .expect("connected clients have a socket");
            match stream.write(&peer.pending[peer.pending_at..]) {
                Ok(n) => {
                    progress = true;
                    budget = budget.saturating_sub(n);
                    if self.hash {
                        let written = &peer.pending[peer.pending_at..peer.pending_at + n];
                        peer.sent_hash.update(written);
                    }
                    peer.sent += n as u64;
                    peer.pending_at += n;
                    if peer.pending_at == peer.pending.len() {
                        peer.pending = Vec::new();
                        peer.pending_at = 0;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => peer.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(classify(&err)),
            }
        }
        Ok(progress)
    }

    /// Runs script steps as far as they can go now. Returns whether any step finished.
    fn advance(&mut self, index: usize) -> Result<bool, End> {
        let now = Instant::now();
        let gate_open = self.gate_open;
        let peer = &mut self.peers[index];
        let mut progress = false;
        loop {
            let Some(step) = peer.current().cloned() else {
                return Err(End::Done);
            };
            let first_visit = !std::mem::replace(&mut peer.step_started, true);
            let done = match step {
                Step::Send(n) => {
                    if first_visit {
                        // New bytes to write: the writer must run again.
                        peer.to_send = n;
                        progress = true;
                    }
                    peer.to_send == 0 && peer.pending.is_empty()
                }
                Step::Pause(delay) => {
                    if first_visit {
                        peer.wake_at = Some(now + delay);
                        self.wakes.push(Reverse((now + delay, index)));
                    }
                    peer.wake_at.is_some_and(|at| now >= at)
                }
                Step::AwaitEcho => peer.received == peer.sent,
                Step::AwaitGate => gate_open,
                Step::StopReading => {
                    peer.reading = false;
                    true
                }
                Step::StartReading => {
                    peer.reading = true;
                    peer.readable = true;
                    true
                }
                Step::HalfClose => {
                    let stream = peer
                        .stream
                        .as_ref()
                        .expect("connected clients have a socket");
                    if let Err(err) = stream.shutdown(Shutdown::Write) {
                        return Err(classify(&err));
                    }
                    true
                }
                Step::AwaitEof => {
                    if peer.eof {
                        // Expected: not a reason to end early.
                        peer.eof = false;
                        peer.reading = false;
                        true
                    } else {
                        false
                    }
                }
                Step::Reset => {
                    if let Some(stream) = peer.stream.as_ref() {
                        let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
                    }
                    return Err(End::Done);
                }
                Step::Stream { chunk, every } => {
                    let due = peer.wake_at.is_none_or(|at| now >= at);
                    if due && peer.to_send == 0 && peer.pending.is_empty() {
                        peer.to_send = chunk;
                        peer.wake_at = Some(now + every);
                        self.wakes.push(Reverse((now + every, index)));
                        progress = true;
                    }
                    false
                }
            };
            if !done {
                return Ok(progress);
            }
            progress = true;
            peer.step += 1;
            peer.step_started = false;
            peer.wake_at = None;
        }
    }

    /// Records how the client ended and closes its socket.
    fn finish(&mut self, index: usize, end: End) {
        let peer = &mut self.peers[index];
        if peer.end.is_some() {
            return;
        }
        peer.end = Some(end);
        peer.ended_at = Some(Instant::now());
        peer.pending = Vec::new();
        if let Some(mut stream) = peer.stream.take() {
            let _ = self.poll.registry().deregister(&mut stream);
        }
        self.ended += 1;
    }
}

fn classify(err: &io::Error) -> End {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => End::ServerReset,
        kind => End::Error(kind),
    }
}

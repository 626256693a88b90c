//! Writes gathered per callback: what a handler writes during one callback (or to another
//! connection during one dispatch) leaves in one system call when it returns, and never
//! waits for the loop's next poll.
//!
//! The trace records count the system calls: one [`Record::Write`] per `write`/`writev`.
//! Each record is kept with the number of polls before it, so that "before the next poll"
//! is a comparison of two numbers.

mod util;

use std::cell::RefCell;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio_reactor::{
    CloseReason, ConnId, Context, Handler, ListenOptions, Reactor, Record, TimerId, TimerKind,
    TimerTarget,
};
use util::{client, init_logging, loopback, WAIT};

/// Every record, with the number of polls the loop had started before it.
type Log = Rc<RefCell<Vec<(u64, Record)>>>;

/// A reactor driven by the test, observed.
struct Observed {
    reactor: Reactor,
    log: Log,
}

impl Observed {
    fn new() -> Observed {
        init_logging();
        let log = Log::default();
        let sink = log.clone();
        let mut polls = 0;
        let mut reactor = Reactor::new().unwrap();
        reactor.set_observer(move |_: Instant, record: &Record| {
            if matches!(record, Record::TurnStart { .. }) {
                polls += 1;
            }
            sink.borrow_mut().push((polls, record.clone()));
        });
        Observed { reactor, log }
    }

    /// Turns the loop until `client` is done, and returns what it returned.
    fn serve<T>(&mut self, client: JoinHandle<T>) -> T {
        let deadline = Instant::now() + WAIT;
        while !client.is_finished() {
            assert!(Instant::now() < deadline, "the client did not finish");
            self.reactor.turn(Some(Duration::from_millis(10))).unwrap();
        }
        client.join().unwrap()
    }

    /// The write system calls made to `conn` that sent bytes: (polls before, bytes).
    fn writes(&self, conn: ConnId) -> Vec<(u64, usize)> {
        self.log
            .borrow()
            .iter()
            .filter_map(|(polls, record)| match record {
                Record::Write { conn: c, bytes, .. } if *c == conn && *bytes > 0 => {
                    Some((*polls, *bytes))
                }
                _ => None,
            })
            .collect()
    }

    /// The reads from `conn` that returned bytes: (polls before, bytes).
    fn reads(&self, conn: ConnId) -> Vec<(u64, usize)> {
        self.log
            .borrow()
            .iter()
            .filter_map(|(polls, record)| match record {
                Record::Read { conn: c, bytes, .. } if *c == conn && *bytes > 0 => {
                    Some((*polls, *bytes))
                }
                _ => None,
            })
            .collect()
    }

    /// The connections accepted, in order, with the polls before each.
    fn accepted(&self) -> Vec<(u64, ConnId)> {
        self.log
            .borrow()
            .iter()
            .filter_map(|(polls, record)| match record {
                Record::Accepted { conn, .. } => Some((*polls, *conn)),
                _ => None,
            })
            .collect()
    }

    /// Pieces buffered for `conn` to leave at the end of the callback.
    fn gathered(&self, conn: ConnId) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|(_, record)| {
                matches!(record, Record::Buffered { conn: c, gathered: true, .. } if *c == conn)
            })
            .count()
    }
}

/// Answers each line with two writes, "> " and the line: one line per call, so pipelined
/// lines are answered by several calls over one read.
struct Quoting;

impl Handler for Quoting {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        ctx.write(b"> ");
        ctx.write(&data[..=end]);
        end + 1
    }
}

/// Sends `lines` in one write and reads `reply_len` bytes back.
fn ask(addr: std::net::SocketAddr, lines: String, reply_len: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(lines.as_bytes()).unwrap();
        let mut reply = vec![0; reply_len];
        stream.read_exact(&mut reply).unwrap();
        reply
    })
}

#[test]
fn the_pieces_of_one_callback_leave_in_one_system_call() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Quoting))
        .unwrap()
        .local_addr()
        .unwrap();
    let reply = observed.serve(ask(addr, "hello\n".into(), 8));
    assert_eq!(reply, b"> hello\n");
    let conn = observed.accepted()[0].1;
    assert_eq!(observed.gathered(conn), 2, "two pieces written");
    assert_eq!(observed.writes(conn), [(observed.writes(conn)[0].0, 8)]);
}

#[test]
fn pipelined_replies_to_one_read_leave_in_one_system_call() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Quoting))
        .unwrap()
        .local_addr()
        .unwrap();
    let lines: String = (0..16).map(|i| format!("request {i:02}\n")).collect();
    let expected: String = (0..16).map(|i| format!("> request {i:02}\n")).collect();
    let reply = observed.serve(ask(addr, lines, expected.len()));
    assert_eq!(reply, expected.as_bytes());
    let conn = observed.accepted()[0].1;
    let (reads, writes) = (observed.reads(conn), observed.writes(conn));
    assert_eq!(
        observed.gathered(conn),
        32,
        "sixteen replies in two pieces each"
    );
    assert_eq!(
        writes.len(),
        reads.len(),
        "one write per read: {reads:?} {writes:?}"
    );
    let written: usize = writes.iter().map(|(_, bytes)| bytes).sum();
    assert_eq!(written, expected.len());
}

#[test]
fn a_reply_leaves_before_the_loop_polls_again() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Quoting))
        .unwrap()
        .local_addr()
        .unwrap();
    let rounds = 20;
    let client = std::thread::spawn(move || {
        let mut stream = client(addr);
        for _ in 0..rounds {
            stream.write_all(b"ping\n").unwrap();
            let mut pong = [0; 7];
            stream.read_exact(&mut pong).unwrap();
            assert_eq!(&pong, b"> ping\n");
        }
    });
    observed.serve(client);
    let conn = observed.accepted()[0].1;
    let (reads, writes) = (observed.reads(conn), observed.writes(conn));
    assert_eq!(reads.len(), rounds, "one ping per read: {reads:?}");
    let read_polls: Vec<u64> = reads.iter().map(|(polls, _)| *polls).collect();
    let write_polls: Vec<u64> = writes.iter().map(|(polls, _)| *polls).collect();
    assert_eq!(
        write_polls, read_polls,
        "each pong leaves in its ping's turn"
    );
}

/// Greets in two pieces from `on_open`, then says "tick tock" in two pieces from a timer.
struct Greeter;

impl Handler for Greeter {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"hello, ");
        ctx.write(b"stranger\n");
        ctx.set_timer(Duration::from_millis(1));
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }

    fn on_timer(&mut self, ctx: &mut Context<'_>, _: TimerId) {
        ctx.write(b"tick ");
        ctx.write(b"tock\n");
    }
}

/// Reads exactly `len` bytes from a new connection.
fn listen_to(addr: std::net::SocketAddr, len: usize) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut stream = client(addr);
        let mut heard = vec![0; len];
        stream.read_exact(&mut heard).unwrap();
        heard
    })
}

#[test]
fn a_greeting_from_on_open_leaves_in_one_system_call_before_the_next_poll() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Greeter))
        .unwrap()
        .local_addr()
        .unwrap();
    let heard = observed.serve(listen_to(addr, 26));
    assert_eq!(heard, b"hello, stranger\ntick tock\n");
    let (accepted_at, conn) = observed.accepted()[0];
    assert_eq!(observed.writes(conn)[0], (accepted_at, 16));
}

#[test]
fn a_timers_writes_leave_in_one_system_call_before_the_next_poll() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Greeter))
        .unwrap()
        .local_addr()
        .unwrap();
    observed.serve(listen_to(addr, 26));
    let conn = observed.accepted()[0].1;
    let fired_at = observed
        .log
        .borrow()
        .iter()
        .find_map(|(polls, record)| match record {
            Record::TimerFired {
                kind: TimerKind::User,
                target: Some(TimerTarget::Conn(c)),
            } if *c == conn => Some(*polls),
            _ => None,
        })
        .expect("the timer fired");
    assert_eq!(observed.writes(conn)[1], (fired_at, 10));
}

/// A room: each line a member sends goes to every other member as "#id: " and the line,
/// and a member that leaves is announced the same way, from its `on_close`. A member is
/// welcomed when it is in.
struct Member {
    room: Rc<RefCell<Vec<ConnId>>>,
}

impl Member {
    fn tell_others(&self, ctx: &mut Context<'_>, line: &[u8]) {
        let me = ctx.id();
        let speaker = format!("{me}: ");
        for &other in self.room.borrow().iter().filter(|&&id| id != me) {
            ctx.write_to(other, speaker.as_bytes()).unwrap();
            ctx.write_to(other, line).unwrap();
        }
    }
}

impl Handler for Member {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        self.room.borrow_mut().push(ctx.id());
        ctx.write(b"welcome\n");
    }

    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        self.tell_others(ctx, &data[..=end]);
        end + 1
    }

    fn on_close(&mut self, ctx: &mut Context<'_>, _: &CloseReason) {
        let me = ctx.id();
        self.room.borrow_mut().retain(|&id| id != me);
        self.tell_others(ctx, b"left\n");
    }
}

/// Bob joins; Alice joins, says "hi bob" and leaves; Bob returns the two lines he heard.
fn bob_and_alice(addr: std::net::SocketAddr) -> JoinHandle<[String; 2]> {
    std::thread::spawn(move || {
        let join = || {
            let mut member = BufReader::new(client(addr));
            let mut welcome = String::new();
            member.read_line(&mut welcome).unwrap();
            assert_eq!(welcome, "welcome\n");
            member
        };
        let mut bob = join();
        let mut alice = join();
        alice.get_mut().write_all(b"hi bob\n").unwrap();
        let mut news = [String::new(), String::new()];
        bob.read_line(&mut news[0]).unwrap();
        drop(alice);
        bob.read_line(&mut news[1]).unwrap();
        news
    })
}

/// Runs [`bob_and_alice`] in a room; returns Bob's and Alice's ids.
fn chat(observed: &mut Observed) -> (ConnId, ConnId) {
    let room = Rc::new(RefCell::new(Vec::new()));
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), move |_: &_| {
            Some(Member { room: room.clone() })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let news = observed.serve(bob_and_alice(addr));
    let [(_, bob), (_, alice)] = observed.accepted()[..] else {
        panic!("two members")
    };
    assert_eq!(
        news,
        [format!("{alice}: hi bob\n"), format!("{alice}: left\n")]
    );
    (bob, alice)
}

#[test]
fn writes_to_another_connection_leave_in_one_system_call_in_the_same_turn() {
    let mut observed = Observed::new();
    let (bob, alice) = chat(&mut observed);
    let alice_said_at = observed.reads(alice)[0].0;
    let line = format!("{alice}: hi bob\n");
    assert_eq!(observed.writes(bob)[1], (alice_said_at, line.len()));
}

#[test]
fn writes_to_another_connection_from_on_close_leave_in_one_system_call() {
    let mut observed = Observed::new();
    let (bob, alice) = chat(&mut observed);
    let line = format!("{alice}: left\n");
    let writes = observed.writes(bob);
    assert_eq!(writes.len(), 3, "welcome, hi, left: {writes:?}");
    assert_eq!(writes[2].1, line.len());
}

/// Answers a line in two pieces, then `close`s or `abort`s.
struct Finisher {
    abort: bool,
}

impl Handler for Finisher {
    fn on_data(&mut self, ctx: &mut Context<'_>, data: &[u8]) -> usize {
        ctx.write(b"bad ");
        ctx.write(b"request\n");
        if self.abort {
            ctx.abort();
        } else {
            ctx.close();
        }
        data.len()
    }
}

#[test]
fn the_fin_follows_gathered_output() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| {
            Some(Finisher { abort: false })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"?\n").unwrap();
        util::read_to_end(&mut stream)
    });
    assert_eq!(observed.serve(client), b"bad request\n");
}

#[test]
fn bytes_written_before_an_abort_are_sent_before_the_reset() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| {
            Some(Finisher { abort: true })
        })
        .unwrap()
        .local_addr()
        .unwrap();
    let client = std::thread::spawn(move || {
        let mut stream = client(addr);
        stream.write_all(b"?\n").unwrap();
        let mut heard = Vec::new();
        let outcome = stream.read_to_end(&mut heard);
        (heard, outcome.map_err(|err| err.kind()))
    });
    let (heard, outcome) = observed.serve(client);
    assert_eq!(heard, b"bad request\n");
    assert_eq!(outcome, Err(ErrorKind::ConnectionReset));
}

/// Writes a short header, then a body too large to hold: both leave in one `writev`.
struct Download;

const BODY: usize = 100_000;

impl Handler for Download {
    fn on_open(&mut self, ctx: &mut Context<'_>) {
        ctx.write(b"100000 bytes:\n");
        ctx.write(&util::random_bytes(7, BODY));
    }

    fn on_data(&mut self, _: &mut Context<'_>, data: &[u8]) -> usize {
        data.len()
    }
}

#[test]
fn a_large_piece_leaves_with_the_held_ones_in_one_system_call() {
    let mut observed = Observed::new();
    let addr = observed
        .reactor
        .listen(loopback(), ListenOptions::default(), |_: &_| Some(Download))
        .unwrap()
        .local_addr()
        .unwrap();
    let heard = observed.serve(listen_to(addr, 14 + BODY));
    assert_eq!(&heard[..14], b"100000 bytes:\n");
    assert!(
        heard[14..] == util::random_bytes(7, BODY),
        "the body, in order"
    );
    let conn = observed.accepted()[0].1;
    assert_eq!(observed.gathered(conn), 1, "only the header was held");
    let first = observed.writes(conn)[0].1;
    assert!(
        first > 14,
        "the header and the body's start in one call: {first} B"
    );
}

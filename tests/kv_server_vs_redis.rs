//! The `kv_server` example against Redis itself: the same raw bytes go to both servers, and
//! every reply must be the same bytes, and every connection Redis closes must be closed.
//! Each case is named; it runs on fresh connections after a `FLUSHALL` on each server.
//!
//! Redis is the reference because it is what every client was written against: error texts
//! (`ERR wrong number of arguments for 'get' command`), the `Protocol error` replies before
//! a close, what `SET ... GET` or `EXPIRE ... GT` answer. Redis runs with one database, as
//! `kv_server` has, so that `SELECT 1` has the same answer. Times in replies (`PTTL`) are
//! compared rounded to the second; `TTL` of a key set moments earlier is exact.
//!
//! Where `redis-server` is not installed the test fails, saying so, unless
//! `KV_SKIP_REDIS_COMPARE=1` (CI installs Redis, so it runs there).

mod util;

use std::net::SocketAddr;
use std::time::Duration;

use util::redis::{command, reference_available, KvServer, Received, RedisServer, RespConnection};

/// How long one reply may take: Redis answers in microseconds, but the machine is loaded.
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// One thing a case does, on connection `.0` (connections open on first use).
#[derive(Clone)]
enum Step {
    /// Sends these bytes.
    Send(usize, Vec<u8>),
    /// Reads one whole reply.
    Reply(usize),
    /// Reads one integer reply holding milliseconds, kept rounded to the second.
    ReplyMillis(usize),
    /// The server must close the connection, with nothing more sent.
    Closed(usize),
}

/// A named exchange: bytes in, replies (and closes) out.
struct Case {
    name: &'static str,
    steps: Vec<Step>,
    connection: usize,
}

impl Case {
    fn new(name: &'static str) -> Case {
        Case {
            name,
            steps: Vec::new(),
            connection: 0,
        }
    }

    /// The following steps happen on connection `index`.
    fn on(mut self, index: usize) -> Case {
        self.connection = index;
        self
    }

    /// Sends a command (RESP array of bulk strings) and reads its one reply.
    fn call(self, args: &[&str]) -> Case {
        self.call_with_replies(args, 1)
    }

    /// Sends a command that has `replies` replies (`SUBSCRIBE a b` has two).
    fn call_with_replies(self, args: &[&str], replies: usize) -> Case {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.raw(&command(&args), replies)
    }

    /// Sends a command whose integer reply is milliseconds.
    fn call_millis(mut self, args: &[&str]) -> Case {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        self.steps.push(Step::Send(self.connection, command(&args)));
        self.steps.push(Step::ReplyMillis(self.connection));
        self
    }

    /// Sends these bytes as they are and reads `replies` replies.
    fn raw(mut self, bytes: &[u8], replies: usize) -> Case {
        self.steps.push(Step::Send(self.connection, bytes.to_vec()));
        self.replies(replies)
    }

    /// Reads `count` more replies (a message published from another connection).
    fn replies(mut self, count: usize) -> Case {
        for _ in 0..count {
            self.steps.push(Step::Reply(self.connection));
        }
        self
    }

    /// The server closes this connection now.
    fn closed(mut self) -> Case {
        self.steps.push(Step::Closed(self.connection));
        self
    }
}

/// Every case: each command's normal and error forms, the protocol's edges, pub/sub.
fn cases() -> Vec<Case> {
    let long_arg = "x".repeat(100);
    let long_arg = long_arg.as_str();
    vec![
        // Connection commands and the error every unknown or misused command gets.
        Case::new("PING with and without a message, and with too many")
            .call(&["PING"])
            .call(&["PING", "hello"])
            .call(&["PING", "a", "b"]),
        Case::new("ECHO and its wrong arities")
            .call(&["ECHO", "hi there"])
            .call(&["ECHO"])
            .call(&["ECHO", "a", "b"]),
        Case::new("command names are case-insensitive")
            .call(&["set", "k", "v"])
            .call(&["GeT", "k"])
            .call(&["pInG"]),
        Case::new("an unknown command names itself and its arguments")
            .call(&["FOO", "a", "b c"])
            .call(&["nosuchcommand"]),
        Case::new("an unknown command's arguments are cut at 128 characters")
            .call(&["FOO", long_arg, long_arg, long_arg]),
        Case::new("an empty multibulk is ignored").raw(b"*0\r\nPING\r\n", 1),
        Case::new("QUIT answers OK and closes")
            .call(&["QUIT"])
            .closed(),
        // Strings.
        Case::new("SET then GET, GET of a missing key, and their arities")
            .call(&["SET", "k", "v"])
            .call(&["GET", "k"])
            .call(&["GET", "missing"])
            .call(&["SET", "k"])
            .call(&["GET"])
            .call(&["GET", "a", "b"]),
        Case::new("values are binary-safe, and may be empty")
            .raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\0\r\nb\r\n", 1)
            .call(&["GET", "k"])
            .call(&["SET", "e", ""])
            .call(&["GET", "e"]),
        Case::new("SET NX sets only a missing key")
            .call(&["SET", "k", "v", "NX"])
            .call(&["SET", "k", "w", "nx"])
            .call(&["GET", "k"]),
        Case::new("SET XX sets only an existing key")
            .call(&["SET", "k", "v", "XX"])
            .call(&["GET", "k"])
            .call(&["SET", "k", "v"])
            .call(&["SET", "k", "w", "XX"])
            .call(&["GET", "k"]),
        Case::new("SET NX with XX is a syntax error")
            .call(&["SET", "k", "v", "NX", "XX"])
            .call(&["SET", "k", "v", "XX", "NX"]),
        Case::new("SET GET returns the old value")
            .call(&["SET", "k", "v", "GET"])
            .call(&["SET", "k", "w", "GET"])
            .call(&["GET", "k"]),
        Case::new("SET GET with NX (allowed since Redis 7.0)")
            .call(&["SET", "k", "v", "NX", "GET"])
            .call(&["SET", "k", "w", "NX", "GET"])
            .call(&["GET", "k"]),
        Case::new("SET GET on a key holding a counter still returns it")
            .call(&["INCR", "k"])
            .call(&["SET", "k", "v", "GET"]),
        Case::new("SET EX then TTL; KEEPTTL keeps it, a plain SET drops it")
            .call(&["SET", "k", "v", "EX", "100"])
            .call(&["TTL", "k"])
            .call(&["SET", "k", "w", "KEEPTTL"])
            .call(&["TTL", "k"])
            .call(&["GET", "k"])
            .call(&["SET", "k", "x"])
            .call(&["TTL", "k"]),
        Case::new("SET PX then PTTL, to the second")
            .call(&["SET", "k", "v", "PX", "100000"])
            .call_millis(&["PTTL", "k"])
            .call(&["TTL", "k"]),
        Case::new("SET EX 0 and negative expire times are invalid")
            .call(&["SET", "k", "v", "EX", "0"])
            .call(&["SET", "k", "v", "PX", "-5"])
            .call(&["GET", "k"]),
        Case::new("SET EX with a non-integer")
            .call(&["SET", "k", "v", "EX", "ten"])
            .call(&["SET", "k", "v", "EX", "1.5"]),
        Case::new("SET with two expiries, KEEPTTL with one, or a missing time")
            .call(&["SET", "k", "v", "EX", "10", "PX", "100"])
            .call(&["SET", "k", "v", "EX", "10", "KEEPTTL"])
            .call(&["SET", "k", "v", "EX"])
            .call(&["SET", "k", "v", "BOGUS"]),
        Case::new("GETDEL returns and removes, then nil")
            .call(&["SET", "k", "v"])
            .call(&["GETDEL", "k"])
            .call(&["GETDEL", "k"])
            .call(&["EXISTS", "k"])
            .call(&["GETDEL"]),
        Case::new("DEL and EXISTS count keys, repeated keys included")
            .call(&["SET", "a", "1"])
            .call(&["SET", "b", "2"])
            .call(&["EXISTS", "a", "b", "c", "a"])
            .call(&["DEL", "a", "c", "a"])
            .call(&["DEL", "a"])
            .call(&["EXISTS", "a", "b"])
            .call(&["DEL"])
            .call(&["EXISTS"]),
        // Counters.
        Case::new("INCR DECR INCRBY DECRBY from a missing key")
            .call(&["INCR", "n"])
            .call(&["INCR", "n"])
            .call(&["DECR", "n"])
            .call(&["INCRBY", "n", "10"])
            .call(&["DECRBY", "n", "3"])
            .call(&["INCRBY", "n", "-20"])
            .call(&["GET", "n"]),
        Case::new("counters refuse values that are not canonical integers")
            .call(&["SET", "n", "abc"])
            .call(&["INCR", "n"])
            .call(&["SET", "n", " 1"])
            .call(&["INCR", "n"])
            .call(&["SET", "n", "01"])
            .call(&["INCR", "n"])
            .call(&["SET", "n", "-0"])
            .call(&["DECR", "n"])
            .call(&["INCRBY", "n", "x"]),
        Case::new("INCRBY past the largest integer overflows")
            .call(&["SET", "n", "9223372036854775807"])
            .call(&["INCR", "n"])
            .call(&["INCRBY", "n", "1"])
            .call(&["SET", "m", "-9223372036854775808"])
            .call(&["DECR", "m"])
            .call(&["GET", "n"]),
        Case::new("DECRBY of the smallest integer, and an increment too big to parse")
            .call(&["DECRBY", "n", "-9223372036854775808"])
            .call(&["INCRBY", "n", "9223372036854775808"])
            .call(&["GET", "n"]),
        Case::new("counter arities")
            .call(&["INCR"])
            .call(&["INCR", "a", "b"])
            .call(&["INCRBY", "a"])
            .call(&["DECRBY", "a", "1", "2"]),
        // Expiry.
        Case::new("EXPIRE a key, a missing key; TTL -2 missing, -1 without expiry")
            .call(&["SET", "k", "v"])
            .call(&["TTL", "k"])
            .call(&["PTTL", "k"])
            .call(&["TTL", "missing"])
            .call(&["PTTL", "missing"])
            .call(&["EXPIRE", "k", "100"])
            .call(&["TTL", "k"])
            .call(&["EXPIRE", "missing", "100"]),
        Case::new("EXPIRE NX and XX")
            .call(&["SET", "k", "v"])
            .call(&["EXPIRE", "k", "100", "XX"])
            .call(&["EXPIRE", "k", "100", "NX"])
            .call(&["EXPIRE", "k", "200", "NX"])
            .call(&["EXPIRE", "k", "300", "xx"])
            .call(&["TTL", "k"]),
        Case::new("EXPIRE GT and LT (no expiry counts as infinite)")
            .call(&["SET", "k", "v"])
            .call(&["EXPIRE", "k", "100", "GT"])
            .call(&["EXPIRE", "k", "100", "LT"])
            .call(&["EXPIRE", "k", "50", "GT"])
            .call(&["EXPIRE", "k", "200", "GT"])
            .call(&["EXPIRE", "k", "300", "LT"])
            .call(&["EXPIRE", "k", "150", "LT"])
            .call(&["TTL", "k"]),
        Case::new("EXPIRE options that do not go together, or do not exist")
            .call(&["SET", "k", "v"])
            .call(&["EXPIRE", "k", "100", "NX", "XX"])
            .call(&["EXPIRE", "k", "100", "GT", "LT"])
            .call(&["EXPIRE", "k", "100", "NX", "GT"])
            .call(&["EXPIRE", "k", "100", "FOO"])
            .call(&["EXPIRE", "k", "abc"])
            .call(&["EXPIRE", "k"]),
        Case::new("EXPIRE with zero or a negative time deletes the key")
            .call(&["SET", "k", "v"])
            .call(&["SET", "j", "v"])
            .call(&["EXPIRE", "k", "0"])
            .call(&["PEXPIRE", "j", "-1"])
            .call(&["EXISTS", "k", "j"]),
        Case::new("PEXPIRE then PTTL to the second, and its options")
            .call(&["SET", "k", "v"])
            .call(&["PEXPIRE", "k", "100000", "NX"])
            .call_millis(&["PTTL", "k"])
            .call(&["PEXPIRE", "k", "50000", "GT"])
            .call(&["PEXPIRE", "k", "50000", "LT"])
            .call(&["TTL", "k"]),
        Case::new("PERSIST removes an expiry, once")
            .call(&["SET", "k", "v", "EX", "100"])
            .call(&["PERSIST", "k"])
            .call(&["PERSIST", "k"])
            .call(&["PERSIST", "missing"])
            .call(&["TTL", "k"])
            .call(&["PERSIST"]),
        // The keyspace.
        Case::new("DBSIZE, FLUSHDB and FLUSHALL")
            .call(&["DBSIZE"])
            .call(&["SET", "a", "1"])
            .call(&["SET", "b", "1"])
            .call(&["DBSIZE"])
            .call(&["FLUSHDB"])
            .call(&["DBSIZE"])
            .call(&["SET", "a", "1"])
            .call(&["FLUSHALL"])
            .call(&["DBSIZE"])
            .call(&["DBSIZE", "x"]),
        Case::new("FLUSHALL SYNC and a bad FLUSHALL option")
            .call(&["SET", "a", "1"])
            .call(&["FLUSHALL", "SYNC"])
            .call(&["FLUSHALL", "NOW"])
            .call(&["DBSIZE"]),
        Case::new("SELECT 0 and SELECT 1 with one database")
            .call(&["SELECT", "0"])
            .call(&["SELECT", "1"])
            .call(&["SELECT", "abc"])
            .call(&["SELECT", "-1"])
            .call(&["SELECT"]),
        // The inline protocol (what telnet and redis-cli --pipe of plain lines send).
        Case::new("inline commands, pipelined, ended by CRLF or a bare LF")
            .raw(b"SET k v\r\nGET k\nPING\r\n", 3),
        Case::new("inline commands with double and single quotes and escapes")
            .raw(b"SET k \"hello world\"\r\nGET k\r\n", 2)
            .raw(b"SET k 'single \"quoted\"'\r\nGET k\r\n", 2)
            .raw(b"SET k \"\\x41\\n\\t\"\r\nGET k\r\n", 2),
        Case::new("inline blank lines are skipped").raw(b"\r\n\r\n   \r\nPING\r\n", 1),
        Case::new("inline with unbalanced quotes is a protocol error, then a close")
            .raw(b"SET k \"oops\r\n", 1)
            .closed(),
        Case::new("inline with a closing quote not followed by a space")
            .raw(b"SET k \"a\"b\r\n", 1)
            .closed(),
        Case::new("an inline request too big without a newline")
            .raw(&vec![b'a'; 64 * 1024 + 1], 1)
            .closed(),
        // RESP framing errors: each is answered, then the connection is closed.
        Case::new("invalid multibulk length")
            .raw(b"*abc\r\n", 1)
            .closed(),
        Case::new("a multibulk length beyond the limit")
            .raw(b"*3000000000\r\n", 1)
            .closed(),
        Case::new("expected '$' where a bulk string should start")
            .raw(b"*1\r\nPING\r\n", 1)
            .closed(),
        Case::new("invalid bulk length")
            .raw(b"*1\r\n$abc\r\n", 1)
            .closed(),
        Case::new("a negative bulk length in a request")
            .raw(b"*1\r\n$-1\r\n", 1)
            .closed(),
        Case::new("a bulk length beyond proto-max-bulk-len (512 MB)")
            .raw(b"*2\r\n$3\r\nGET\r\n$600000000\r\n", 1)
            .closed(),
        Case::new("a multibulk count line too big without a newline")
            .raw(&[b"*".as_slice(), &vec![b'1'; 64 * 1024]].concat(), 1)
            .closed(),
        Case::new("replies before a protocol error are all sent")
            .raw(b"PING\r\n*1\r\n$4\r\nPING\r\n*x\r\n", 3)
            .closed(),
        Case::new("a command split across writes still parses")
            .raw(b"*2\r\n$4\r", 0)
            .raw(b"\nECHO\r\n$2\r\nab", 0)
            .raw(b"\r\n", 1),
        // Publish/subscribe (RESP2: a subscribed connection accepts only a few commands).
        Case::new("SUBSCRIBE counts channels; a published message arrives")
            .call_with_replies(&["SUBSCRIBE", "a", "b", "a"], 3)
            .on(1)
            .call(&["PUBLISH", "a", "hello"])
            .call(&["PUBLISH", "c", "nobody"])
            .on(0)
            .replies(1)
            .call(&["UNSUBSCRIBE", "a"])
            .call(&["UNSUBSCRIBE", "b"]),
        Case::new("UNSUBSCRIBE with no arguments, subscribed and not")
            .call(&["UNSUBSCRIBE"])
            .call(&["SUBSCRIBE", "only"])
            .call(&["UNSUBSCRIBE"])
            .call(&["PUNSUBSCRIBE"])
            .call(&["GET", "k"]),
        Case::new("PSUBSCRIBE patterns; a message matching a pattern and a channel")
            .call(&["PSUBSCRIBE", "news.*"])
            .call(&["SUBSCRIBE", "news.tech"])
            .on(1)
            .call(&["PUBLISH", "news.tech", "rust"])
            .call(&["PUBLISH", "news.art", "paint"])
            .call(&["PUBLISH", "other", "none"])
            .on(0)
            .replies(3)
            .call(&["PUNSUBSCRIBE", "news.*"])
            .call(&["PUNSUBSCRIBE"]),
        Case::new("glob patterns: ?, [] and escapes")
            .call_with_replies(&["PSUBSCRIBE", "h?llo", "b[ae]d", "x\\*"], 3)
            .on(1)
            .call(&["PUBLISH", "hello", "1"])
            .call(&["PUBLISH", "bed", "2"])
            .call(&["PUBLISH", "bid", "3"])
            .call(&["PUBLISH", "x*", "4"])
            .call(&["PUBLISH", "xy", "5"])
            .on(0)
            .replies(3),
        Case::new("commands other than pub/sub ones are refused when subscribed")
            .call(&["SUBSCRIBE", "a"])
            .call(&["GET", "k"])
            .call(&["SET", "k", "v"])
            .call(&["nosuchcommand"]),
        Case::new("PING when subscribed answers as a message")
            .call(&["SUBSCRIBE", "a"])
            .call(&["PING"])
            .call(&["PING", "hi"]),
        Case::new("QUIT when subscribed")
            .call(&["SUBSCRIBE", "a"])
            .call(&["QUIT"])
            .closed(),
        Case::new("PUBLISH arity and SUBSCRIBE without a channel")
            .call(&["PUBLISH", "a"])
            .call(&["SUBSCRIBE"])
            .call(&["PSUBSCRIBE"]),
        Case::new("a closed subscriber is no longer counted")
            .call(&["SUBSCRIBE", "gone"])
            .call(&["QUIT"])
            .closed()
            .on(1)
            .call(&["PUBLISH", "gone", "x"]),
    ]
}

/// What a server did in one case, a line per reply or close, bytes escaped.
fn transcript(addr: SocketAddr, case: &Case) -> Vec<String> {
    let mut flush = RespConnection::open(addr, REPLY_WAIT);
    assert_eq!(
        flush.call(&[b"FLUSHALL"]),
        Received::Reply(b"+OK\r\n".to_vec()),
        "FLUSHALL before {:?} on {addr}",
        case.name
    );
    let mut connections: Vec<Option<RespConnection>> = Vec::new();
    let mut lines = Vec::new();
    for step in &case.steps {
        let (Step::Send(index, _)
        | Step::Reply(index)
        | Step::ReplyMillis(index)
        | Step::Closed(index)) = step;
        if connections.len() <= *index {
            connections.resize_with(index + 1, || None);
        }
        let connection =
            connections[*index].get_or_insert_with(|| RespConnection::open(addr, REPLY_WAIT));
        let seen = match step {
            Step::Send(_, bytes) => {
                connection.send(bytes);
                continue;
            }
            Step::Reply(_) => describe(&connection.reply(), false),
            Step::ReplyMillis(_) => describe(&connection.reply(), true),
            Step::Closed(_) => match connection.reply() {
                Received::Closed(rest) if rest.is_empty() => "closed".to_string(),
                other => format!("not closed: {}", describe(&other, false)),
            },
        };
        lines.push(format!("connection {index}: {seen}"));
    }
    lines
}

/// A reply as text; `millis` rounds a positive integer reply to seconds (`:~100s`).
fn describe(received: &Received, millis: bool) -> String {
    match received {
        Received::Reply(bytes) => {
            let text = bytes.escape_ascii().to_string();
            let millis_value = std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| text.strip_prefix(':')?.trim_end().parse::<i64>().ok())
                .filter(|value| millis && *value > 0);
            match millis_value {
                Some(value) => format!(":~{}s", (value + 500) / 1000),
                None => text,
            }
        }
        Received::Closed(bytes) => format!("closed after {:?}", bytes.escape_ascii().to_string()),
        Received::Silent(bytes) => {
            format!(
                "no whole reply in time, got {:?}",
                bytes.escape_ascii().to_string()
            )
        }
    }
}

#[test]
fn kv_server_replies_byte_for_byte_as_redis_does() {
    if !reference_available() {
        return;
    }
    let redis = RedisServer::start();
    let kv = KvServer::start(&[]);
    let cases = cases();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let mut differences = Vec::new();
    for case in &cases {
        let reference = transcript(redis.addr, case);
        // A case that does not match what Redis does is a wrong case, not a kv_server bug.
        assert!(
            reference
                .iter()
                .all(|line| !["not closed", "closed after", "in time"]
                    .iter()
                    .any(|unexpected| line.contains(unexpected))),
            "case {:?} does not describe Redis: {reference:#?}",
            case.name
        );
        let ours = transcript(kv.addr, case);
        if ours != reference {
            differences.push(format!(
                "case {:?}:\n  redis:     {reference:?}\n  kv_server: {ours:?}",
                case.name
            ));
        }
    }
    kv.stop();
    assert!(
        differences.is_empty(),
        "{} of {} cases differ from Redis:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}

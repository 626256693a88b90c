//! Real Redis clients against the `kv_server` example: `redis-cli` for each command group
//! (asserting what it prints, in its `--no-raw` form: `"v"`, `(integer) 1`, `(nil)`,
//! `(error) ...`), `redis-cli --pipe` mass insertion, a short `redis-benchmark`, and
//! Python's `redis` package (pipelines and pub/sub, `tests/interop/redis_py_client.py`).
//!
//! A test whose client is not installed is skipped with a note (`.ci/run` installs them).
//! `KV_CLIENTS_SERVER=redis` runs the same tests against `redis-server`, which checks the
//! expectations here against the server `kv_server` copies.

mod util;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;

use util::programs::{output_with_input, output_within, stderr, stdout, TIMEOUT};
use util::redis::{installed, KvServer, RedisServer};

/// The server under test: `kv_server`, or Redis when `KV_CLIENTS_SERVER=redis`.
enum Server {
    Kv(KvServer),
    Redis(RedisServer),
}

impl Server {
    fn start() -> Server {
        match std::env::var("KV_CLIENTS_SERVER").as_deref() {
            Ok("redis") => Server::Redis(RedisServer::start()),
            _ => Server::Kv(KvServer::start(&[])),
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::Kv(server) => server.addr,
            Server::Redis(server) => server.addr,
        }
    }

    /// Stops it; `kv_server` must exit cleanly.
    fn stop(self) {
        if let Server::Kv(server) = self {
            server.stop();
        }
    }
}

/// Whether `tool` is installed, with a note saying why the test is skipped when not.
fn have(tool: &str) -> bool {
    let found = installed(tool);
    if !found {
        eprintln!(
            "SKIPPED: `{tool}` is not installed; `.ci/run` installs it (apt-get install redis-tools)"
        );
    }
    found
}

/// `redis-cli -h HOST -p PORT` and `args`.
fn redis_cli_command(addr: SocketAddr, args: &[&str]) -> Command {
    let mut command = Command::new("redis-cli");
    command
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args);
    command
}

/// Runs `redis-cli --no-raw` with one command per line of `script` on its standard input, as
/// a user pipes commands into it; returns what it printed.
fn redis_cli_script(addr: SocketAddr, script: &str) -> String {
    let output = output_with_input(
        redis_cli_command(addr, &["--no-raw"]),
        script.as_bytes().to_vec(),
        TIMEOUT,
    );
    assert!(output.status.success(), "redis-cli: {}", stderr(&output));
    stdout(&output)
}

/// Starts a server, runs `script` through redis-cli and checks every printed line.
fn check_script(script: &str, expected: &str) {
    if !have("redis-cli") {
        return;
    }
    let server = Server::start();
    let printed = redis_cli_script(server.addr(), script);
    server.stop();
    assert_eq!(printed, expected, "for the commands:\n{script}");
}

#[test]
fn redis_cli_ping_and_echo() {
    check_script(
        "PING\nPING \"hello there\"\nECHO hi\nECHO\n",
        "PONG\n\"hello there\"\n\"hi\"\n\
         (error) ERR wrong number of arguments for 'echo' command\n",
    );
}

#[test]
fn redis_cli_set_and_get_with_every_option() {
    check_script(
        "SET k v\nGET k\nGET missing\n\
         SET k w NX\nSET n 1 NX\nSET k w XX\nSET absent x XX\nSET k v NX XX\n\
         SET k x GET\nSET k y KEEPTTL\nGET k\n\
         SET t v EX 100\nTTL t\nSET t w KEEPTTL\nTTL t\nSET t v EX 0\nSET t v EX ten\n\
         GETDEL k\nGETDEL k\n",
        "OK\n\"v\"\n(nil)\n\
         (nil)\nOK\nOK\n(nil)\n(error) ERR syntax error\n\
         \"w\"\nOK\n\"y\"\n\
         OK\n(integer) 100\nOK\n(integer) 100\n\
         (error) ERR invalid expire time in 'set' command\n\
         (error) ERR value is not an integer or out of range\n\
         \"y\"\n(nil)\n",
    );
}

#[test]
fn redis_cli_counters() {
    check_script(
        "INCR n\nINCR n\nDECR n\nINCRBY n 10\nDECRBY n 4\nGET n\n\
         SET s abc\nINCR s\nSET big 9223372036854775807\nINCRBY big 1\n",
        "(integer) 1\n(integer) 2\n(integer) 1\n(integer) 11\n(integer) 7\n\"7\"\n\
         OK\n(error) ERR value is not an integer or out of range\n\
         OK\n(error) ERR increment or decrement would overflow\n",
    );
}

#[test]
fn redis_cli_expiry() {
    check_script(
        "SET k v\nTTL k\nTTL missing\nPTTL missing\n\
         EXPIRE k 100 XX\nEXPIRE k 100 NX\nEXPIRE k 50 GT\nEXPIRE k 200 GT\nTTL k\n\
         EXPIRE k 300 LT\nPERSIST k\nPERSIST k\nTTL k\n\
         EXPIRE k 10 NX XX\nPEXPIRE k 0\nEXISTS k\n",
        "OK\n(integer) -1\n(integer) -2\n(integer) -2\n\
         (integer) 0\n(integer) 1\n(integer) 0\n(integer) 1\n(integer) 200\n\
         (integer) 0\n(integer) 1\n(integer) 0\n(integer) -1\n\
         (error) ERR NX and XX, GT or LT options at the same time are not compatible\n\
         (integer) 1\n(integer) 0\n",
    );
}

#[test]
fn redis_cli_pttl_counts_down_in_milliseconds() {
    if !have("redis-cli") {
        return;
    }
    let server = Server::start();
    let printed = redis_cli_script(server.addr(), "SET k v PX 100000\nPTTL k\n");
    server.stop();
    let pttl: i64 = printed
        .strip_prefix("OK\n(integer) ")
        .and_then(|rest| rest.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {printed:?}"));
    // Milliseconds, counting down from 100 s; the machine may be slow, not 10 s slow.
    assert!((90_000..=100_000).contains(&pttl), "PTTL {pttl}");
}

#[test]
fn redis_cli_keys_and_databases() {
    check_script(
        "DBSIZE\nSET a 1\nSET b 2\nEXISTS a b c a\nDBSIZE\nDEL a c\nDBSIZE\n\
         FLUSHDB\nDBSIZE\nSET c 3\nFLUSHALL\nEXISTS c\nSELECT 0\nSELECT 1\n",
        "(integer) 0\nOK\nOK\n(integer) 3\n(integer) 2\n(integer) 1\n(integer) 1\n\
         OK\n(integer) 0\nOK\nOK\n(integer) 0\nOK\n\
         (error) ERR DB index is out of range\n",
    );
}

#[test]
fn redis_cli_shows_errors_for_unknown_commands_and_wrong_arity() {
    check_script(
        "FOO bar baz\nGET\nSET k\nDEL\n",
        "(error) ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \n\
         (error) ERR wrong number of arguments for 'get' command\n\
         (error) ERR wrong number of arguments for 'set' command\n\
         (error) ERR wrong number of arguments for 'del' command\n",
    );
}

/// A line reader over a running program's standard output, each read bounded.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut std::process::Child) -> Lines {
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// The next `count` lines.
    fn next(&self, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| {
                self.0
                    .recv_timeout(TIMEOUT)
                    .expect("a line from redis-cli in time")
            })
            .collect()
    }
}

/// `redis-cli --no-raw SUBSCRIBE`/`PSUBSCRIBE` (`args`) running: its subscription replies
/// are read, then `publish` runs `PUBLISH` in a second redis-cli and the subscriber's next
/// `lines` lines are returned.
fn subscriber_sees(
    args: &[&str],
    confirmations: usize,
    publish: &[&str],
    lines: usize,
) -> Vec<String> {
    let server = Server::start();
    let mut subscriber = redis_cli_command(server.addr(), &["--no-raw"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-cli");
    let output = Lines::of(&mut subscriber);
    let mut subscribed = output.next(1 + 3 * confirmations);
    assert_eq!(
        subscribed.remove(0),
        "Reading messages... (press Ctrl-C to quit)"
    );
    let publisher = output_within(redis_cli_command(server.addr(), publish));
    assert_eq!(stdout(&publisher), "1\n", "PUBLISH reached one subscriber");
    let seen = output.next(lines);
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    server.stop();
    [subscribed, seen].concat()
}

#[test]
fn redis_cli_subscribe_prints_a_published_message() {
    if !have("redis-cli") {
        return;
    }
    let lines = subscriber_sees(&["SUBSCRIBE", "news"], 1, &["PUBLISH", "news", "hello"], 3);
    assert_eq!(
        lines,
        [
            "1) \"subscribe\"",
            "2) \"news\"",
            "3) (integer) 1",
            "1) \"message\"",
            "2) \"news\"",
            "3) \"hello\"",
        ]
    );
}

#[test]
fn redis_cli_psubscribe_prints_a_message_matching_its_pattern() {
    if !have("redis-cli") {
        return;
    }
    let lines = subscriber_sees(
        &["PSUBSCRIBE", "news.*"],
        1,
        &["PUBLISH", "news.tech", "rust"],
        4,
    );
    assert_eq!(
        lines,
        [
            "1) \"psubscribe\"",
            "2) \"news.*\"",
            "3) (integer) 1",
            "1) \"pmessage\"",
            "2) \"news.*\"",
            "3) \"news.tech\"",
            "4) \"rust\"",
        ]
    );
}

/// `count` SET commands in RESP, as the Redis manual's mass insertion page generates them.
fn mass_insertion(count: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for i in 0..count {
        let key = format!("key:{i}");
        let value = format!("value:{i}");
        bytes.extend_from_slice(&util::redis::command(&[
            b"SET",
            key.as_bytes(),
            value.as_bytes(),
        ]));
    }
    bytes
}

#[test]
fn redis_cli_pipe_inserts_10000_keys() {
    if !have("redis-cli") {
        return;
    }
    let server = Server::start();
    let output = output_with_input(
        redis_cli_command(server.addr(), &["--pipe"]),
        mass_insertion(10_000),
        TIMEOUT,
    );
    let dbsize = output_within(redis_cli_command(server.addr(), &["DBSIZE"]));
    let last = output_within(redis_cli_command(server.addr(), &["GET", "key:9999"]));
    server.stop();
    assert!(
        output.status.success(),
        "redis-cli --pipe: {}",
        stderr(&output)
    );
    assert!(
        stdout(&output).ends_with("errors: 0, replies: 10000\n"),
        "redis-cli --pipe printed: {}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_eq!(stdout(&dbsize), "10000\n");
    assert_eq!(stdout(&last), "value:9999\n");
}

#[test]
fn redis_benchmark_runs_set_get_incr_without_errors() {
    if !have("redis-benchmark") {
        return;
    }
    let server = Server::start();
    let addr = server.addr();
    let mut benchmark = Command::new("redis-benchmark");
    benchmark
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-t", "set,get,incr", "-n", "2000", "-c", "10", "-q"]);
    let output = output_within(benchmark);
    server.stop();
    assert!(
        output.status.success(),
        "redis-benchmark: {}",
        stderr(&output)
    );
    // Warnings (`Could not fetch server CONFIG`) and errors from the server go to stderr.
    assert_eq!(stderr(&output), "", "redis-benchmark complained");
    let printed = stdout(&output);
    for test in ["SET", "GET", "INCR"] {
        let result = format!("{test}: ");
        assert!(
            printed
                .split(['\r', '\n'])
                .any(|line| line.trim_start().starts_with(&result)
                    && line.contains("requests per second")),
            "no {test} result in: {printed}"
        );
    }
}

/// Runs a scenario of `tests/interop/redis_py_client.py`; `None` without Python's `redis`.
fn redis_py(scenario: &str) -> Option<Output> {
    let importable = Command::new("python3")
        .args(["-c", "import redis"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !importable {
        eprintln!("SKIPPED: Python's redis package is missing (python3 -m pip install redis)");
        return None;
    }
    let server = Server::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/redis_py_client.py"
    );
    let mut command = Command::new("python3");
    command
        .arg(script)
        .arg(scenario)
        .arg(server.addr().ip().to_string())
        .arg(server.addr().port().to_string());
    let output = output_within(command);
    server.stop();
    Some(output)
}

/// Checks that a redis-py scenario passed (its last line is `SCENARIO ok`).
fn check_redis_py(scenario: &str) {
    let Some(output) = redis_py(scenario) else {
        return;
    };
    assert!(
        output.status.success() && stdout(&output).ends_with(&format!("{scenario} ok\n")),
        "redis-py {scenario}: {}\n{}",
        stdout(&output),
        stderr(&output)
    );
}

#[test]
fn redis_py_pipeline_without_transaction() {
    check_redis_py("pipeline");
}

#[test]
fn redis_py_pubsub_with_get_message_timeouts() {
    check_redis_py("pubsub");
}

#[test]
fn redis_py_psubscribe_patterns() {
    check_redis_py("psubscribe");
}

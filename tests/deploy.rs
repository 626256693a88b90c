//! The deployment in `deploy/` runs: HAProxy with `deploy/haproxy.cfg` (its placeholder
//! addresses replaced by free loopback ports) in front of two `http_server --proxy-protocol
//! --pid-file` processes. Under `wrk`'s keep-alive load through HAProxy, both servers are
//! upgraded with SIGUSR2, one after the other; wrk sees no error and no non-2xx response,
//! HAProxy never had a connection refused, retried or a server go DOWN, and every old
//! process exits 0.
//!
//! Needs `haproxy` and `wrk` (`.ci/run` installs them): without them the test is skipped
//! with a note, except under CI, where that is a failure.

#[path = "../examples/support/stress/mod.rs"]
mod stress;
mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use stress::upgrade::{Upgradable, DEADLINE};
use util::programs::example;

/// How long wrk runs: long enough for both upgrades to happen while it runs.
const LOAD: Duration = Duration::from_secs(6);

/// Whether `program` can be started; outside CI a missing one skips the test.
fn present(program: &str) -> bool {
    let found = Command::new(program)
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed (.ci/run installs it)"
        );
        eprintln!("note: {program} is not installed; skipping");
    }
    found
}

/// A free loopback port, released for HAProxy to bind a moment later.
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// `haproxy -db -f deploy/haproxy.cfg`, its placeholders set through the environment; killed
/// and waited for when dropped.
struct Haproxy {
    child: Child,
    frontend: SocketAddr,
    stats_socket: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    fn start(servers: [SocketAddr; 2]) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let frontend = free_port();
        let stats_socket = dir.path().join("haproxy.sock");
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/haproxy.cfg");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&config)
            .env("FRONTEND", frontend.to_string())
            .env("SERVER1", servers[0].to_string())
            .env("SERVER2", servers[1].to_string())
            .env("STATS_SOCKET", &stats_socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy");
        Haproxy {
            child,
            frontend,
            stats_socket,
            _dir: dir,
        }
    }

    /// `show stat` on the stats socket: one map of column to value per server of the
    /// backend, by server name (`None` while the socket is not there yet).
    fn server_stats(&self) -> Option<HashMap<String, HashMap<String, String>>> {
        let mut socket = UnixStream::connect(&self.stats_socket).ok()?;
        socket.set_read_timeout(Some(DEADLINE)).unwrap();
        socket.write_all(b"show stat\n").ok()?;
        let mut csv = String::new();
        socket.read_to_string(&mut csv).ok()?;
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
        let rows = lines.map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        });
        Some(
            rows.filter(|row| {
                row["pxname"] == "http_servers" && row["svname"].starts_with("server")
            })
            .map(|row| (row["svname"].clone(), row))
            .collect(),
        )
    }

    /// Waits (bounded) until `done` holds for both servers' stats.
    fn wait_for_servers(&self, what: &str, done: impl Fn(&HashMap<String, String>) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(stats) = self.server_stats() {
                if stats.len() == 2 && stats.values().all(&done) {
                    return;
                }
                assert!(Instant::now() < deadline, "{what}: {stats:#?}");
            }
            assert!(Instant::now() < deadline, "{what}: no stats socket");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A count from a wrk line such as `  Non-2xx or 3xx responses: 12` (wrk prints the line
/// only when the count is not zero).
fn wrk_count(output: &str, label: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

/// The sum of `Socket errors: connect 0, read 3, write 0, timeout 0` (printed only when not
/// all zero).
fn wrk_socket_errors(output: &str) -> u64 {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Socket errors:"))
        .map_or(0, |errors| {
            errors
                .split(',')
                .map(|kind| {
                    kind.split_whitespace()
                        .last()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                })
                .sum()
        })
}

/// `wrk` running its load through HAProxy; killed and waited for if the test fails first.
struct Wrk {
    child: Child,
}

impl Wrk {
    fn start(frontend: SocketAddr) -> Wrk {
        let child = Command::new("wrk")
            .args(["-t2", "-c16", "--timeout", "10s"])
            .arg(format!("-d{}s", LOAD.as_secs()))
            .arg(format!("http://{frontend}/plaintext"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start wrk");
        Wrk { child }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait wrk").is_none()
    }

    /// Waits (bounded) for wrk to finish; whether it succeeded, and its report.
    fn finish(mut self) -> (bool, String) {
        let deadline = Instant::now() + LOAD + DEADLINE;
        while self.running() {
            assert!(Instant::now() < deadline, "wrk did not finish in time");
            thread::sleep(Duration::from_millis(20));
        }
        let mut report = String::new();
        let mut stdout = self.child.stdout.take().expect("piped stdout");
        stdout.read_to_string(&mut report).expect("wrk's report");
        let success = self.child.wait().expect("wait wrk").success();
        (success, report)
    }
}

impl Drop for Wrk {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn both_servers_upgraded_under_load_behind_haproxy_lose_no_request_and_exit_0() {
    if !present("haproxy") || !present("wrk") {
        return;
    }
    let mut servers = [(); 2].map(|()| {
        Upgradable::start(
            &example("http_server"),
            tempfile::tempdir().unwrap(),
            &["--proxy-protocol"],
        )
    });
    let haproxy = Haproxy::start([servers[0].addr, servers[1].addr]);
    haproxy.wait_for_servers("both servers UP", |server| server["status"] == "UP");
    let mut wrk = Wrk::start(haproxy.frontend);
    // Under load: wrk's connections reached both servers.
    haproxy.wait_for_servers("wrk's connections on both servers", |server| {
        server["scur"].parse::<u64>().unwrap() > 0
    });
    for (n, server) in servers.iter_mut().enumerate() {
        let old = server.upgrade();
        let exit = server.exit_code(old);
        assert_eq!(
            exit,
            Some(0),
            "server {n}'s old process: {}",
            server.log_text()
        );
    }
    let ended_before = !wrk.running();
    let (success, report) = wrk.finish();
    eprintln!("{report}");
    assert!(
        !ended_before,
        "the load ended before both upgrades did (raise LOAD): {report}"
    );
    assert!(success, "wrk: {report}");
    let requests: u64 = report
        .lines()
        .find_map(|line| line.trim().split_once(" requests in "))
        .map(|(count, _)| count.parse().unwrap())
        .expect("wrk's request count");
    assert!(requests > 0, "{report}");
    assert_eq!(
        wrk_count(&report, "Non-2xx or 3xx responses:"),
        0,
        "{report}"
    );
    assert_eq!(wrk_socket_errors(&report), 0, "{report}");
    // HAProxy's side: no connection to a server failed (econ), was retried (wretr) or sent
    // to the other server (wredis), and no server went DOWN (chkdown): what a plain restart
    // in place of an upgrade costs.
    let stats = haproxy.server_stats().expect("HAProxy's stats");
    for (name, server) in &stats {
        for column in ["econ", "wretr", "wredis", "chkdown"] {
            assert_eq!(server[column], "0", "{name} {column}: {server:#?}");
        }
    }
    drop(haproxy);
    for server in &mut servers {
        assert_eq!(server.stop(), Some(0), "{}", server.log_text());
    }
}

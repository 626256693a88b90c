//! The examples behind a real HAProxy (`mode tcp`, `send-proxy` / `send-proxy-v2`) with
//! `--proxy-protocol`: the server sees the client's address, 127.0.0.2, not HAProxy's.
//!
//! Each test writes a HAProxy config into a temporary directory, runs `haproxy -f CFG -db`
//! (in the foreground) as a child, waits for its frontend to accept, and connects through it
//! from 127.0.0.2. Needs `haproxy` (Debian's package; `.ci/run` installs it): without it
//! the tests are skipped with a note, except under CI, where that is a failure.

mod util;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use util::http::{read_responses, HttpServer};
use util::programs::{example, Spawned};
use util::WAIT;

/// The address the test's client connects from: not HAProxy's (127.0.0.1).
const CLIENT: &str = "127.0.0.2";

/// A running `haproxy -db`, killed and waited for when dropped.
struct Haproxy {
    child: Child,
    frontend: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// HAProxy relaying 127.0.0.1:PORT to `backend` with these `server` options (such as
    /// `send-proxy`); `None` (and a note) if haproxy is not installed outside CI.
    fn start(backend: SocketAddr, server_options: &str) -> Option<Haproxy> {
        if Command::new("haproxy").arg("-v").output().is_err() {
            assert!(
                std::env::var_os("CI").is_none(),
                "haproxy is not installed (.ci/run installs it)"
            );
            eprintln!("note: haproxy is not installed; skipping");
            return None;
        }
        // A free port, released for HAProxy to bind a moment later.
        let frontend = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n    maxconn 64\n\
                 defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 20s\n    \
                 timeout server 20s\n\
                 frontend front\n    bind {frontend}\n    default_backend back\n\
                 backend back\n    server app {backend} {server_options}\n"
            ),
        )
        .unwrap();
        let child = Command::new("haproxy")
            .arg("-f")
            .arg(&config)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start haproxy");
        let haproxy = Haproxy {
            child,
            frontend,
            _dir: dir,
        };
        haproxy.wait_ready();
        Some(haproxy)
    }

    /// Polls the frontend until it accepts (HAProxy has bound it), within the tests' bound.
    fn wait_ready(&self) {
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(self.frontend).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not listen in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A connection through HAProxy from [`CLIENT`].
    fn connect_from_client(&self) -> TcpStream {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let from: SocketAddr = format!("{CLIENT}:0").parse().unwrap();
        socket.bind(&from.into()).expect("bind 127.0.0.2");
        socket.connect(&self.frontend.into()).expect("connect");
        let stream = TcpStream::from(socket);
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /ip` through HAProxy from [`CLIENT`]: the body, the address the server saw.
fn ip_through(haproxy: &Haproxy) -> String {
    let mut conn = haproxy.connect_from_client();
    conn.write_all(b"GET /ip HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = read_responses(&mut conn, 1, false).remove(0);
    assert_eq!(response.status, 200);
    String::from_utf8(response.body).unwrap()
}

#[test]
fn http_server_behind_send_proxy_sees_the_client() {
    let server = HttpServer::start(&["--proxy-protocol"]);
    let Some(haproxy) = Haproxy::start(server.addr, "send-proxy") else {
        return;
    };
    assert!(ip_through(&haproxy).starts_with("127.0.0.2:"));
    drop(haproxy);
    server.stop();
}

#[test]
fn http_server_behind_send_proxy_v2_with_health_checks_sees_the_client() {
    let server = HttpServer::start(&["--proxy-protocol"]);
    // Health checks with a v2 header too (LOCAL): the server must serve them, or HAProxy
    // marks it down after one failure.
    let options = "send-proxy-v2 check check-send-proxy inter 100ms fall 1 rise 1";
    let Some(haproxy) = Haproxy::start(server.addr, options) else {
        return;
    };
    // A health check has reached the server: its stats count a connection besides the
    // test's own and the readiness probe's, and none closed for a bad header.
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = backend_stats(server.addr);
        assert_eq!(stats["closed"]["proxy_protocol"], 0, "{stats}");
        if stats["accepted"].as_u64().unwrap() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no health check came: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ip_through(&haproxy).starts_with("127.0.0.2:"));
    drop(haproxy);
    server.stop();
}

/// The server's `/stats` totals, asked directly (with a header of our own: the server
/// accepts nothing without one).
fn backend_stats(addr: SocketAddr) -> serde_json::Value {
    let mut conn = util::http::connect(addr);
    conn.write_all(b"PROXY UNKNOWN\r\nGET /stats HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let response = read_responses(&mut conn, 1, false).remove(0);
    let stats: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    stats["total"].clone()
}

#[test]
fn echo_server_behind_send_proxy_v2_logs_the_client() {
    let mut command = Command::new(example("echo_server"));
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--proxy-protocol",
            "--stop-on-stdin-eof",
        ])
        .env("RUST_LOG", "mio_reactor=debug");
    let (server, addr) = Spawned::listening(&mut command, "echo server listening on tcp:");
    let Some(haproxy) = Haproxy::start(addr, "send-proxy-v2") else {
        return;
    };
    let mut conn = haproxy.connect_from_client();
    assert_eq!(
        util::round_trip(&mut conn, b"through haproxy"),
        b"through haproxy"
    );
    drop(conn);
    drop(haproxy);
    let finished = server.finish();
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("PROXY v2 from 127.0.0.2:"),
        "no log line names the client:\n{}",
        finished.stderr
    );
}

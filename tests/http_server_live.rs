//! The loop, live: `/stats`, `/metrics` checked by Prometheus' own `promtool`, and the `/`
//! page loaded by headless Chromium while connections come and go. The tests that need
//! `promtool` (Debian's `prometheus`) or `chromium` say why and pass when the program is
//! missing; `.ci/run` installs both.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use util::http::{connect, get, installed, wait_for_stats, HttpServer};

fn open_connections(stats: &serde_json::Value) -> u64 {
    stats["total"]["open_connections"]
        .as_u64()
        .expect("a count")
}

#[test]
fn stats_count_connections_as_they_come_and_go() {
    let server = HttpServer::start(&[]);
    let held: Vec<TcpStream> = (0..5).map(|_| connect(server.addr)).collect();
    let stats = wait_for_stats(server.addr, "5 open connections", |s| {
        open_connections(s) >= 5
    });
    assert!(stats["total"]["accepted"].as_u64() >= Some(5), "{stats}");
    drop(held);
    let stats = wait_for_stats(server.addr, "the 5 closed", |s| {
        s["total"]["closed"]["peer_closed"].as_u64() >= Some(5)
    });
    assert!(open_connections(&stats) <= 1, "{stats}");
    assert!(stats["total"]["bytes_out"].as_u64() > Some(0), "{stats}");
    assert!(stats["total"]["turns"].as_u64() > Some(0), "{stats}");
    server.stop();
}

#[test]
fn metrics_pass_promtool_check() {
    let server = HttpServer::start(&["--threads", "2"]);
    get(server.addr, "/plaintext");
    let metrics = get(server.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = String::from_utf8(metrics.body).expect("UTF-8");
    for series in [
        "mio_reactor_open_connections{reactor=\"1\"}",
        "mio_reactor_closed_connections_total{reactor=\"0\",reason=\"peer_closed\"}",
        "mio_reactor_closed_connections_total{reactor=\"0\",reason=\"handler_panicked\"}",
        "mio_reactor_closed_connections_total{reactor=\"1\",reason=\"tls\"}",
        "mio_reactor_blocked_seconds_total{reactor=\"0\"}",
        "mio_reactor_pending_timers{reactor=\"1\"}",
    ] {
        assert!(text.contains(series), "{series} missing:\n{text}");
    }
    if !installed(
        "promtool",
        "check the /metrics format with Prometheus' own linter",
    ) {
        server.stop();
        return;
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut stdin = promtool.stdin.take().expect("piped");
    stdin.write_all(text.as_bytes()).expect("feed promtool");
    drop(stdin);
    let checked = promtool.wait_with_output().expect("promtool finishes");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    server.stop();
}

/// The numbers the page shows, as Chromium rendered them.
#[derive(Debug)]
struct PageReading {
    open_connections: u64,
    accepted: u64,
    closed_total: u64,
    updates: u64,
}

/// Loads the page in headless Chromium for 2.5 s of the page's time (three updates) and
/// reads the numbers from the DOM it dumps.
fn load_in_chromium(url: &str) -> PageReading {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let profile: PathBuf = [
        env!("CARGO_TARGET_TMPDIR"),
        &format!(
            "chromium-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        ),
    ]
    .iter()
    .collect();
    let output = Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args([
            "--headless",
            // Root in a container has no user namespace for Chromium's sandbox.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            // Nothing but the server under test: no updates, no sync, no lookups elsewhere.
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            // Let the page's timers run 2.5 s (the clock waits for pending fetches).
            "--virtual-time-budget=2500",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let number = |id: &str| -> u64 {
        let marker = format!("id=\"{id}\">");
        let start = dom
            .find(&marker)
            .unwrap_or_else(|| panic!("no #{id} in the page:\n{dom}"))
            + marker.len();
        let digits: String = dom[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("#{id} shows no number:\n{dom}"))
    };
    PageReading {
        open_connections: number("open_connections"),
        accepted: number("accepted"),
        closed_total: number("closed_total"),
        updates: number("updates"),
    }
}

#[test]
fn the_page_in_chromium_shows_connections_come_and_go() {
    if !installed("chromium", "load the live page in a real browser") {
        return;
    }
    let server = HttpServer::start(&[]);
    let url = server.url("/");

    let before = load_in_chromium(&url);
    assert!(
        before.updates >= 2,
        "the page did not update every second: {before:?}"
    );

    let held: Vec<TcpStream> = (0..6).map(|_| connect(server.addr)).collect();
    wait_for_stats(server.addr, "6 held connections open", |s| {
        open_connections(s) >= 6
    });
    let during = load_in_chromium(&url);
    assert!(during.open_connections >= 6, "{before:?} then {during:?}");
    assert!(
        during.accepted >= before.accepted + 6,
        "{before:?} then {during:?}"
    );

    drop(held);
    wait_for_stats(server.addr, "the held connections closed", |s| {
        open_connections(s) <= 1
    });
    let after = load_in_chromium(&url);
    assert!(
        after.open_connections + 6 <= during.open_connections,
        "{during:?} then {after:?}"
    );
    assert!(
        after.closed_total >= during.closed_total + 6,
        "{during:?} then {after:?}"
    );
    server.stop();
}

//! Restarts without a gap (`Reactor::upgrade_on_signal`), as a user meets them: `echo_server
//! --pid-file PATH` upgraded with SIGUSR2 while clients open short connections continuously
//! and long-lived connections echo; no connection is refused or reset, no byte is lost, and
//! every old process exits 0. A successor that fails leaves the old process serving.
//!
//! `UPGRADE_ROUNDS=20 cargo test --all-features --test upgrade` runs the full-size sequence
//! (3 upgrades in a row otherwise).
//!
//! The server, the clients and the measurement live in `examples/support/stress/upgrade.rs`,
//! shared with the `upgrade` stress scenario and `tests/deploy.rs`.

#[path = "../examples/support/stress/mod.rs"]
mod stress;
mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use stress::upgrade::{connect, measure, short_lived, Load, Restart, Upgradable, DEADLINE};
use util::http::read_responses;
use util::programs::example;

fn rounds() -> usize {
    std::env::var("UPGRADE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

#[test]
fn upgrades_in_a_row_under_load_refuse_reset_and_lose_nothing_and_old_processes_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Upgradable::start(&example("echo_server"), dir, &[]);
    let load = Load::start(server.addr, 4, 4);
    load.progress(3);
    for round in 0..rounds() {
        let old = server.upgrade();
        // The successor serves: connections complete after the hand-over...
        load.progress(3);
        // ...and the old process drained its own and exited 0.
        let code = server.exit_code(old);
        assert_eq!(code, Some(0), "upgrade {round}: {}", server.log_text());
    }
    let ((short, long), failures) = load.finish();
    assert!(failures.is_empty(), "{failures:#?}\n{}", server.log_text());
    assert!(short > 0 && long > 0);
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
    eprintln!(
        "{} upgrades: {short} short and {long} long-lived connections, no failure",
        rounds()
    );
}

/// Copies echo_server into `dir`, so the test can replace the binary at the path it was
/// started from, as installing a new version does.
fn copy_of_echo_server(dir: &Path) -> PathBuf {
    let path = dir.join("echo_server");
    std::fs::copy(example("echo_server"), &path).expect("copy echo_server");
    path
}

/// Installs `script` at `path` the way a package manager installs a binary: beside it,
/// then renamed over it (the running process keeps its own).
fn install_script(path: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let beside = path.with_extension("new");
    std::fs::write(&beside, script).unwrap();
    std::fs::set_permissions(&beside, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&beside, path).unwrap();
}

/// After a failed upgrade: the same process still owns the PID file and serves.
fn assert_still_serving(server: &Upgradable, pid: u32) {
    assert_eq!(server.written_pid(), Some(pid));
    short_lived(server.addr, 7).expect("a connection after the failed upgrade");
}

#[test]
fn a_successor_that_exits_leaves_the_old_process_serving() {
    let dir = tempfile::tempdir().unwrap();
    let program = copy_of_echo_server(dir.path());
    let mut server = Upgradable::start(&program, dir, &[]);
    let load = Load::start(server.addr, 2, 2);
    install_script(&program, "#!/bin/sh\nexit 1\n");
    let pid = server.serving();
    server.signal(Signal::SIGUSR2);
    let deadline = Instant::now() + DEADLINE;
    while !server.log_text().contains("upgrade failed") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        thread::sleep(Duration::from_millis(5));
    }
    load.progress(3);
    assert_still_serving(&server, pid);
    let (_, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        server.log_text().contains("exited before it was ready"),
        "{}",
        server.log_text()
    );
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

#[test]
fn a_successor_never_ready_is_killed_and_the_old_process_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let program = copy_of_echo_server(dir.path());
    let mut server = Upgradable::start(&program, dir, &["--ready-timeout", "0.5"]);
    // Starts, holds the listeners, never writes the PID file nor says ready.
    install_script(&program, "#!/bin/sh\nexec sleep 30\n");
    let pid = server.serving();
    server.signal(Signal::SIGUSR2);
    let deadline = Instant::now() + DEADLINE;
    while !server.log_text().contains("upgrade failed") {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        thread::sleep(Duration::from_millis(5));
    }
    assert!(
        server.log_text().contains("was not ready within"),
        "{}",
        server.log_text()
    );
    assert_still_serving(&server, pid);
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

#[test]
fn the_successor_runs_the_binary_installed_at_the_path_with_the_same_arguments_and_only_its_descriptors_variables(
) {
    let dir = tempfile::tempdir().unwrap();
    let program = copy_of_echo_server(dir.path());
    // Variables of socket activation meant for someone else: no child may see them.
    let stray = [("LISTEN_PID", "1"), ("LISTEN_FDNAMES", "stray")];
    let mut server =
        Upgradable::start_with_env(&program, dir, &["--max-connections", "77"], &stray);
    let args_seen = program.with_file_name("args");
    let env_seen = program.with_file_name("env");
    // The "new version": records its arguments and environment, then runs the real server.
    install_script(
        &program,
        &format!(
            "#!/bin/sh\necho \"$@\" > {}\nenv > {}\nexec {} \"$@\"\n",
            args_seen.display(),
            env_seen.display(),
            example("echo_server").display()
        ),
    );
    let old = server.upgrade();
    assert_eq!(server.exit_code(old), Some(0), "{}", server.log_text());
    let args = std::fs::read_to_string(&args_seen).unwrap();
    assert!(
        args.contains("--listen tcp:127.0.0.1:0") && args.contains("--max-connections 77"),
        "{args}"
    );
    let env = std::fs::read_to_string(&env_seen).unwrap();
    let mut inherited: Vec<&str> = env
        .lines()
        .filter(|line| line.starts_with("LISTEN_") || line.starts_with("MIO_REACTOR_"))
        .collect();
    inherited.sort_unstable();
    assert_eq!(
        inherited,
        [
            "LISTEN_FDS=2", // the listener and the ready channel
            "LISTEN_FDS_FIRST_FD=3",
            "MIO_REACTOR_UPGRADE_ENDPOINTS=tcp:127.0.0.1:0",
        ]
    );
    short_lived(server.addr, 9).expect("the successor serves on the same port");
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

#[test]
fn a_unix_socket_path_survives_the_hand_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let listen = format!("unix:{}", path.display());
    let mut server = Upgradable::start(&example("echo_server"), dir, &["--listen", &listen]);
    let old = server.upgrade();
    assert_eq!(server.exit_code(old), Some(0), "{}", server.log_text());
    let mut stream = std::os::unix::net::UnixStream::connect(&path).expect("the path is there");
    stream.write_all(b"still here").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    stream.read_to_string(&mut back).unwrap();
    assert_eq!(back, "still here");
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
    assert!(
        !path.exists(),
        "the last process removes the file it serves"
    );
}

#[test]
fn http_server_answers_the_request_in_progress_then_closes_and_hands_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Upgradable::start(&example("http_server"), dir, &[]);
    let mut stream = connect(server.addr).unwrap();
    // Half a request reaches the old process before the upgrade...
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let old = server.upgrade();
    // ...and the rest after it: the old process answers it, then closes.
    stream.write_all(b"\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(server.exit_code(old), Some(0), "{}", server.log_text());
    let mut fresh = connect(server.addr).expect("the successor serves the port");
    fresh
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    fresh.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

#[test]
fn http_server_answers_an_idle_keep_alive_connection_in_the_drain_with_connection_close() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Upgradable::start(&example("http_server"), dir, &[]);
    let mut stream = connect(server.addr).unwrap();
    let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    let old = server.upgrade();
    // Requests one after the other on a kept-alive connection to the old process, idle
    // between them, as a load balancer reuses one: each is answered (none meets a
    // connection closed under it) until the drain, whose answer says Connection: close.
    let deadline = Instant::now() + DEADLINE;
    loop {
        stream.write_all(request).expect("the connection is open");
        let response = read_responses(&mut stream, 1, false).remove(0);
        assert_eq!(response.status, 200);
        if response.header("Connection") == Some("close") {
            break;
        }
        assert!(Instant::now() < deadline, "no Connection: close came");
        thread::sleep(Duration::from_millis(5));
    }
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "then the close");
    assert_eq!(server.exit_code(old), Some(0), "{}", server.log_text());
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

#[test]
fn app_server_hands_over_and_its_old_process_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Upgradable::start(&example("app_server"), dir, &[]);
    let old = server.upgrade();
    assert_eq!(server.exit_code(old), Some(0), "{}", server.log_text());
    let output = util::programs::app_client(server.addr, &["search", "morpheus"]);
    assert!(
        output.status.success(),
        "{}",
        util::programs::stderr(&output)
    );
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
}

/// The measurement beside the test: the same load across `UPGRADE_ROUNDS` restarts (3 unless
/// set), by upgrade and by a plain stop and start, one line of figures each:
/// `UPGRADE_ROUNDS=20 cargo test --release --all-features --test upgrade -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn measure_upgrades_beside_plain_restarts() {
    for restart in [Restart::Upgrade, Restart::StopAndStart] {
        let measured = measure(&example("echo_server"), restart, rounds(), 4, 4);
        println!("{}", measured.line(restart));
    }
}

#[test]
fn sigterm_during_an_upgrade_stops_the_successor_too() {
    let dir = tempfile::tempdir().unwrap();
    let program = copy_of_echo_server(dir.path());
    let mut server = Upgradable::start(&program, dir, &[]);
    let started = program.with_file_name("started");
    let survived = program.with_file_name("survived");
    // A slow successor: it is still starting when the old process is told to stop.
    install_script(
        &program,
        &format!(
            "#!/bin/sh\ntouch {}\nsleep 1\ntouch {}\nexec {} \"$@\"\n",
            started.display(),
            survived.display(),
            example("echo_server").display()
        ),
    );
    let pid = server.serving();
    server.signal(Signal::SIGUSR2);
    let deadline = Instant::now() + DEADLINE;
    while !started.exists() {
        assert!(Instant::now() < deadline, "{}", server.log_text());
        thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.stop(), Some(0), "{}", server.log_text());
    // Killed with the old process: it never gets past its `sleep` (nothing to wait on but
    // the time it would have taken).
    thread::sleep(Duration::from_millis(1500));
    assert!(!survived.exists(), "{}", server.log_text());
    assert_eq!(server.written_pid(), Some(pid));
}

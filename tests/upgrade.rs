//! Restarts without a gap (`Reactor::upgrade_on_signal`), as a user meets them: `echo_server
//! --pid-file PATH` upgraded with SIGUSR2 while clients open short connections continuously
//! and long-lived connections echo; no connection is refused or reset, no byte is lost, and
//! every old process exits 0. A successor that fails leaves the old process serving.
//!
//! `UPGRADE_ROUNDS=20 cargo test --all-features --test upgrade` runs the full-size sequence
//! (3 upgrades in a row otherwise).
//!
//! The successors are started by the server, not by the test: the test makes itself a child
//! subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so that each orphaned successor becomes its
//! child, whose exit status it can wait for; it finds each one by the PID file.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use util::programs::example;
use util::random_bytes;

/// How long anything here may take: an upgrade, an old process's drain, a round trip.
const DEADLINE: Duration = Duration::from_secs(20);

/// An upgradable echo server and every process that served for it.
struct Upgradable {
    /// The processes the test started itself (the first; each of a plain restart).
    children: Vec<Child>,
    program: PathBuf,
    env: Vec<(String, String)>,
    extra: Vec<String>,
    pid_file: PathBuf,
    log: PathBuf,
    addr: SocketAddr,
    /// Every PID that served, in order.
    pids: Vec<u32>,
    _dir: tempfile::TempDir,
}

impl Upgradable {
    /// Starts `program` (a path to echo_server or a copy of it) with a PID file; waits until
    /// it serves.
    fn start(program: &Path, dir: tempfile::TempDir, extra: &[&str]) -> Upgradable {
        Upgradable::start_with_env(program, dir, extra, &[])
    }

    /// [`start`](Upgradable::start) with these environment variables set for the first
    /// process.
    fn start_with_env(
        program: &Path,
        dir: tempfile::TempDir,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Upgradable {
        nix::sys::prctl::set_child_subreaper(true).expect("become a child subreaper");
        let mut server = Upgradable {
            children: Vec::new(),
            program: program.to_path_buf(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            pid_file: dir.path().join("echo.pid"),
            log: dir.path().join("echo.log"),
            addr: "127.0.0.1:0".parse().unwrap(),
            pids: Vec::new(),
            _dir: dir,
        };
        server.addr = server.spawn();
        server
    }

    /// Starts a process of the server on `self.addr`; returns the address it announced once
    /// it wrote the PID file.
    fn spawn(&mut self) -> SocketAddr {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file");
        let mut child = Command::new(&self.program)
            .arg("--listen")
            .arg(format!("tcp:{}", self.addr))
            .arg("--pid-file")
            .arg(&self.pid_file)
            .args(&self.extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start echo_server");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Every process of the chain writes here; read to the end so none blocks on it.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(DEADLINE).expect("a listening line");
        let addr = line
            .split_once(" server listening on tcp:")
            .and_then(|(_, a)| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let pid = child.id();
        self.children.push(child);
        self.pids.push(pid);
        self.wait_for_pid_file(|written| written == pid);
        addr
    }

    /// The PID the file holds now (`None` while it is missing).
    fn written_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
    }

    fn wait_for_pid_file(&self, done: impl Fn(u32) -> bool) -> u32 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(pid) = self.written_pid().filter(|&pid| done(pid)) {
                return pid;
            }
            assert!(Instant::now() < deadline, "PID file: {}", self.log_text());
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn serving(&self) -> u32 {
        *self.pids.last().unwrap()
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.serving() as i32), signal).expect("signal the server");
    }

    /// SIGUSR2, then waits until the successor rewrote the PID file; returns the old PID.
    fn upgrade(&mut self) -> u32 {
        let old = self.serving();
        self.signal(Signal::SIGUSR2);
        let new = self.wait_for_pid_file(|pid| pid != old);
        self.pids.push(new);
        old
    }

    /// A plain restart, for comparison: SIGTERM, wait for the exit, start a new process on
    /// the same port. Returns the old process's exit code.
    fn restart_plainly(&mut self) -> Option<i32> {
        let code = self.stop();
        self.spawn();
        code
    }

    /// Waits (bounded) for the process `pid` of this chain to exit; its exit code.
    fn exit_code(&mut self, pid: u32) -> Option<i32> {
        if let Some(at) = self.children.iter().position(|c| c.id() == pid) {
            let mut child = self.children.remove(at);
            return wait_child(&mut child);
        }
        // A successor: ours once its parent exited (we are its subreaper).
        let deadline = Instant::now() + DEADLINE;
        loop {
            match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => return Some(code),
                Ok(WaitStatus::Signaled(..)) => return None,
                Ok(_) | Err(nix::errno::Errno::ECHILD) => {}
                Err(err) => panic!("waitpid {pid}: {err}"),
            }
            assert!(
                Instant::now() < deadline,
                "{pid} exited in time: {}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM to the process serving now; its exit code.
    fn stop(&mut self) -> Option<i32> {
        self.signal(Signal::SIGTERM);
        let pid = self.serving();
        self.exit_code(pid)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Upgradable {
    /// A failed test ends whatever still runs, by PID.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let children: Vec<u32> = self.children.iter().map(Child::id).collect();
        for &pid in self.pids.iter().filter(|pid| !children.contains(pid)) {
            let pid = Pid::from_raw(pid as i32);
            if kill(pid, Signal::SIGKILL).is_ok() {
                let _ = waitpid(pid, None);
            }
        }
    }
}

fn wait_child(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "the first process exited in time"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Short connections that got back exactly what they sent.
    short: AtomicU64,
    /// Long-lived connections that echoed every round and closed cleanly.
    long: AtomicU64,
    /// Every failure: a refused or reset connection, a short or wrong echo.
    failures: Mutex<Vec<(ErrorKind, String)>>,
}

impl Seen {
    fn fail(&self, kind: ErrorKind, what: String) {
        self.failures.lock().unwrap().push((kind, what));
    }
}

/// Clients running until `stop`: short connections (connect, send, half-close, read the echo
/// to EOF) and long-lived ones (rounds of write and read back, then a clean close).
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(addr: SocketAddr, short: usize, long: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Seen::default());
        let mut threads = Vec::new();
        for client in 0..short + long {
            let (stop, seen) = (stop.clone(), seen.clone());
            let is_long = client >= short;
            threads.push(thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let seed = (client as u64) << 32 | n;
                    let done = if is_long {
                        long_lived(addr, seed).map(|()| &seen.long)
                    } else {
                        short_lived(addr, seed).map(|()| &seen.short)
                    };
                    match done {
                        Ok(counter) => {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(err) => {
                            seen.fail(err.kind(), format!("client {client} connection {n}: {err}"))
                        }
                    }
                }
            }));
        }
        Load {
            stop,
            seen,
            threads,
        }
    }

    /// Waits (bounded) until both kinds of connection completed `more` times from now.
    fn progress(&self, more: u64) {
        let (short, long) = self.counts();
        let deadline = Instant::now() + DEADLINE;
        while self.counts().0 < short + more || self.counts().1 < long + more {
            assert!(Instant::now() < deadline, "the clients made progress");
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.seen.short.load(Ordering::SeqCst),
            self.seen.long.load(Ordering::SeqCst),
        )
    }

    /// Stops the clients; returns the counts and the failures.
    fn finish(mut self) -> ((u64, u64), Vec<(ErrorKind, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in std::mem::take(&mut self.threads) {
            thread.join().expect("a client thread");
        }
        let counts = self.counts();
        let failures = std::mem::take(&mut *self.seen.failures.lock().unwrap());
        (counts, failures)
    }
}

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    Ok(stream)
}

/// One short connection: 1 KiB out, half-close, the same 1 KiB back, then EOF.
fn short_lived(addr: SocketAddr, seed: u64) -> std::io::Result<()> {
    let mut stream = connect(addr)?;
    let data = random_bytes(seed, 1024);
    stream.write_all(&data)?;
    stream.shutdown(Shutdown::Write)?;
    let mut back = Vec::new();
    stream.read_to_end(&mut back)?;
    check_echo(&data, &back)
}

/// One long-lived connection: 40 rounds of 4 KiB written and read back, 5 ms apart (about a
/// quarter of a second, across upgrades), then a half-close and EOF.
fn long_lived(addr: SocketAddr, seed: u64) -> std::io::Result<()> {
    let mut stream = connect(addr)?;
    for round in 0..40 {
        let data = random_bytes(seed ^ round << 20, 4096);
        stream.write_all(&data)?;
        let mut back = vec![0; data.len()];
        stream.read_exact(&mut back)?;
        check_echo(&data, &back)?;
        thread::sleep(Duration::from_millis(5));
    }
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    check_echo(&[], &rest)
}

fn check_echo(sent: &[u8], back: &[u8]) -> std::io::Result<()> {
    if sent == back {
        return Ok(());
    }
    Err(std::io::Error::new(
        ErrorKind::InvalidData,
        format!(
            "sent {} bytes, {} came back different",
            sent.len(),
            back.len()
        ),
    ))
}

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

/// How the measurement restarts the server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Restart {
    /// SIGUSR2: the successor inherits the listener; the old process drains.
    Upgrade,
    /// SIGTERM, wait for the exit, start a new process on the same port.
    StopAndStart,
}

/// The measurement beside the test: the same load across `UPGRADE_ROUNDS` restarts (3 unless
/// set), by upgrade and by a plain stop and start, one line of figures each:
/// `UPGRADE_ROUNDS=20 cargo test --release --all-features --test upgrade -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn measure_upgrades_beside_plain_restarts() {
    for restart in [Restart::Upgrade, Restart::StopAndStart] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Upgradable::start(&example("echo_server"), dir, &[]);
        let load = Load::start(server.addr, 4, 4);
        load.progress(3);
        let started = Instant::now();
        let mut exits = Vec::new();
        for _ in 0..rounds() {
            let exit = match restart {
                Restart::Upgrade => {
                    let old = server.upgrade();
                    load.progress(3);
                    server.exit_code(old)
                }
                Restart::StopAndStart => {
                    let exit = server.restart_plainly();
                    load.progress(3);
                    exit
                }
            };
            exits.push(exit);
        }
        let elapsed = started.elapsed();
        let ((short, long), failures) = load.finish();
        let count = |kind: ErrorKind| failures.iter().filter(|(k, _)| *k == kind).count();
        let refused = count(ErrorKind::ConnectionRefused);
        let reset = count(ErrorKind::ConnectionReset);
        let other = failures.len() - refused - reset;
        println!(
            "{restart:?}: restarts={} short_ok={short} long_ok={long} refused={refused} \
             reset={reset} cut_short_or_lost={other} old_exits_0={}/{} time={:.1}s",
            rounds(),
            exits.iter().filter(|code| **code == Some(0)).count(),
            exits.len(),
            elapsed.as_secs_f64()
        );
        assert_eq!(server.stop(), Some(0), "{}", server.log_text());
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

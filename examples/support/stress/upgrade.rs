//! Restarts under load, shared by the `upgrade` stress scenario, `tests/upgrade.rs` and
//! `tests/deploy.rs`: a server started with `--pid-file` and upgraded with SIGUSR2
//! ([`Upgradable`]), or stopped and started again for comparison, while clients open short
//! connections in a loop and keep long-lived ones echoing ([`Load`]).
//!
//! The successors are started by the server, not by whoever runs it: [`Upgradable`] makes
//! its process a child subreaper (`prctl(PR_SET_CHILD_SUBREAPER)`), so that each orphaned
//! successor becomes its child, whose exit status it can wait for; it finds each one by the
//! PID file. Its waits are bounded by [`DEADLINE`] and panic past it.

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

use super::pattern::{Kind, Pattern};
use super::report::{secs, Report};

/// How long anything here may take: an upgrade, an old process's drain, a round trip.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// An upgradable server (an example run with `--pid-file`) and every process that served for
/// it.
pub struct Upgradable {
    /// The processes the test started itself (the first; each of a plain restart).
    pub children: Vec<Child>,
    pub program: PathBuf,
    pub env: Vec<(String, String)>,
    pub extra: Vec<String>,
    pub pid_file: PathBuf,
    pub log: PathBuf,
    pub addr: SocketAddr,
    /// Every PID that served, in order.
    pub pids: Vec<u32>,
    _dir: tempfile::TempDir,
}

impl Upgradable {
    /// Starts `program` (an example, or a copy of one) with a PID file; waits until
    /// it serves.
    pub fn start(program: &Path, dir: tempfile::TempDir, extra: &[&str]) -> Upgradable {
        Upgradable::start_with_env(program, dir, extra, &[])
    }

    /// [`start`](Upgradable::start) with these environment variables set for the first
    /// process.
    pub fn start_with_env(
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
            pid_file: dir.path().join("server.pid"),
            log: dir.path().join("server.log"),
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
            .expect("start the server");
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
    pub fn written_pid(&self) -> Option<u32> {
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

    pub fn serving(&self) -> u32 {
        *self.pids.last().unwrap()
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.serving() as i32), signal).expect("signal the server");
    }

    /// SIGUSR2, then waits until the successor rewrote the PID file; returns the old PID.
    pub fn upgrade(&mut self) -> u32 {
        let old = self.serving();
        self.signal(Signal::SIGUSR2);
        let new = self.wait_for_pid_file(|pid| pid != old);
        self.pids.push(new);
        old
    }

    /// A plain restart, for comparison: SIGTERM, wait for the exit, start a new process on
    /// the same port. Returns the old process's exit code.
    pub fn restart_plainly(&mut self) -> Option<i32> {
        let code = self.stop();
        self.spawn();
        code
    }

    /// Waits (bounded) for the process `pid` of this chain to exit; its exit code.
    pub fn exit_code(&mut self, pid: u32) -> Option<i32> {
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
    pub fn stop(&mut self) -> Option<i32> {
        self.signal(Signal::SIGTERM);
        let pid = self.serving();
        self.exit_code(pid)
    }

    pub fn log_text(&self) -> String {
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
pub struct Seen {
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
pub struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Seen>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, short: usize, long: usize) -> Load {
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
    pub fn progress(&self, more: u64) {
        let (short, long) = self.counts();
        let deadline = Instant::now() + DEADLINE;
        while self.counts().0 < short + more || self.counts().1 < long + more {
            assert!(Instant::now() < deadline, "the clients made progress");
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn counts(&self) -> (u64, u64) {
        (
            self.seen.short.load(Ordering::SeqCst),
            self.seen.long.load(Ordering::SeqCst),
        )
    }

    /// Stops the clients; returns the counts and the failures.
    pub fn finish(mut self) -> ((u64, u64), Vec<(ErrorKind, String)>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in std::mem::take(&mut self.threads) {
            thread.join().expect("a client thread");
        }
        let counts = self.counts();
        let failures = std::mem::take(&mut *self.seen.failures.lock().unwrap());
        (counts, failures)
    }
}

pub fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.set_write_timeout(Some(DEADLINE))?;
    Ok(stream)
}

/// One short connection: 1 KiB out, half-close, the same 1 KiB back, then EOF.
pub fn short_lived(addr: SocketAddr, seed: u64) -> std::io::Result<()> {
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
pub fn long_lived(addr: SocketAddr, seed: u64) -> std::io::Result<()> {
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

pub fn check_echo(sent: &[u8], back: &[u8]) -> std::io::Result<()> {
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

/// How the measurement restarts the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Restart {
    /// SIGUSR2: the successor inherits the listener; the old process drains.
    Upgrade,
    /// SIGTERM, wait for the exit, start a new process on the same port.
    StopAndStart,
}

/// `len` bytes that `seed` always gives alike.
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    Pattern::new(seed, Kind::Random).fill(&mut bytes);
    bytes
}

/// What one run of restarts under load saw.
#[derive(Debug)]
pub struct Measured {
    pub restarts: usize,
    pub short_ok: u64,
    pub long_ok: u64,
    pub refused: usize,
    pub reset: usize,
    /// Connections cut short, or whose echo came back short or different.
    pub lost: usize,
    /// Old processes that exited 0.
    pub old_exits_0: usize,
    pub time: Duration,
}

impl Measured {
    /// One line of figures, as `measure_upgrades_beside_plain_restarts` prints them.
    pub fn line(&self, restart: Restart) -> String {
        format!(
            "{restart:?}: restarts={} short_ok={} long_ok={} refused={} reset={} \
             cut_short_or_lost={} old_exits_0={}/{} time={:.1}s",
            self.restarts,
            self.short_ok,
            self.long_ok,
            self.refused,
            self.reset,
            self.lost,
            self.old_exits_0,
            self.restarts,
            self.time.as_secs_f64()
        )
    }
}

/// Restarts `program` (echo_server) `rounds` times the `restart` way while `short` clients
/// open short connections in a loop and `long` clients keep long-lived ones echoing; each
/// restart waits for the clients to make progress after it. The server is stopped (and
/// waited for) at the end.
pub fn measure(
    program: &Path,
    restart: Restart,
    rounds: usize,
    short: usize,
    long: usize,
) -> Measured {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut server = Upgradable::start(program, dir, &[]);
    let load = Load::start(server.addr, short, long);
    load.progress(3);
    let started = Instant::now();
    let mut exits = Vec::new();
    for _ in 0..rounds {
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
    let time = started.elapsed();
    let ((short_ok, long_ok), failures) = load.finish();
    let count = |kind: ErrorKind| failures.iter().filter(|(k, _)| *k == kind).count();
    let (refused, reset) = (
        count(ErrorKind::ConnectionRefused),
        count(ErrorKind::ConnectionReset),
    );
    let last = server.stop();
    assert_eq!(last, Some(0), "{}", server.log_text());
    Measured {
        restarts: rounds,
        short_ok,
        long_ok,
        refused,
        reset,
        lost: failures.len() - refused - reset,
        old_exits_0: exits.iter().filter(|code| **code == Some(0)).count(),
        time,
    }
}

/// The `upgrade` scenario: echo_server (the release example beside the stress program)
/// upgraded `rounds` times under load, and beside it stopped and started as many times.
/// Passes if the upgrades refused, reset and lost nothing and every old process exited 0;
/// the plain restarts' figures are there to compare.
pub fn upgrade_under_load(rounds: usize, short: usize, long: usize) -> Report {
    Report::run("upgrade", |report| {
        let program = std::env::current_exe()
            .map_err(|err| format!("where this program is: {err}"))?
            .with_file_name("echo_server");
        if !program.exists() {
            return Err(format!(
                "{} is missing: build the examples",
                program.display()
            ));
        }
        let upgrade = measure(&program, Restart::Upgrade, rounds, short, long);
        let plain = measure(&program, Restart::StopAndStart, rounds, short, long);
        report.figure("restarts", rounds);
        report.figure("upgrade_refused", upgrade.refused);
        report.figure("upgrade_reset", upgrade.reset);
        report.figure("upgrade_lost", upgrade.lost);
        report.figure("upgrade_time", secs(upgrade.time));
        report.figure("plain_refused", plain.refused);
        report.figure("plain_reset", plain.reset);
        report.figure("plain_lost", plain.lost);
        report.figure("plain_time", secs(plain.time));
        report.check(upgrade.refused + upgrade.reset + upgrade.lost == 0, || {
            upgrade.line(Restart::Upgrade)
        });
        report.check(upgrade.old_exits_0 == rounds, || {
            format!("{} of {rounds} old processes exited 0", upgrade.old_exits_0)
        });
        report.check(upgrade.short_ok > 0 && upgrade.long_ok > 0, || {
            "no connection completed".to_string()
        });
        Ok(())
    })
}

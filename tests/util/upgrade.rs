//! A server upgraded with SIGUSR2 (`--pid-file`), as a user runs it: the test starts the
//! first process, finds each successor by the PID file, and waits for every process that
//! served (successors are started by the server, not by the test: the test makes itself a
//! child subreaper, `prctl(PR_SET_CHILD_SUBREAPER)`, so that each orphaned successor becomes
//! its child, whose exit status it can wait for).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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

//! Starting the server child process and watching it from the parent: its address, memory,
//! descriptors and CPU time while it runs, and its report once it stops.
//!
//! Every child is waited for: [`ChildServer::finish`] reaps it, and dropping a
//! `ChildServer` that was not finished kills it (by its own PID) and reaps it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::process_figures;
use super::server::{ServerSpec, MARK, SPEC_VAR};

/// How long the child may take to start or to stop.
const PATIENCE: Duration = Duration::from_secs(60);

/// How to run a copy of this executable as the server.
#[derive(Debug, Clone)]
pub struct Launcher {
    program: PathBuf,
    args: Vec<String>,
}

impl Launcher {
    /// This program (the stress example): its `main` starts with `serve_if_asked`.
    pub fn this_program() -> Launcher {
        Launcher {
            program: std::env::current_exe().expect("the path of this executable"),
            args: Vec::new(),
        }
    }

    /// This test binary, running only the test `name`, which starts with `serve_if_asked`.
    pub fn this_test(name: &str) -> Launcher {
        let args = ["--exact", name, "--nocapture", "--test-threads=1"];
        Launcher {
            args: args.iter().map(|arg| arg.to_string()).collect(),
            ..Launcher::this_program()
        }
    }

    /// For a stress test: in the server child, serves and returns `None` (the test is over);
    /// otherwise returns the launcher that starts this test again as the server.
    pub fn for_test(name: &str) -> Option<Launcher> {
        if super::server::serve_if_asked() {
            return None;
        }
        Some(Launcher::this_test(name))
    }

    /// Starts the server and waits (bounded) until it listens.
    pub fn spawn(&self, spec: &ServerSpec) -> io::Result<ChildServer> {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        self.start(command, spec)
    }

    /// Starts the server with at most `limit` file descriptors (`prlimit --nofile`, which
    /// sets the limit and then executes the server in its own process: same PID).
    pub fn spawn_with_fd_limit(&self, spec: &ServerSpec, limit: u64) -> io::Result<ChildServer> {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={limit}:{limit}"))
            .arg("--")
            .arg(&self.program)
            .args(&self.args);
        self.start(command, spec)
    }

    fn start(&self, mut command: Command, spec: &ServerSpec) -> io::Result<ChildServer> {
        let mut child = command
            .env(SPEC_VAR, spec.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        // The child's report lines, wherever they are on the line (a test harness may print
        // the test's name first).
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find(MARK) {
                    if tx.send(line[at + MARK.len()..].to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        let mut server = ChildServer {
            pid: child.id(),
            stdin: child.stdin.take(),
            child: Some(child),
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            kept: Vec::new(),
        };
        let started = Instant::now();
        loop {
            let left = PATIENCE.saturating_sub(started.elapsed());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening ") {
                        server.addr = addr
                            .parse()
                            .map_err(|e| io::Error::other(format!("bad address {addr}: {e}")))?;
                        return Ok(server);
                    }
                    if let Some(why) = line.strip_prefix("error ") {
                        return Err(io::Error::other(format!("the server failed: {why}")));
                    }
                }
                Err(_) => return Err(io::Error::other("the server did not start listening")),
            }
        }
    }
}

/// A running server child.
pub struct ChildServer {
    pub pid: u32,
    pub addr: SocketAddr,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Report lines received before `finish`.
    kept: Vec<String>,
}

impl ChildServer {
    pub fn rss_kib(&self) -> io::Result<u64> {
        process_figures::rss_kib(self.pid)
    }

    pub fn fd_count(&self) -> io::Result<usize> {
        process_figures::fd_count(self.pid)
    }

    pub fn fds_below(&self, limit: u64) -> io::Result<usize> {
        process_figures::fds_below(self.pid, limit)
    }

    pub fn cpu_time(&self) -> io::Result<Duration> {
        process_figures::cpu_time(self.pid)
    }

    /// Asks for a graceful shutdown (closes the child's standard input) and returns at once.
    pub fn request_stop(&mut self) {
        self.stdin.take();
    }

    /// Asks for a graceful shutdown if not done yet, waits (bounded) for the child to exit,
    /// and returns its report. A child that crashed or failed is an error.
    pub fn finish(mut self) -> Result<ServerReport, String> {
        self.request_stop();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.kept.push(line),
                // The child closed its standard output: it exited.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("the server did not stop within {PATIENCE:?}"));
                }
            }
        }
        let mut child = self.child.take().expect("finished once");
        let status = child
            .wait()
            .map_err(|e| format!("waiting for the server: {e}"))?;
        let report = ServerReport::parse(&self.kept);
        if let Some(why) = self.kept.iter().find_map(|l| l.strip_prefix("error ")) {
            return Err(format!("the server failed: {why}"));
        }
        if !status.success() {
            return Err(format!("the server exited with {status}"));
        }
        if report.stats.is_empty() {
            return Err("the server printed no stats: run() did not return".to_string());
        }
        Ok(report)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Not finished (a failure on the way): stop it by its PID and reap it.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One connection as the server saw it close.
#[derive(Debug, Clone)]
pub struct CloseRecord {
    pub peer: SocketAddr,
    pub reason: String,
    /// Bytes the reactor accepted for sending on this connection.
    pub accepted: u64,
}

/// What the server reported when it stopped.
#[derive(Debug, Default)]
pub struct ServerReport {
    pub stats: BTreeMap<String, u64>,
    pub closes: Vec<CloseRecord>,
}

impl ServerReport {
    fn parse(lines: &[String]) -> ServerReport {
        let mut report = ServerReport::default();
        for line in lines {
            if let Some(pairs) = line.strip_prefix("stats ") {
                for pair in pairs.split_whitespace() {
                    if let Some((key, value)) = pair.split_once('=') {
                        let value = value.parse().unwrap_or(u64::MAX);
                        report.stats.insert(key.to_string(), value);
                    }
                }
            } else if let Some(fields) = line.strip_prefix("close ") {
                let fields: Vec<&str> = fields.split_whitespace().collect();
                if let [peer, reason, accepted] = fields[..] {
                    if let (Ok(peer), Ok(accepted)) = (peer.parse(), accepted.parse()) {
                        report.closes.push(CloseRecord {
                            peer,
                            reason: reason.to_string(),
                            accepted,
                        });
                    }
                }
            }
        }
        report
    }

    /// A counter from the stats line (`u64::MAX` if missing, so checks fail loudly).
    pub fn get(&self, key: &str) -> u64 {
        self.stats.get(key).copied().unwrap_or(u64::MAX)
    }
}

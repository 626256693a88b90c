//! Running the real programs: the compiled `app_server`, `app_client` and `gen_cert`
//! examples, and the independent Python peer in `tests/interop/`. Every wait is bounded by
//! [`TIMEOUT`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// The bound on every wait: generous for a loaded CI machine, and a hang fails the test
/// instead of stalling the suite.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long the clients started here may take, shorter than [`TIMEOUT`] so that they give
/// up (and report why) before the test stops waiting for them.
const CLIENT_TIMEOUT_SECS: &str = "5";

/// The path of a compiled example.
///
/// `cargo test` builds the examples into `target/<profile>/examples/`, next to the `deps/`
/// directory that holds this test binary. `cargo test --test NAME` does not: after changing
/// an example, run `cargo build --examples` first, or these tests run the old binary.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps/");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// A command running the Python peer, or `None` (with a note on stderr) without `python3`.
pub fn python_peer(args: &[&str]) -> Option<Command> {
    let found = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!("note: python3 not found; skipping the interop test");
        return None;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interop/tutorial_peer.py"
    );
    let mut command = Command::new("python3");
    command.arg(script).args(args);
    Some(command)
}

/// Runs `command` to completion and returns its output, within [`TIMEOUT`].
pub fn output_within(mut command: Command) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(TIMEOUT)
        .expect("the program did not finish in time")
        .expect("waiting for the program")
}

/// Runs `command` with `input` on its standard input, to completion, within `wait`; its
/// output. The input is written by a thread: the program may answer before it has read
/// everything, and a full pipe either way must not stall the test.
pub fn output_with_input(mut command: Command, input: Vec<u8>, wait: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("piped stdin");
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(child.wait_with_output()));
    rx.recv_timeout(wait)
        .expect("the program did not finish in time")
        .expect("waiting for the program")
}

/// Runs `app_client HOST PORT args...` against `addr`.
pub fn app_client(addr: SocketAddr, args: &[&str]) -> Output {
    let mut command = Command::new(example("app_client"));
    command
        .args(["--timeout", CLIENT_TIMEOUT_SECS])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .args(args);
    output_within(command)
}

/// Runs the Python peer's client `ACTION VALUE [OPTIONS]` (`args`) against `addr`; `None`
/// without `python3`.
pub fn python_client(addr: SocketAddr, args: &[&str]) -> Option<Output> {
    let ip = addr.ip().to_string();
    let port = addr.port().to_string();
    let mut command = python_peer(&["client", &ip, &port])?;
    command.args(args).args(["--timeout", CLIENT_TIMEOUT_SECS]);
    Some(output_within(command))
}

/// Runs `gen_cert --dir` into a fresh directory of the caller's own (removed on drop), as
/// a newcomer makes a certificate: `ca.pem`, and `cert.pem` with `key.pem` for localhost,
/// 127.0.0.1 and ::1. The tests run in parallel, and one `gen_cert` overwriting another's
/// files mixes a CA with another CA's leaf.
pub fn gen_cert() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mio-reactor-gen-cert-")
        .tempdir()
        .unwrap();
    let mut command = Command::new(example("gen_cert"));
    command.arg("--dir").arg(dir.path());
    let output = output_within(command);
    assert!(output.status.success(), "gen_cert: {}", stderr(&output));
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.path().join(file).exists(), "{file} written");
    }
    dir
}

/// A path as an argument (the tests' temporary paths are UTF-8).
pub fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Standard output of a finished program, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error of a finished program, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A server process that prints its address on its first line: read as it runs, killed if
/// the test ends (or panics) before it finishes.
pub struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

/// What a server process left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Spawned {
    pub fn spawn(command: &mut Command) -> Spawned {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        // Pipes are read by threads, so that the server never blocks on a full pipe and
        // every read here can have a deadline.
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Spawned {
            child,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Starts a server whose first line is `prefix` then its address; returns it and that
    /// address.
    pub fn listening(command: &mut Command, prefix: &str) -> (Spawned, SocketAddr) {
        let mut process = Spawned::spawn(command);
        let line = process.next_line();
        let addr = line
            .strip_prefix(prefix)
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        (process, addr)
    }

    /// The next line of standard output.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(err) => panic!("no line from the server ({err}); stderr: {}", self.stderr()),
        }
    }

    /// Closes its standard input, then waits for it to exit.
    pub fn finish(mut self) -> Finished {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + TIMEOUT;
        let mut stdout = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    stdout.push_str(&line);
                    stdout.push('\n');
                }
                // Standard output closed: the process is exiting.
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("the server did not stop in time"),
            }
        }
        let status = self.child.wait().expect("wait for the server");
        Finished {
            status,
            stdout,
            stderr: self.stderr(),
        }
    }

    fn stderr(&mut self) -> String {
        if self.child.try_wait().ok().flatten().is_none() {
            // Still running: its stderr will not end on its own.
            let _ = self.child.kill();
        }
        self.stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `app_server` example, listening on an ephemeral port of 127.0.0.1.
pub struct AppServer {
    process: Spawned,
    pub addr: SocketAddr,
}

impl AppServer {
    /// Starts it with these extra options and waits for its address.
    pub fn start(options: &[&str]) -> AppServer {
        AppServer::launch(options, "app server listening on ")
    }

    /// Starts it over TLS with the `cert.pem` and `key.pem` in `dir` (see [`gen_cert`]),
    /// and waits for its address, which it must announce as TLS.
    pub fn start_tls(dir: &Path) -> AppServer {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let options = ["--tls-cert", path(&cert), "--tls-key", path(&key)];
        AppServer::launch(&options, "app server listening on tls:")
    }

    fn launch(options: &[&str], prefix: &str) -> AppServer {
        let mut command = Command::new(example("app_server"));
        command
            .args(["127.0.0.1", "0", "--stop-on-stdin-eof"])
            .args(options)
            // Warnings must show whatever the environment says: tests read them.
            .env("RUST_LOG", "info");
        let (process, addr) = Spawned::listening(&mut command, prefix);
        AppServer { process, addr }
    }

    /// Stops it the way scripts do (end of standard input) and checks that it stopped
    /// cleanly, without a panic.
    pub fn stop(self) -> Finished {
        let finished = self.process.finish();
        assert!(
            finished.status.success(),
            "app_server failed: {}\n{}",
            finished.status,
            finished.stderr
        );
        assert!(
            !finished.stderr.contains("panicked"),
            "app_server panicked:\n{}",
            finished.stderr
        );
        finished
    }
}

impl Finished {
    /// The server's closing line with its counters.
    pub fn stats(&self) -> &str {
        self.stdout
            .lines()
            .find(|line| line.starts_with("app server stopped:"))
            .unwrap_or_else(|| panic!("no stats line in {:?}", self.stdout))
    }

    /// The server's warnings (one per rejected request or timed-out client).
    pub fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|line| line.contains(" WARN "))
            .collect()
    }
}

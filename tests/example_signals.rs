//! The example servers as `docker stop`, `systemctl stop`, Kubernetes and Ctrl-C meet them:
//! SIGTERM or SIGINT drains (every byte the server accepted reaches its reader) and the
//! process exits 0. Every example's `--help` says what the signals do. (That a second
//! signal aborts is pinned in `tests/signals.rs`, where the shutdown deadline can be set far
//! enough away that only the signal can explain the abort.)

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use util::programs::{example, output_within, stdout, TIMEOUT};
use util::{random_bytes, WAIT};

/// A server example running, its output lines (stdout and stderr) read as they come.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(name: &str, args: &[&str]) -> Running {
        Running::with_log(name, args, "info")
    }

    /// With `RUST_LOG` set to `log`.
    fn with_log(name: &str, args: &[&str], log: &str) -> Running {
        let mut child = Command::new(example(name))
            .args(args)
            .env("RUST_LOG", log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for pipe in [Box::new(out) as Box<dyn Read + Send>, Box::new(err)] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for a line containing `text`, and returns it.
    fn line_with(&mut self, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; saw {:#?}", self.seen),
            }
        }
    }

    /// The address the example announces ("... server listening on ADDR"): by then it
    /// watches the signals. (The reactor's own log line "listening on" may come earlier.)
    fn addr(&mut self) -> SocketAddr {
        let line = self.line_with("server listening on ");
        let addr = line.rsplit(' ').next().unwrap();
        let addr = addr.strip_prefix("http://").unwrap_or(addr);
        addr.parse()
            .unwrap_or_else(|_| panic!("an address in {line:?}"))
    }

    /// Sends `signal` (`TERM`, `INT`) with the shell's `kill`.
    fn signal(&self, signal: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", self.child.id())])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; returns its status and every line it wrote.
    fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + TIMEOUT;
        // Both pipes close when it exits.
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "exited in time: {:#?}",
                self.seen
            );
            thread::sleep(Duration::from_millis(10)); // the pipes closed: only reaping is left
        };
        (status, self.seen.join("\n"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bytes one client sent and received: sent in a thread, read in another, until EOF.
struct Transfer {
    received: Arc<AtomicUsize>,
    go: mpsc::Sender<()>,
    reader: thread::JoinHandle<(Vec<u8>, Result<(), ErrorKind>)>,
    writer: thread::JoinHandle<Result<(), ErrorKind>>,
}

impl Transfer {
    /// Sends `data` then half-closes; reads everything back unless `reads` is false.
    fn start(addr: SocketAddr, data: Arc<Vec<u8>>, reads: bool) -> Transfer {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(WAIT)).unwrap();
        stream.set_write_timeout(Some(WAIT)).unwrap();
        let mut sending = stream.try_clone().unwrap();
        let writer = thread::spawn(move || {
            for chunk in data.chunks(64 * 1024) {
                // An error: the server ended the connection.
                sending.write_all(chunk).map_err(|e| e.kind())?;
            }
            sending.shutdown(Shutdown::Write).map_err(|e| e.kind())
        });
        let received = Arc::new(AtomicUsize::new(0));
        let counted = received.clone();
        let mut stream = stream;
        let (go, wait) = mpsc::channel::<()>();
        if reads {
            go.send(()).unwrap();
        }
        let reader = thread::spawn(move || {
            let mut all = Vec::new();
            // A client that does not read waits until `finish`.
            let _ = wait.recv_timeout(WAIT);
            let mut buf = vec![0; 64 * 1024];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return (all, Ok(())),
                    Ok(n) => {
                        all.extend_from_slice(&buf[..n]);
                        counted.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(err) => return (all, Err(err.kind())),
                }
            }
        });
        Transfer {
            received,
            go,
            reader,
            writer,
        }
    }

    fn wait_for(&self, bytes: usize) {
        let deadline = Instant::now() + WAIT;
        while self.received.load(Ordering::SeqCst) < bytes {
            assert!(Instant::now() < deadline, "{bytes} B echoed in time");
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// What was read, and how reading and writing ended.
    fn finish(self) -> (Vec<u8>, Result<(), ErrorKind>, Result<(), ErrorKind>) {
        let _ = self.go.send(());
        let (received, read_end) = self.reader.join().unwrap();
        (received, read_end, self.writer.join().unwrap())
    }
}

/// The `N B out` figure of the echo server's last line.
fn bytes_out(output: &str) -> usize {
    let last = output
        .lines()
        .find(|line| line.starts_with("echo server stopped"))
        .unwrap_or_else(|| panic!("a stats line in {output}"));
    let at = last.find(" B out").unwrap();
    last[..at].rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn sigterm_drains_a_running_echo_server_which_exits_0() {
    let mut server = Running::start("echo_server", &["--addr", "127.0.0.1:0"]);
    let data = Arc::new(random_bytes(11, 8 << 20));
    let transfer = Transfer::start(server.addr(), data.clone(), true);
    transfer.wait_for(256 * 1024); // mid-transfer
    server.signal("TERM");
    let (received, read_end, write_end) = transfer.finish();
    let (status, output) = server.exit();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(read_end, Ok(()), "the stream ended with a FIN, not a reset");
    assert_eq!(write_end, Ok(()), "every byte sent was taken");
    assert!(received.len() >= 256 * 1024);
    assert!(
        received[..] == data[..received.len()],
        "the echo is a prefix"
    );
    assert_eq!(received.len(), bytes_out(&output), "{output}");
    assert!(output.contains("SIGTERM received"), "{output}");
}

#[test]
fn sigint_drains_too() {
    let mut server = Running::start("echo_server", &["--addr", "127.0.0.1:0"]);
    let data = Arc::new(random_bytes(12, 1 << 20));
    let transfer = Transfer::start(server.addr(), data.clone(), true);
    transfer.wait_for(64 * 1024);
    server.signal("INT");
    let (received, read_end, _) = transfer.finish();
    let (status, output) = server.exit();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(read_end, Ok(()));
    assert_eq!(received.len(), bytes_out(&output), "{output}");
}

#[test]
fn every_example_server_exits_0_on_sigterm() {
    let servers: [(&str, &[&str]); 5] = [
        ("echo_server", &["--addr", "127.0.0.1:0"]),
        ("echo_server", &["--addr", "127.0.0.1:0", "--threads", "2"]),
        ("chat_server", &["--addr", "127.0.0.1:0"]),
        ("app_server", &["127.0.0.1", "0"]),
        ("http_server", &["--addr", "127.0.0.1:0", "--threads", "2"]),
    ];
    for (name, args) in servers {
        let mut server = Running::start(name, args);
        let _ = server.addr();
        server.signal("TERM");
        let (status, output) = server.exit();
        assert_eq!(status.code(), Some(0), "{name}: {output}");
        assert!(output.contains("SIGTERM received"), "{name}: {output}");
    }
}

#[test]
fn every_example_help_says_what_sigterm_and_sigint_do() {
    let examples = [
        "echo_server",
        "echo_client",
        "http_server",
        "app_server",
        "app_client",
        "chat_server",
        "blocking_echo",
        "readiness_demo",
        "timeline",
        "stress",
    ];
    for name in examples {
        let mut command = Command::new(example(name));
        command.arg("--help");
        let output = output_within(command);
        assert!(output.status.success(), "{name}");
        let help = stdout(&output);
        assert!(
            help.contains("SIGTERM") && help.contains("SIGINT"),
            "{name} --help: {help}"
        );
    }
}

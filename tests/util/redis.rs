//! The `kv_server` example and the server it copies, `redis-server`, as processes of a test;
//! the Redis command-line tools; and a raw RESP2 client that reads whole replies (framed by
//! their own lengths, never by timing) so that two servers' bytes can be compared.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::programs::{example, Finished, Spawned, TIMEOUT};

/// The line `kv_server` prints when it listens, before its address (`tcp:` or bare).
const KV_READY: &str = "kv server listening on ";

/// The `kv_server` example, listening on an ephemeral port of 127.0.0.1.
pub struct KvServer {
    process: Spawned,
    pub addr: SocketAddr,
}

impl KvServer {
    /// Starts it with these extra options and waits for its address.
    pub fn start(options: &[&str]) -> KvServer {
        let mut command = Command::new(example("kv_server"));
        command
            .args(["--listen", "127.0.0.1:0", "--stop-on-stdin-eof"])
            .args(options)
            .env("RUST_LOG", "info");
        let mut process = Spawned::spawn(&mut command);
        let line = process.next_line();
        let addr = line
            .strip_prefix(KV_READY)
            .map(|addr| addr.strip_prefix("tcp:").unwrap_or(addr))
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line of kv_server: {line:?}"));
        KvServer { process, addr }
    }

    /// A plain connection to it, reads bounded by [`TIMEOUT`].
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).expect("connect to kv_server");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream
    }

    /// Stops it the way scripts do (end of standard input) and checks that it stopped
    /// cleanly, without a panic.
    pub fn stop(self) -> Finished {
        let finished = self.process.finish();
        assert!(
            finished.status.success() && !finished.stderr.contains("panicked"),
            "kv_server failed: {}\n{}",
            finished.status,
            finished.stderr
        );
        finished
    }
}

/// `redis-server` 7 on a free port of 127.0.0.1, in a directory of its own, persisting
/// nothing; killed and waited for on drop. One database (`--databases 1`), as `kv_server`
/// has: `SELECT 1` then fails on both.
pub struct RedisServer {
    child: Child,
    _dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl RedisServer {
    /// Starts it and waits until it answers `PING`. Redis cannot be told to pick a port and
    /// say which (`--port 0` turns TCP off), so the port is one the kernel just gave out and
    /// took back; if another process takes it first Redis exits, and another port is tried.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            if let Some(server) = RedisServer::try_start() {
                return server;
            }
        }
        panic!("redis-server did not start on any of 5 free ports");
    }

    fn try_start() -> Option<RedisServer> {
        let dir = tempfile::Builder::new()
            .prefix("mio-reactor-redis-")
            .tempdir()
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--databases", "1"])
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + TIMEOUT;
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return None;
            }
            if let Ok(mut stream) = TcpStream::connect(addr) {
                stream.set_read_timeout(Some(TIMEOUT)).unwrap();
                let mut reply = [0; 7];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read_exact(&mut reply).is_ok()
                    && &reply == b"+PONG\r\n"
                {
                    return Some(RedisServer {
                        child,
                        _dir: dir,
                        addr,
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not answer PING on {addr} in time");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` runs (`program --version`).
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether the comparison with Redis can run: `redis-server` is installed, or the test fails
/// saying how to install it, unless `KV_SKIP_REDIS_COMPARE=1` says to skip it (then `false`).
pub fn reference_available() -> bool {
    if installed("redis-server") {
        return true;
    }
    if std::env::var("KV_SKIP_REDIS_COMPARE").as_deref() == Ok("1") {
        eprintln!("SKIPPED: redis-server is not installed and KV_SKIP_REDIS_COMPARE=1");
        return false;
    }
    panic!(
        "redis-server is not installed: this test compares kv_server's replies with Redis's \
         (apt-get install redis-server, as .ci/run does), or set KV_SKIP_REDIS_COMPARE=1 to skip it"
    );
}

/// A command as RESP2 sends it: an array of bulk strings.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut bytes = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        bytes.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        bytes.extend_from_slice(arg);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes
}

/// The length of the first whole RESP2 value in `bytes` (simple string, error, integer,
/// bulk string or array, nested), or `None` while it is incomplete.
pub fn reply_len(bytes: &[u8]) -> Option<usize> {
    let line_end = bytes.windows(2).position(|pair| pair == b"\r\n")?;
    let after_line = line_end + 2;
    let number = || -> i64 {
        std::str::from_utf8(&bytes[1..line_end])
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("not a RESP2 length: {:?}", String::from_utf8_lossy(bytes)))
    };
    match bytes[0] {
        b'+' | b'-' | b':' => Some(after_line),
        b'$' => match usize::try_from(number()) {
            Err(_) => Some(after_line),
            Ok(len) => (bytes.len() >= after_line + len + 2).then_some(after_line + len + 2),
        },
        b'*' => {
            let mut end = after_line;
            for _ in 0..number().max(0) {
                end += reply_len(&bytes[end..])?;
            }
            Some(end)
        }
        other => panic!("not a RESP2 reply (type byte {other:?}): {bytes:?}"),
    }
}

/// What a connection gave back when a whole reply or the end was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// One whole RESP2 value, its exact bytes.
    Reply(Vec<u8>),
    /// The server closed the connection (EOF or reset); the bytes of an unfinished reply.
    Closed(Vec<u8>),
    /// Nothing whole within the wait; the bytes so far.
    Silent(Vec<u8>),
}

/// A raw RESP2 connection: sends whatever bytes it is given and reads whole replies.
pub struct RespConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
    wait: Duration,
}

impl RespConnection {
    /// Connects, waiting at most `wait` for any one reply.
    pub fn open(addr: SocketAddr, wait: Duration) -> RespConnection {
        let stream = TcpStream::connect(addr).expect("connect to the server");
        stream.set_nodelay(true).unwrap();
        RespConnection {
            stream,
            buffer: Vec::new(),
            wait,
        }
    }

    /// Sends bytes as they are (a failure shows up as `Closed` on the next read).
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// The next whole reply, or what came instead.
    pub fn reply(&mut self) -> Received {
        let deadline = Instant::now() + self.wait;
        loop {
            if !self.buffer.is_empty() {
                if let Some(len) = reply_len(&self.buffer) {
                    return Received::Reply(self.buffer.drain(..len).collect());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Silent(std::mem::take(&mut self.buffer));
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Received::Closed(std::mem::take(&mut self.buffer)),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Received::Silent(std::mem::take(&mut self.buffer))
                }
                Err(_) => return Received::Closed(std::mem::take(&mut self.buffer)),
            }
        }
    }

    /// Sends one command and returns its reply.
    pub fn call(&mut self, args: &[&[u8]]) -> Received {
        self.send(&command(args));
        self.reply()
    }
}

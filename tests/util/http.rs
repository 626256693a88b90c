//! Running the `http_server` example and talking HTTP/1.1 to it: raw bytes in, responses
//! split with `httparse` (never by hand), and the real clients (curl, promtool, Chromium),
//! each skipped with a note when it is not installed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::programs::{example, Finished, Spawned};
use super::WAIT;

/// The `http_server` example, listening on an ephemeral port of 127.0.0.1.
pub struct HttpServer {
    process: Spawned,
    pub addr: SocketAddr,
}

impl HttpServer {
    /// Starts it with these extra options and waits for its address.
    pub fn start(options: &[&str]) -> HttpServer {
        let mut command = Command::new(example("http_server"));
        command
            .args(["--addr", "127.0.0.1:0", "--stop-on-stdin-eof"])
            .args(options)
            .env("RUST_LOG", "info");
        let (process, addr) = Spawned::listening(&mut command, "http server listening on http://");
        HttpServer { process, addr }
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops it (end of standard input) and checks that it stopped cleanly, without a panic.
    pub fn stop(self) -> Finished {
        let finished = self.process.finish();
        assert!(
            finished.status.success() && !finished.stderr.contains("panicked"),
            "http_server failed: {}\n{}",
            finished.status,
            finished.stderr
        );
        finished
    }
}

/// A connection to the server whose every read is bounded.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream
}

/// One parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits `bytes` into whole responses (framed by `Content-Length`, which this server
/// always sends; `head_only` for answers to HEAD). Returns them and the bytes left over.
pub fn split_responses(mut bytes: &[u8], head_only: bool) -> (Vec<Response>, usize) {
    let mut responses = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = parsed.parse(bytes) else {
            break;
        };
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                let value = String::from_utf8_lossy(h.value).into_owned();
                (h.name.to_string(), value)
            })
            .collect();
        let status = parsed.code.expect("a complete response has a status");
        let length: usize = if head_only || status == 100 {
            0
        } else {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .expect("every response of this server has a Content-Length")
        };
        if bytes.len() < head + length {
            break;
        }
        responses.push(Response {
            status,
            headers,
            body: bytes[head..head + length].to_vec(),
        });
        bytes = &bytes[head + length..];
    }
    (responses, bytes.len())
}

/// Reads from `stream` until `count` whole responses arrived (or the read times out).
pub fn read_responses(stream: &mut TcpStream, count: usize, head_only: bool) -> Vec<Response> {
    let mut responses = Vec::new();
    let mut received = Vec::new(); // the start of a response not yet whole
    let mut chunk = [0; 64 * 1024];
    loop {
        let (whole, left) = split_responses(&received, head_only);
        responses.extend(whole);
        received.drain(..received.len() - left);
        if responses.len() >= count {
            return responses;
        }
        match stream.read(&mut chunk) {
            Ok(0) => panic!("EOF after {} of {count} responses", responses.len()),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(err) => panic!("after {} of {count} responses: {err}", responses.len()),
        }
    }
}

/// Reads from `stream` until what was received ends with `suffix`; returns all of it.
pub fn read_until_ends_with(stream: &mut TcpStream, suffix: &[u8]) -> Vec<u8> {
    let mut received = Vec::new();
    let mut chunk = [0; 4096];
    while !received.ends_with(suffix) {
        match stream.read(&mut chunk) {
            Ok(0) => panic!("EOF after {:?}", String::from_utf8_lossy(&received)),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(err) => panic!("after {:?}: {err}", String::from_utf8_lossy(&received)),
        }
    }
    received
}

/// Sends `request` on a new connection and reads until the server closes it.
pub fn exchange_until_close(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(request).expect("send the request");
    let mut received = Vec::new();
    stream
        .read_to_end(&mut received)
        .expect("the server closes the connection");
    received
}

/// One request, one response, on a new connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let mut stream = connect(addr);
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    read_responses(&mut stream, 1, false).remove(0)
}

/// `/stats` as JSON.
pub fn stats(addr: SocketAddr) -> serde_json::Value {
    let response = get(addr, "/stats");
    assert_eq!(response.status, 200);
    serde_json::from_slice(&response.body).expect("/stats is JSON")
}

/// Waits until `/stats` satisfies `done`; returns that reading.
pub fn wait_for_stats(
    addr: SocketAddr,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = stats(addr);
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: last /stats {stats}");
        // The snapshot changes only when the reactor turns, which our own request causes.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `program --version` runs; if not, prints why the calling test is skipped.
pub fn installed(program: &str, why: &str) -> bool {
    let found = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        eprintln!(
            "SKIPPED: `{program}` is not installed, so this test cannot {why}. \
             `.ci/run` installs it (apt-get); install it to run this test."
        );
    }
    found
}

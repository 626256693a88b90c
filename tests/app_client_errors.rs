//! `app_client` fails loudly: every way an exchange can go wrong ends it with exit code 1,
//! nothing on standard output and one line on standard error saying what happened.
//!
//! The faulty servers are a few lines of blocking code on a thread: they read the request
//! (so that closing does not turn into a reset) and answer with the bytes under test.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Output;
use std::thread;

use mio_reactor::protocol::{encode_json, Decoder};
use serde_json::json;
use util::programs::{app_client, stderr, stdout, AppServer, TIMEOUT};
use util::wire::raw_frame;

/// A one-connection server that replies with `reply` once it has the whole request, then
/// closes.
fn faulty_server(reply: Vec<u8>) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut request = Vec::new();
        let mut decoder = Decoder::default();
        while decoder.decode(&request).unwrap().is_none() {
            let mut chunk = [0; 1024];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "the client closed before its request was complete");
            request.extend_from_slice(&chunk[..n]);
        }
        stream.write_all(&reply).unwrap();
    });
    (addr, server)
}

/// Runs `app_client ... search morpheus` against a faulty server; returns the error line.
fn fails_against(reply: Vec<u8>) -> String {
    let (addr, server) = faulty_server(reply);
    let output = app_client(addr, &["search", "morpheus"]);
    server.join().unwrap();
    error_line(&output)
}

/// Checks the failure shape and returns the message after `app_client: `.
fn error_line(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(stdout(output), "");
    let stderr = stderr(output);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0]
        .strip_prefix("app_client: ")
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_string()
}

#[test]
fn connection_refused() {
    // A port nobody listens on: bind one, then let it go.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let output = app_client(addr, &["search", "morpheus"]);
    assert_eq!(
        error_line(&output),
        format!("cannot connect to {addr}: connection refused")
    );
}

#[test]
fn closed_without_a_reply() {
    assert_eq!(
        fails_against(Vec::new()),
        "server closed the connection without replying"
    );
}

#[test]
fn closed_mid_reply() {
    let mut reply = Vec::new();
    encode_json(&json!({"result": "cut short"}), &mut reply);
    reply.truncate(reply.len() - 5);
    let received = reply.len();
    assert_eq!(
        fails_against(reply),
        format!("server closed the connection mid-reply ({received} B received)")
    );
}

#[test]
fn malformed_reply_header() {
    assert_eq!(
        fails_against(b"\x00\x00".to_vec()),
        "malformed reply: header length is zero"
    );
    let error = fails_against(raw_frame(b"{oops", b""));
    assert!(
        error.starts_with("malformed reply: header is not valid JSON"),
        "{error}"
    );
}

#[test]
fn malformed_reply_content() {
    let header = br#"{"byteorder":"big","content-type":"text/json","content-encoding":"utf-8","content-length":3}"#;
    let error = fails_against(raw_frame(header, b"{no"));
    assert!(
        error.starts_with("malformed reply: text/json content is not valid JSON"),
        "{error}"
    );
    let mut reply = Vec::new();
    encode_json(&json!({"answer": 42}), &mut reply);
    assert_eq!(
        fails_against(reply),
        r#"malformed reply: no "result" or "error" in {"answer":42}"#
    );
}

#[test]
fn error_reply_from_the_real_server() {
    // The binary request "action" + "value" is 11 bytes, over a 4-byte content limit.
    let server = AppServer::start(&["--max-content", "4"]);
    let output = app_client(server.addr, &["action", "value"]);
    assert_eq!(
        error_line(&output),
        "server error: content-length 11 exceeds the limit of 4 bytes"
    );
    server.stop();
}

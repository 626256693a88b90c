//! Malformed requests cost only their own connection: each gets a warning in the server's
//! log, an `{"error": ...}` reply where the client can still read, and a graceful close,
//! while a well-behaved client in the middle of its own request is served as usual.

mod util;

use std::io::Write;
use std::net::{Shutdown, SocketAddr};

use serde_json::json;
use util::programs::{AppServer, Finished};
use util::wire::{connect, header, json_request, raw_frame, read_reply, search};

/// What the misbehaving client does after sending its bytes.
#[derive(Clone, Copy)]
enum Then {
    /// Waits for the reply.
    Wait,
    /// Half-closes (shuts down its write side), then waits for the reply.
    HalfClose,
}

/// Runs `misbehave` while a well-behaved client is half-way through its request on another
/// connection, then checks that the good client still gets its answer.
fn beside_a_good_client<T>(addr: SocketAddr, misbehave: impl FnOnce() -> T) -> T {
    let request = search("morpheus");
    let (first, rest) = request.split_at(request.len() / 2);
    let mut good = connect(addr);
    good.write_all(first).unwrap();
    let result = misbehave();
    good.write_all(rest).unwrap();
    assert_eq!(
        read_reply(&mut good).json(),
        json!({"result": "Follow the white rabbit. \u{1F430}"})
    );
    result
}

/// Sends `bad` to a server started with `options`; returns the error reply's text once the
/// server has stopped, having checked that it logged and counted exactly one bad request.
fn rejected_with(options: &[&str], bad: &[u8], then: Then) -> String {
    let server = AppServer::start(options);
    let error = beside_a_good_client(server.addr, || {
        let mut stream = connect(server.addr);
        stream.write_all(bad).unwrap();
        if let Then::HalfClose = then {
            stream.shutdown(Shutdown::Write).unwrap();
        }
        read_reply(&mut stream).error()
    });
    let finished = server.stop();
    assert_logged_once(&finished, &error);
    error
}

fn rejected(bad: &[u8]) -> String {
    rejected_with(&[], bad, Then::Wait)
}

fn assert_logged_once(finished: &Finished, error: &str) {
    let warnings = finished.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains(&format!("bad request: {error}")),
        "{warnings:#?}"
    );
    let stats = finished.stats();
    assert!(stats.contains("protocol errors: 1,"), "{stats}");
}

#[test]
fn header_length_zero() {
    assert_eq!(rejected(b"\x00\x00"), "header length is zero");
}

#[test]
fn header_longer_than_the_limit_is_refused_from_its_prefix() {
    // No header bytes follow: the server must not wait for 64 KiB it will never accept.
    assert_eq!(
        rejected(b"\xff\xff"),
        "header length 65535 exceeds the limit of 16384 bytes"
    );
}

#[test]
fn header_not_json() {
    let error = rejected(&raw_frame(b"{not json}", b""));
    assert!(error.starts_with("header is not valid JSON: "), "{error}");
}

#[test]
fn header_not_utf8() {
    let error = rejected(&raw_frame(b"{\"\xff\": 1}", b""));
    assert_eq!(error, "header is not valid UTF-8");
}

#[test]
fn header_not_an_object() {
    assert_eq!(
        rejected(&raw_frame(b"[1, 2]", b"")),
        "header is not a JSON object"
    );
}

#[test]
fn header_missing_a_key() {
    let header = br#"{"byteorder":"little","content-type":"text/json","content-length":2}"#;
    assert_eq!(
        rejected(&raw_frame(header, b"{}")),
        r#"header is missing required key "content-encoding""#
    );
}

#[test]
fn header_key_of_the_wrong_type() {
    let header =
        br#"{"byteorder":"little","content-type":7,"content-encoding":"utf-8","content-length":2}"#;
    assert_eq!(
        rejected(&raw_frame(header, b"{}")),
        r#"header key "content-type" must be a string"#
    );
}

#[test]
fn content_length_negative() {
    assert_eq!(
        rejected(&raw_frame(&header("text/json", "utf-8", "-1"), b"")),
        "content-length -1 is not a non-negative integer"
    );
}

#[test]
fn content_length_not_an_integer() {
    assert_eq!(
        rejected(&raw_frame(&header("text/json", "utf-8", "2.5"), b"{}")),
        "content-length 2.5 is not a non-negative integer"
    );
    let error = rejected(&raw_frame(&header("a/b", "binary", r#""2""#), b"ab"));
    assert_eq!(
        error,
        r#"header key "content-length" must be a non-negative integer"#
    );
}

#[test]
fn content_length_beyond_any_integer() {
    let error = rejected(&raw_frame(
        &header("a/b", "binary", "18446744073709551616"),
        b"",
    ));
    assert!(error.ends_with("is not a non-negative integer"), "{error}");
}

#[test]
fn content_longer_than_the_default_limit_is_refused_from_its_header() {
    // Only the header is sent: the refusal must not wait for the content.
    assert_eq!(
        rejected(&raw_frame(&header("a/b", "binary", "1048577"), b"")),
        "content-length 1048577 exceeds the limit of 1048576 bytes"
    );
}

#[test]
fn content_limit_is_a_server_option() {
    let too_long = raw_frame(&header("a/b", "binary", "101"), b"");
    assert_eq!(
        rejected_with(&["--max-content", "100"], &too_long, Then::Wait),
        "content-length 101 exceeds the limit of 100 bytes"
    );
    // At the limit, served.
    let server = AppServer::start(&["--max-content", "100"]);
    let at_limit = raw_frame(&header("a/b", "binary", "100"), &[b'x'; 100]);
    let reply = util::wire::exchange(server.addr, &at_limit);
    assert_eq!(reply.content, b"First 10 bytes of request: xxxxxxxxxx");
    server.stop();
}

#[test]
fn json_content_not_utf8() {
    assert_eq!(
        rejected(&json_request(b"{\"action\": \"\xff\"}")),
        "text/json content is not valid UTF-8"
    );
}

#[test]
fn json_content_not_json() {
    let error = rejected(&json_request(b"{\"action\": "));
    assert!(
        error.starts_with("text/json content is not valid JSON: "),
        "{error}"
    );
}

#[test]
fn json_content_in_an_unsupported_encoding() {
    let content = br#"{"action": "search", "value": "ring"}"#;
    let header = header("text/json", "latin-1", &content.len().to_string());
    assert_eq!(
        rejected(&raw_frame(&header, content)),
        r#"unsupported content-encoding "latin-1" for text/json"#
    );
}

#[test]
fn json_request_of_the_wrong_shape() {
    assert_eq!(
        rejected(&json_request(b"[\"search\", \"ring\"]")),
        r#"request must be a JSON object with a string "action""#
    );
    assert_eq!(
        rejected(&json_request(br#"{"action": "search", "value": 42}"#)),
        r#"a search needs a string "value""#
    );
}

#[test]
fn closed_mid_header() {
    let request = search("ring");
    let error = rejected_with(&[], &request[..10], Then::HalfClose);
    assert_eq!(error, "connection closed mid-frame with 10 bytes buffered");
}

#[test]
fn closed_mid_content() {
    // The header is complete and parsed; 3 of the 38 content bytes follow.
    let request = search("morpheus");
    let cut = request.len() - 35;
    let error = rejected_with(&[], &request[..cut], Then::HalfClose);
    assert_eq!(
        error,
        format!("connection closed mid-frame with {cut} bytes buffered")
    );
}

#[test]
fn vanishing_mid_request_is_logged() {
    // The client closes both directions: no reply can reach it, but the server still says
    // why it gave up, and serves the others.
    let server = AppServer::start(&[]);
    let mut stream = connect(server.addr);
    stream.write_all(&search("ring")[..10]).unwrap();
    drop(stream);
    // Accepted after the vanished one, so its reply also means the server has read the
    // vanished one's bytes and EOF: a stop sooner could find it unread (and close it as
    // idle, quietly).
    beside_a_good_client(server.addr, || ());
    let finished = server.stop();
    let warnings = finished.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].contains("bad request: connection closed mid-frame with 10 bytes buffered"),
        "{warnings:#?}"
    );
}

#[test]
fn silent_clients_are_closed_after_the_idle_timeout() {
    let server = AppServer::start(&["--idle-timeout", "0.5"]);
    let silent = connect(server.addr);
    let mut stalled = connect(server.addr);
    stalled.write_all(&search("ring")[..20]).unwrap();
    // Meanwhile a prompt client is served.
    let reply = util::wire::exchange(server.addr, &search("morpheus"));
    assert_eq!(
        reply.json(),
        json!({"result": "Follow the white rabbit. \u{1F430}"})
    );
    // The two others are closed without a reply: `read_to_end` returns at the server's FIN.
    for mut stream in [silent, stalled] {
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut stream, &mut rest).expect("closed within the bound");
        assert!(rest.is_empty(), "{rest:?}");
    }
    let finished = server.stop();
    assert!(
        finished.stats().contains("idle timeouts: 2,"),
        "{}",
        finished.stats()
    );
    let warnings = finished.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings.iter().all(|w| w.contains("no request in time")),
        "{warnings:#?}"
    );
}

//! Bad input to the `http_server` example: each kind gets its status, then a close, and
//! costs only its own connection.

mod util;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Instant;

use util::http::{connect, exchange_until_close, read_responses, split_responses, HttpServer};

/// Sends `request` on its own connection and returns the one response before the close.
fn refused(addr: SocketAddr, request: &[u8]) -> util::http::Response {
    let received = exchange_until_close(addr, request);
    let (mut responses, left) = split_responses(&received, false);
    assert_eq!(
        (responses.len(), left),
        (1, 0),
        "{}",
        String::from_utf8_lossy(&received)
    );
    let response = responses.remove(0);
    assert_eq!(response.header("Connection"), Some("close"));
    response
}

#[test]
fn a_malformed_request_line_gets_400() {
    let server = HttpServer::start(&[]);
    assert_eq!(refused(server.addr, b"GET\r\n\r\n").status, 400);
    server.stop();
}

#[test]
fn invalid_characters_in_a_header_name_get_400() {
    let server = HttpServer::start(&[]);
    let request = b"GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n";
    assert_eq!(refused(server.addr, request).status, 400);
    let control = b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n";
    assert_eq!(refused(server.addr, control).status, 400);
    server.stop();
}

#[test]
fn both_content_length_and_transfer_encoding_get_400() {
    let server = HttpServer::start(&[]);
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\
                    Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(refused(server.addr, request).status, 400);
    server.stop();
}

#[test]
fn conflicting_or_invalid_content_lengths_get_400() {
    let server = HttpServer::start(&[]);
    let two =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    assert_eq!(refused(server.addr, two).status, 400);
    let signed = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +3\r\n\r\nabc";
    assert_eq!(refused(server.addr, signed).status, 400);
    server.stop();
}

#[test]
fn an_http11_request_without_host_gets_400() {
    let server = HttpServer::start(&[]);
    assert_eq!(refused(server.addr, b"GET / HTTP/1.1\r\n\r\n").status, 400);
    server.stop();
}

#[test]
fn a_request_not_complete_within_the_deadline_gets_408() {
    let server = HttpServer::start(&["--request-timeout", "0.3"]);
    let mut stream = connect(server.addr);
    let started = Instant::now();
    // Slowloris: a head that never ends.
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-1: a\r\n")
        .unwrap();
    let response = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(response.status, 408);
    assert!(
        started.elapsed().as_secs_f64() >= 0.3,
        "{:?}",
        started.elapsed()
    );
    drop(stream);
    server.stop();
}

#[test]
fn an_idle_keep_alive_connection_is_not_a_timed_out_request() {
    // The deadline runs from a request's first byte, not between requests.
    let server = HttpServer::start(&["--request-timeout", "0.2"]);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1, false)[0].status, 200);
    // Wait past the deadline with nothing pending: the server's own timer has to fire
    // in this time for the test to mean anything, and it must not answer 408.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut stream, 1, false)[0].status, 200);
    drop(stream);
    server.stop();
}

#[test]
fn a_body_over_the_limit_gets_413_before_it_is_sent() {
    let server = HttpServer::start(&["--max-body", "1000"]);
    // Only the head is sent: the refusal must not wait for the body.
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n";
    assert_eq!(refused(server.addr, request).status, 413);
    server.stop();
}

#[test]
fn a_head_over_8_kib_gets_431() {
    let server = HttpServer::start(&[]);
    let mut request = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    request.extend_from_slice(&[b'a'; 9000]);
    // No end of head: the limit is on what is buffered, not on a complete head.
    assert_eq!(refused(server.addr, &request).status, 431);
    server.stop();
}

#[test]
fn too_many_header_fields_get_431() {
    let server = HttpServer::start(&[]);
    let mut request = b"GET / HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..100 {
        request.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    assert_eq!(refused(server.addr, &request).status, 431);
    server.stop();
}

#[test]
fn a_chunked_request_body_gets_501() {
    let server = HttpServer::start(&[]);
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    assert_eq!(refused(server.addr, request).status, 501);
    server.stop();
}

#[test]
fn an_unknown_method_gets_501() {
    let server = HttpServer::start(&[]);
    assert_eq!(
        refused(server.addr, b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n").status,
        501
    );
    server.stop();
}

#[test]
fn a_version_other_than_http1_gets_505() {
    let server = HttpServer::start(&[]);
    assert_eq!(
        refused(server.addr, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n").status,
        505
    );
    // The HTTP/2 connection preface, as a client with prior knowledge sends it.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_eq!(refused(server.addr, preface).status, 505);
    server.stop();
}

#[test]
fn bad_requests_cost_only_their_own_connection() {
    let server = HttpServer::start(&[]);
    let mut good = connect(server.addr);
    good.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_responses(&mut good, 1, false)[0].status, 200);
    for bad in [
        &b"GET\r\n\r\n"[..],
        b"GET / HTTP/3.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
    ] {
        refused(server.addr, bad);
    }
    good.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_responses(&mut good, 1, false)[0].body,
        b"Hello, World!"
    );
    let stats = util::http::wait_for_stats(server.addr, "three protocol closes", |stats| {
        stats["total"]["closed"]["protocol"] == 3
    });
    assert_eq!(
        stats["total"]["accepted"].as_u64().map(|n| n >= 4),
        Some(true)
    );
    drop(good);
    server.stop();
}

//! The `http_server` example as an HTTP/1.1 client meets it: keep-alive, pipelining,
//! HTTP/1.0, `Connection: close`, `HEAD`, request bodies, and the TechEmpower routes.

mod util;

use std::io::{Read, Write};
use std::process::Command;

use util::http::{
    connect, exchange_until_close, get, read_responses, read_until_ends_with, split_responses,
    HttpServer,
};
use util::programs::{example, output_within, stderr, stdout};

#[test]
fn help_lists_the_options_and_a_bad_option_exits_2() {
    let mut help = Command::new(example("http_server"));
    help.arg("--help");
    let output = output_within(help);
    assert!(output.status.success());
    for option in ["--addr", "--threads", "--max-body", "--request-timeout"] {
        assert!(
            stdout(&output).contains(option),
            "{option} missing from --help"
        );
    }
    let mut bad = Command::new(example("http_server"));
    bad.arg("--no-such-option");
    let output = output_within(bad);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--no-such-option"));
}

#[test]
fn plaintext_is_techempowers_response_with_server_and_date() {
    let server = HttpServer::start(&[]);
    let response = get(server.addr, "/plaintext");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello, World!");
    assert_eq!(response.header("Content-Type"), Some("text/plain"));
    assert_eq!(response.header("Content-Length"), Some("13"));
    assert_eq!(response.header("Server"), Some("mio-reactor"));
    let date = response.header("Date").expect("a Date header");
    httpdate::parse_http_date(date).expect("Date is an IMF-fixdate");
    server.stop();
}

#[test]
fn json_is_the_serialized_hello_world_message() {
    let server = HttpServer::start(&[]);
    let response = get(server.addr, "/json");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let message: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(message, serde_json::json!({ "message": "Hello, World!" }));
    server.stop();
}

#[test]
fn keep_alive_answers_many_requests_on_one_connection() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    for _ in 0..5 {
        stream
            .write_all(b"GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n")
            .unwrap();
        let response = read_responses(&mut stream, 1, false).remove(0);
        assert_eq!(response.body, b"Hello, World!");
        assert_eq!(
            response.header("Connection"),
            None,
            "HTTP/1.1 keeps alive by default"
        );
    }
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    let paths = ["/plaintext", "/json", "/nowhere", "/plaintext", "/json"];
    let mut requests = Vec::new();
    for path in paths {
        requests.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    requests.extend_from_slice(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nfifth");
    stream.write_all(&requests).unwrap();
    let responses = read_responses(&mut stream, paths.len() + 1, false);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 404, 200, 200, 200]);
    assert_eq!(responses[3].body, b"Hello, World!");
    assert!(responses[4].body.starts_with(b"{\"message\""));
    assert_eq!(responses[5].body, b"fifth");
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn the_responses_to_one_read_leave_in_one_write() {
    // Sixteen requests in one segment are read at once; their sixteen responses must come
    // back together. Written one by one, the first read here would see only the first few.
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    let requests = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n".repeat(16);
    stream.write_all(&requests).unwrap();
    let mut first_read = vec![0; 64 * 1024];
    let n = stream.read(&mut first_read).unwrap();
    let (responses, left) = split_responses(&first_read[..n], false);
    assert_eq!((responses.len(), left), (16, 0), "one read got {n} B");
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn a_request_split_anywhere_is_answered_once_complete() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    stream.set_nodelay(true).unwrap();
    let request = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world";
    for byte in request.chunks(1) {
        stream.write_all(byte).unwrap();
    }
    let response = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(response.body, b"hello world");
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn head_gets_the_headers_of_get_without_the_body() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    // A HEAD then a GET, pipelined: after HEAD's header block comes the GET's response.
    stream
        .write_all(b"HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let received = read_until_ends_with(&mut stream, b"Hello, World!");
    let text = String::from_utf8_lossy(&received);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("Content-Length: 13").count(), 2, "{text}");
    assert_eq!(
        text.matches("Hello, World!").count(),
        1,
        "HEAD sent a body: {text}"
    );
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn http10_closes_after_the_response_unless_asked_to_keep_alive() {
    let server = HttpServer::start(&[]);
    let closed = exchange_until_close(server.addr, b"GET /plaintext HTTP/1.0\r\n\r\n");
    let (responses, _) = split_responses(&closed, false);
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].header("Connection"), Some("close"));

    let mut stream = connect(server.addr);
    let keep = b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    stream.write_all(keep).unwrap();
    let first = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    stream.write_all(keep).unwrap();
    assert_eq!(read_responses(&mut stream, 1, false)[0].status, 200);
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn connection_close_answers_that_request_and_discards_the_rest() {
    let server = HttpServer::start(&[]);
    let received = exchange_until_close(
        server.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n\
          GET /json HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let (responses, left) = split_responses(&received, false);
    assert_eq!((responses.len(), left), (1, 0));
    assert_eq!(responses[0].header("Connection"), Some("close"));
    assert_eq!(responses[0].body, b"Hello, World!");
    server.stop();
}

#[test]
fn post_echo_returns_the_body_and_the_connection_goes_on() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    let body = vec![b'x'; 200_000];
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
    let echoed = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(echoed.body.len(), body.len());
    assert!(echoed.body == body);
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_responses(&mut stream, 1, false)[0].body,
        b"Hello, World!"
    );
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn unknown_paths_get_404_and_wrong_methods_405_with_allow() {
    let server = HttpServer::start(&[]);
    assert_eq!(get(server.addr, "/no/such/page").status, 404);
    let mut stream = connect(server.addr);
    stream
        .write_all(b"POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let response = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("GET, HEAD"));
    drop(stream); // a client still connected would hold the shutdown up
    server.stop();
}

#[test]
fn two_reactor_threads_share_the_port_and_report_both() {
    let server = HttpServer::start(&["--threads", "2"]);
    for _ in 0..4 {
        assert_eq!(get(server.addr, "/plaintext").status, 200);
    }
    let stats = util::http::stats(server.addr);
    assert_eq!(stats["reactors"], 2);
    assert_eq!(stats["per_reactor"].as_array().map(Vec::len), Some(2));
    server.stop();
}

#[test]
fn expect_100_continue_gets_the_interim_response_before_the_body_is_sent() {
    let server = HttpServer::start(&[]);
    let mut stream = connect(server.addr);
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        )
        .unwrap();
    let interim = read_responses(&mut stream, 1, false).remove(0);
    assert_eq!(interim.status, 100);
    stream.write_all(b"body").unwrap();
    let received = read_until_ends_with(&mut stream, b"body");
    let (responses, _) = split_responses(&received, false);
    assert_eq!(
        responses.last().map(|r| (r.status, r.body.clone())),
        Some((200, b"body".to_vec()))
    );
    drop(stream);
    server.stop();
}

#[test]
fn a_pipelining_client_that_reads_late_gets_every_response_without_a_limit_close() {
    // 1,000 /metrics requests (with four reactors' series, about 7 MB of responses, far
    // past the reactor's 4 MiB output cap) sent before reading anything: the server must
    // stop answering while the output is above the high water mark, not pile up every
    // response to one read. A small kernel send buffer keeps the output in the reactor,
    // where the limit applies, instead of the kernel's autotuned megabytes.
    let server = HttpServer::start(&["--threads", "4", "--send-buffer", "8192"]);
    let mut stream = connect(server.addr);
    let count = 1000;
    let requests = b"GET /metrics HTTP/1.1\r\nHost:t\r\n\r\n".repeat(count);
    stream.write_all(&requests).unwrap();
    let responses = read_responses(&mut stream, count, false);
    assert_eq!(responses.len(), count);
    assert!(responses.iter().all(|r| r.status == 200));
    let total: usize = responses.iter().map(|r| r.body.len()).sum();
    assert!(
        total > 4 << 20,
        "only {total} B of responses: the test needs more"
    );
    drop(stream);
    server.stop();
}

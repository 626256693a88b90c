//! curl against the `http_server` example: the client most people first try a server with.
//! Skipped, with a note saying why, where curl is not installed (`.ci/run` installs it).

mod util;

use std::process::{Command, Output};

use util::http::{installed, HttpServer};
use util::programs::{output_within, stderr, stdout};

/// Runs curl with these arguments (and a bound on its time), or `None` without curl.
fn curl(args: &[&str]) -> Option<Output> {
    if !installed("curl", "check the server with a real HTTP client") {
        return None;
    }
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--max-time", "5"])
        .args(args);
    Some(output_within(command))
}

#[test]
fn curl_verbose_shows_a_keep_alive_http11_exchange() {
    let server = HttpServer::start(&[]);
    let Some(output) = curl(&["-v", &server.url("/plaintext")]) else {
        server.stop();
        return;
    };
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "Hello, World!");
    let verbose = stderr(&output);
    assert!(verbose.contains("< HTTP/1.1 200 OK"), "{verbose}");
    assert!(verbose.contains("< Server: mio-reactor"), "{verbose}");
    assert!(verbose.contains("< Content-Length: 13"), "{verbose}");
    assert!(
        verbose.contains("left intact"),
        "curl kept the connection: {verbose}"
    );
    server.stop();
}

#[test]
fn curl_http10_gets_its_answer_and_a_close() {
    let server = HttpServer::start(&[]);
    let Some(output) = curl(&["-v", "--http1.0", &server.url("/json")]) else {
        server.stop();
        return;
    };
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), r#"{"message":"Hello, World!"}"#);
    let verbose = stderr(&output);
    assert!(verbose.contains("> GET /json HTTP/1.0"), "{verbose}");
    assert!(verbose.contains("< Connection: close"), "{verbose}");
    server.stop();
}

#[test]
fn curl_reuses_one_connection_for_several_urls() {
    let server = HttpServer::start(&[]);
    let (first, second) = (server.url("/plaintext"), server.url("/json"));
    let Some(output) = curl(&["-v", &first, &second, &first]) else {
        server.stop();
        return;
    };
    assert!(output.status.success(), "{}", stderr(&output));
    let verbose = stderr(&output);
    assert_eq!(
        verbose.matches("Re-using existing connection").count(),
        2,
        "{verbose}"
    );
    let stats = util::http::stats(server.addr);
    // curl's one connection, and the one that asked for /stats.
    assert_eq!(stats["total"]["accepted"], 2, "{stats}");
    server.stop();
}

#[test]
fn curl_posts_a_body_to_echo() {
    let server = HttpServer::start(&[]);
    let url = server.url("/echo");
    let Some(output) = curl(&["--data-binary", "posted by curl", &url]) else {
        server.stop();
        return;
    };
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "posted by curl");
    server.stop();
}

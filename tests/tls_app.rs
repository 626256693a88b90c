//! The tutorial's application protocol over TLS, as people run it: `gen_cert` makes the
//! certificate, `app_server --tls-cert --tls-key` serves, and `app_client --tls --ca` and
//! Python's `ssl` module (through the independent peer in `tests/interop/`) are its clients.
//! A client that does not speak TLS costs only its own connection.
//!
//! The Python test skips, with a note, where `python3` is missing; CI installs it.

mod util;

use serde_json::{json, Value};
use util::programs::{app_client, gen_cert, path, python_client, stderr, stdout, AppServer};

#[test]
fn app_client_with_tls_gets_the_replies_of_app_server_with_tls() {
    let certs = gen_cert();
    let ca = certs.path().join("ca.pem");
    let server = AppServer::start_tls(certs.path());
    let tls = ["--tls", "--ca", path(&ca)];
    let search = app_client(server.addr, &[&tls[..], &["search", "morpheus"]].concat());
    assert!(search.status.success(), "{}", stderr(&search));
    assert_eq!(
        stdout(&search),
        "result: Follow the white rabbit. \u{1F430}\n"
    );
    let binary = app_client(server.addr, &[&tls[..], &["play", "ball"]].concat());
    assert!(binary.status.success(), "{}", stderr(&binary));
    assert_eq!(
        stdout(&binary),
        "binary reply (binary/custom-server-binary-type, 35 B): \
         \"First 10 bytes of request: playball\"\n"
    );
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains("connections: 2, protocol errors: 0,") && stats.ends_with("TLS failures: 0"),
        "{stats}"
    );
}

/// The lines the Python client printed, each a JSON value, and its success.
fn python_lines(output: &std::process::Output) -> (Vec<Value>, bool) {
    let text = stdout(output);
    let lines = text
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|err| panic!("{err}: {line:?}, stderr: {}", stderr(output)))
        })
        .collect();
    (lines, output.status.success())
}

#[test]
fn python_ssl_client_gets_the_tutorial_reply_from_app_server_over_tls_1_3() {
    let certs = gen_cert();
    let ca = certs.path().join("ca.pem");
    let server = AppServer::start_tls(certs.path());
    let Some(output) = python_client(server.addr, &["search", "ring", "--cafile", path(&ca)])
    else {
        return;
    };
    let (lines, ok) = python_lines(&output);
    assert!(ok, "{lines:?} {}", stderr(&output));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["tls"]["version"], "TLSv1.3", "{lines:?}");
    assert_eq!(
        lines[1],
        json!({"result": "In the caves beneath the Misty Mountains. \u{1F48D}"})
    );
    // Python's unwrap() answered our close_notify with its own: a clean TLS close.
    let stats = server.stop().stats().to_string();
    assert!(
        stats.contains("connections: 1, protocol errors: 0,") && stats.ends_with("TLS failures: 0"),
        "{stats}"
    );
}

#[test]
fn a_plaintext_client_costs_only_its_connection_and_is_told_the_server_wants_tls() {
    let certs = gen_cert();
    let ca = certs.path().join("ca.pem");
    let server = AppServer::start_tls(certs.path());
    let plaintext = app_client(server.addr, &["search", "ring"]);
    assert_eq!(plaintext.status.code(), Some(1), "{}", stdout(&plaintext));
    assert_eq!(
        stderr(&plaintext),
        "app_client: the server answered with a TLS alert and closed: it serves TLS \
         (try --tls --ca FILE)\n"
    );
    // The server goes on serving TLS clients.
    let after = app_client(server.addr, &["--tls", "--ca", path(&ca), "search", "ring"]);
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(
        stdout(&after),
        "result: In the caves beneath the Misty Mountains. \u{1F48D}\n"
    );
    let finished = server.stop();
    let stats = finished.stats();
    assert!(
        stats.contains("connections: 2,") && stats.ends_with("TLS failures: 1"),
        "{stats}"
    );
    let warnings = finished.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(": TLS error: "), "{warnings:?}");
}

#[test]
fn a_tls_client_of_a_plaintext_server_is_refused_at_its_client_hello_and_costs_only_itself() {
    let certs = gen_cert();
    let ca = certs.path().join("ca.pem");
    let server = AppServer::start(&[]);
    let tls = app_client(server.addr, &["--tls", "--ca", path(&ca), "search", "ring"]);
    assert_eq!(tls.status.code(), Some(1), "{}", stdout(&tls));
    assert_eq!(
        stderr(&tls),
        "app_client: the server answered in plaintext, not TLS: it serves plaintext \
         (try without --tls)\n"
    );
    // The server goes on serving plaintext clients.
    let after = app_client(server.addr, &["search", "ring"]);
    assert!(after.status.success(), "{}", stderr(&after));
    let finished = server.stop();
    let warnings = finished.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("bad request: a TLS ClientHello: this server speaks plaintext"),
        "{warnings:?}"
    );
}

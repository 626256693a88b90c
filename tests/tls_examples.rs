//! The TLS examples as a newcomer runs them: `gen_cert` makes a certificate, `echo_server`
//! serves TLS with it, and `echo_client --tls` and `openssl s_client` verify every byte.
//! Every server (`--tls-cert`/`--tls-key`) and client (`--tls --ca`) refuses the same
//! mistakes with the same one line. The app protocol over TLS is `tls_app.rs`.

mod util;

use std::process::Command;

use util::programs::{example, gen_cert, output_within, stderr, stdout, Spawned};
use util::tls::have;

/// Starts `echo_server` over TLS on an ephemeral port; returns it and its port.
fn tls_echo_server(dir: &std::path::Path) -> (Spawned, u16) {
    let mut server = Spawned::spawn(
        Command::new(example("echo_server"))
            .args(["--addr", "127.0.0.1:0", "--stop-on-stdin-eof"])
            .arg("--tls-cert")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key")
            .arg(dir.join("key.pem")),
    );
    let line = server.next_line();
    let port = line
        .strip_prefix("echo server listening on tls:127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap();
    (server, port)
}

#[test]
fn gen_cert_then_echo_server_with_tls_then_echo_client_with_tls_verifies_every_byte() {
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path());
    let mut client = Command::new(example("echo_client"));
    client
        .args(["--addr", &format!("localhost:{port}"), "--tls", "--ca"])
        .arg(dir.path().join("ca.pem"))
        .args(["--connections", "20", "--messages", "200", "--size", "512"])
        .args(["--timeout", "8"]);
    let output = output_within(client);
    let finished = server.finish();
    drop(dir);
    assert!(
        output.status.success(),
        "echo_client --tls: {}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(finished.status.success(), "{}", finished.stderr);
    assert!(
        finished.stdout.contains("20 connections accepted"),
        "{}",
        finished.stdout
    );
}

#[test]
fn openssl_s_client_verifies_the_gen_cert_certificate_of_echo_server() {
    if !have("openssl") {
        eprintln!("note: openssl not found; skipping (CI installs it)");
        return;
    }
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path());
    let mut s_client = Command::new("openssl");
    s_client
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-brief",
            "-CAfile",
        ])
        .arg(dir.path().join("ca.pem"));
    // Standard input is empty: s_client verifies, handshakes, and closes with close_notify.
    let output = output_within(s_client);
    let finished = server.finish();
    drop(dir);
    let report = stderr(&output);
    assert!(output.status.success(), "s_client: {report}");
    assert!(report.contains("Verification: OK"), "{report}");
    assert!(
        finished.stdout.contains("1 connections accepted"),
        "{}",
        finished.stdout
    );
}

#[test]
fn every_tls_client_refuses_tls_without_a_ca() {
    let clients: [(&str, &[&str]); 2] = [
        ("echo_client", &["--tls"]),
        (
            "app_client",
            &["127.0.0.1", "65432", "search", "ring", "--tls"],
        ),
    ];
    for (name, args) in clients {
        let mut client = Command::new(example(name));
        client.args(args);
        let output = output_within(client);
        assert_eq!(output.status.code(), Some(2), "{name}");
        assert!(
            stderr(&output).contains("--ca <FILE>"),
            "{name}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn every_tls_server_refuses_a_certificate_file_without_a_certificate_in_one_line() {
    let dir = gen_cert();
    let key = dir.path().join("key.pem");
    let servers: [(&str, &[&str]); 2] = [
        ("echo_server", &["--addr", "127.0.0.1:0"]),
        ("app_server", &["127.0.0.1", "0"]),
    ];
    for (name, args) in servers {
        let mut server = Command::new(example(name));
        server
            .args(args)
            .arg("--tls-cert")
            .arg(&key)
            .arg("--tls-key")
            .arg(&key);
        let output = output_within(server);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let expected = format!(
            "{name}: --tls-cert/--tls-key: {}: no PEM certificate (BEGIN CERTIFICATE) in it \
             (try --help)\n",
            key.display()
        );
        assert_eq!(stderr(&output), expected);
    }
}

#[test]
fn every_tls_client_refuses_a_ca_file_without_a_certificate_in_one_line() {
    let dir = gen_cert();
    let key = dir.path().join("key.pem");
    let clients: [(&str, &[&str]); 2] = [
        ("echo_client", &[]),
        ("app_client", &["127.0.0.1", "65432", "search", "ring"]),
    ];
    for (name, args) in clients {
        let mut client = Command::new(example(name));
        client.args(args).arg("--tls").arg("--ca").arg(&key);
        let output = output_within(client);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let expected = format!(
            "{name}: --ca: {}: no PEM certificate (BEGIN CERTIFICATE) in it (try --help)\n",
            key.display()
        );
        assert_eq!(stderr(&output), expected);
    }
}

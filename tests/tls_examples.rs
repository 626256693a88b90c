//! The TLS examples as a newcomer runs them: `gen_cert` makes a certificate, `echo_server`
//! serves TLS with it (on one reactor or `--threads 2`), and `echo_client --tls` and
//! `openssl s_client` verify every byte. Every server (`--tls-cert`/`--tls-key`) and client
//! (`--tls --ca`) refuses the same mistakes with the same one line, naming the option, the
//! file, and what the file holds instead; `echo_client` without `--tls` is told to add it.
//! The app protocol over TLS is `tls_app.rs`.

mod util;

use std::path::Path;
use std::process::Command;

use util::programs::{example, gen_cert, output_within, stderr, stdout, Spawned};
use util::tls::have;

/// Starts `echo_server` over TLS on an ephemeral port, with `args` added; returns it and
/// its port.
fn tls_echo_server(dir: &Path, args: &[&str]) -> (Spawned, u16) {
    let mut server = Spawned::spawn(
        Command::new(example("echo_server"))
            .args(["--addr", "127.0.0.1:0", "--stop-on-stdin-eof"])
            .args(args)
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

/// Runs `echo_client --tls` (20 connections) against the server on `port`, then stops the
/// server; checks that both succeeded and that the server counted 20 connections. The
/// server's standard output.
fn echo_client_with_tls_verifies_every_byte(server: Spawned, port: u16, dir: &Path) -> String {
    let mut client = Command::new(example("echo_client"));
    client
        .args(["--addr", &format!("localhost:{port}"), "--tls", "--ca"])
        .arg(dir.join("ca.pem"))
        .args(["--connections", "20", "--messages", "200", "--size", "512"])
        .args(["--timeout", "8"]);
    let output = output_within(client);
    let finished = server.finish();
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
    finished.stdout
}

#[test]
fn gen_cert_then_echo_server_with_tls_then_echo_client_with_tls_verifies_every_byte() {
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path(), &[]);
    echo_client_with_tls_verifies_every_byte(server, port, dir.path());
}

#[test]
fn echo_server_with_two_threads_serves_tls_on_both_to_echo_client_with_tls() {
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path(), &["--threads", "2"]);
    let stdout = echo_client_with_tls_verifies_every_byte(server, port, dir.path());
    // SO_REUSEPORT spreads connections by a hash of their addresses: all 20 on one of the
    // two threads has a chance of 2^-19.
    let per_thread = stdout
        .split_once("(per thread: [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(counts, _)| counts.split(", ").map(|n| n.parse::<u64>().unwrap()))
        .unwrap_or_else(|| panic!("no per-thread counts: {stdout}"))
        .collect::<Vec<_>>();
    assert_eq!(per_thread.len(), 2, "{stdout}");
    assert!(per_thread.iter().all(|&n| n > 0), "{stdout}");
}

#[test]
fn echo_client_without_tls_against_a_tls_server_says_to_add_tls() {
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path(), &[]);
    let mut client = Command::new(example("echo_client"));
    client.args(["--addr", &format!("127.0.0.1:{port}")]).args([
        "--connections",
        "2",
        "--messages",
        "5",
    ]);
    let output = output_within(client);
    let finished = server.finish();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let expected = "echo_client: 2 × the server answered with a TLS alert and closed: \
                    it serves TLS (try --tls --ca FILE)";
    assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    assert!(finished.status.success(), "{}", finished.stderr);
}

#[test]
fn openssl_s_client_verifies_the_gen_cert_certificate_of_echo_server() {
    if !have("openssl") {
        eprintln!("note: openssl not found; skipping (CI installs it)");
        return;
    }
    let dir = gen_cert();
    let (server, port) = tls_echo_server(dir.path(), &[]);
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

/// Starts each TLS server example with gen_cert's files `cert` as --tls-cert and `key` as
/// --tls-key: each must refuse them with exit code 2 and one line, `{name}: ` then
/// `complaint` (in which `DIR` stands for the files' directory) and clap's hint.
fn every_tls_server_refuses(cert: &str, key: &str, complaint: &str) {
    let dir = gen_cert();
    let servers: [(&str, &[&str]); 2] = [
        ("echo_server", &["--addr", "127.0.0.1:0"]),
        ("app_server", &["127.0.0.1", "0"]),
    ];
    for (name, args) in servers {
        let mut server = Command::new(example(name));
        server
            .args(args)
            .arg("--tls-cert")
            .arg(dir.path().join(cert))
            .arg("--tls-key")
            .arg(dir.path().join(key));
        let output = output_within(server);
        assert_eq!(output.status.code(), Some(2), "{name}");
        let complaint = complaint.replace("DIR", &dir.path().display().to_string());
        assert_eq!(
            stderr(&output),
            format!("{name}: {complaint} (try --help)\n")
        );
    }
}

#[test]
fn every_tls_server_refuses_a_certificate_file_without_a_certificate_in_one_line() {
    // The two files swapped, the likeliest way to get there.
    every_tls_server_refuses(
        "key.pem",
        "cert.pem",
        "--tls-cert: DIR/key.pem: no PEM certificate (BEGIN CERTIFICATE) in it; it holds a \
         private key: is it the key file?",
    );
}

#[test]
fn every_tls_server_refuses_a_key_file_without_a_key_in_one_line() {
    every_tls_server_refuses(
        "cert.pem",
        "cert.pem",
        "--tls-key: DIR/cert.pem: no PEM private key (BEGIN PRIVATE KEY) in it; it holds a \
         certificate: is it the certificate file?",
    );
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
            "{name}: --ca: {}: no PEM certificate (BEGIN CERTIFICATE) in it; it holds a private \
             key: is it the key file? (try --help)\n",
            key.display()
        );
        assert_eq!(stderr(&output), expected);
    }
}

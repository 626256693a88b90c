//! The TLS examples as a newcomer runs them: `gen_cert` makes a certificate, `echo_server`
//! serves TLS with it (on one reactor or `--threads 2`), and `echo_client --tls` and
//! `openssl s_client` verify every byte; a certificate and key given in the wrong places
//! are refused with what each file holds, and `echo_client` without `--tls` is told to add it.

mod util;

use std::path::Path;
use std::process::Command;

use util::programs::{example, output_within, stderr, stdout, Spawned};
use util::tls::have;

/// Runs `gen_cert --dir` into a fresh directory of this test's own (removed on drop):
/// the tests run in parallel, and one `gen_cert` overwriting another's files mixes a CA
/// with another CA's leaf.
fn certificates() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("mio-reactor-gen-cert-")
        .tempdir()
        .unwrap();
    let mut command = Command::new(example("gen_cert"));
    command.arg("--dir").arg(dir.path());
    let output = output_within(command);
    assert!(output.status.success(), "gen_cert: {}", stderr(&output));
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        assert!(dir.path().join(file).exists(), "{file} written");
    }
    dir
}

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
    let dir = certificates();
    let (server, port) = tls_echo_server(dir.path(), &[]);
    echo_client_with_tls_verifies_every_byte(server, port, dir.path());
}

#[test]
fn echo_server_with_two_threads_serves_tls_on_both_to_echo_client_with_tls() {
    let dir = certificates();
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
fn openssl_s_client_verifies_the_gen_cert_certificate_of_echo_server() {
    if !have("openssl") {
        eprintln!("note: openssl not found; skipping (CI installs it)");
        return;
    }
    let dir = certificates();
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

/// Runs `echo_server` with gen_cert's files `cert` and `key` (names in its directory), which
/// it must refuse with exit code 2; its standard error, with each directory written `DIR`.
fn refusal_of(cert: &str, key: &str) -> String {
    let dir = certificates();
    let mut server = Command::new(example("echo_server"));
    server
        .args(["--addr", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(dir.path().join(cert))
        .arg("--tls-key")
        .arg(dir.path().join(key));
    let output = output_within(server);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    stderr(&output).replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn swapped_certificate_and_key_files_are_named_with_what_each_holds() {
    let err = refusal_of("key.pem", "cert.pem");
    let expected =
        "echo_server: --tls-cert DIR/key.pem: no certificate found: this file holds a private key";
    assert!(err.starts_with(expected), "{err}");
}

#[test]
fn a_certificate_given_as_the_key_is_named_with_what_it_holds() {
    let err = refusal_of("cert.pem", "cert.pem");
    let expected =
        "echo_server: --tls-key DIR/cert.pem: no private key found: this file holds a certificate";
    assert!(err.starts_with(expected), "{err}");
}

#[test]
fn echo_client_without_tls_against_a_tls_server_says_to_add_tls() {
    let dir = certificates();
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
    assert!(
        stderr(&output)
            .contains("echo_client: 2 × the server answered with TLS: add --tls --ca FILE"),
        "{}",
        stderr(&output)
    );
    assert!(finished.status.success(), "{}", finished.stderr);
}

#[test]
fn echo_client_refuses_tls_without_a_ca() {
    let mut client = Command::new(example("echo_client"));
    client.arg("--tls");
    let output = output_within(client);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--ca <FILE>"),
        "{}",
        stderr(&output)
    );
}
